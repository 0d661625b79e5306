import { afterEach, describe, expect, it, vi } from "vitest";
import { PaymentTimeoutError, PermanentPaymentError, TransientPaymentError } from "./provider";
import { StripePaymentProvider } from "./stripe";

// Response bodies trimmed from Stripe's documented PaymentIntent / Refund / error objects.
const INTENT_REQUIRES_CAPTURE = {
  id: "pi_3OXq2L2eZvKYlo2C0uLkqL5v",
  object: "payment_intent",
  amount: 4200,
  amount_capturable: 4200,
  capture_method: "manual",
  currency: "usd",
  status: "requires_capture",
  latest_charge: "ch_3OXq2L2eZvKYlo2C0kq8sVtI",
  metadata: { order_id: "ord_1" },
};
const INTENT_SUCCEEDED = {
  ...INTENT_REQUIRES_CAPTURE,
  status: "succeeded",
  amount_received: 4200,
  amount_capturable: 0,
};
const INTENT_CANCELED = {
  ...INTENT_REQUIRES_CAPTURE,
  status: "canceled",
  cancellation_reason: "requested_by_customer",
};
const REFUND = {
  id: "re_3OXq2L2eZvKYlo2C0dGx7mzc",
  object: "refund",
  amount: 1000,
  payment_intent: INTENT_REQUIRES_CAPTURE.id,
  status: "succeeded",
};
const CARD_ERROR = (decline: string) => ({
  error: {
    type: "card_error",
    code: "card_declined",
    decline_code: decline,
    message: "Your card was declined.",
    payment_intent: { ...INTENT_REQUIRES_CAPTURE, status: "requires_payment_method" },
  },
});

interface Recorded {
  url: string;
  method: string;
  headers: Headers;
  form: URLSearchParams;
}

/** A stand-in for the outbound fetch: records each request, answers from the queue of responses. */
function fakeStripe(...answers: (Response | Error)[]) {
  const requests: Recorded[] = [];
  const fetcher: typeof fetch = async (input, init) => {
    const request = new Request(input, init);
    requests.push({
      url: request.url,
      method: request.method,
      headers: request.headers,
      form: new URLSearchParams(await request.text()),
    });
    const answer = answers.shift();
    if (!answer) throw new Error("unexpected request");
    if (answer instanceof Error) throw answer;
    return answer;
  };
  return { requests, provider: new StripePaymentProvider("sk_test_123", fetcher) };
}
const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
const signal = () => new AbortController().signal;

describe("Stripe PaymentIntents adapter", () => {
  it("authorizes with a manual-capture PaymentIntent, sending Idempotency-Key and form fields", async () => {
    const { provider, requests } = fakeStripe(json(INTENT_REQUIRES_CAPTURE));
    const result = await provider.authorize(
      { orderId: "ord_1", amount: 4200, currency: "USD", token: "pm_card_visa", idempotencyKey: "ord_1:authorize" },
      signal(),
    );
    expect(result).toEqual({ status: "authorized", authorizationId: INTENT_REQUIRES_CAPTURE.id });
    const [req] = requests;
    expect(req?.url).toBe("https://api.stripe.com/v1/payment_intents");
    expect(req?.method).toBe("POST");
    expect(req?.headers.get("idempotency-key")).toBe("ord_1:authorize");
    expect(req?.headers.get("authorization")).toBe("Bearer sk_test_123");
    expect(req?.headers.get("content-type")).toBe("application/x-www-form-urlencoded");
    expect(Object.fromEntries(req!.form)).toMatchObject({
      amount: "4200",
      currency: "usd",
      payment_method: "pm_card_visa",
      confirm: "true",
      capture_method: "manual",
      "metadata[order_id]": "ord_1",
    });
  });

  it("maps 402 card errors to declines (insufficient funds kept apart)", async () => {
    const { provider } = fakeStripe(
      json(CARD_ERROR("generic_decline"), 402),
      json(CARD_ERROR("insufficient_funds"), 402),
    );
    const input = { orderId: "ord_2", amount: 100, currency: "usd", token: "pm_x", idempotencyKey: "k" };
    expect(await provider.authorize(input, signal())).toEqual({ status: "declined", code: "card_declined" });
    expect(await provider.authorize(input, signal())).toEqual({ status: "declined", code: "insufficient_funds" });
  });

  it("captures, voids (cancel) and refunds with their own idempotency keys", async () => {
    const { provider, requests } = fakeStripe(json(INTENT_SUCCEEDED), json(INTENT_CANCELED), json(REFUND));
    const id = INTENT_REQUIRES_CAPTURE.id;
    expect(
      await provider.capture({ authorizationId: id, amount: 4200, idempotencyKey: "ord_1:capture" }, signal()),
    ).toEqual({
      captureId: INTENT_REQUIRES_CAPTURE.latest_charge,
    });
    expect(await provider.void({ authorizationId: id, idempotencyKey: "ord_1:void" }, signal())).toEqual({
      voided: true,
    });
    expect(await provider.refund({ authorizationId: id, amount: 1000, idempotencyKey: "rf_1" }, signal())).toEqual({
      refundId: REFUND.id,
    });
    expect(requests.map((r) => [new URL(r.url).pathname, r.headers.get("idempotency-key")])).toEqual([
      [`/v1/payment_intents/${id}/capture`, "ord_1:capture"],
      [`/v1/payment_intents/${id}/cancel`, "ord_1:void"],
      ["/v1/refunds", "rf_1"],
    ]);
    expect(Object.fromEntries(requests[2]!.form)).toEqual({ payment_intent: id, amount: "1000" });
  });

  it("treats 5xx, 429, 409 (idempotent request in flight) and network errors as transient; 400 as permanent", async () => {
    const apiError = (status: number) => json({ error: { type: "api_error", message: "boom" } }, status);
    const { provider } = fakeStripe(
      apiError(500),
      apiError(429),
      apiError(409),
      new TypeError("network down"),
      apiError(400),
    );
    const input = { orderId: "ord_3", amount: 100, currency: "usd", token: "pm_x", idempotencyKey: "k3" };
    for (let i = 0; i < 4; i++)
      await expect(provider.authorize(input, signal())).rejects.toBeInstanceOf(TransientPaymentError);
    await expect(provider.authorize(input, signal())).rejects.toBeInstanceOf(PermanentPaymentError);
  });

  it("turns our own abort into a timeout", async () => {
    const controller = new AbortController();
    const provider = new StripePaymentProvider("sk_test_123", (_input, init) => {
      return new Promise((_, reject) =>
        init?.signal?.addEventListener("abort", () => reject(new DOMException("aborted", "AbortError"))),
      );
    });
    const pending = provider.authorize(
      { orderId: "ord_4", amount: 1, currency: "usd", token: "pm_x", idempotencyKey: "k4" },
      controller.signal,
    );
    controller.abort();
    await expect(pending).rejects.toBeInstanceOf(PaymentTimeoutError);
  });

  describe("through the runtime's own fetch", () => {
    afterEach(() => vi.restoreAllMocks());

    it("the default fetcher sends the real outbound request (intercepted at globalThis.fetch)", async () => {
      const outbound = vi.spyOn(globalThis, "fetch").mockImplementation(async () => json(INTENT_REQUIRES_CAPTURE));
      const provider = new StripePaymentProvider("sk_test_456");
      const result = await provider.authorize(
        { orderId: "ord_5", amount: 4200, currency: "EUR", token: "pm_card_visa", idempotencyKey: "ord_5:authorize" },
        signal(),
      );
      expect(result).toEqual({ status: "authorized", authorizationId: INTENT_REQUIRES_CAPTURE.id });
      expect(outbound).toHaveBeenCalledTimes(1);
      const [url, init] = outbound.mock.calls[0]!;
      expect(String(url)).toBe("https://api.stripe.com/v1/payment_intents");
      expect(new Headers(init?.headers).get("idempotency-key")).toBe("ord_5:authorize");
      expect(new URLSearchParams(String(init?.body)).get("currency")).toBe("eur");
    });
  });
});
