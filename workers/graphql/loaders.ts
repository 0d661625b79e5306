import DataLoader from "dataloader";
import type { Product } from "../../contracts/catalog";
import type { ProductMedia, ReviewList } from "../../contracts/engagement";
import { PRODUCT_COLUMNS, type ProductRow, toProduct } from "../../domain/catalog/product-row";
import { isFeatureEnabled, type KillSwitch } from "../../domain/flags";
import { type ProductMediaRow, productMediaQuery, toProductMedia } from "../../domain/media/media-row";
import { recommendationsForMany } from "../../domain/recommendations/bought-together";
import { latestReviewsFor } from "../../domain/reviews/store";

/**
 * Per-request DataLoaders: every product field a query asks for across a list is read with one
 * D1 statement for the whole list (per nesting level), not one per product. Built per request, so
 * nothing is cached across callers.
 */
export function createLoaders(env: Pick<Env, "DB">, userId: string | null) {
  const product = new DataLoader<string, Product | null>(async (ids) => {
    const { results } = await env.DB.prepare(
      `SELECT ${PRODUCT_COLUMNS} FROM products p JOIN categories c ON c.id = p.category_id
       WHERE p.id IN (SELECT value FROM json_each(?)) AND p.status <> 'draft'`,
    )
      .bind(JSON.stringify(ids))
      .all<ProductRow>();
    const byId = new Map(results.map((row) => [row.id, toProduct(row)]));
    return ids.map((id) => byId.get(id) ?? null);
  });

  const media = new DataLoader<string, ProductMedia[]>(async (ids) => {
    const { results } = await productMediaQuery(env.DB, [...ids]).all<ProductMediaRow>();
    const byProduct = new Map<string, ProductMedia[]>();
    for (const row of results)
      byProduct.set(row.product_id, [...(byProduct.get(row.product_id) ?? []), toProductMedia(row)]);
    return ids.map((id) => byProduct.get(id) ?? []);
  });

  // Keyed by product and page size; one statement per distinct page size in the batch.
  const firstReviews = new DataLoader<{ productId: string; first: number }, Omit<ReviewList, "rating">, string>(
    async (keys) => {
      const pages = new Map<string, Omit<ReviewList, "rating">>();
      for (const first of new Set(keys.map((k) => k.first))) {
        const ids = [...new Set(keys.filter((k) => k.first === first).map((k) => k.productId))];
        const found = await latestReviewsFor(env, ids, first);
        for (const [i, id] of ids.entries()) pages.set(`${first}:${id}`, found[i]!);
      }
      return keys.map((k) => pages.get(`${k.first}:${k.productId}`)!);
    },
    { cacheKeyFn: (k) => `${k.first}:${k.productId}` },
  );

  const recommendations = new DataLoader<string, Product[]>(async (ids) =>
    (await recommendationsForMany(env, [...ids])).map((found) => found?.items ?? []),
  );

  // Kill switches, evaluated once per request for this caller (not once per product of a list).
  const feature = new DataLoader<KillSwitch, boolean>(async (names) =>
    Promise.all(names.map((name) => isFeatureEnabled(env, name, userId))),
  );

  return { product, media, firstReviews, recommendations, feature };
}

export type Loaders = ReturnType<typeof createLoaders>;
