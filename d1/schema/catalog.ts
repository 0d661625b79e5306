import { sql } from "drizzle-orm";
import { index, integer, sqliteTable, text } from "drizzle-orm/sqlite-core";

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
    /** Price of the primary variant, integer minor units. */
    priceAmount: integer("price_amount").notNull(),
    currency: text("currency").notNull().default("USD"),
    attributes: text("attributes", { mode: "json" }).$type<Record<string, unknown>>().notNull().default({}),
    status: text("status", { enum: ["draft", "active", "archived"] })
      .notNull()
      .default("active"),
    createdAt: text("created_at").notNull().default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`),
    updatedAt: text("updated_at").notNull().default(sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`),
  },
  (t) => [index("products_category_idx").on(t.categoryId), index("products_status_idx").on(t.status)],
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
  },
  (t) => [index("product_variants_product_idx").on(t.productId)],
);
