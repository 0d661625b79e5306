import {
  type AuthorizeInput,
  type AuthorizeResult,
  asTimeout,
  type PaymentProvider,
  PermanentPaymentError,
  TransientPaymentError,
} from "./provider";

const STRIPE_API = "https://api.stripe.com/v1";

interface StripeError {
  error?: { type?: string; code?: string; decline_code?: string; message?: string };
}

/**
 * Stripe PaymentIntents over plain fetch (no SDK: it is Node-centric and large). Authorization is
 * a PaymentIntent confirmed with `capture_method=manual`; capture, cancel (void) and refunds
 * follow. Every POST carries `Idempotency-Key`, so Stripe itself dedupes redelivered messages.
 */
export class StripePaymentProvider implements PaymentProvider {
  readonly name = "stripe";
  readonly #secretKey: string;
  readonly #fetch: typeof fetch;

  constructor(secretKey: string, fetcher: typeof fetch = (input, init) => fetch(input, init)) {
    if (!secretKey) throw new Error("STRIPE_SECRET_KEY is required for the Stripe provider");
    this.#secretKey = secretKey;
    this.#fetch = fetcher;
  }

  async authorize(input: AuthorizeInput, signal: AbortSignal): Promise<AuthorizeResult> {
    const { status, body } = await this.#post(
      "/payment_intents",
      {
        amount: String(input.amount),
        currency: input.currency.toLowerCase(),
        payment_method: input.token,
        confirm: "true",
        capture_method: "manual",
        "payment_method_types[]": "card",
        "metadata[order_id]": input.orderId,
      },
      input.idempotencyKey,
      signal,
    );
    if (status === 402) {
      const error = (body as StripeError).error;
      return {
        status: "declined",
        code: error?.decline_code === "insufficient_funds" ? "insufficient_funds" : "card_declined",
      };
    }
    const intent = body as { id: string; status: string };
    if (intent.status !== "requires_capture") {
      // e.g. requires_action (3-D Secure): not something a server-side saga can complete.
      return { status: "declined", code: "card_declined" };
    }
    return { status: "authorized", authorizationId: intent.id };
  }

  async capture(
    input: { authorizationId: string; amount: number; idempotencyKey: string },
    signal: AbortSignal,
  ): Promise<{ captureId: string }> {
    const { body } = await this.#post(
      `/payment_intents/${encodeURIComponent(input.authorizationId)}/capture`,
      { amount_to_capture: String(input.amount) },
      input.idempotencyKey,
      signal,
    );
    const intent = body as { id: string; status: string; latest_charge?: string };
    if (intent.status !== "succeeded") throw new PermanentPaymentError(`capture left intent in ${intent.status}`);
    return { captureId: intent.latest_charge ?? intent.id };
  }

  async void(
    input: { authorizationId: string; idempotencyKey: string },
    signal: AbortSignal,
  ): Promise<{ voided: boolean }> {
    const { body } = await this.#post(
      `/payment_intents/${encodeURIComponent(input.authorizationId)}/cancel`,
      {},
      input.idempotencyKey,
      signal,
    );
    return { voided: (body as { status: string }).status === "canceled" };
  }

  async refund(
    input: { authorizationId: string; amount: number; idempotencyKey: string },
    signal: AbortSignal,
  ): Promise<{ refundId: string }> {
    const { body } = await this.#post(
      "/refunds",
      { payment_intent: input.authorizationId, amount: String(input.amount) },
      input.idempotencyKey,
      signal,
    );
    return { refundId: (body as { id: string }).id };
  }

  /** One form-encoded POST; 402 is returned to the caller, 409/429/5xx/network are transient. */
  async #post(
    path: string,
    form: Record<string, string>,
    idempotencyKey: string,
    signal: AbortSignal,
  ): Promise<{ status: number; body: unknown }> {
    let res: Response;
    try {
      res = await this.#fetch(`${STRIPE_API}${path}`, {
        method: "POST",
        headers: {
          Authorization: `Bearer ${this.#secretKey}`,
          "Content-Type": "application/x-www-form-urlencoded",
          "Idempotency-Key": idempotencyKey,
        },
        body: new URLSearchParams(form).toString(),
        signal,
      });
    } catch (error) {
      if (signal.aborted) asTimeout(error, signal);
      throw new TransientPaymentError(`stripe unreachable: ${error instanceof Error ? error.message : String(error)}`);
    }
    const body: unknown = await res.json().catch(() => ({}));
    if (res.ok || res.status === 402) return { status: res.status, body };
    // 409: a concurrent request with the same Idempotency-Key is still running at Stripe.
    if (res.status === 409 || res.status === 429 || res.status >= 500) {
      throw new TransientPaymentError(`stripe answered ${res.status}`);
    }
    throw new PermanentPaymentError(`stripe answered ${res.status}: ${(body as StripeError).error?.message ?? ""}`);
  }
}
