import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import type { InventoryChanged } from "../contracts/inventory-events";
import type { OrderStatus } from "../contracts/saga-events";
import { insertSku } from "../test/commerce-fixtures";
import { countingDb } from "../test/helpers";
import { deliverSagaBatch as deliver, orderEvent, orderLine } from "../test/order-fixtures";

function changed(sku: string, revision: number, available: number): InventoryChanged {
  return {
    id: crypto.randomUUID(),
    type: "inventory.changed",
    version: 1,
    sku,
    onHand: 100,
    reserved: 100 - available,
    available,
    sold: 0,
    revision,
    cause: "reserved",
    occurredAt: new Date().toISOString(),
  };
}

const available = async (sku: string) =>
  (
    await env.DB.prepare("SELECT available FROM product_variants WHERE sku = ?")
      .bind(sku)
      .first<{ available: number }>()
  )?.available;

it("inventory events project into the catalog; duplicates and older revisions change nothing", async () => {
  await insertSku("PROJ-1");
  const newest = changed("PROJ-1", 7, 40);
  expect((await deliver([newest])).explicitAcks).toEqual(["m0"]);
  expect(await available("PROJ-1")).toBe(40);
  // An older event and a duplicate of the newest, delivered afterwards.
  await deliver([changed("PROJ-1", 3, 90), newest, changed("PROJ-1", 6, 55)]);
  expect(await available("PROJ-1")).toBe(40);
  await deliver([changed("PROJ-1", 8, 39)]);
  expect(await available("PROJ-1")).toBe(39);
});

/** A read-model-only order event (held for review: no saga step runs for it). */
function held(orderId: string, revision: number, status: OrderStatus) {
  return orderEvent(
    "order.held_for_review",
    { id: orderId, userId: "u-view", status, items: [orderLine("p-VIEW-1", "VIEW-1", 3)] },
    { revision, hits: [], reviewDeadline: new Date().toISOString() },
  );
}

it("a batch of order events projects in one statement, newest revision winning whatever the order", async () => {
  const [a, b] = [`ord_view_a_${crypto.randomUUID()}`, `ord_view_b_${crypto.randomUUID()}`];
  const duplicate = held(a, 3, "review");
  const bodies = [duplicate, held(a, 2, "pending"), held(b, 2, "review"), duplicate, held(a, 4, "reserved")];
  // Counts the read-model upserts the dispatcher prepares for the batch, and keeps the rows bound.
  const upserts = countingDb(/INSERT INTO orders_view/);
  const bound: unknown[][] = [];
  const DB = new Proxy(upserts.DB, {
    get(target, prop) {
      if (prop !== "prepare") return Reflect.get(target, prop, target);
      return (query: string) => {
        const statement = target.prepare(query);
        if (!query.includes("INSERT INTO orders_view")) return statement;
        return new Proxy(statement, {
          get(s, name) {
            if (name !== "bind") return Reflect.get(s, name, s);
            return (...args: unknown[]) => {
              bound.push(JSON.parse(args[0] as string) as unknown[]);
              return s.bind(...args);
            };
          },
        });
      };
    },
  });
  expect((await deliver(bodies, { DB })).explicitAcks).toEqual(["m0", "m1", "m2", "m3", "m4"]);
  expect(upserts.count()).toBe(1);
  // One row per order, its newest snapshot: the others would be overwritten in the same statement.
  expect(bound.flat().map((row) => (row as unknown[])[10])).toEqual([4, 2]);
  const view = (id: string) =>
    env.DB.prepare(
      "SELECT user_id, status, reason, total_amount, currency, item_count, payment_status, refunded_amount, revision FROM orders_view WHERE id = ?",
    )
      .bind(id)
      .first();
  const row = { user_id: "u-view", reason: null, total_amount: 5997, currency: "USD", item_count: 3 };
  expect(await view(a)).toEqual({
    ...row,
    status: "reserved",
    payment_status: "pending",
    refunded_amount: 0,
    revision: 4,
  });
  expect(await view(b)).toEqual({
    ...row,
    status: "review",
    payment_status: "pending",
    refunded_amount: 0,
    revision: 2,
  });
  // An older revision delivered later changes nothing.
  await deliver([held(a, 3, "review")]);
  expect(await view(a)).toMatchObject({ status: "reserved", revision: 4 });
});
