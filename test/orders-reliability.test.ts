import {
  createExecutionContext,
  createMessageBatch,
  evictDurableObject,
  getQueueResult,
  runDurableObjectAlarm,
  runInDurableObject,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { orderShardOf } from "../durable-objects/order-shard";
import { dispatchBatch } from "../queues/dispatch";
import { insertSku, stock } from "./commerce-fixtures";
import { call } from "./helpers";
import {
  accepted,
  cartWith,
  emittedEvents,
  isFinal,
  newShopper,
  placeOrder,
  viewOrder,
  waitForOrder,
} from "./order-fixtures";

/** Runs the Worker's queue handler on `bodies` exactly as the queue would deliver them. */
async function deliver(bodies: unknown[], queue = "saga-events", attempts = 1) {
  const batch = createMessageBatch(
    queue,
    bodies.map((body, i) => ({ id: `m-${i}-${crypto.randomUUID()}`, timestamp: new Date(), attempts, body })),
  );
  const ctx = createExecutionContext();
  await dispatchBatch(batch, env, ctx);
  return getQueueResult(batch, ctx);
}

const count = async (sql: string, ...params: unknown[]) =>
  (
    await env.DB.prepare(sql)
      .bind(...params)
      .first<{ n: number }>()
  )?.n ?? -1;

describe("saga reliability", () => {
  it("every consumer given the same messages twice, in reverse order, produces one effect", async () => {
    await insertSku("REL-DUP", { amount: 2500 });
    await stock("REL-DUP", 10);
    const shopper = await newShopper(undefined, `dup-${crypto.randomUUID()}@example.test`);
    const { id } = await accepted(
      await placeOrder(shopper, await cartWith(shopper, [{ sku: "REL-DUP", quantity: 3 }])),
    );
    await waitForOrder(id, isFinal);
    await expect.poll(() => count("SELECT COUNT(*) AS n FROM notifications WHERE order_id = ?", id)).toBe(1);
    const events = await emittedEvents(id);
    expect(events.map((e) => e.type)).toEqual(["order.placed", "order.reserved", "order.paid", "order.confirmed"]);
    // No fraud rule is on here: the fraud step is told it has nothing to screen.
    expect(events[0]).toMatchObject({ type: "order.placed", screened: false });

    // Redeliver everything twice, newest first: placed/reserved/paid arrive after confirmed.
    const replay = [...events, ...events].reverse();
    const result = await deliver(replay);
    expect(result.retryMessages).toEqual([]);
    expect(result.explicitAcks).toHaveLength(replay.length);

    const order = await viewOrder(id);
    expect(order?.status).toBe("confirmed");
    expect(order?.history.map((h) => h.status)).toEqual(["pending", "reserved", "paid", "confirmed"]);
    // One reservation (sold once), one charge, one email, read model not regressed.
    expect(await env.INVENTORY.getByName("REL-DUP").level()).toMatchObject({ onHand: 10, sold: 3, reserved: 0 });
    expect(await count("SELECT COUNT(*) AS n FROM payment_ledger WHERE order_id = ? AND kind = 'capture'", id)).toBe(1);
    expect(
      await count("SELECT COUNT(*) AS n FROM payment_ledger WHERE order_id = ? AND kind = 'authorization'", id),
    ).toBe(1);
    expect(
      await count(
        "SELECT COUNT(*) AS n FROM simulated_payments WHERE idempotency_key LIKE ? AND operation = 'capture'",
        `${id}:%`,
      ),
    ).toBe(1);
    expect(await count("SELECT COUNT(*) AS n FROM notifications WHERE order_id = ?", id)).toBe(1);
    const view = await env.DB.prepare("SELECT status, revision FROM orders_view WHERE id = ?").bind(id).first();
    expect(view).toEqual({ status: "confirmed", revision: 4 });
  });

  it("a cancel that races the reservation still leaves nothing reserved", async () => {
    await insertSku("REL-RACE");
    await stock("REL-RACE", 5);
    const shopper = await newShopper();
    const { id } = await accepted(
      await placeOrder(shopper, await cartWith(shopper, [{ sku: "REL-RACE", quantity: 2 }])),
    );
    const cancel = await call(`/v1/orders/${id}/cancel`, { method: "POST", token: shopper.token });
    // Either the cancel won (202) or the order already got paid (409); both must end consistent.
    expect([202, 409]).toContain(cancel.status);
    const order = await waitForOrder(id, isFinal);
    await expect.poll(async () => (await env.INVENTORY.getByName("REL-RACE").level()).reserved).toBe(0);
    const level = await env.INVENTORY.getByName("REL-RACE").level();
    if (cancel.status === 202) {
      expect(order).toMatchObject({ status: "cancelled", reason: "customer" });
      expect(level).toMatchObject({ sold: 0, available: 5 });
      // Redelivered order.placed after the cancel must not hold stock again.
      await deliver((await emittedEvents(id)).filter((e) => e.type === "order.placed"));
      expect((await env.INVENTORY.getByName("REL-RACE").level()).reserved).toBe(0);
    } else {
      expect(order.status).toBe("confirmed");
      expect(level).toMatchObject({ sold: 2 });
    }
  });

  it("an order shard evicted between steps resumes from storage and finishes", async () => {
    await insertSku("REL-EVICT");
    await stock("REL-EVICT", 2);
    const shopper = await newShopper();
    const res = await placeOrder(shopper, await cartWith(shopper, [{ sku: "REL-EVICT", quantity: 1 }]));
    const { id } = await accepted(res);
    const stub = orderShardOf(env, id);
    // Tear the shard down repeatedly while the consumers drive the order; each step must find its state.
    let evictions = 0;
    for (let i = 0; i < 200; i++) {
      const order = await stub.view(id);
      if (order && isFinal(order)) break;
      await evictDurableObject(stub).then(
        () => evictions++,
        () => undefined, // not running at that instant: nothing to evict
      );
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(evictions).toBeGreaterThan(0);
    const order = await waitForOrder(id, isFinal);
    expect(order.status).toBe("confirmed");
    expect(order.history.map((h) => h.status)).toEqual(["pending", "reserved", "paid", "confirmed"]);
    expect(await env.INVENTORY.getByName("REL-EVICT").level()).toMatchObject({ sold: 1, reserved: 0 });
  });

  it("an event the outbox could not send is relayed by the alarm", async () => {
    await insertSku("REL-OUTBOX");
    await stock("REL-OUTBOX", 1);
    const shopper = await newShopper(undefined, `outbox-${crypto.randomUUID()}@example.test`);
    const { id } = await accepted(
      await placeOrder(shopper, await cartWith(shopper, [{ sku: "REL-OUTBOX", quantity: 1 }])),
    );
    await waitForOrder(id, isFinal);
    await expect.poll(() => count("SELECT COUNT(*) AS n FROM notifications WHERE order_id = ?", id)).toBe(1);
    const stub = orderShardOf(env, id);
    // Pretend the last relay failed after the state change committed (the dual-write gap).
    await runInDurableObject(stub, (_i, state) => {
      state.storage.sql.exec(
        "UPDATE outbox SET sent_at = NULL, attempts = 1 WHERE type = 'order.confirmed' AND order_id = ?",
        id,
      );
      // What the failed relay does: schedule the retry.
      return state.storage.setAlarm(Date.now() + 1000);
    });
    await env.DB.prepare("DELETE FROM notifications WHERE order_id = ?").bind(id).run();
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const unsent = await runInDurableObject(stub, (_i, state) =>
      state.storage.sql.exec("SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NULL AND order_id = ?", id).one(),
    );
    expect(unsent.n).toBe(0);
    // The relayed event really reached the queue: the confirmation email is written again.
    await expect.poll(() => count("SELECT COUNT(*) AS n FROM notifications WHERE order_id = ?", id)).toBe(1);
  });

  it("an unparseable message is recorded as a dead letter and acked, not retried forever", async () => {
    const result = await deliver([{ type: "order.placed", version: 99, orderId: "ord_000000000000000000000000" }]);
    expect(result.explicitAcks).toHaveLength(1);
    expect(result.retryMessages).toEqual([]);
    expect(await count("SELECT COUNT(*) AS n FROM dead_letters WHERE problem LIKE 'invalid event%'")).toBe(1);
  });

  it("the dead-letter consumer records exhausted messages and flags the saga for attention", async () => {
    await insertSku("REL-DLQ");
    await stock("REL-DLQ", 1);
    const shopper = await newShopper();
    const { id } = await accepted(
      await placeOrder(shopper, await cartWith(shopper, [{ sku: "REL-DLQ", quantity: 1 }])),
    );
    await waitForOrder(id, isFinal);
    const [placed] = await emittedEvents(id);
    const result = await deliver([placed], "saga-events-dlq", 4);
    expect(result.explicitAcks).toHaveLength(1);
    expect(await count("SELECT COUNT(*) AS n FROM dead_letters WHERE order_id = ? AND type = 'order.placed'", id)).toBe(
      1,
    );
    expect((await viewOrder(id))?.needsAttention).toMatch(/order.placed/);
  });
});
