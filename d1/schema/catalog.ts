import { sql } from "drizzle-orm";
import { index, integer, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

/** Category tree: `parentId` null for roots. */
export const categories = sqliteTable(
  "categories",
  {
    id: text("id").primaryKey(),
    name: text("name").notNull(),
    parentId: text("parent_id"),
  },
  (t) => [index("categories_parent_idx").on(t.parentId)],
);

/** A product as shoppers see it; sellable units are its variants (one or more SKUs). */
export const products = sqliteTable(
  "products",
  {
    id: text("id").primaryKey(),
    /** The product's primary SKU (its first variant). */
    sku: text("sku").notNull().unique(),
    name: text("name").notNull(),
    description: text("description").notNull().default(""),
    categoryId: text("category_id")
      .notNull()
      .references(() => categories.id),
    /** Price of the primary variant, integer minor units. Filters, sorts and facets use it. */
    priceAmount: integer("price_amount").notNull(),
    currency: text("currency").notNull().default("USD"),
    attributes: text("attributes", { mode: "json" }).$type<Record<string, unknown>>().notNull().default({}),
    status: text("status", { enum: ["draft", "active", "archived"] })
      .notNull()
      .default("active"),
    createdAt: text("created_at").notNull().default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`),
    updatedAt: text("updated_at").notNull().default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`),
    /**
     * Sum of the variants' `available` projection, kept in step by `projectAvailability` so the
     * `inStock` filter is an indexed column test rather than a join per row.
     */
    available: integer("available").notNull().default(0),
    /**
     * The product's rowid in `products_fts`. An explicit column because an implicit rowid may be
     * renumbered by VACUUM, which would silently detach the search index.
     */
    ftsRowid: integer("fts_rowid"),
  },
  (t) => [
    index("products_category_idx").on(t.categoryId),
    index("products_status_idx").on(t.status),
    uniqueIndex("products_fts_rowid_unique").on(t.ftsRowid),
    // One index per keyset sort the list offers (status first: shoppers only ever see `active`).
    index("products_status_price_idx").on(t.status, t.priceAmount, t.id),
    index("products_status_created_idx").on(t.status, t.createdAt, t.id),
    // Category filter (descendants resolved to a set of ids) + the category facet.
    index("products_status_category_idx").on(t.status, t.categoryId, t.priceAmount),
  ],
);

/**
 * One sellable SKU. `available` is a projection owned by the inventory Durable Objects: it is
 * written only from inventory events (queues/read-model consumer), never by catalog admin writes.
 */
export const productVariants = sqliteTable(
  "product_variants",
  {
    sku: text("sku").primaryKey(),
    productId: text("product_id")
      .notNull()
      .references(() => products.id),
    name: text("name").notNull(),
    priceAmount: integer("price_amount").notNull(),
    currency: text("currency").notNull().default("USD"),
    attributes: text("attributes", { mode: "json" }).$type<Record<string, unknown>>().notNull().default({}),
    /** Units available to sell, as last projected from the SKU's InventoryObject. */
    available: integer("available").notNull().default(0),
    /** Display order within the product; 0 is the primary SKU. */
    position: integer("position").notNull().default(0),
  },
  (t) => [index("product_variants_product_idx").on(t.productId)],
);

/**
 * Single-row-per-key counters for the catalog. `version` is bumped by every admin write in the
 * same batch; it is part of every edge-cache key, so bumping it retires all cached list pages.
 */
export const catalogMeta = sqliteTable("catalog_meta", {
  key: text("key").primaryKey(),
  value: integer("value").notNull(),
});
