import { drizzle } from "drizzle-orm/d1";
import { paymentLedger } from "../../d1/schema/orders";
import type { PaymentProvider } from "./provider";
import { SimulatedPaymentProvider } from "./simulated";
import { StripePaymentProvider } from "./stripe";

export type { PaymentProvider } from "./provider";

/** The configured provider: `PAYMENT_PROVIDER` = "simulated" (default) or "stripe". */
export function paymentProviderFor(env: Env): PaymentProvider {
  if (env.PAYMENT_PROVIDER === "stripe") {
    const key = (env as Env & { STRIPE_SECRET_KEY?: string }).STRIPE_SECRET_KEY ?? "";
    return new StripePaymentProvider(key);
  }
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
