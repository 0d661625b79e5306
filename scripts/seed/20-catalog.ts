// Demo catalog for `npm start`: 1,200 generated products (about 2,000 SKUs) across a three-level
// category tree, written before the Worker starts. Deterministic and idempotent: stable ids +
// INSERT OR IGNORE, so restarts add nothing.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { catalogSql, generateProducts } from "../catalog-generator.ts";
import type { PrestartContext, SeedContext } from "../local.ts";

export const DEMO_PRODUCT_COUNT = 1_200;

export async function beforeStart(pre: PrestartContext): Promise<void> {
  const products = generateProducts(DEMO_PRODUCT_COUNT);
  // One file, one wrangler invocation: far faster than 1,200 admin API calls, and it does not
  // spend the demo admin's write rate limit.
  const dir = mkdtempSync(path.join(tmpdir(), "edgepulse-catalog-"));
  try {
    const file = path.join(dir, "catalog.sql");
    writeFileSync(file, catalogSql(products).join("\n"));
    await pre.d1({ file });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export default async function seedCatalog(ctx: SeedContext): Promise<void> {
  const { data, response } = await ctx.api().GET("/v1/products", { params: { query: { limit: 1 } } });
  const total = data ? data.total : `HTTP ${response.status}`;
  ctx.log(`catalog: ${total} active products (demo catalog of ${DEMO_PRODUCT_COUNT} loaded)`);
}
