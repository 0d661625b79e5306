import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { products, productVariants } from "../../d1/schema/catalog";

/** What carts and orders need to know about a SKU: its product, display name and current price. */
export interface SellableSku {
  sku: string;
  productId: string;
  name: string;
  unitPrice: { amount: number; currency: string };
  status: "draft" | "active" | "archived";
  /** Shipping weight of one unit in grams; null for digital goods (nothing to ship). */
  weightGrams: number | null;
}

/** Weight assumed for a physical SKU whose attributes name none. */
export const DEFAULT_WEIGHT_GRAMS = 500;

/**
 * A SKU's shipping weight from its attributes (the variant's over the product's): `digital: true`
 * means nothing ships; `shippingWeightGrams` is the parcel weight of one unit.
 */
export function shippingWeightOf(...attributes: Record<string, unknown>[]): number | null {
  for (const a of attributes) {
    if (a.digital === true) return null;
    const grams = a.shippingWeightGrams;
    if (typeof grams === "number" && Number.isSafeInteger(grams) && grams >= 0) return grams;
  }
  return DEFAULT_WEIGHT_GRAMS;
}

/** The catalog's seam for commerce: looks a SKU up; null when it does not exist. */
export async function findSku(env: Pick<Env, "DB">, sku: string): Promise<SellableSku | null> {
  const row = await drizzle(env.DB)
    .select({
      sku: productVariants.sku,
      productId: productVariants.productId,
      name: productVariants.name,
      productName: products.name,
      amount: productVariants.priceAmount,
      currency: productVariants.currency,
      status: products.status,
      variantAttributes: productVariants.attributes,
      productAttributes: products.attributes,
    })
    .from(productVariants)
    .innerJoin(products, eq(products.id, productVariants.productId))
    .where(eq(productVariants.sku, sku))
    .get();
  if (!row) return null;
  return {
    sku: row.sku,
    productId: row.productId,
    name: row.name === row.productName ? row.name : `${row.productName} — ${row.name}`,
    unitPrice: { amount: row.amount, currency: row.currency },
    status: row.status,
    weightGrams: shippingWeightOf(row.variantAttributes, row.productAttributes),
  };
}
