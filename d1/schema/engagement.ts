import { sql } from "drizzle-orm";
import { check, index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

const nowIso = sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`;

/**
 * Product reviews: one per customer and product (the unique index is what makes a second one a
 * 409, even for two at once). Title and body are plain text as the customer wrote them; the API
 * never turns them into HTML. An erased account's reviews stay, anonymised: `user_id` and
 * `author_name` become NULL (SQLite's UNIQUE treats NULLs as distinct).
 */
export const reviews = sqliteTable(
  "reviews",
  {
    id: text("id").primaryKey(),
    productId: text("product_id").notNull(),
    userId: text("user_id"),
    /** The reviewer's display name when the review was written; NULL for anonymous or erased. */
    authorName: text("author_name"),
    rating: integer("rating").notNull(),
    title: text("title").notNull(),
    body: text("body").notNull(),
    createdAt: text("created_at").notNull().default(nowIso),
  },
  (t) => [
    uniqueIndex("reviews_product_user_unique").on(t.productId, t.userId),
    // Newest first per product, keyset on (created_at, id).
    index("reviews_product_created_idx").on(t.productId, t.createdAt, t.id),
    index("reviews_user_idx").on(t.userId),
    check("reviews_rating_range", sql`${t.rating} BETWEEN 1 AND 5`),
  ],
);

/**
 * A product's rating as integer sum and count, changed in the same D1 batch as the review row
 * (+rating on insert, -rating on delete), so the average is exact and never recomputed by scan.
 */
export const productRatings = sqliteTable(
  "product_ratings",
  {
    productId: text("product_id").primaryKey(),
    ratingSum: integer("rating_sum").notNull().default(0),
    ratingCount: integer("rating_count").notNull().default(0),
  },
  (t) => [check("product_ratings_non_negative", sql`${t.ratingSum} >= 0 AND ${t.ratingCount} >= 0`)],
);

/**
 * "Bought together": how many confirmed orders held both products, one row per ordered pair (both
 * directions stored, so a product's partners are one index range). Maintained by the read-model
 * consumer; `recommendation_orders` makes each order count once however often it is delivered.
 */
export const productPairs = sqliteTable(
  "product_pairs",
  {
    productId: text("product_id").notNull(),
    otherId: text("other_id").notNull(),
    orders: integer("orders").notNull(),
  },
  (t) => [
    primaryKey({ columns: [t.productId, t.otherId] }),
    index("product_pairs_rank_idx").on(t.productId, t.orders, t.otherId),
  ],
);

/** Units sold per product over confirmed orders: the category best-seller fallback ranks by it. */
export const productSales = sqliteTable(
  "product_sales",
  {
    productId: text("product_id").primaryKey(),
    units: integer("units").notNull(),
  },
  (t) => [index("product_sales_units_idx").on(t.units)],
);

/**
 * Orders already counted into `product_pairs` and `product_sales` (redelivery guard). `reversedAt`
 * is set when the purchase did not stick (cancelled or fully refunded after it was counted: its
 * counts are taken back once) — or first, as a tombstone, so a late `order.confirmed` of an order
 * already cancelled counts nothing.
 */
export const recommendationOrders = sqliteTable("recommendation_orders", {
  orderId: text("order_id").primaryKey(),
  countedAt: text("counted_at").notNull().default(nowIso),
  reversedAt: text("reversed_at"),
});

/**
 * Images attached to products. The bytes live in R2 under `key`, the SHA-256 of the content plus
 * its extension, so one image attached twice is stored once; a row per product that shows it.
 */
export const productMedia = sqliteTable(
  "product_media",
  {
    productId: text("product_id").notNull(),
    key: text("key").notNull(),
    contentType: text("content_type").notNull(),
    size: integer("size").notNull(),
    createdAt: text("created_at").notNull().default(nowIso),
  },
  (t) => [primaryKey({ columns: [t.productId, t.key] }), index("product_media_key_idx").on(t.key)],
);
