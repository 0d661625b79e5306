// Demo stock: gives every catalog SKU units on hand through the admin API (after 20-catalog).
// Idempotent: `onlyIfUnstocked` leaves SKUs alone whose stock was ever set, so a restart never
// resets stock that shoppers have since reserved or bought.
import type { SeedContext } from "../local.ts";

const BATCH = 100;

/** Deterministic demo quantity per SKU: mostly 20–219, every 7th SKU low (3–8) to show low stock. */
function demoOnHand(sku: string, index: number): number {
  let h = 2166136261;
  for (const ch of sku) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  return index % 7 === 6 ? 3 + (h % 6) : 20 + (h % 200);
}

export default async function seedInventory(ctx: SeedContext): Promise<void> {
  const out = JSON.parse(ctx.d1({ sql: "SELECT sku FROM product_variants ORDER BY sku" })) as {
    results: { sku: string }[];
  }[];
  const skus = out.flatMap((r) => r.results.map((row) => row.sku));
  if (skus.length === 0) {
    ctx.log("inventory: no SKUs in the catalog yet; nothing to stock");
    return;
  }
  const token = await ctx.adminToken();
  let stocked = 0;
  for (let i = 0; i < skus.length; i += BATCH) {
    const items = skus.slice(i, i + BATCH).map((sku, n) => ({ sku, onHand: demoOnHand(sku, i + n) }));
    const res = await ctx.api("/v1/admin/inventory", {
      method: "PUT",
      token,
      json: { items, onlyIfUnstocked: true },
    });
    if (!res.ok) throw new Error(`inventory seed failed: HTTP ${res.status} ${await res.text()}`);
    const body = (await res.json()) as { items: { onHand: number }[] };
    stocked += body.items.length;
  }
  ctx.log(`inventory: ${stocked} SKU(s) stocked (existing stock left unchanged)`);
}
