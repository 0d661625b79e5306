import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import { RecommendationList } from "../contracts/catalog";
import { projectAvailability } from "../domain/catalog/availability";
import { insertSku } from "./commerce-fixtures";
import { call, expectProblem } from "./helpers";
import { deliverSagaBatch, orderEvent, orderLine } from "./order-fixtures";

/** Products `names` in a category of their own, each with `available` units (0 = out of stock). */
async function catalog(names: string[], stockOf: (name: string) => number = () => 5) {
  const tag = crypto.randomUUID().slice(0, 6);
  const category = `rec-${tag}`;
  const ids: Record<string, string> = {};
  for (const name of names) {
    const sku = `REC-${tag}-${name}`;
    await insertSku(sku, { category, name: `Product ${name}` });
    await projectAvailability(env, sku, stockOf(name));
    ids[name] = `p-${sku}`;
  }
  const skuOf = (name: string) => ids[name]!.slice(2);
  const nameOf = (id: string) => Object.keys(ids).find((name) => ids[name] === id) ?? id;
  return { ids, skuOf, nameOf, category };
}

/** An `order.confirmed` event of a new order with one line per name (`quantity` units each). */
function confirmed(shop: Awaited<ReturnType<typeof catalog>>, names: string[], quantity = 1) {
  return orderEvent(
    "order.confirmed",
    {
      id: `ord-${crypto.randomUUID()}`,
      userId: "u-rec",
      status: "confirmed",
      items: names.map((n) => orderLine(shop.ids[n]!, shop.skuOf(n), quantity)),
    },
    { revision: 5 },
  );
}

async function recommended(productId: string): Promise<string[]> {
  const res = await call(`/v1/products/${productId}/recommendations`);
  expect(res.status, await res.clone().text()).toBe(200);
  return RecommendationList.parse(await res.json()).items.map((p) => p.id);
}

const pairCount = async (a: string, b: string) =>
  (
    await env.DB.prepare("SELECT orders FROM product_pairs WHERE product_id = ? AND other_id = ?")
      .bind(a, b)
      .first<{ orders: number }>()
  )?.orders ?? 0;

it("counts bought-together pairs deterministically from a seeded order set; redeliveries count once", async () => {
  const shop = await catalog(["A", "B", "C", "D", "E", "F"]);
  const orders = [
    confirmed(shop, ["A", "B"]),
    confirmed(shop, ["A", "B", "C"]),
    confirmed(shop, ["A", "C"]),
    confirmed(shop, ["A", "B", "D"], 3),
    confirmed(shop, ["E"], 10),
    confirmed(shop, ["F"], 2),
  ];
  // The whole set, then all of it again in another batch, and one event twice within a batch.
  expect((await deliverSagaBatch(orders)).explicitAcks).toHaveLength(orders.length);
  expect((await deliverSagaBatch([...orders, orders[0]!])).explicitAcks).toHaveLength(orders.length + 1);
  const { ids } = shop;
  expect(await pairCount(ids.A!, ids.B!)).toBe(3);
  expect(await pairCount(ids.B!, ids.A!)).toBe(3);
  expect(await pairCount(ids.A!, ids.C!)).toBe(2);
  expect(await pairCount(ids.B!, ids.C!)).toBe(1);
  expect(await pairCount(ids.A!, ids.D!)).toBe(1);
  expect(await pairCount(ids.A!, ids.E!)).toBe(0);
  const units = await env.DB.prepare(
    "SELECT product_id, units FROM product_sales WHERE product_id IN (?, ?, ?) ORDER BY product_id",
  )
    .bind(ids.A, ids.D, ids.E)
    .all();
  expect(units.results).toEqual([
    { product_id: ids.A, units: 6 },
    { product_id: ids.D, units: 3 },
    { product_id: ids.E, units: 10 },
  ]);

  // Bought together first (most orders first, ties by id descending), then the category's best
  // sellers by units (E 10, F 2, then unsold ones), never the product itself.
  expect((await recommended(ids.A!)).map(shop.nameOf)).toEqual(["B", "C", "D", "E", "F"]);
  expect((await recommended(ids.C!)).map(shop.nameOf)).toEqual(["A", "B", "E", "D", "F"]);
  // No pairs at all: the category's best sellers alone.
  expect((await recommended(ids.F!)).map(shop.nameOf)).toEqual(["E", "A", "B", "D", "C"]);
});

it("takes a cancelled or fully refunded purchase back out, once; a partial refund keeps it; a cancellation before its late confirmation counts nothing", async () => {
  const shop = await catalog(["A", "B", "C"]);
  const { ids } = shop;
  const kept = confirmed(shop, ["A", "B"]);
  const refunded = confirmed(shop, ["A", "B", "C"], 2);
  const undone = (
    event: ReturnType<typeof confirmed>,
    type: "order.cancelled" | "order.refunded",
    status: "cancelled" | "refunded" | "confirmed",
  ) =>
    orderEvent(
      type,
      { ...event.order, status },
      (type === "order.refunded"
        ? { refundId: `${event.orderId}:r`, amount: 100, revision: 7 }
        : { revision: 7 }) as never,
    );
  await deliverSagaBatch([kept, refunded]);
  expect([await pairCount(ids.A!, ids.B!), await pairCount(ids.A!, ids.C!)]).toEqual([2, 1]);

  // A partial refund (the order stays confirmed) keeps the purchase.
  await deliverSagaBatch([undone(refunded, "order.refunded", "confirmed")]);
  expect(await pairCount(ids.A!, ids.B!)).toBe(2);
  // Refunded in full, delivered twice (and once more in a later batch): taken back once.
  const full = undone(refunded, "order.refunded", "refunded");
  await deliverSagaBatch([full, full]);
  await deliverSagaBatch([full, undone(refunded, "order.cancelled", "cancelled")]);
  expect([await pairCount(ids.A!, ids.B!), await pairCount(ids.C!, ids.A!)]).toEqual([1, 0]);
  const sold = await env.DB.prepare(
    "SELECT product_id, units FROM product_sales WHERE product_id IN (?, ?) ORDER BY product_id",
  )
    .bind(ids.A, ids.C)
    .all();
  expect(sold.results).toEqual([
    { product_id: ids.A, units: 1 },
    { product_id: ids.C, units: 0 },
  ]);
  // C is no longer bought with A: it comes after B, as a category fallback.
  expect((await recommended(ids.A!)).map(shop.nameOf)).toEqual(["B", "C"]);

  // Cancelled before its (redelivered, late) confirmation is processed: the confirmation counts nothing.
  const late = confirmed(shop, ["A", "B"]);
  await deliverSagaBatch([undone(late, "order.cancelled", "cancelled")]);
  await deliverSagaBatch([late]);
  expect(await pairCount(ids.A!, ids.B!)).toBe(1);
});

it("never recommends out-of-stock, draft or archived products; unknown products are 404", async () => {
  const shop = await catalog(["A", "B", "C", "D", "E"], (name) => (name === "B" ? 0 : 5));
  await env.DB.batch([
    env.DB.prepare("UPDATE products SET status = 'archived' WHERE id = ?").bind(shop.ids.C),
    env.DB.prepare("UPDATE products SET status = 'draft' WHERE id = ?").bind(shop.ids.D),
  ]);
  await deliverSagaBatch([confirmed(shop, ["A", "B", "C", "D", "E"]), confirmed(shop, ["B", "C"], 9)]);
  expect((await recommended(shop.ids.A!)).map(shop.nameOf)).toEqual(["E"]);
  await expectProblem(await call("/v1/products/p-no-such/recommendations"), 404);
  await expectProblem(await call(`/v1/products/${shop.ids.D}/recommendations`), 404);
  await expectProblem(await call("/v1/products/bad%20id/recommendations"), 400);
});
