import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { randomHex } from "../domain/encoding";
import type { OrderObject } from "../durable-objects/order";
import { orderShardOf } from "../durable-objects/order-shard";
import { orderLine, SHIPPING } from "./order-fixtures";

/**
 * The outbox answers "when is the next row due" from memory once it has seen every row go (the
 * order asks after each relay); with a row left unsent it still reads the table, so a failed send
 * is retried at its backoff.
 */
it("asks SQLite when the next row is due only while a row may be unsent", async () => {
  const orderId = `ord_${randomHex(12)}`;
  const stub = orderShardOf(env, orderId);
  const sent: string[] = [];
  const queueState = { down: false };
  const queue = {
    async sendBatch(messages: { body: { type: string } }[]) {
      if (queueState.down) throw new Error("queue unavailable");
      sent.push(...messages.map((m) => m.body.type));
    },
  } as unknown as Queue;
  const seen = await runInDurableObject(stub, async (instance: OrderObject, state) => {
    (instance as unknown as { env: Env }).env = { ...env, SAGA_EVENTS: queue };
    // Counts the "next attempt" queries the object makes.
    let dueQueries = 0;
    const sql = state.storage.sql;
    const exec = sql.exec.bind(sql);
    Object.defineProperty(sql, "exec", {
      configurable: true,
      value: (query: string, ...bindings: SqlStorageValue[]) => {
        if (query.includes("min(next_attempt_at)")) dueQueries++;
        return exec(query, ...bindings);
      },
    });
    await instance.place({
      orderId,
      userId: `u-${crypto.randomUUID()}`,
      items: [orderLine("p-DUE-1", "DUE-1")],
      total: { amount: 1999, currency: "USD" },
      paymentToken: "tok_sim_success_4242",
      shippingAddress: SHIPPING,
      correlationId: orderId,
    });
    await instance.reservationResult(orderId, { ok: true });
    const whileAllSent = dueQueries;
    queueState.down = true;
    await instance.paymentResult(orderId, {
      ok: true,
      authorizationId: "sim_auth_1",
      captureId: "sim_cap_1",
      amount: 1999,
    });
    queueState.down = false;
    return {
      whileAllSent,
      afterFailedSend: dueQueries - whileAllSent,
      alarm: await state.storage.getAlarm(),
      failedAt: Date.now(),
      deadline: state.storage.sql.exec<{ deadline: number }>("SELECT deadline FROM orders WHERE id = ?", orderId).one()
        .deadline,
    };
  });
  expect(sent).toEqual(["order.placed", "order.reserved"]);
  expect(seen.whileAllSent).toBe(0);
  // The unsent `order.paid` is read back, and the alarm goes to its retry, before the deadline.
  expect(seen.afterFailedSend).toBeGreaterThan(0);
  expect(seen.alarm).toBeLessThanOrEqual(seen.failedAt + 1000);
  expect(seen.alarm).toBeLessThan(seen.deadline);
  expect(await runDurableObjectAlarm(stub)).toBe(true);
  expect(sent).toEqual(["order.placed", "order.reserved", "order.paid"]);
  // Everything sent again: the alarm goes back to the saga deadline (the shard's only order here).
  expect(await runInDurableObject(stub, (_instance, state) => state.storage.getAlarm())).toBe(seen.deadline);
});
