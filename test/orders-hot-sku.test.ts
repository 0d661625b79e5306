import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { insertSku, stock } from "./commerce-fixtures";
import { accepted, cartViaRpc, newShopper, placeOrder, type Shopper, waitForOrders } from "./order-fixtures";

it("hot SKU: 200 concurrent checkouts for 50 units → exactly 50 confirmed, 150 cancelled out_of_stock, nothing oversold or left reserved", async () => {
  const SKU = "HOT-SKU-1";
  await insertSku(SKU, { amount: 999 });
  await stock(SKU, 50);
  const shoppers: Shopper[] = await Promise.all(Array.from({ length: 200 }, () => newShopper()));
  // Adding to a cart only checks availability (it does not reserve), so all 200 carts fill.
  const carts = await Promise.all(shoppers.map((s) => cartViaRpc(s, [{ sku: SKU, quantity: 1 }])));

  const responses = await Promise.all(shoppers.map((s, i) => placeOrder(s, carts[i]!)));
  expect(responses.map((r) => r.status)).toEqual(Array(200).fill(202));
  const ids = await Promise.all(responses.map(async (r) => (await accepted(r)).id));
  expect(new Set(ids).size).toBe(200);

  // 200 sagas on one workerd: ~10 s on an idle 2-core machine, minutes under CI load; the deadline
  // only catches a hang (nothing here depends on speed).
  const orders = await waitForOrders(ids, 240_000);
  const confirmed = orders.filter((o) => o.status === "confirmed");
  const cancelled = orders.filter((o) => o.status === "cancelled");
  expect(confirmed).toHaveLength(50);
  expect(cancelled).toHaveLength(150);
  expect(cancelled.every((o) => o.reason === "out_of_stock" && o.payment.captured === 0)).toBe(true);

  // Compensations (release of the losers' zero reservations) are asynchronous: settle, then check.
  await expect.poll(async () => (await env.INVENTORY.getByName(SKU).level()).reserved, { timeout: 10_000 }).toBe(0);
  const level = await env.INVENTORY.getByName(SKU).level();
  expect(level).toMatchObject({ onHand: 50, sold: 50, reserved: 0, available: 0 });
  expect(level.onHand - level.sold).toBe(0);

  // Money moved exactly for the winners, once each.
  const captures = await env.DB.prepare(
    "SELECT COUNT(*) AS n, COUNT(DISTINCT order_id) AS orders FROM payment_ledger WHERE kind = 'capture'",
  ).first<{ n: number; orders: number }>();
  expect(captures).toEqual({ n: 50, orders: 50 });
}, 300_000);
