import { paymentConfigFor } from "./config";
import type { PaymentProvider } from "./provider";
import { SimulatedPaymentProvider } from "./simulated";
import { StripePaymentProvider } from "./stripe";

export { type PaymentConfig, paymentConfigFor } from "./config";
export type { PaymentProvider } from "./provider";

/**
 * The configured provider (see `paymentConfigFor`). Never a fallback: an unknown or disallowed
 * configuration throws `payment-unavailable` instead of quietly simulating payments.
 */
export function paymentProviderFor(env: Env): PaymentProvider {
  const config = paymentConfigFor(env);
  if (config.provider === "stripe") return new StripePaymentProvider(config.secretKey);
  return new SimulatedPaymentProvider(env.DB);
}

/** Milliseconds a provider call may take before it is abandoned. */
export function paymentTimeoutMs(env: Env): number {
  const value = Number(env.PAYMENT_TIMEOUT_MS);
  return Number.isFinite(value) && value > 0 ? value : 5000;
}

export type LedgerKind = "authorization" | "capture" | "refund" | "void" | "failure";

/**
 * Books one money movement (or failed attempt). The unique idempotency key makes a replayed
 * message a no-op here, which is what keeps the ledger at one row per movement.
 */
export async function recordLedger(
  env: Pick<Env, "DB">,
  row: {
    orderId: string;
    provider: string;
    kind: LedgerKind;
    amount: number;
    currency: string;
    providerRef?: string;
    detail?: string;
    idempotencyKey: string;
  },
): Promise<void> {
  // One fixed statement (two per charge on the saga's hot path): no query builder per call.
  await env.DB.prepare(RECORD_LEDGER)
    .bind(
      crypto.randomUUID(),
      row.orderId,
      row.provider,
      row.kind,
      row.amount,
      row.currency,
      row.providerRef ?? null,
      row.detail ?? null,
      row.idempotencyKey,
    )
    .run();
}

/** `payment_ledger` (d1/schema/orders.ts); `created_at` takes its column default. */
const RECORD_LEDGER = `INSERT INTO payment_ledger
    (id, order_id, provider, kind, amount, currency, provider_ref, detail, idempotency_key)
  VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
  ON CONFLICT (idempotency_key) DO NOTHING`;
