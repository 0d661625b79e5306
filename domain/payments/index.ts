import { drizzle } from "drizzle-orm/d1";
import { paymentLedger } from "../../d1/schema/orders";
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
  await drizzle(env.DB)
    .insert(paymentLedger)
    .values({ id: crypto.randomUUID(), ...row })
    .onConflictDoNothing({ target: paymentLedger.idempotencyKey });
}
