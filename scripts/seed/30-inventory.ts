// Demo stock: gives every catalog SKU units on hand through the admin API (after 20-catalog), using
// the demo catalog's own stock figures so catalog availability and inventory agree from the start.
// Idempotent: `onlyIfUnstocked` leaves SKUs alone whose stock was ever set, so a restart never
// resets stock that shoppers have since reserved or bought.
import { expectOk } from "../api-client.ts";
import type { PrestartContext, SeedContext } from "../local.ts";

/** The batch route's maximum; each batch fans out to one InventoryObject per SKU in parallel. */
const BATCH = 100;
/** Batches in flight at once. */
const PARALLEL = 3;

/** SKUs without stock, read before the Worker starts (the seed itself then talks to the API only). */
let unstocked: { sku: string; available: number }[] = [];

export async function beforeStart(pre: PrestartContext): Promise<void> {
  // A SKU with a row in the inventory projection has emitted a stock event, so it was stocked
  // already: skipping it keeps restarts from waking ~2,000 objects just to hear "already set".
  // (A SKU whose event was still in flight is simply asked again; `onlyIfUnstocked` makes that safe.)
  const out = JSON.parse(
    await pre.d1({
      sql: `SELECT v.sku, v.available FROM product_variants v
            LEFT JOIN inventory_projection p ON p.sku = v.sku
            WHERE p.sku IS NULL ORDER BY v.sku`,
    }),
  ) as { results: { sku: string; available: number }[] }[];
  unstocked = out.flatMap((r) => r.results);
}

export default async function seedInventory(ctx: SeedContext): Promise<void> {
  const rows = unstocked;
  if (rows.length === 0) {
    ctx.log("inventory: every catalog SKU is stocked already");
    return;
  }
  const admin = ctx.api(await ctx.adminToken());
  const batches: { sku: string; onHand: number }[][] = [];
  for (let i = 0; i < rows.length; i += BATCH) {
    batches.push(rows.slice(i, i + BATCH).map((r) => ({ sku: r.sku, onHand: Math.max(0, r.available) })));
  }
  let units = 0;
  let next = 0;
  const worker = async () => {
    while (next < batches.length) {
      const items = batches[next++]!;
      const body = await expectOk(
        "inventory seed",
        admin.PUT("/v1/admin/inventory", { body: { items, onlyIfUnstocked: true } }),
      );
      units += body.items.reduce((sum, l) => sum + l.onHand, 0);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
  ctx.log(`inventory: ${rows.length} SKU(s) checked, ${units} units on hand among them (earlier stock unchanged)`);
}
