import { beforeAll, describe, expect, it } from "vitest";
import { ProductDetail } from "../contracts/catalog";
import { adminClient, search } from "./catalog-fixtures";
import { call } from "./helpers";

// Cursor pagination must stay correct while the catalog changes between pages: every product
// that existed before the walk is seen exactly once, and nothing is ever seen twice.

let admin: Awaited<ReturnType<typeof adminClient>>;
const widgets: ProductDetail[] = [];
let inserted = 0;

/** A widget whose description length (and so its bm25 score) and price vary with `n`. */
const widget = (n: number, extra: Record<string, unknown> = {}) =>
  admin.product({
    name: `Gizmo widget ${n}`,
    description: `${"sturdy ".repeat(n % 7)}part`,
    category: "parts",
    // Pairs of equal prices, so the id tie-breaker is exercised.
    price: { amount: 1000 + Math.floor(n / 2) * 100, currency: "USD" },
    ...extra,
  });

beforeAll(async () => {
  admin = await adminClient();
  await admin.category("parts", "Parts");
  for (let n = 0; n < 24; n++) widgets.push(await widget(n));
  // Non-matching products keep "widget" in a minority of documents, so its IDF is meaningful
  // and moves noticeably when more widgets arrive mid-walk.
  for (let n = 0; n < 30; n++) await admin.product({ name: `Filler ${n}`, category: "parts" });
});

async function walk(
  query: Record<string, string | number>,
  betweenPages: (page: number) => Promise<void>,
): Promise<{ seen: string[]; pages: number }> {
  const seen: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const page = await search({ ...query, limit: 5, ...(cursor ? { cursor } : {}) });
    seen.push(...page.items.map((p) => p.id));
    cursor = page.nextCursor;
    pages++;
    if (cursor) await betweenPages(pages);
  } while (cursor && pages < 50);
  return { seen, pages };
}

function expectEachOnce(seen: string[], expected: ProductDetail[]) {
  expect(new Set(seen).size).toBe(seen.length);
  for (const product of expected) expect(seen.filter((id) => id === product.id)).toHaveLength(1);
}

describe("cursor pagination while the catalog changes", () => {
  it("relevance: inserts that shift every bm25 score neither repeat nor skip items", async () => {
    const before = await search({ q: "widget", limit: 100 });
    expect(before.total).toBe(24);
    const { seen, pages } = await walk({ q: "widget" }, async () => {
      for (let i = 0; i < 3; i++) await widget(100 + inserted++);
    });
    expect(pages).toBeGreaterThan(4);
    expectEachOnce(seen, widgets);
    // The walk saw the ranking in order: scores never improve from one item to the next.
    const ranks = (await search({ q: "widget", limit: 100 })).items.map((p) => p.id);
    const originalOrder = ranks.filter((id) => widgets.some((w) => w.id === id));
    expect(seen.filter((id) => widgets.some((w) => w.id === id))).toEqual(originalOrder);
  });

  it("price_asc: cheaper and dearer inserts mid-walk; equal prices tie-break on id", async () => {
    const { seen } = await walk({ category: "parts", q: "gizmo", sort: "price_asc" }, async (page) => {
      await widget(0); // cheapest: sorts before the cursor, never shows up
      await widget(60 + page); // dearest: still ahead of the cursor, shows up once
    });
    expectEachOnce(seen, widgets);
    const prices = await Promise.all(
      seen.map(async (id) => ProductDetail.parse(await (await call(`/v1/products/${id}`)).json()).price.amount),
    );
    expect(prices).toEqual([...prices].sort((a, b) => a - b));
  });

  it("price_desc and newest: a product archived mid-walk does not derail the cursor", async () => {
    const { seen } = await walk({ q: "widget", sort: "price_desc" }, async (page) => {
      if (page === 2) {
        const res = await call(`/v1/admin/products/${widgets[10]!.id}`, { method: "DELETE", token: admin.token });
        expect(res.status).toBe(204);
      }
    });
    expectEachOnce(
      seen,
      widgets.filter((_, i) => i < 8 || i > 12),
    );
    const newest = await walk({ q: "widget", sort: "newest" }, async () => {
      await widget(200 + inserted++);
    });
    expectEachOnce(
      newest.seen,
      widgets.filter((_, i) => i !== 10),
    );
  });

  it("a cursor only continues the query it came from", async () => {
    const first = await search({ q: "widget", sort: "price_asc", limit: 2 });
    expect(first.nextCursor).toBeTruthy();
    for (const other of ["sort=price_desc&q=widget", "sort=price_asc&q=gizmo", "sort=price_asc&q=widget&minPrice=1"]) {
      const res = await call(`/v1/products?${other}&cursor=${first.nextCursor}`);
      expect(res.status).toBe(400);
      expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    }
  });
});
