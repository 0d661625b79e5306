import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { z } from "zod";
import type { OrderCancelled, OrderRefundRequested, OrderReserved } from "../contracts/saga-events";
import { paymentLedger } from "../d1/schema/orders";
import { DomainError } from "../domain/errors";
import { paymentProviderFor, paymentTimeoutMs, recordLedger } from "../domain/payments";
import {
  type PaymentProvider,
  PaymentTimeoutError,
  PermanentPaymentError,
  TransientPaymentError,
} from "../domain/payments/provider";
import { type BreakerPermit, circuitBreakerFor } from "../durable-objects/circuit-breaker";
import type { SaleOutcome, StepAck, StepOptions } from "../durable-objects/order";
import { orderShardOf } from "../durable-objects/order-shard";
import { sharedPermitsOf } from "./breaker-permits";
import { backoffSeconds, MAX_DELIVERIES, RetryLater } from "./retry";

type Reserved = z.infer<typeof OrderReserved>;
type RefundRequested = z.infer<typeof OrderRefundRequested>;
type Cancelled = z.infer<typeof OrderCancelled>;

/**
 * Payment step of the saga: charge (authorize + capture) once every line is reserved, refund on
 * request, void an authorization left behind by a cancelled order. Idempotency keys derived from
 * the order id go to the provider and into the ledger, so a redelivered message charges once.
 * The per-provider circuit breaker (a Durable Object shared by every isolate) fails fast while open.
 * A misconfigured Worker (unknown provider, simulated outside local/test mode, Stripe without its
 * key) moves no money at all: the message is retried and, if the config stays wrong, dead-lettered
 * for a human; it never falls back to the simulated provider.
 */
export async function handlePaymentEvent(
  event: Reserved | RefundRequested | Cancelled,
  env: Env,
  attempts: number,
): Promise<void> {
  const provider = configuredProvider(env, event.orderId, event.type, attempts);
  switch (event.type) {
    case "order.reserved":
      await charge(event, env, provider, attempts);
      return;
    case "order.refund_requested":
      return refund(event, env, provider, attempts);
    case "order.cancelled":
      return voidDangling(event, env, provider, attempts);
  }
}

/** What a charge needs of a reserved order (an `order.reserved` event is one). */
export interface ChargeInput {
  orderId: string;
  order: { userId: string; total: { amount: number; currency: string } };
  paymentToken: string;
}

/**
 * The sale an inline charge runs between the capture and its report (`sell`), and how to put it
 * back if the order turns out to have been cancelled meanwhile (`undo`).
 */
export interface SaleAfterCharge {
  sell: () => Promise<SaleOutcome>;
  undo: () => Promise<void>;
}

/**
 * The charge of an order the calling delivery reserved itself (queues/saga-continuation.ts): the
 * same step as on `order.reserved`, reported `inline`. With `sale`, a captured payment is followed
 * by the sale before anything is reported, and the order takes both in one call (paymentResult's
 * `sold`); a sale that throws is left out, so the ack names the sale as this delivery's next step,
 * as it does without `sale`.
 */
export function chargeInline(
  input: ChargeInput,
  env: Env,
  attempts: number,
  sale?: SaleAfterCharge,
): Promise<StepAck | undefined> {
  const provider = configuredProvider(env, input.orderId, "order.reserved", attempts);
  return charge(input, env, provider, attempts, { inline: true }, sale);
}

/** The provider the Worker is configured for; a misconfiguration is retried (and logged), never guessed around. */
function configuredProvider(env: Env, orderId: string, type: string, attempts: number): PaymentProvider {
  try {
    return paymentProviderFor(env);
  } catch (error) {
    if (!(error instanceof DomainError)) throw error;
    console.error(
      JSON.stringify({
        level: "error",
        msg: "payment step refused: payments misconfigured",
        orderId,
        type,
        attempts,
        error: error.message,
      }),
    );
    throw new RetryLater(Math.max(backoffSeconds(attempts), 60), error.message);
  }
}

/** Authorize + capture, reported to the order; answers the order's ack when it took the result as paid. */
async function charge(
  event: ChargeInput,
  env: Env,
  provider: PaymentProvider,
  attempts: number,
  options: StepOptions = {},
  sale?: SaleAfterCharge,
): Promise<StepAck | undefined> {
  const order = orderShardOf(env, event.orderId);
  const { amount, currency } = event.order.total;
  const base = { orderId: event.orderId, provider: provider.name, amount, currency };
  const authKey = `${event.orderId}:authorize`;
  const customer = event.order.userId;
  const lastChance = attempts >= MAX_DELIVERIES;
  try {
    // One permit for the charge, both of its provider calls: a charge the breaker let start is
    // finished (capturing what was authorized), and the breaker is asked once per order, not twice.
    const permit = await breakerPermit(env, provider.name, attempts);
    const authorization = await guarded(
      env,
      provider.name,
      customer,
      attempts,
      (signal) =>
        provider.authorize(
          { orderId: event.orderId, amount, currency, token: event.paymentToken, idempotencyKey: authKey },
          signal,
        ),
      permit,
    );
    if (authorization.status === "declined") {
      await recordLedger(env, {
        ...base,
        kind: "failure",
        detail: authorization.code,
        idempotencyKey: `${authKey}:declined`,
      });
      await order.paymentResult(event.orderId, { ok: false, reason: "payment_declined", detail: authorization.code });
      return undefined;
    }
    await recordLedger(env, {
      ...base,
      kind: "authorization",
      providerRef: authorization.authorizationId,
      idempotencyKey: authKey,
    });
    const captureKey = `${event.orderId}:capture`;
    const capture = await guarded(
      env,
      provider.name,
      customer,
      attempts,
      (signal) =>
        provider.capture(
          { authorizationId: authorization.authorizationId, amount, idempotencyKey: captureKey },
          signal,
        ),
      permit,
    );
    await recordLedger(env, { ...base, kind: "capture", providerRef: capture.captureId, idempotencyKey: captureKey });
    const sold = sale ? await saleOrNothing(event.orderId, sale) : undefined;
    // If the order was cancelled meanwhile it refunds this capture itself (order.refund_requested).
    const ack = await order.paymentResult(
      event.orderId,
      { ok: true, authorizationId: authorization.authorizationId, captureId: capture.captureId, amount },
      sold ? { ...options, sold } : options,
    );
    // ...and what was sold for it goes back on the shelf.
    if (sale && sold?.ok && !ack.accepted) await sale.undo();
    return ack;
  } catch (error) {
    if (error instanceof RetryLater && !lastChance) throw error;
    if (error instanceof RetryLater || error instanceof TransientPaymentError) {
      await recordLedger(env, {
        ...base,
        kind: "failure",
        detail: "transient",
        idempotencyKey: `${authKey}:failure:${attempts}`,
      });
      if (!lastChance) throw new RetryLater(backoffSeconds(attempts), error.message);
      await order.paymentResult(event.orderId, {
        ok: false,
        reason: "payment_error",
        detail: `gave up after ${attempts} attempts: ${error.message}`,
      });
      await voidIfAuthorized(event.orderId, customer, env, provider, currency);
      return undefined;
    }
    if (error instanceof PaymentTimeoutError || error instanceof PermanentPaymentError) {
      const detail = error instanceof PaymentTimeoutError ? "timeout" : "rejected";
      await recordLedger(env, { ...base, kind: "failure", detail, idempotencyKey: `${authKey}:${detail}` });
      await order.paymentResult(event.orderId, { ok: false, reason: "payment_error", detail: error.message });
      // Outcome unknown after a timeout: if an authorization did get booked, release it.
      await voidIfAuthorized(event.orderId, customer, env, provider, currency);
      return undefined;
    }
    throw error;
  }
}

/**
 * The sale after a capture, or undefined when it threw: the capture is reported without it then
 * (money taken is recorded first), and the order names the sale as the next step, which retries it.
 */
async function saleOrNothing(orderId: string, sale: SaleAfterCharge): Promise<SaleOutcome | undefined> {
  try {
    return await sale.sell();
  } catch (error) {
    console.warn(
      JSON.stringify({
        level: "warn",
        msg: "sale after the charge failed; reporting the payment alone",
        orderId,
        error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
      }),
    );
    return undefined;
  }
}

async function refund(event: RefundRequested, env: Env, provider: PaymentProvider, attempts: number): Promise<void> {
  const authorization = await ledgerRow(env, event.orderId, "authorization");
  if (!authorization?.providerRef) throw new Error(`order ${event.orderId} has no authorization to refund`);
  try {
    const result = await guarded(env, provider.name, event.order.userId, attempts, (signal) =>
      provider.refund(
        { authorizationId: authorization.providerRef!, amount: event.amount, idempotencyKey: event.refundId },
        signal,
      ),
    );
    await recordLedger(env, {
      orderId: event.orderId,
      provider: provider.name,
      kind: "refund",
      amount: event.amount,
      currency: event.order.total.currency,
      providerRef: result.refundId,
      idempotencyKey: event.refundId,
    });
    await orderShardOf(env, event.orderId).refundResult(event.orderId, { refundId: event.refundId });
  } catch (error) {
    // Money owed to a customer is never given up on: retry, and the DLQ flags it for a human.
    if (error instanceof TransientPaymentError || error instanceof PaymentTimeoutError) {
      throw new RetryLater(backoffSeconds(attempts), error.message);
    }
    throw error;
  }
}

async function voidDangling(event: Cancelled, env: Env, provider: PaymentProvider, attempts: number): Promise<void> {
  try {
    await voidIfAuthorized(event.orderId, event.order.userId, env, provider, event.order.total.currency, attempts);
  } catch (error) {
    if (error instanceof TransientPaymentError || error instanceof PaymentTimeoutError) {
      throw new RetryLater(backoffSeconds(attempts), error.message);
    }
    throw error;
  }
}

/** Voids an authorization that was booked but never captured (compensation). */
async function voidIfAuthorized(
  orderId: string,
  customer: string,
  env: Env,
  provider: PaymentProvider,
  currency: string,
  attempts = 1,
): Promise<void> {
  const authorization = await ledgerRow(env, orderId, "authorization");
  if (!authorization?.providerRef) return;
  if (await ledgerRow(env, orderId, "capture")) return;
  const key = `${orderId}:void`;
  await guarded(env, provider.name, customer, attempts, (signal) =>
    provider.void({ authorizationId: authorization.providerRef!, idempotencyKey: key }, signal),
  );
  await recordLedger(env, {
    orderId,
    provider: provider.name,
    kind: "void",
    amount: authorization.amount,
    currency,
    providerRef: authorization.providerRef,
    idempotencyKey: key,
  });
}

function ledgerRow(env: Env, orderId: string, kind: "authorization" | "capture") {
  return drizzle(env.DB)
    .select()
    .from(paymentLedger)
    .where(and(eq(paymentLedger.orderId, orderId), eq(paymentLedger.kind, kind)))
    .get();
}

/** The breaker's permit to call the provider; an open breaker → RetryLater, without calling it. */
async function breakerPermit(env: Env, providerName: string, attempts: number): Promise<BreakerPermit> {
  const acquire = () => circuitBreakerFor(env, providerName).acquire(providerName);
  // Inside a queue delivery its charges share one answer (queues/breaker-permits.ts).
  const permit = await (sharedPermitsOf(env)?.get(providerName, acquire) ?? acquire());
  if (!permit.allowed) {
    throw new RetryLater(
      Math.max(backoffSeconds(attempts), Math.ceil(permit.retryAfterMs / 1000)),
      "circuit breaker open",
    );
  }
  return permit;
}

/**
 * One provider call behind the breaker and the timeout (`given`: a permit the caller already holds
 * for the operation this call is part of). Open breaker → RetryLater without calling
 * the provider. Transient failures and timeouts count against the breaker, on behalf of the
 * customer whose payment it was (one customer alone cannot open it); answers (including declines)
 * count for it.
 */
async function guarded<T>(
  env: Env,
  providerName: string,
  customer: string,
  attempts: number,
  call: (signal: AbortSignal) => Promise<T>,
  given?: BreakerPermit,
): Promise<T> {
  const breaker = circuitBreakerFor(env, providerName);
  const permit = given ?? (await breakerPermit(env, providerName, attempts));
  const controller = new AbortController();
  const timer = setTimeout(
    () => controller.abort(new PaymentTimeoutError("payment provider timeout")),
    paymentTimeoutMs(env),
  );
  try {
    const result = await call(controller.signal);
    // A success only changes a breaker that has failures to reset or is half-open; skipping the
    // call otherwise halves breaker traffic. (If another isolate failed meanwhile, its failure
    // stays counted a little longer: the breaker errs towards opening, never towards hiding one.)
    if (permit.status !== "closed" || permit.consecutiveFailures > 0) await breaker.recordSuccess(providerName);
    return result;
  } catch (error) {
    if (error instanceof TransientPaymentError || error instanceof PaymentTimeoutError) {
      sharedPermitsOf(env)?.forget(providerName);
      await breaker.recordFailure(providerName, customer);
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
