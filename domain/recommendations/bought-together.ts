import type { RecommendationList } from "../../contracts/catalog";
import type { OrderEvent } from "../../contracts/saga-events";
import { PRODUCT_COLUMNS, type ProductRow, toProduct } from "../catalog/product-row";
import { notFound } from "../errors";

export const DEFAULT_RECOMMENDATIONS = 8;

/** Counted orders: an order holding these products (and no other condition) counts once. */
const NOT_YET_COUNTED = "NOT EXISTS (SELECT 1 FROM recommendation_orders WHERE order_id = ?2)";

/**
 * The statements that count one confirmed order into the bought-together pairs and the per-product
 * sales, for the read-model consumer to run in the same D1 batch as its projection. Every statement
 * is guarded by the order's row in `recommendation_orders`, written last in the same transaction, so
 * a redelivered event — even twice in one queue batch — counts nothing the second time.
 * Other events need no statements: an order is counted when it is confirmed (stock committed, paid).
 */
export function purchaseCountStatements(db: D1Database, event: OrderEvent): D1PreparedStatement[] {
  if (event.type !== "order.confirmed") return [];
  const units = new Map<string, number>();
  for (const line of event.order.items) units.set(line.productId, (units.get(line.productId) ?? 0) + line.quantity);
  if (units.size === 0) return [];
  const products = JSON.stringify([...units.keys()]);
  const statements = [
    db
      .prepare(
        `INSERT INTO product_sales (product_id, units)
         SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?1) WHERE ${NOT_YET_COUNTED}
         ON CONFLICT (product_id) DO UPDATE SET units = units + excluded.units`,
      )
      .bind(JSON.stringify([...units]), event.orderId),
  ];
  if (units.size > 1) {
    statements.push(
      db
        .prepare(
          `INSERT INTO product_pairs (product_id, other_id, orders)
           SELECT a.value, b.value, 1 FROM json_each(?1) a, json_each(?1) b WHERE a.value <> b.value AND ${NOT_YET_COUNTED}
           ON CONFLICT (product_id, other_id) DO UPDATE SET orders = orders + 1`,
        )
        .bind(products, event.orderId),
    );
  }
  statements.push(db.prepare("INSERT OR IGNORE INTO recommendation_orders (order_id) VALUES (?)").bind(event.orderId));
  return statements;
}

/** Only what a shopper could buy right now is recommended. */
const SELLABLE = "p.status = 'active' AND p.available > 0";

/**
 * Recommendations for a product, from the precomputed counts only (two indexed reads in one D1
 * round trip): the products most often bought together with it, then its category's best sellers
 * (units sold, ties by id) to fill up. Out-of-stock, draft and archived products never appear.
 */
export async function recommendationsFor(
  env: Pick<Env, "DB">,
  productId: string,
  limit = DEFAULT_RECOMMENDATIONS,
): Promise<RecommendationList> {
  const [product, together, bestSellers] = await env.DB.batch<Record<string, unknown>>([
    env.DB.prepare("SELECT status FROM products WHERE id = ?").bind(productId),
    // The pairs index (product_id, orders, other_id) read backwards: no sort step.
    env.DB.prepare(
      `SELECT ${PRODUCT_COLUMNS} FROM product_pairs pp
         JOIN products p ON p.id = pp.other_id JOIN categories c ON c.id = p.category_id
       WHERE pp.product_id = ?1 AND ${SELLABLE}
       ORDER BY pp.orders DESC, pp.other_id DESC LIMIT ?2`,
    ).bind(productId, limit),
    // Twice the limit: some of them may already be among the bought-together ones.
    env.DB.prepare(
      `SELECT ${PRODUCT_COLUMNS} FROM products p JOIN categories c ON c.id = p.category_id
         LEFT JOIN product_sales s ON s.product_id = p.id
       WHERE p.category_id = (SELECT category_id FROM products WHERE id = ?1) AND p.id <> ?1 AND ${SELLABLE}
       ORDER BY coalesce(s.units, 0) DESC, p.id LIMIT ?2`,
    ).bind(productId, limit * 2),
  ]);
  const status = (product?.results[0] as { status?: string } | undefined)?.status;
  if (status === undefined || status === "draft") throw notFound("No such product");
  const picked = new Map<string, ProductRow>();
  for (const row of [...(together?.results ?? []), ...(bestSellers?.results ?? [])] as unknown as ProductRow[]) {
    if (picked.size >= limit) break;
    if (!picked.has(row.id)) picked.set(row.id, row);
  }
  return { items: [...picked.values()].map(toProduct) };
}
