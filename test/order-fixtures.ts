import {
  createExecutionContext,
  createMessageBatch,
  getQueueResult,
  runDurableObjectAlarm,
  runInDurableObject,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { Cart } from "../contracts/cart";
import { OrderAccepted, OwnedOrder } from "../contracts/order";
import type { OrderEvent, OrderLine, OrderStatus } from "../contracts/saga-events";
import { randomHex } from "../domain/encoding";
import type { OrderObject } from "../durable-objects/order";
import { orderShard, orderShardOf } from "../durable-objects/order-shard";
import { dispatchBatch } from "../queues/dispatch";
import { newCartId } from "../workers/routes/carts";
import { call, tokenFor } from "./helpers";

export const SHIPPING = {
  name: "Ada Lovelace",
  line1: "1 Analytical Way",
  city: "London",
  postalCode: "N1 9GU",
  country: "GB",
};

export const CARDS = {
  ok: "4242424242424242",
  declined: "4000000000000002",
  insufficient: "4000000000009995",
  transient: "4000000000000119",
  hang: "4000000000006975",
} as const;

export interface Shopper {
  userId: string;
  token: string;
}

/** A shopper with a cart holding `quantity` of `sku`; returns the cart id. */
export async function cartWith(shopper: Shopper, lines: { sku: string; quantity: number }[]): Promise<string> {
  const created = await call("/v1/carts", { method: "POST", token: shopper.token });
  expect(created.status).toBe(201);
  const { id } = Cart.parse(await created.json());
  for (const line of lines) {
    const res = await call(`/v1/carts/${id}/items`, { method: "POST", token: shopper.token, json: line });
    expect(res.status, await res.clone().text()).toBe(200);
  }
  return id;
}

/** Same as cartWith, straight through CartObject RPC: for tests that need hundreds of carts fast. */
export async function cartViaRpc(shopper: Shopper, lines: { sku: string; quantity: number }[]): Promise<string> {
  const id = newCartId();
  const cart = env.CART.getByName(id);
  expect(await cart.create(shopper.userId)).not.toBeNull();
  for (const line of lines) expect((await cart.addItem(shopper.userId, line.sku, line.quantity)).ok).toBe(true);
  return id;
}

/** A customer with a signed token; with `email`, a users row too (for the notification consumer). */
export async function newShopper(userId = `u-${crypto.randomUUID()}`, email?: string): Promise<Shopper> {
  if (email) {
    await env.DB.prepare("INSERT OR IGNORE INTO users (id, email, name, roles) VALUES (?, ?, ?, '[\"customer\"]')")
      .bind(userId, email, "Test Shopper")
      .run();
  }
  return { userId, token: await tokenFor(userId) };
}

/** A free flat rate into the test addresses' countries, so orders of physical goods can ship. */
export const TEST_SHIPPING_OPTION = "ship_00000000000000f0";

let testShipping: Promise<string> | null = null;

/**
 * Writes the test zone and its free rate into the test file's D1 once (test files share one D1,
 * not one per test); no tax rows, so totals stay the cart's.
 */
export function ensureTestShipping(): Promise<string> {
  testShipping ??= writeTestShipping();
  return testShipping;
}

async function writeTestShipping(): Promise<string> {
  await env.DB.batch([
    env.DB.prepare("INSERT OR IGNORE INTO shipping_zones (id, name) VALUES ('zone_test', 'Test zone')"),
    ...["GB", "PT", "US", "DE"].map((country) =>
      env.DB.prepare("INSERT OR IGNORE INTO shipping_zone_countries (zone_id, country) VALUES ('zone_test', ?)").bind(
        country,
      ),
    ),
    env.DB.prepare(
      `INSERT OR IGNORE INTO shipping_rates (id, zone_id, carrier, service, currency, kind, amount, estimated_days)
       VALUES (?, 'zone_test', 'TestPost', 'Standard', 'USD', 'flat', 0, 3)`,
    ).bind(TEST_SHIPPING_OPTION),
  ]);
  return TEST_SHIPPING_OPTION;
}

/** POST /v1/orders (with the free test shipping option). */
export async function placeOrder(
  shopper: Shopper,
  cartId: string,
  card: string = CARDS.ok,
  headers: Record<string, string> = {},
): Promise<Response> {
  const shippingOptionId = await ensureTestShipping();
  return call("/v1/orders", {
    method: "POST",
    token: shopper.token,
    headers,
    json: { cartId, payment: { method: "card", cardNumber: card }, shippingAddress: SHIPPING, shippingOptionId },
  });
}

/** The 202 body of POST /v1/orders (or of a cancel), parsed with its contract. */
export async function accepted(res: Response): Promise<OrderAccepted> {
  return OrderAccepted.parse(await res.json());
}

/** The order as its shard holds it, parsed with the contract; null when there is none. */
export async function viewOrder(orderId: string): Promise<OwnedOrder | null> {
  const view = await orderShardOf(env, orderId).view(orderId);
  return view && OwnedOrder.parse(view);
}

/** Every event the order emitted so far, oldest first (its shard's outbox keeps sent rows: each order's event log). */
export function emittedEvents(orderId: string): Promise<OrderEvent[]> {
  return runInDurableObject(orderShardOf(env, orderId), (_instance, state) =>
    state.storage.sql
      .exec<{ body: string }>("SELECT body FROM outbox WHERE order_id = ? ORDER BY seq", orderId)
      .toArray()
      .map((r) => JSON.parse(r.body) as OrderEvent),
  );
}

/** Shards orderIdsInNewShard has given ids of, in this test file. */
const shardsGiven = new Set<string>();

/**
 * `n` new random order ids that all live in one shard, one no earlier call (in this test file)
 * gave ids of: a test of orders sharing a shard (its alarm, its queue swapped) has it to itself.
 */
export function orderIdsInNewShard(n: number): string[] {
  let first = `ord_${randomHex(12)}`;
  while (shardsGiven.has(orderShard(first))) first = `ord_${randomHex(12)}`;
  shardsGiven.add(orderShard(first));
  const ids = [first];
  while (ids.length < n) {
    const id = `ord_${randomHex(12)}`;
    if (orderShard(id) === orderShard(first)) ids.push(id);
  }
  return ids;
}

/** A saga queue to swap onto a live order shard: records the event types sent, or fails while `down`. */
export function recordingQueue() {
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

/** Places a one-line test order on a live shard instance, its events (and the shard's) going to `queue`. */
export function placeWith(
  instance: OrderObject,
  queue: Queue,
  orderId: string,
  sku: string,
  userId?: string,
  more: Partial<Parameters<OrderObject["place"]>[0]> = {},
) {
  (instance as unknown as { env: Env }).env = { ...env, SAGA_EVENTS: queue };
  return instance.place({
    orderId,
    userId: userId ?? `u-${crypto.randomUUID()}`,
    items: [orderLine(`p-${sku}`, sku)],
    total: { amount: 1999, currency: "USD" },
    paymentToken: "tok_sim_success_4242",
    shippingAddress: SHIPPING,
    correlationId: orderId,
    ...more,
  });
}

/** Counts the alarm writes (setAlarm, deleteAlarm) an object's storage makes from now on. */
export function countAlarmWrites(storage: DurableObjectStorage): () => number {
  let writes = 0;
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
  return () => writes;
}

/** Moves the order's saga deadline into the past (not waited for), then runs its shard's alarm. */
export async function passSagaDeadline(orderId: string): Promise<boolean> {
  const shard = orderShardOf(env, orderId);
  await runInDurableObject(shard, (_instance, state) => {
    state.storage.sql.exec("UPDATE orders SET deadline = ? WHERE id = ?", Date.now() - 1, orderId);
  });
  return runDurableObjectAlarm(shard);
}

/** Reads the order from its Durable Object directly (no HTTP) until `done` holds, within a deadline. */
export async function waitForOrder(
  orderId: string,
  done: (o: OwnedOrder) => boolean,
  timeoutMs = 10_000,
): Promise<OwnedOrder> {
  const deadline = Date.now() + timeoutMs;
  let last: OwnedOrder | null = null;
  while (Date.now() < deadline) {
    last = await viewOrder(orderId);
    if (last && done(last)) return last;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`order ${orderId} did not settle in ${timeoutMs} ms; last: ${JSON.stringify(last)}`);
}

export const isFinal = (o: OwnedOrder) =>
  (o.status === "confirmed" || o.status === "cancelled" || o.status === "refunded") && o.history.length > 0;

/** Waits until every order is final: one sweep over all of them per poll, within a deadline. */
export async function waitForOrders(orderIds: string[], timeoutMs = 30_000): Promise<OwnedOrder[]> {
  const deadline = Date.now() + timeoutMs;
  const done = new Map<string, OwnedOrder>();
  while (Date.now() < deadline) {
    const pending = orderIds.filter((id) => !done.has(id));
    const views = await Promise.all(pending.map((id) => viewOrder(id)));
    for (const view of views) if (view && isFinal(view)) done.set(view.id, view);
    if (done.size === orderIds.length) return orderIds.map((id) => done.get(id)!);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${orderIds.length - done.size} of ${orderIds.length} orders did not settle in ${timeoutMs} ms`);
}

/**
 * An order event for an order no OrderObject knows, carrying `order` as its snapshot: drives the
 * queue consumers on their own (the read model, the payment step, recommendation counts).
 */
export function orderEvent<T extends OrderEvent["type"]>(
  type: T,
  order: { id: string; userId: string; status: OrderStatus; items?: OrderLine[] },
  extra: Omit<Extract<OrderEvent, { type: T }>, keyof OrderEvent | "type"> & { revision?: number } = {} as never,
): OrderEvent {
  const now = new Date().toISOString();
  const items = order.items ?? [];
  const total = items.reduce((sum, line) => sum + line.lineTotal.amount, 0) || 1234;
  const { revision = 2, ...fields } = extra as { revision?: number };
  return {
    id: crypto.randomUUID(),
    type,
    version: 1,
    orderId: order.id,
    revision,
    correlationId: order.id,
    occurredAt: now,
    ...fields,
    order: {
      id: order.id,
      userId: order.userId,
      status: order.status,
      items,
      total: { amount: total, currency: "USD" },
      payment: { status: "pending", refunded: 0 },
      createdAt: now,
      updatedAt: now,
    },
  } as OrderEvent;
}

/** An `order.reserved` event for an order no OrderObject knows: drives a payment consumer on its own. */
export function reservedEvent(orderId: string, paymentToken = "tok_sim_success_4242"): OrderEvent {
  return orderEvent("order.reserved", { id: orderId, userId: "u-unit", status: "reserved" }, { paymentToken });
}

/** One order line of `quantity` units of a product's SKU at `amount` each. */
export function orderLine(productId: string, sku: string, quantity = 1, amount = 1999): OrderLine {
  return {
    sku,
    productId,
    name: `Product ${sku}`,
    quantity,
    unitPrice: { amount, currency: "USD" },
    lineTotal: { amount: amount * quantity, currency: "USD" },
  };
}

/**
 * Hands `bodies` to the Worker's queue handler as one `saga-events` batch, with `env` as is or
 * with some bindings replaced (e.g. a counting D1); returns the acks and retries.
 */
export async function deliverSagaBatch(bodies: unknown[], bindings: Partial<Env> = {}) {
  const batch = createMessageBatch(
    "saga-events",
    bodies.map((body, i) => ({ id: `m${i}`, timestamp: new Date(), attempts: 1, body })),
  );
  const ctx = createExecutionContext();
  await dispatchBatch(batch, { ...env, ...bindings }, ctx);
  return getQueueResult(batch, ctx);
}
