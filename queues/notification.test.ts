import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { countingDb } from "../test/helpers";
import { deliverSagaBatch, orderEvent } from "../test/order-fixtures";

async function insertUser(id: string, email: string | null): Promise<void> {
  await env.DB.prepare("INSERT INTO users (id, email, name, roles) VALUES (?, ?, ?, '[\"customer\"]')")
    .bind(id, email, `Name ${id}`)
    .run();
}

it("a batch's emails read their customers in one D1 query; an erased customer gets none", async () => {
  const run = crypto.randomUUID().slice(0, 8);
  const [ada, bob, gone] = [`u-ada-${run}`, `u-bob-${run}`, `u-gone-${run}`];
  await insertUser(ada, `ada-${run}@example.test`);
  await insertUser(bob, `bob-${run}@example.test`);
  await insertUser(gone, null); // erased (GDPR): no address left
  const order = (userId: string, n: number) => ({ id: `ord_note_${run}_${n}`, userId, status: "confirmed" as const });
  const bodies = [
    orderEvent("order.confirmed", order(ada, 1)),
    orderEvent("order.confirmed", order(bob, 2)),
    orderEvent("order.confirmed", order(ada, 3)),
    orderEvent("order.confirmed", order(gone, 4)),
    orderEvent("order.cancelled", { ...order(bob, 5), status: "cancelled" }),
  ];
  const userReads = countingDb(/from "users"/i);
  expect((await deliverSagaBatch(bodies, { DB: userReads.DB })).explicitAcks).toEqual(["m0", "m1", "m2", "m3", "m4"]);
  expect(userReads.count()).toBe(1);

  const sent = await env.DB.prepare(
    "SELECT order_id, recipient, kind FROM notifications WHERE order_id LIKE ? ORDER BY order_id",
  )
    .bind(`ord_note_${run}_%`)
    .all<{ order_id: string; recipient: string; kind: string }>();
  expect(sent.results).toEqual([
    { order_id: `ord_note_${run}_1`, recipient: `ada-${run}@example.test`, kind: "order_confirmed" },
    { order_id: `ord_note_${run}_2`, recipient: `bob-${run}@example.test`, kind: "order_confirmed" },
    { order_id: `ord_note_${run}_3`, recipient: `ada-${run}@example.test`, kind: "order_confirmed" },
    { order_id: `ord_note_${run}_5`, recipient: `bob-${run}@example.test`, kind: "order_cancelled" },
  ]);
});
