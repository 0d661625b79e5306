import type { z } from "zod";
import type { Product } from "../../contracts/catalog";
import { ratingOf } from "../reviews/rating";

/** Columns every product read selects (aliases `p` = products, `c` = categories). */
export const PRODUCT_COLUMNS = `p.id AS id, p.sku AS sku, p.name AS name, p.description AS description,
  p.category_id AS category_id, c.name AS category_name, p.price_amount AS price_amount,
  p.currency AS currency, p.attributes AS attributes, p.available AS available, p.status AS status,
  p.created_at AS created_at, p.updated_at AS updated_at,
  coalesce((SELECT r.rating_sum FROM product_ratings r WHERE r.product_id = p.id), 0) AS rating_sum,
  coalesce((SELECT r.rating_count FROM product_ratings r WHERE r.product_id = p.id), 0) AS rating_count`;

/** A row shaped by PRODUCT_COLUMNS. */
export interface ProductRow {
  id: string;
  sku: string;
  name: string;
  description: string;
  category_id: string;
  category_name: string;
  price_amount: number;
  currency: string;
  attributes: string;
  available: number;
  status: "draft" | "active" | "archived";
  created_at: string;
  updated_at: string;
  rating_sum: number;
  rating_count: number;
}

/** Maps a row to the public Product shape (API.md). */
export function toProduct(row: ProductRow): z.output<typeof Product> {
  return {
    id: row.id,
    sku: row.sku,
    name: row.name,
    description: row.description,
    category: row.category_id,
    categoryName: row.category_name,
    price: { amount: row.price_amount, currency: row.currency },
    attributes: JSON.parse(row.attributes) as Record<string, unknown>,
    // A negative projection (oversold, late event) still means "none to sell" to a shopper.
    available: Math.max(0, row.available),
    status: row.status,
    rating: ratingOf(row.rating_sum, row.rating_count),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
