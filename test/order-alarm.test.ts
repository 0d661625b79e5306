import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { OrderObject } from "../durable-objects/order";
import { orderShardOf } from "../durable-objects/order-shard";
import { countAlarmWrites, orderIdsInNewShard, placeWith, recordingQueue } from "./order-fixtures";

/**
 * One alarm per order shard, for all its orders (each write is a durable write of its own): written
 * only to come sooner — for the first saga deadline, or for a failed send's retry —, left alone by
 * later orders and by steps whose events are relayed at once. When it fires it relays, times out
 * the orders whose deadline passed (only those), and moves itself to the next thing due.
 */

const deadlineOf = (state: DurableObjectState, orderId: string) =>
  state.storage.sql.exec<{ deadline: number | null }>("SELECT deadline FROM orders WHERE id = ?", orderId).one()
    .deadline;

describe("order shard alarm", () => {
  it("is written once for the first order's deadline, not for later orders or relayed steps; a failed send moves it to the retry, the alarm back to the earliest deadline", async () => {
    const [first, second] = orderIdsInNewShard(2) as [string, string];
    const stub = orderShardOf(env, first);
    // The shard's queue, swapped on the live instance: records what the saga sends, or fails.
    const { sent, state: queue, queue: fakeQueue } = recordingQueue();
    const alarms = await runInDurableObject(stub, async (instance: OrderObject, state) => {
      const writes = countAlarmWrites(state.storage);
      await placeWith(instance, fakeQueue, first, "ALARM-1");
      const afterFirst = { alarm: await state.storage.getAlarm(), writes: writes() };
      await placeWith(instance, fakeQueue, second, "ALARM-2");
      await instance.reservationResult(first, { ok: true });
      const afterSteps = { alarm: await state.storage.getAlarm(), writes: writes() };
      queue.down = true;
      await instance.paymentResult(first, {
        ok: true,
        authorizationId: "sim_auth_1",
        captureId: "sim_cap_1",
        amount: 1999,
      });
      const afterFailedSend = await state.storage.getAlarm();
      queue.down = false;
      return {
        deadline: deadlineOf(state, first)!,
        afterFirst,
        afterSteps,
        afterFailedSend,
        failedAt: Date.now(),
      };
    });
    expect(alarms.afterFirst).toEqual({ alarm: alarms.deadline, writes: 1 });
    // The second order's deadline is later: the alarm already comes sooner, nothing is written.
    expect(alarms.afterSteps).toEqual({ alarm: alarms.deadline, writes: 1 });
    expect(sent).toEqual(["order.placed", "order.placed", "order.reserved"]);
    // The failed `order.paid` is due again after the first backoff, long before the deadline.
    expect(alarms.afterFailedSend).toBeLessThanOrEqual(alarms.failedAt + 1000);
    expect(alarms.afterFailedSend).toBeLessThan(alarms.deadline);

    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(sent).toEqual(["order.placed", "order.placed", "order.reserved", "order.paid"]);
    const after = await runInDurableObject(stub, async (_instance, state) => ({
      unsent: state.storage.sql.exec<{ n: number }>("SELECT count(*) AS n FROM outbox WHERE sent_at IS NULL").one().n,
      alarm: await state.storage.getAlarm(),
    }));
    expect(after).toEqual({ unsent: 0, alarm: alarms.deadline });
  });

  it("times out only the orders whose deadline passed, and re-arms for the next one due", async () => {
    const [late, underWay, ended] = orderIdsInNewShard(3) as [string, string, string];
    const stub = orderShardOf(env, late);
    const { sent, queue } = recordingQueue();
    const placed = await runInDurableObject(stub, async (instance: OrderObject, state) => {
      for (const [id, sku] of [
        [late, "DUE-1"],
        [underWay, "DUE-2"],
        [ended, "DUE-3"],
      ] as const)
        await placeWith(instance, queue, id, sku);
      await instance.cancel(ended);
      state.storage.sql.exec("UPDATE orders SET deadline = ? WHERE id = ?", Date.now() - 1, late);
      return { underWay: deadlineOf(state, underWay), ended: deadlineOf(state, ended) };
    });
    // A final order keeps no deadline: the alarm never looks at it again.
    expect(placed.ended).toBeNull();
    sent.length = 0;

    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const [lateOrder, otherOrder] = await Promise.all([stub.view(late), stub.view(underWay)]);
    expect(lateOrder).toMatchObject({ status: "cancelled", reason: "timeout" });
    expect(otherOrder?.status).toBe("pending");
    expect(sent).toEqual(["order.cancelled"]);
    expect(await runInDurableObject(stub, (_instance, state) => state.storage.getAlarm())).toBe(placed.underWay);
  });

  it("finding nothing due (its order ended since), re-arms for the next deadline, and for none once no saga is under way", async () => {
    const [first, second] = orderIdsInNewShard(2) as [string, string];
    const stub = orderShardOf(env, first);
    const { queue } = recordingQueue();
    let writes: () => number = () => 0;
    const deadlines = await runInDurableObject(stub, async (instance: OrderObject, state) => {
      await placeWith(instance, queue, first, "IDLE-1");
      await placeWith(instance, queue, second, "IDLE-2");
      writes = countAlarmWrites(state.storage);
      // The saga that set the alarm ends: nothing is written, the alarm finds out when it fires.
      await instance.cancel(first);
      return {
        first: deadlineOf(state, first),
        second: deadlineOf(state, second),
        alarm: await state.storage.getAlarm(),
      };
    });
    expect(deadlines.first).toBeNull();
    expect(deadlines.alarm).not.toBeNull();
    expect(deadlines.alarm).toBeLessThan(deadlines.second!);
    expect(writes()).toBe(0);

    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await runInDurableObject(stub, (_instance, state) => state.storage.getAlarm())).toBe(deadlines.second);
    // Two: runDurableObjectAlarm deletes the alarm it runs (what the runtime does when one fires),
    // and the alarm moves itself to the next deadline.
    expect(writes()).toBe(2);
    expect((await stub.view(second))?.status).toBe("pending");

    await runInDurableObject(stub, (instance: OrderObject) => instance.cancel(second));
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await runInDurableObject(stub, (_instance, state) => state.storage.getAlarm())).toBeNull();
    expect(await runDurableObjectAlarm(stub)).toBe(false);
  });

  it("a shard that went away with rows unmarked relays them within a second of waking, not at the saga deadline", async () => {
    const [orderId] = orderIdsInNewShard(1) as [string];
    const stub = orderShardOf(env, orderId);
    const before = recordingQueue();
    const deadline = await runInDurableObject(stub, async (instance: OrderObject, state) => {
      // Sent, its mark held in memory for the order's next change (which never comes here).
      await placeWith(instance, before.queue, orderId, "WAKE-1");
      return deadlineOf(state, orderId)!;
    });
    const placedBy = Date.now();
    expect(before.sent).toEqual(["order.placed"]);
    await evictDurableObject(stub);
    const after = recordingQueue();
    const alarm = await runInDurableObject(stub, async (instance: OrderObject, state) => {
      (instance as unknown as { env: Env }).env = { ...env, SAGA_EVENTS: after.queue };
      return state.storage.getAlarm();
    });
    expect(alarm).toBeLessThanOrEqual(placedBy + 1000);
    expect(alarm).toBeLessThan(deadline);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    // Sent again (consumers ignore a repeat), marked now; the alarm is back at the deadline.
    expect(after.sent).toEqual(["order.placed"]);
    expect(await runInDurableObject(stub, (_instance, state) => state.storage.getAlarm())).toBe(deadline);
  });

  it("a sent mark rides on the shard's next change; an order with nothing more coming is marked at once", async () => {
    const [orderId] = orderIdsInNewShard(1) as [string];
    const stub = orderShardOf(env, orderId);
    const { sent, queue } = recordingQueue();
    const marks = await runInDurableObject(stub, async (instance: OrderObject, state) => {
      const marked = () =>
        Object.fromEntries(
          state.storage.sql
            .exec<{ type: string; sent_at: number | null }>(
              "SELECT type, sent_at FROM outbox WHERE order_id = ? ORDER BY seq",
              orderId,
            )
            .toArray()
            .map((r) => [r.type, r.sent_at !== null]),
        );
      await placeWith(instance, queue, orderId, "MARK-1");
      const afterPlace = { stored: marked(), log: (await instance.eventLog(orderId)).map((e) => e.sentAt !== null) };
      await instance.reservationResult(orderId, { ok: true });
      const afterReserved = marked();
      const cancelled = await instance.cancel(orderId);
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

  it("an order that ends while another saga of its shard is under way leaves its mark to that saga's next step, or to the alarm", async () => {
    const [ending, other, third] = orderIdsInNewShard(3) as [string, string, string];
    const stub = orderShardOf(env, ending);
    const { sent, queue } = recordingQueue();
    const marked = (state: DurableObjectState, orderId: string) =>
      state.storage.sql
        .exec<{ sent_at: number | null }>("SELECT sent_at FROM outbox WHERE order_id = ? ORDER BY seq", orderId)
        .toArray()
        .map((r) => r.sent_at !== null);
    const marks = await runInDurableObject(stub, async (instance: OrderObject, state) => {
      await placeWith(instance, queue, ending, "HOLD-1");
      await placeWith(instance, queue, other, "HOLD-2");
      await instance.cancel(ending);
      const afterEnd = { stored: marked(state, ending), log: (await instance.eventLog(ending)).map((e) => e.sentAt) };
      await instance.reservationResult(other, { ok: true });
      const afterOthersStep = marked(state, ending);
      await instance.cancel(other);
      await placeWith(instance, queue, third, "HOLD-3");
      await instance.cancel(third);
      return { afterEnd, afterOthersStep, thirdEnded: marked(state, third) };
    });
    // Sent at once (placed's mark rode on the cancel); the operator's log says so while the stored
    // mark of the cancel waits for the shard's next change.
    expect(marks.afterEnd.stored).toEqual([true, false]);
    expect(marks.afterEnd.log.every((at) => at !== null)).toBe(true);
    expect(marks.afterOthersStep).toEqual([true, true]);
    // The last saga of the shard ends: nothing more is coming, marked at once.
    expect(marks.thirdEnded).toEqual([true, true]);

    // Held with nothing else coming: the alarm (armed by the other saga's deadline) writes it.
    const [first, second] = orderIdsInNewShard(2) as [string, string];
    const shard = orderShardOf(env, first);
    const held = await runInDurableObject(shard, async (instance: OrderObject, state) => {
      await placeWith(instance, queue, first, "HOLD-4");
      await placeWith(instance, queue, second, "HOLD-5");
      await instance.cancel(first);
      return marked(state, first);
    });
    expect(held).toEqual([true, false]);
    expect(await runDurableObjectAlarm(shard)).toBe(true);
    expect(await runInDurableObject(shard, (_instance, state) => marked(state, first))).toEqual([true, true]);
    expect(sent.filter((type) => type === "order.cancelled")).toHaveLength(4);
  });
});
