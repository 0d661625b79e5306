import { drizzle } from "drizzle-orm/d1";
import { deadLetters } from "../d1/schema/orders";
import { orderShardOf } from "../durable-objects/order-shard";

/**
 * Records a message that could not be processed (retries exhausted, or unparseable) and flags its
 * order for attention; the saga's own timeout alarm still ends it in a defined state.
 */
export async function recordDeadLetter(
  env: Env,
  message: { id: string; body: unknown; attempts: number },
  problem: string,
): Promise<void> {
  const body = message.body as { id?: unknown; type?: unknown; orderId?: unknown } | null;
  const str = (v: unknown) => (typeof v === "string" ? v.slice(0, 255) : null);
  const orderId = str(body?.orderId);
  await drizzle(env.DB)
    .insert(deadLetters)
    .values({
      id: message.id,
      eventId: str(body?.id),
      type: str(body?.type),
      orderId,
      body: JSON.stringify(message.body ?? null).slice(0, 100_000),
      attempts: message.attempts,
      problem,
    })
    .onConflictDoNothing();
  if (orderId)
    await orderShardOf(env, orderId).markNeedsAttention(orderId, `${str(body?.type) ?? "message"}: ${problem}`);
}

/** The `saga-events-dlq` consumer: everything that lands here is recorded, then acknowledged. */
export async function handleDeadLetterBatch(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  for (const message of batch.messages) {
    try {
      await recordDeadLetter(
        env,
        message,
        `exhausted ${message.attempts} deliveries on ${batch.queue.replace(/-dlq.*$/, "")}`,
      );
      message.ack();
    } catch (error) {
      console.error(
        JSON.stringify({ level: "error", msg: "dead letter not recorded", id: message.id, error: String(error) }),
      );
      message.retry({ delaySeconds: 30 });
    }
  }
}
