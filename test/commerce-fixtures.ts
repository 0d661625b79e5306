import { env } from "cloudflare:workers";

/**
 * Inserts a sellable SKU straight into the catalog tables (commerce tests do not depend on the
 * catalog admin API). Idempotent per SKU.
 */
export async function insertSku(
  sku: string,
  opts: {
    amount?: number;
    currency?: string;
    status?: "draft" | "active" | "archived";
    name?: string;
    /** A category of its own (created if missing); by default the shared `test-commerce`. */
    category?: string;
  } = {},
): Promise<void> {
  const amount = opts.amount ?? 1999;
  const category = opts.category ?? "test-commerce";
  const currency = opts.currency ?? "USD";
  const name = opts.name ?? `Product ${sku}`;
  await env.DB.batch([
    env.DB.prepare("INSERT OR IGNORE INTO categories (id, name) VALUES (?, ?)").bind(
      category,
      category === "test-commerce" ? "Commerce tests" : `Category ${category}`,
    ),
    env.DB.prepare(
      `INSERT OR IGNORE INTO products (id, sku, name, category_id, price_amount, currency, status)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    ).bind(`p-${sku}`, sku, name, category, amount, currency, opts.status ?? "active"),
    env.DB.prepare(
      "INSERT OR IGNORE INTO product_variants (sku, product_id, name, price_amount, currency) VALUES (?, ?, ?, ?, ?)",
    ).bind(sku, `p-${sku}`, name, amount, currency),
  ]);
}

/** Gives a SKU `onHand` units directly through its InventoryObject (as the admin route does). */
export async function stock(sku: string, onHand: number): Promise<void> {
  const result = await env.INVENTORY.getByName(sku).adjust(onHand);
  if (!result.ok) throw new Error(`cannot stock ${sku} with ${onHand}: ${JSON.stringify(result.level)}`);
}
