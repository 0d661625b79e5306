import { evictDurableObject, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import { InventoryEvent, type InventoryLevel } from "../contracts/inventory-events";
import type { AdjustOptions, InventoryObject } from "./inventory";

const inv = (sku: string) => env.INVENTORY.getByName(sku);

/** Sets the units on hand through `adjust` (the admin route's RPC); a refusal fails the test. */
async function setOnHand(
  stub: DurableObjectStub<InventoryObject>,
  onHand: number,
  options?: AdjustOptions,
): Promise<InventoryLevel> {
  const result = await stub.adjust(onHand, options);
  if (!result.ok) throw new Error(`adjust(${onHand}) refused at ${JSON.stringify(result.level)}`);
  return result.level;
}

/** The outbox rows not relayed yet, read from the object's storage. */
function pendingEvents(stub: DurableObjectStub<InventoryObject>): Promise<unknown[]> {
  return runInDurableObject(stub, (_instance, state) =>
    state.storage.sql
      .exec<{ body: string }>("SELECT body FROM outbox WHERE sent_at IS NULL ORDER BY seq")
      .toArray()
      .map((r) => JSON.parse(r.body) as unknown),
  );
}

/** reserved + sold ≤ onHand, nothing negative, available consistent. */
function expectInvariant(level: InventoryLevel): void {
  expect(level.reserved).toBeGreaterThanOrEqual(0);
  expect(level.sold).toBeGreaterThanOrEqual(0);
  expect(level.available).toBeGreaterThanOrEqual(0);
  expect(level.reserved + level.sold).toBeLessThanOrEqual(level.onHand);
  expect(level.available).toBe(level.onHand - level.reserved - level.sold);
}

/** Swaps the object's queue binding (the instance survives until evicted). */
async function withQueue(stub: DurableObjectStub<InventoryObject>, queue: Queue): Promise<void> {
  await runInDurableObject(stub, (instance: InventoryObject) => {
    const holder = instance as unknown as { env: Env };
    holder.env = { ...holder.env, SAGA_EVENTS: queue };
  });
}

function recordingQueue(): { queue: Queue; sent: unknown[] } {
  const sent: unknown[] = [];
  const queue = {
    send: async (body: unknown) => {
      sent.push(body);
    },
    sendBatch: async (messages: Iterable<MessageSendRequest>) => {
      for (const m of messages) sent.push(m.body);
    },
  } as unknown as Queue;
  return { queue, sent };
}

const failingQueue = {
  send: async () => {
    throw new Error("queue unavailable");
  },
  sendBatch: async () => {
    throw new Error("queue unavailable");
  },
} as unknown as Queue;

afterEach(() => {
  vi.useRealTimers();
});

describe("InventoryObject", () => {
  it("never oversells: 200 concurrent reservations on 50 units → exactly 50 succeed", async () => {
    const stub = inv("hot-sku");
    await setOnHand(stub, 50);
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, n) => stub.reserve({ orderId: `order-${n}`, quantity: 1 })),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(50);
    expect(results.filter((r) => !r.ok).every((r) => !r.ok && r.reason === "out_of_stock")).toBe(true);
    const level = await stub.level();
    expect(level).toEqual({ sku: "hot-sku", onHand: 50, reserved: 50, available: 0, sold: 0 });

    // Commit every winner: all units end up sold, none reserved, none left over.
    const winners = results.flatMap((r, n) => (r.ok ? [`order-${n}`] : []));
    await Promise.all(winners.map((id) => stub.commit(id)));
    const after = await stub.level();
    expect(after.onHand - after.sold).toBe(0);
    expect(after.reserved).toBe(0);
  });

  it("answers concurrent duplicates of one order id with one reservation (group commit replays)", async () => {
    const stub = inv("dup-sku");
    await setOnHand(stub, 30);
    // 100 distinct orders of 1 unit, each sent twice at once, on 30 units.
    const calls = Array.from({ length: 200 }, (_, n) => ({ orderId: `dup-${n % 100}`, quantity: 1 }));
    const results = await Promise.all(calls.map((c) => stub.reserve(c)));
    const outcome = new Map<string, boolean[]>();
    for (const [n, r] of results.entries()) {
      const id = calls[n]!.orderId;
      outcome.set(id, [...(outcome.get(id) ?? []), r.ok]);
    }
    const winners = [...outcome].filter(([, oks]) => oks.some(Boolean));
    expect(winners).toHaveLength(30);
    // Both copies of a winning order got the same answer: one reservation, replayed.
    expect(winners.every(([, oks]) => oks.every(Boolean))).toBe(true);
    expect(await stub.level()).toMatchObject({ onHand: 30, reserved: 30, available: 0 });
  });

  it("keeps the invariant under random reserve/release/commit/setOnHand sequences", async () => {
    const Op = fc.oneof(
      fc.record({ op: fc.constant("reserve" as const), order: fc.nat(7), quantity: fc.integer({ min: 1, max: 6 }) }),
      fc.record({ op: fc.constant("release" as const), order: fc.nat(7) }),
      fc.record({ op: fc.constant("commit" as const), order: fc.nat(7) }),
      fc.record({ op: fc.constant("setOnHand" as const), onHand: fc.nat(25) }),
    );
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(Op, { minLength: 1, maxLength: 25 }), async (ops) => {
        const stub = inv(`prop-${run++}`);
        // A reference model of what the object must answer.
        const model = { onHand: 0, reserved: 0, sold: 0, orders: new Map<number, { q: number; s: string }>() };
        for (const op of ops) {
          if (op.op === "reserve") {
            const r = await stub.reserve({ orderId: `o${op.order}`, quantity: op.quantity });
            const prev = model.orders.get(op.order);
            if (!prev) {
              const fits = op.quantity <= model.onHand - model.reserved - model.sold;
              expect(r.ok).toBe(fits);
              if (fits) {
                model.reserved += op.quantity;
                model.orders.set(op.order, { q: op.quantity, s: "reserved" });
              }
            } else {
              expect(r.ok).toBe(prev.s !== "released");
            }
          } else if (op.op === "release") {
            const r = await stub.release(`o${op.order}`);
            const prev = model.orders.get(op.order);
            expect(r.released).toBe(prev?.s === "reserved");
            if (prev?.s === "reserved") {
              model.reserved -= prev.q;
              prev.s = "released";
            }
          } else if (op.op === "commit") {
            const r = await stub.commit(`o${op.order}`);
            const prev = model.orders.get(op.order);
            expect(r.committed).toBe(prev?.s === "reserved" || prev?.s === "committed");
            if (prev?.s === "reserved") {
              model.reserved -= prev.q;
              model.sold += prev.q;
              prev.s = "committed";
            }
          } else {
            const allowed = op.onHand >= model.reserved + model.sold;
            const r = await stub.adjust(op.onHand);
            expect(r.ok).toBe(allowed);
            if (allowed) model.onHand = op.onHand;
          }
          const level = await stub.level();
          expectInvariant(level);
          expect(level).toMatchObject({ onHand: model.onHand, reserved: model.reserved, sold: model.sold });
        }
      }),
      { numRuns: 30 },
    );
  });

  it("is idempotent by orderId for reserve, release and commit", async () => {
    const stub = inv("idem-sku");
    await setOnHand(stub, 10);
    const first = await stub.reserve({ orderId: "o1", quantity: 3 });
    const again = await stub.reserve({ orderId: "o1", quantity: 3 });
    expect(first.ok && again.ok).toBe(true);
    expect(again).toEqual(first);
    expect((await stub.level()).reserved).toBe(3);

    expect(await stub.commit("o1")).toEqual({ committed: true });
    expect(await stub.commit("o1")).toEqual({ committed: true });
    expect(await stub.level()).toMatchObject({ reserved: 0, sold: 3, available: 7 });
    // Releasing a committed reservation changes nothing.
    expect(await stub.release("o1")).toEqual({ released: false });

    await stub.reserve({ orderId: "o2", quantity: 2 });
    expect(await stub.release("o2")).toEqual({ released: true });
    expect(await stub.release("o2")).toEqual({ released: false });
    expect(await stub.release("never-seen")).toEqual({ released: false });
    // A released reservation is never revived by a late duplicate, nor committed.
    expect((await stub.reserve({ orderId: "o2", quantity: 2 })).ok).toBe(false);
    expect(await stub.commit("o2")).toEqual({ committed: false });
    expect(await stub.level()).toMatchObject({ onHand: 10, reserved: 0, sold: 3, available: 7 });
  });

  it("refuses onHand below reserved + sold and changes nothing", async () => {
    const stub = inv("conflict-sku");
    await setOnHand(stub, 5);
    await stub.reserve({ orderId: "a", quantity: 2 });
    await stub.reserve({ orderId: "b", quantity: 2 });
    await stub.commit("b");
    const unchanged = { sku: "conflict-sku", onHand: 5, reserved: 2, available: 1, sold: 2 };
    // The refusal carries the unchanged level, which the admin route reports in its 409.
    expect(await stub.adjust(3)).toEqual({ ok: false, reason: "below_reserved_and_sold", level: unchanged });
    expect(await stub.level()).toEqual(unchanged);
    expect(await stub.adjust(4)).toMatchObject({ ok: true, level: { onHand: 4, available: 0 } });
  });

  it("releases reservations whose TTL passed when the alarm runs", async () => {
    const stub = inv("ttl-sku");
    await setOnHand(stub, 4);
    const r = await stub.reserve({ orderId: "slow", quantity: 3, ttlMs: 60_000 });
    expect(r.ok).toBe(true);
    await stub.reserve({ orderId: "fresh", quantity: 1, ttlMs: 3_600_000 });
    await runDurableObjectAlarm(stub); // relays; nothing expired yet
    expect((await stub.level()).reserved).toBe(4);

    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + 61_000 });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await stub.level()).toMatchObject({ reserved: 1, available: 3 });
    // The expired reservation cannot be committed any more.
    expect(await stub.commit("slow")).toEqual({ committed: false });
    expect(await stub.commit("fresh")).toEqual({ committed: true });
  });

  it("treats a reservation past its TTL as expired even before the alarm ran", async () => {
    const stub = inv("ttl-late-sku");
    await setOnHand(stub, 2);
    await stub.reserve({ orderId: "late", quantity: 2, ttlMs: 1_000 });
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + 2_000 });
    // A replayed reserve does not renew it either.
    expect((await stub.reserve({ orderId: "late", quantity: 2, ttlMs: 1_000 })).ok).toBe(false);
    expect(await stub.commit("late")).toEqual({ committed: false });
    expect(await stub.level()).toMatchObject({ reserved: 0, available: 2 });
  });

  it("relays its outbox to the queue, retrying by alarm while the send fails", async () => {
    const stub = inv("outbox-sku");
    await withQueue(stub, failingQueue);
    await setOnHand(stub, 12);
    await stub.reserve({ orderId: "o-1", quantity: 3 }); // available 12 → 9 crosses the threshold of 10
    await runDurableObjectAlarm(stub);
    const pending = (await pendingEvents(stub)).map((e) => InventoryEvent.parse(e));
    // The unsent `changed` snapshots collapsed into the newest; the low-stock event is kept.
    expect(pending.map((e) => e.type)).toEqual(["inventory.changed", "inventory.low_stock"]);
    expect(pending[0]).toMatchObject({ sku: "outbox-sku", onHand: 12, reserved: 3, available: 9, version: 1 });
    expect(pending[0]).toMatchObject({ correlationId: "o-1", cause: "reserved" });
    // The failure re-armed the alarm (backoff) instead of dropping the events.
    expect(await runInDurableObject(stub, (_i, state) => state.storage.getAlarm())).not.toBeNull();

    const { queue, sent } = recordingQueue();
    await withQueue(stub, queue);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(sent.map((e) => InventoryEvent.parse(e).type)).toEqual(["inventory.changed", "inventory.low_stock"]);
    expect(await pendingEvents(stub)).toEqual([]);
    // Only the reservation's expiry is left to wake up for.
    const alarm = await runInDurableObject(stub, (_i, state) => state.storage.getAlarm());
    expect(alarm).toBeGreaterThan(Date.now() + 14 * 60_000);
  });

  it("emits inventory.low_stock once per crossing below the threshold", async () => {
    const stub = inv("low-sku");
    const { queue, sent } = recordingQueue();
    await withQueue(stub, queue);
    await setOnHand(stub, 20, { lowStockThreshold: 5 });
    for (const [n, q] of [2, 10, 2, 1].entries()) {
      await stub.reserve({ orderId: `o${n}`, quantity: q });
      await runDurableObjectAlarm(stub);
    }
    const events = sent.map((e) => InventoryEvent.parse(e));
    const low = events.filter((e) => e.type === "inventory.low_stock");
    // 20 → 18 → 8 → 6 → 5: never below 5 yet.
    expect(low).toHaveLength(0);
    await stub.reserve({ orderId: "o-cross", quantity: 1 });
    await stub.reserve({ orderId: "o-below", quantity: 1 });
    await runDurableObjectAlarm(stub);
    const all = sent.map((e) => InventoryEvent.parse(e));
    expect(all.filter((e) => e.type === "inventory.low_stock")).toEqual([
      expect.objectContaining({ available: 4, threshold: 5, correlationId: "o-cross" }),
    ]);
    // Revisions only grow, so consumers can drop stale snapshots.
    const revisions = all.filter((e) => e.type === "inventory.changed").map((e) => e.revision);
    expect(revisions).toEqual([...revisions].sort((a, b) => a - b));
  });

  it("keeps stock, reservations and pending events across eviction", async () => {
    const stub = inv("evict-sku");
    await withQueue(stub, failingQueue);
    await setOnHand(stub, 8);
    await stub.reserve({ orderId: "keep", quantity: 5 });
    await runDurableObjectAlarm(stub);
    expect(await pendingEvents(stub)).not.toHaveLength(0);
    await evictDurableObject(stub);

    // A fresh instance (real queue binding again) sees the same state and finishes the relay.
    expect(await stub.level()).toEqual({ sku: "evict-sku", onHand: 8, reserved: 5, available: 3, sold: 0 });
    expect((await stub.reserve({ orderId: "keep", quantity: 5 })).ok).toBe(true);
    expect((await stub.level()).reserved).toBe(5);
    const { queue, sent } = recordingQueue();
    await withQueue(stub, queue);
    await runDurableObjectAlarm(stub);
    expect(await pendingEvents(stub)).toEqual([]);
    expect(sent.length).toBeGreaterThan(0);
    expect(await stub.commit("keep")).toEqual({ committed: true });
  });

  it("rejects malformed RPC input without changing anything", async () => {
    const stub = inv("bad-input-sku");
    await setOnHand(stub, 5);
    // On the instance, not over RPC: see workers-sdk#14736 above.
    await runInDurableObject(stub, async (instance: InventoryObject) => {
      await expect(instance.reserve({ orderId: "x", quantity: 0 })).rejects.toThrow(/quantity/);
      await expect(instance.reserve({ orderId: "x", quantity: 1.5 })).rejects.toThrow(/quantity/);
      await expect(instance.reserve({ orderId: "", quantity: 1 })).rejects.toThrow(/orderId/);
      await expect(instance.adjust(-1)).rejects.toThrow(/onHand/);
      await expect(instance.adjust(2.5)).rejects.toThrow(/onHand/);
    });
    expect(await stub.level()).toEqual({ sku: "bad-input-sku", onHand: 5, reserved: 0, available: 5, sold: 0 });
  });
});
