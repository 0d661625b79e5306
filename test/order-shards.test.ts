import { evictDurableObject, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { OwnedOrder } from "../contracts/order";
import { randomHex } from "../domain/encoding";
import { ORDER_MIGRATIONS, type OrderObject } from "../durable-objects/order";
import { customerOrderShard, orderShard, orderShardOf } from "../durable-objects/order-shard";
import { migrateSchema } from "../durable-objects/sqlite-schema";
import { insertSku, stock } from "./commerce-fixtures";
import { call } from "./helpers";
import {
  accepted,
  cartWith,
  emittedEvents,
  isFinal,
  newShopper,
  orderIdsInNewShard,
  orderLine,
  placeOrder,
  placeWith,
  recordingQueue,
  SHIPPING,
  waitForOrders,
} from "./order-fixtures";

/** The long polls waiting on each order of a live shard (its private table, inspected). */
const waitingOn = (instance: OrderObject, orderId: string) =>
  (instance as unknown as { watchers: Map<string, Set<unknown>> }).watchers.get(orderId)?.size ?? 0;

/** Whether the shard's own table holds `orderId` (false too while the shard holds nothing at all). */
const heldBy = (stub: DurableObjectStub, orderId: string) =>
  runInDurableObject(stub, (_instance, state) => {
    const tables = state.storage.sql.exec("SELECT 1 FROM sqlite_master WHERE name = 'orders'").toArray();
    return (
      tables.length > 0 && state.storage.sql.exec("SELECT 1 FROM orders WHERE id = ?", orderId).toArray().length > 0
    );
  });

describe("order shards", () => {
  it("many orders in one shard: a change of one wakes only its own long polls", async () => {
    const [watched, other] = orderIdsInNewShard(2) as [string, string];
    const { queue } = recordingQueue();
    const result = await runInDurableObject(orderShardOf(env, watched), async (instance: OrderObject) => {
      const owner = "u-watched";
      const placed = await placeWith(instance, queue, watched, "WAKE-1", owner);
      await placeWith(instance, queue, other, "WAKE-2");
      const started = Date.now();
      const poll = instance.watch(watched, { userId: owner, admin: false }, 1, 10_000);
      await instance.reservationResult(other, { ok: true });
      await instance.cancel(other);
      // The other order moved twice; this poll was not woken (its waiter is still there).
      const stillWaiting = waitingOn(instance, watched);
      await instance.reservationResult(watched, { ok: true });
      const answer = await poll;
      (instance as unknown as { env: Env }).env = env;
      return {
        placedRevision: placed.history.length,
        stillWaiting,
        answer: answer && { status: answer.order.status, revision: answer.revision },
        waitedMs: Date.now() - started,
        left: waitingOn(instance, watched),
      };
    });
    expect(result.placedRevision).toBe(1);
    expect(result.stillWaiting).toBe(1);
    expect(result.answer).toEqual({ status: "reserved", revision: 2 });
    expect(result.waitedMs).toBeLessThan(10_000);
    expect(result.left).toBe(0);
  });

  it("concurrent checkouts into one shard, evicted while their sagas run: nothing oversold, charged twice or lost", async () => {
    const SKU = "SHARD-HOT";
    await insertSku(SKU, { amount: 1200 });
    await stock(SKU, 4);
    // Six shoppers of one shard (a customer's orders are placed in the customer's shard), keyed checkouts.
    const target = orderShard(orderIdsInNewShard(1)[0]!);
    const userIds: string[] = [];
    while (userIds.length < 6) {
      const userId = `u-${randomHex(8)}`;
      if (customerOrderShard(userId) === target) userIds.push(userId);
    }
    const shoppers = await Promise.all(userIds.map((userId) => newShopper(userId)));
    const keys = shoppers.map(() => `k-${randomHex(6)}`);
    const carts = await Promise.all(shoppers.map((s) => cartWith(s, [{ sku: SKU, quantity: 1 }])));
    const responses = await Promise.all(
      shoppers.map((s, i) => placeOrder(s, carts[i]!, undefined, { "Idempotency-Key": keys[i]! })),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(6).fill(202));
    const ids = await Promise.all(responses.map(async (r) => (await accepted(r)).id));
    expect(new Set(ids.map(orderShard))).toEqual(new Set([target]));

    // Tear the shard down repeatedly while the consumers drive its six sagas.
    const shard = orderShardOf(env, ids[0]!);
    let evictions = 0;
    for (let i = 0; i < 100; i++) {
      const views = await Promise.all(ids.map((id) => shard.view(id)));
      if (views.every((v) => v && isFinal(OwnedOrder.parse(v)))) break;
      await evictDurableObject(shard).then(
        () => evictions++,
        () => undefined, // not running at that instant: nothing to evict
      );
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(evictions).toBeGreaterThan(0);
    const orders = await waitForOrders(ids, 60_000);
    const confirmed = orders.filter((o) => o.status === "confirmed");
    expect(confirmed).toHaveLength(4);
    expect(orders.filter((o) => o.status === "cancelled" && o.reason === "out_of_stock")).toHaveLength(2);
    for (const order of confirmed)
      expect(order.history.map((h) => h.status)).toEqual(["pending", "reserved", "paid", "confirmed"]);
    // Each order's own event log: its events once each, nobody else's.
    for (const order of orders) {
      const events = await emittedEvents(order.id);
      expect(events.every((e) => e.orderId === order.id)).toBe(true);
      expect(new Set(events.map((e) => e.revision)).size).toBe(events.length);
    }
    await expect.poll(async () => (await env.INVENTORY.getByName(SKU).level()).reserved).toBe(0);
    expect(await env.INVENTORY.getByName(SKU).level()).toMatchObject({ onHand: 4, sold: 4, available: 0 });
    const captures = await env.DB.prepare(
      `SELECT COUNT(*) AS n, COUNT(DISTINCT order_id) AS orders FROM payment_ledger
        WHERE kind = 'capture' AND order_id IN (SELECT value FROM json_each(?))`,
    )
      .bind(JSON.stringify(ids))
      .first();
    expect(captures).toEqual({ n: 4, orders: 4 });
  });

  it("an order placed before the shards, in its own object, is read, followed and cancelled through its shard; a keyed checkout of its id places nothing", async () => {
    const shopper = await newShopper();
    const orderId = `ord_${randomHex(12)}`;
    const legacy = env.ORDER.getByName(orderId);
    // The object as the code before the shards left it: its schema at migration 4, one order.
    await runInDurableObject(legacy, (_instance, state) => {
      migrateSchema(state.storage, ORDER_MIGRATIONS.slice(0, 4));
      const at = new Date().toISOString();
      state.storage.sql.exec(
        `INSERT INTO orders (id, user_id, status, items, total_amount, currency, payment_token, payment_status,
           shipping, correlation_id, revision, deadline, created_at, updated_at)
         VALUES (?, ?, 'reserved', ?, 1999, 'USD', 'tok_sim_success_4242', 'pending', ?, ?, 2, ?, ?, ?)`,
        orderId,
        shopper.userId,
        JSON.stringify([orderLine("p-OLD-1", "OLD-1")]),
        JSON.stringify(SHIPPING),
        orderId,
        Date.now() + 60_000,
        at,
        at,
      );
      for (const status of ["pending", "reserved"])
        state.storage.sql.exec("INSERT INTO history (status, at) VALUES (?, ?)", status, at);
      for (const type of ["order.placed", "order.reserved"])
        state.storage.sql.exec(
          "INSERT INTO outbox (event_id, type, body, sent_at) VALUES (?, ?, ?, ?)",
          crypto.randomUUID(),
          type,
          JSON.stringify({ type, occurredAt: at }),
          Date.now(),
        );
    });
    // Woken again by the code of now: it migrates its database to the shards' layout.
    await evictDurableObject(legacy);
    const { sent, queue } = recordingQueue();
    await runInDurableObject(legacy, (instance: OrderObject) => {
      (instance as unknown as { env: Env }).env = { ...env, SAGA_EVENTS: queue };
    });

    const shard = orderShardOf(env, orderId);
    const read = await shard.view(orderId);
    expect(read).toMatchObject({ id: orderId, status: "reserved" });
    expect(read?.history.map((h) => h.status)).toEqual(["pending", "reserved"]);
    const got = await call(`/v1/orders/${orderId}?until=reserved`, {
      token: shopper.token,
      headers: { Prefer: "wait=1" },
    });
    expect(got.status).toBe(200);
    expect(await got.json()).toMatchObject({ id: orderId, status: "reserved" });

    const cancelled = await call(`/v1/orders/${orderId}/cancel`, { method: "POST", token: shopper.token });
    expect(cancelled.status).toBe(202);
    expect(await accepted(cancelled)).toEqual({ id: orderId, status: "cancelled" });
    expect(sent).toEqual(["order.cancelled"]);
    expect((await shard.eventLog(orderId)).map((e) => e.type)).toEqual([
      "order.placed",
      "order.reserved",
      "order.cancelled",
    ]);

    // A retry of the checkout whose Idempotency-Key derived this id finds the order, not a new one.
    const again = await shard.place({
      orderId,
      keyed: true,
      userId: shopper.userId,
      items: [orderLine("p-OLD-1", "OLD-1")],
      total: { amount: 1999, currency: "USD" },
      paymentToken: "tok_sim_success_4242",
      shippingAddress: SHIPPING,
      correlationId: orderId,
    });
    expect(again).toMatchObject({ id: orderId, status: "cancelled" });
    expect(await heldBy(shard, orderId)).toBe(false);
    expect(sent).toEqual(["order.cancelled"]);
  });
});
