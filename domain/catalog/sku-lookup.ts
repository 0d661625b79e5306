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
  };
}
