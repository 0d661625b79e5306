import { beforeAll, describe, expect, it } from "vitest";
import { type ProductDetail, ProductList } from "../contracts/catalog";
import { adminClient } from "./catalog-fixtures";
import { call, expectProblem } from "./helpers";

let laptop: ProductDetail;

beforeAll(async () => {
  const admin = await adminClient();
  await admin.category("electronics", "Electronics");
  laptop = await admin.product({
    name: "Travel Laptop",
    description: "near silent fan",
    price: { amount: 99900, currency: "USD" },
  });
  await admin.product({ name: "Kettle", description: "boils water" });
});

/** GET `path` answers 400 problem+json, naming `field` among its errors when given. */
async function expectBadRequest(path: string, field?: string) {
  const body = await expectProblem(await call(path), 400, path);
  if (field) expect(body.errors?.map((e) => e.path)).toContain(field);
}

describe("search text that is FTS5 syntax is only ever text", () => {
  const hostile = [
    '"',
    '"laptop',
    'laptop"',
    '""""',
    "*",
    "lap*",
    "*lap",
    "NEAR",
    "NEAR(laptop fan)",
    "laptop NEAR/2 fan",
    "-laptop",
    "laptop -kettle",
    "laptop OR kettle",
    "OR",
    "AND",
    "NOT laptop",
    "laptop AND",
    "name:laptop",
    "{name description}: laptop",
    "^laptop",
    "(laptop",
    "laptop)",
    "+laptop",
    "'; DROP TABLE products; --",
    "\u0000laptop",
    "ラップトップ",
    "laptop".repeat(33), // 198 characters: accepted, one long word
    "a ".repeat(100), // 200 characters: many terms
  ];
  for (const q of hostile) {
    it(`q=${JSON.stringify(q).slice(0, 40)} answers 200 with results or none`, async () => {
      const res = await call(`/v1/products?q=${encodeURIComponent(q)}`);
      expect(res.status).toBe(200);
      const page = ProductList.parse(await res.json());
      expect(Array.isArray(page.items)).toBe(true);
    });
  }

  it("the words inside operators and quotes still search", async () => {
    for (const q of ['"laptop', "NEAR(laptop fan)", "-laptop", "laptop*", "(laptop"]) {
      const page = ProductList.parse(await (await call(`/v1/products?q=${encodeURIComponent(q)}`)).json());
      expect(
        page.items.map((p) => p.id),
        q,
      ).toContain(laptop.id);
    }
    // OR is a word, not an operator: "laptop OR kettle" needs a word starting with "or" too.
    const or = ProductList.parse(await (await call("/v1/products?q=laptop%20OR%20kettle")).json());
    expect(or.items).toEqual([]);
  });

  it("very long search text is a 400, not a slow or failing query", async () => {
    await expectBadRequest(`/v1/products?q=${"x".repeat(201)}`, "q");
    await expectBadRequest(`/v1/products?q=${encodeURIComponent('"NEAR('.repeat(2000))}`, "q");
  });

  it("the catalog is intact afterwards", async () => {
    const page = ProductList.parse(await (await call("/v1/products")).json());
    expect(page.total).toBe(2);
  });
});

describe("bad paging and filter parameters are 400 problem+json", () => {
  it("rejects malformed and foreign cursors", async () => {
    for (const cursor of [
      "garbage",
      "!!!",
      "%00",
      btoa("[1]"),
      btoa('[1,"newest","x","y","z"]'),
      btoa("null"),
      "A".repeat(600),
    ]) {
      await expectBadRequest(`/v1/products?cursor=${encodeURIComponent(cursor)}`, "cursor");
    }
    await expectBadRequest("/v1/products?cursor=");
  });

  it("rejects negative, zero, fractional, non-numeric and huge limits", async () => {
    for (const limit of ["-1", "0", "101", "1e3", "2.5", "abc", "99999999999999999999", ""]) {
      await expectBadRequest(`/v1/products?limit=${limit}`, "limit");
    }
    const max = await call("/v1/products?limit=100");
    expect(max.status).toBe(200);
  });

  it("rejects inverted, negative and non-numeric price ranges", async () => {
    await expectBadRequest("/v1/products?minPrice=5000&maxPrice=100", "maxPrice");
    await expectBadRequest("/v1/products?minPrice=-1", "minPrice");
    await expectBadRequest("/v1/products?maxPrice=cheap", "maxPrice");
    await expectBadRequest("/v1/products?minPrice=1.5", "minPrice");
    expect((await call("/v1/products?minPrice=100&maxPrice=100")).status).toBe(200);
  });

  it("rejects unknown sorts, bad inStock values and bad ids", async () => {
    await expectBadRequest("/v1/products?sort=cheapest", "sort");
    await expectBadRequest("/v1/products?inStock=yes", "inStock");
    await expectBadRequest(`/v1/products/${encodeURIComponent("x'; --")}`, "id");
    const missing = await call("/v1/products/prd_doesnotexist");
    expect(missing.status).toBe(404);
    expect(missing.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  });
});
