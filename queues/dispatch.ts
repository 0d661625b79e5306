// First on purpose: @hono/zod-openapi adds `.openapi()` to zod, and only schemas created after that
// get it. The Worker entry imports this module before the routes, and the contract schemas loaded
// here are extended by route modules (e.g. `Cart.openapi("Cart")`).
import "@hono/zod-openapi";
import { SagaEvent } from "../contracts/saga-events";
import { handleDeadLetterBatch, recordDeadLetter } from "./dead-letter";
import { handleInventoryEvent } from "./inventory";
import { handleNotificationEvent } from "./notification";
import { handlePaymentEvent } from "./payment";
import { projectInventoryEvent, projectOrderEvent } from "./read-model";
import { backoffSeconds, RetryLater } from "./retry";

/** Which consumers an event goes to (each is idempotent, so a retry may re-run all of them). */
async function consume(event: SagaEvent, env: Env, attempts: number): Promise<void> {
  switch (event.type) {
    case "order.placed":
    case "order.paid":
      await Promise.all([handleInventoryEvent(event, env), projectOrderEvent(event, env)]);
      return;
    case "order.reserved":
    case "order.refund_requested":
      await Promise.all([handlePaymentEvent(event, env, attempts), projectOrderEvent(event, env)]);
      return;
    case "order.cancelled":
      await Promise.all([
        handleInventoryEvent(event, env),
        handlePaymentEvent(event, env, attempts),
        handleNotificationEvent(event, env),
        projectOrderEvent(event, env),
      ]);
      return;
    case "order.confirmed":
    case "order.refunded":
      await Promise.all([handleNotificationEvent(event, env), projectOrderEvent(event, env)]);
      return;
    case "inventory.changed":
    case "inventory.low_stock":
      await projectInventoryEvent(event, env);
      return;
  }
}

/**
 * The Worker's queue() handler. Each message is parsed with its zod schema and handled on its
 * own (concurrently within the batch), then acked or retried with backoff by itself. A message
 * that does not parse can never succeed, so it is recorded as a dead letter at once and acked.
 */
export async function dispatchBatch(batch: MessageBatch<unknown>, env: Env, _ctx: ExecutionContext): Promise<void> {
  if (batch.queue.includes("-dlq")) return handleDeadLetterBatch(batch, env);
  await Promise.all(
    batch.messages.map(async (message) => {
      const parsed = SagaEvent.safeParse(message.body);
      if (!parsed.success) {
        await recordDeadLetter(env, message, `invalid event: ${parsed.error.issues[0]?.message ?? "schema mismatch"}`);
        message.ack();
        return;
      }
      try {
        await consume(parsed.data, env, message.attempts);
        message.ack();
      } catch (error) {
        const delaySeconds = error instanceof RetryLater ? error.delaySeconds : backoffSeconds(message.attempts);
        if (!(error instanceof RetryLater)) {
          console.error(
            JSON.stringify({
              level: "error",
              msg: "saga event failed; retrying",
              eventId: parsed.data.id,
              type: parsed.data.type,
              attempts: message.attempts,
              error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
            }),
          );
        }
        message.retry({ delaySeconds });
      }
    }),
  );
}
