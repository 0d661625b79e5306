import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { randomHex } from "../domain/encoding";
import type { OrderObject } from "../durable-objects/order";
import { orderLine, SHIPPING } from "./order-fixtures";

/**
 * The order's alarm is written only when it moves (each write is a durable write of its own): armed
 * for the saga deadline when the order is placed, left alone by steps whose events are relayed at
 * once, moved to the retry time when a send fails, and back to the deadline once the alarm relayed.
 */
/** A saga queue to swap onto a live OrderObject: records the event types sent, or fails while `down`. */
function recordingQueue() {
  const sent: string[] = [];
  const state = { down: false };
  const record = (types: string[]) => {
    if (state.down) throw new Error("queue unavailable");
    sent.push(...types);
  };
  const queue = {
    async send(body: { type: string }) {
      record([body.type]);
    },
    async sendBatch(messages: { body: { type: string } }[]) {
      record(messages.map((m) => m.body.type));
    },
  } as unknown as Queue;
  return { sent, state, queue };
}

/** Places a one-line test order on the instance, its events going to `queue`. */
function placeWith(instance: OrderObject, queue: Queue, orderId: string, sku: string) {
  (instance as unknown as { env: Env }).env = { ...env, SAGA_EVENTS: queue };
  return instance.place({
    orderId,
    userId: `u-${crypto.randomUUID()}`,
    items: [orderLine(`p-${sku}`, sku)],
    total: { amount: 1999, currency: "USD" },
    paymentToken: "tok_sim_success_4242",
    shippingAddress: SHIPPING,
    correlationId: orderId,
  });
}

describe("order alarm", () => {
  it("stays at the saga deadline through relayed steps, retries a failed send, then returns to the deadline", async () => {
    const orderId = `ord_${randomHex(12)}`;
    const stub = env.ORDER.getByName(orderId);
    // The object's queue, swapped on the live instance: records what the saga sends, or fails.
    const { sent, state: queue, queue: fakeQueue } = recordingQueue();
    const alarms = await runInDurableObject(stub, async (instance: OrderObject, state) => {
      // Counts the alarm writes the object makes (setAlarm and deleteAlarm).
      let writes = 0;
      const storage = state.storage;
      for (const method of ["setAlarm", "deleteAlarm"] as const) {
        const original = storage[method].bind(storage) as (...args: unknown[]) => Promise<void>;
        Object.defineProperty(storage, method, {
          configurable: true,
          value: (...args: unknown[]) => {
            writes++;
            return original(...args);
          },
        });
      }
      await placeWith(instance, fakeQueue, orderId, "ALARM-1");
      const deadline = state.storage.sql.exec<{ deadline: number }>("SELECT deadline FROM orders").one().deadline;
      const afterPlace = await state.storage.getAlarm();
      const writesAfterPlace = writes;
      await instance.reservationResult({ ok: true });
      const afterReserved = await state.storage.getAlarm();
      const writesByReservation = writes - writesAfterPlace;
      queue.down = true;
      await instance.paymentResult({ ok: true, authorizationId: "sim_auth_1", captureId: "sim_cap_1", amount: 1999 });
      const afterFailedSend = await state.storage.getAlarm();
      queue.down = false;
      return {
        deadline,
        afterPlace,
        writesAfterPlace,
        afterReserved,
        writesByReservation,
        afterFailedSend,
        failedAt: Date.now(),
      };
    });
    expect(alarms.afterPlace).toBe(alarms.deadline);
    expect(alarms.writesAfterPlace).toBe(1);
    expect(alarms.afterReserved).toBe(alarms.deadline);
    expect(alarms.writesByReservation).toBe(0);
    expect(sent).toEqual(["order.placed", "order.reserved"]);
    // The failed `order.paid` is due again after the first backoff, long before the deadline.
    expect(alarms.afterFailedSend).toBeLessThanOrEqual(alarms.failedAt + 1000);
    expect(alarms.afterFailedSend).toBeLessThan(alarms.deadline);

    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(sent).toEqual(["order.placed", "order.reserved", "order.paid"]);
    const after = await runInDurableObject(stub, async (_instance, state) => ({
      unsent: state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL").one().n,
      alarm: await state.storage.getAlarm(),
    }));
    expect(after).toEqual({ unsent: 0, alarm: alarms.deadline });
  });

  it("a sent mark rides on the order's next change; an order with nothing more coming is marked at once", async () => {
    const orderId = `ord_${randomHex(12)}`;
    const stub = env.ORDER.getByName(orderId);
    const { sent, queue } = recordingQueue();
    const marks = await runInDurableObject(stub, async (instance: OrderObject, state) => {
      const marked = () =>
        Object.fromEntries(
          state.storage.sql
            .exec<{ type: string; sent_at: number | null }>("SELECT type, sent_at FROM outbox ORDER BY seq")
            .toArray()
            .map((r) => [r.type, r.sent_at !== null]),
        );
      await placeWith(instance, queue, orderId, "MARK-1");
      const afterPlace = { stored: marked(), log: (await instance.eventLog()).map((e) => e.sentAt !== null) };
      await instance.reservationResult({ ok: true });
      const afterReserved = marked();
      const cancelled = await instance.cancel();
      return { afterPlace, afterReserved, cancelled: cancelled.ok, afterCancel: marked() };
    });
    // Sent at once, but the mark waits for the next change (the operator's log already says sent).
    expect(marks.afterPlace).toEqual({ stored: { "order.placed": false }, log: [true] });
    expect(marks.afterReserved).toEqual({ "order.placed": true, "order.reserved": false });
    expect(marks.cancelled).toBe(true);
    // Cancelled ends the saga: its own mark is written at once, and nothing was sent twice.
    expect(marks.afterCancel).toEqual({ "order.placed": true, "order.reserved": true, "order.cancelled": true });
    expect(sent).toEqual(["order.placed", "order.reserved", "order.cancelled"]);
  });
});
