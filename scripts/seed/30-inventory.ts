// Demo stock: gives every catalog SKU units on hand through the admin API (after 20-catalog), using
// the demo catalog's own stock figures so catalog availability and inventory agree from the start.
// Idempotent: `onlyIfUnstocked` leaves SKUs alone whose stock was ever set, so a restart never
// resets stock that shoppers have since reserved or bought.
import type { SeedContext } from "../local.ts";

/** The batch route's maximum; each batch fans out to one InventoryObject per SKU in parallel. */
const BATCH = 100;

export default async function seedInventory(ctx: SeedContext): Promise<void> {
  const out = JSON.parse(ctx.d1({ sql: "SELECT sku, available FROM product_variants ORDER BY sku" })) as {
    results: { sku: string; available: number }[];
  }[];
  const rows = out.flatMap((r) => r.results);
  if (rows.length === 0) {
    ctx.log("inventory: no SKUs in the catalog yet; nothing to stock");
    return;
  }
  const token = await ctx.adminToken();
  let units = 0;
  for (let i = 0; i < rows.length; i += BATCH) {
    const items = rows.slice(i, i + BATCH).map((r) => ({ sku: r.sku, onHand: Math.max(0, r.available) }));
    const res = await ctx.api("/v1/admin/inventory", {
      method: "PUT",
      token,
      json: { items, onlyIfUnstocked: true },
    });
    if (!res.ok) throw new Error(`inventory seed failed: HTTP ${res.status} ${await res.text()}`);
    const body = (await res.json()) as { items: { onHand: number }[] };
    units += body.items.reduce((sum, l) => sum + l.onHand, 0);
  }
  ctx.log(`inventory: ${rows.length} SKU(s), ${units} units on hand (stock set earlier is left unchanged)`);
}
