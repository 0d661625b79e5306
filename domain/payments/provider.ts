/**
 * The payment-provider seam. The payment consumer speaks only this interface; the simulated
 * provider (default, deterministic test cards) and the Stripe PaymentIntents adapter implement it.
 * Amounts are integer minor units. Every call carries an idempotency key so a redelivered queue
 * message can never move money twice.
 */
export interface PaymentProvider {
  readonly name: string;
  /** Places a hold on the payment method. Declines are results, not errors. */
  authorize(input: AuthorizeInput, signal: AbortSignal): Promise<AuthorizeResult>;
  /** Captures a previous authorization (the money moves). */
  capture(
    input: { authorizationId: string; amount: number; idempotencyKey: string },
    signal: AbortSignal,
  ): Promise<{ captureId: string }>;
  /** Releases an authorization that was never captured. */
  void(input: { authorizationId: string; idempotencyKey: string }, signal: AbortSignal): Promise<{ voided: boolean }>;
  /** Refunds some or all of a captured payment. */
  refund(
    input: { authorizationId: string; amount: number; idempotencyKey: string },
    signal: AbortSignal,
  ): Promise<{ refundId: string }>;
}

export interface AuthorizeInput {
  orderId: string;
  amount: number;
  currency: string;
  /** Provider payment-method token; card numbers never get this far. */
  token: string;
  idempotencyKey: string;
}

export type AuthorizeResult =
  | { status: "authorized"; authorizationId: string }
  | { status: "declined"; code: "card_declined" | "insufficient_funds" };

/** The provider could not answer now (5xx, 429, network); the same call may succeed later. */
export class TransientPaymentError extends Error {
  override name = "TransientPaymentError";
}

/** The provider did not answer within the timeout; the outcome is unknown, so compensate. */
export class PaymentTimeoutError extends Error {
  override name = "PaymentTimeoutError";
}

/** The provider rejected the request itself (bad token, bad amount): retrying cannot help. */
export class PermanentPaymentError extends Error {
  override name = "PermanentPaymentError";
}

/** Turns an abort caused by our own timeout into PaymentTimeoutError; rethrows anything else. */
export function asTimeout(error: unknown, signal: AbortSignal): never {
  if (signal.aborted) throw new PaymentTimeoutError(`payment provider did not answer in time`);
  throw error;
}
