// First on purpose: @hono/zod-openapi adds `.openapi()` to zod, and only schemas created after that
// get it. The Worker entry imports this module before the routes, and the contract schemas loaded
// here are extended by route modules (e.g. `Cart.openapi("Cart")`).
import "@hono/zod-openapi";
import type { CartEvent } from "../contracts/cart-events";
import { type OrderEvent, SagaEvent } from "../contracts/saga-events";
import { derivedEnv } from "../domain/env-config";
import { rollUpEvents } from "./analytics";
import { sharePermits } from "./breaker-permits";
import { groupCommitted } from "./d1-group-commit";
import { handleDeadLetterBatch, recordDeadLetter } from "./dead-letter";
import { handleFraudEvent } from "./fraud";
import { handleInventoryEvent } from "./inventory";
import { batchRecipients, handleNotificationEvent, NOTIFIED_EVENTS, type RecipientLookup } from "./notification";
import { handlePaymentEvent } from "./payment";
import { handlePromotionEvent } from "./promotion";
import { projectInventoryEvent, projectOrderEvents } from "./read-model";
import { backoffSeconds, RetryLater } from "./retry";
import { continueInline } from "./saga-continuation";
import { handleShippingEvent } from "./shipping";

/**
 * The saga steps an event triggers (each consumer is idempotent, so a retry may re-run all of
 * them). The orders read model is not here: the dispatcher projects a whole batch in one D1 call.
 */
async function consume(event: SagaEvent, env: Env, attempts: number, recipientOf: RecipientLookup): Promise<void> {
  switch (event.type) {
    case "order.placed": {
      // The fraud screening runs beside the reservation; the order waits for both. The one that
      // moves it on carries it on in this delivery: charge, then sell (queues/saga-continuation.ts).
      const acks = await Promise.all([handleInventoryEvent(event, env, attempts), handleFraudEvent(event, env)]);
      return continueInline(event, env, attempts, acks.find((ack) => ack?.next)?.next);
    }
    case "order.paid":
      // Sells the stock and, for an order that ships, books the parcel in the same hop — unless the
      // delivery that charged it is doing that already (`inline`).
      if (event.inline) return;
      await handleInventoryEvent(event, env, attempts);
      return;
    case "order.held_for_review":
      // Read model only (projected with the batch); the OrderObject's alarm ends the hold.
      return;
    case "order.reserved":
      // Charged by the delivery that reserved it when `inline`; otherwise (an approved review) here.
      if (event.inline) return;
      return handlePaymentEvent(event, env, attempts);
    case "order.refund_requested":
      return handlePaymentEvent(event, env, attempts);
    case "order.cancelled":
      await Promise.all([
        handleInventoryEvent(event, env),
        handlePaymentEvent(event, env, attempts),
        handlePromotionEvent(event, env),
        handleNotificationEvent(event, env, recipientOf),
        handleFraudEvent(event, env),
      ]);
      return;
    case "order.shipment_requested":
      return handleShippingEvent(event, env, attempts);
    case "order.shipped":
      await Promise.all([handleInventoryEvent(event, env), handleNotificationEvent(event, env, recipientOf)]);
      return;
    case "order.confirmed":
    case "order.refunded":
    case "order.delivered":
      return handleNotificationEvent(event, env, recipientOf);
    case "order.needs_attention":
      // The order itself shows it (status, needsAttention); operators find it in the read model.
      console.warn(
        JSON.stringify({ level: "warn", msg: "order needs attention", orderId: event.orderId, problem: event.problem }),
      );
      return;
    case "inventory.changed":
    case "inventory.low_stock":
      return projectInventoryEvent(event, env);
    case "cart.created":
    case "cart.checked_out":
      // Counted by the analytics rollups only (below, for the whole batch).
      return;
  }
}

const isOrderEvent = (event: SagaEvent): event is OrderEvent => event.type.startsWith("order.");
/** What the analytics rollups count: order and cart events (not inventory levels). */
const isCountedEvent = (event: SagaEvent): event is OrderEvent | CartEvent =>
  event.type.startsWith("order.") || event.type.startsWith("cart.");

/**
 * The Worker's queue() handler. Each message is parsed with its zod schema and handled on its
 * own (concurrently within the batch), then acked or retried with backoff by itself. A message
 * that does not parse can never succeed, so it is recorded as a dead letter at once and acked.
 * Order events are also projected into the read model, all of the batch's in one D1 batch; if
 * that write fails, every order-event message of the batch is retried (projection is idempotent).
 * Order and cart events are rolled up for analytics the same way (queues/analytics.ts: one D1
 * batch, each event counted once), and a failed rollup retries those messages too. Every D1 write
 * of the batch, these two and the consumers' own, goes through one group commit.
 */
export async function dispatchBatch(
  batch: MessageBatch<unknown>,
  workerEnv: Env,
  _ctx: ExecutionContext,
): Promise<void> {
  // The batch's D1 writes share commits (queues/d1-group-commit.ts), and its charges share the
  // circuit breaker's answer (queues/breaker-permits.ts).
  const env = derivedEnv(workerEnv, { DB: groupCommitted(workerEnv.DB) });
  sharePermits(env);
  if (batch.queue.includes("-dlq")) return handleDeadLetterBatch(batch, env);
  const parsed: { message: Message<unknown>; event: SagaEvent }[] = [];
  await Promise.all(
    batch.messages.map(async (message) => {
      const result = SagaEvent.safeParse(message.body);
      if (result.success) {
        parsed.push({ message, event: result.data });
        return;
      }
      await recordDeadLetter(env, message, `invalid event: ${result.error.issues[0]?.message ?? "schema mismatch"}`);
      message.ack();
    }),
  );
  const orderEvents = parsed.filter((p) => isOrderEvent(p.event));
  // Every customer the batch may notify, read once when the first notification needs one.
  const recipientOf = batchRecipients(
    env,
    orderEvents.flatMap((p) => (NOTIFIED_EVENTS.has(p.event.type) ? [(p.event as OrderEvent).order.userId] : [])),
  );
  const [projection, rollup, ...outcomes] = await Promise.allSettled([
    projectOrderEvents(
      orderEvents.map((p) => p.event as OrderEvent),
      env,
    ),
    rollUpEvents(
      parsed.flatMap((p) => (isCountedEvent(p.event) ? [p.event] : [])),
      env,
    ),
    ...parsed.map((p) => consume(p.event, env, p.message.attempts, recipientOf)),
  ]);
  parsed.forEach(({ message, event }, i) => {
    const outcome = outcomes[i]!;
    const error =
      outcome.status === "rejected"
        ? (outcome.reason as unknown)
        : isOrderEvent(event) && projection?.status === "rejected"
          ? (projection.reason as unknown)
          : isCountedEvent(event) && rollup?.status === "rejected"
            ? (rollup.reason as unknown)
            : null;
    if (error === null) {
      message.ack();
      return;
    }
    const delaySeconds = error instanceof RetryLater ? error.delaySeconds : backoffSeconds(message.attempts);
    if (!(error instanceof RetryLater)) {
      console.error(
        JSON.stringify({
          level: "error",
          msg: "saga event failed; retrying",
          eventId: event.id,
          type: event.type,
          attempts: message.attempts,
          error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
        }),
      );
    }
    message.retry({ delaySeconds });
  });
}
