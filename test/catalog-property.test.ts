import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { type ProductDetail, ProductList } from "../contracts/catalog";
import { adminClient } from "./catalog-fixtures";
import { call } from "./helpers";

// Random query strings and admin bodies: whatever arrives, the catalog answers 2xx or a 4xx
// problem+json, never a 5xx (an FTS5 or SQL error would surface as one), and a failed write
// changes nothing.
const RUNS = 150;

let admin: Awaited<ReturnType<typeof adminClient>>;
let product: ProductDetail;
let validCursor: string;

beforeAll(async () => {
  admin = await adminClient();
  await admin.category("gear", "Gear");
  for (let i = 0; i < 3; i++) {
    product = await admin.product({ name: `Trail Lantern ${i}`, description: 'bright "NEAR" light', category: "gear" });
  }
  validCursor = ProductList.parse(await (await call("/v1/products?limit=1")).json()).nextCursor ?? "";
});

/** Text that leans on FTS5's syntax characters and keywords, plus arbitrary unicode. */
const ftsish = fc.oneof(
  fc.string({ unit: "grapheme", maxLength: 60 }),
  fc
    .array(
      fc.constantFrom(
        '"',
        "*",
        "-",
        "+",
        "^",
        ":",
        "(",
        ")",
        "{",
        "}",
        "NEAR",
        "NEAR/3",
        "OR",
        "AND",
        "NOT",
        "lantern",
        "tr",
        " ",
        "'",
        ";",
        "\\",
      ),
      {
        maxLength: 20,
      },
    )
    .map((parts) => parts.join("")),
  fc.string({ unit: "binary", maxLength: 300 }),
);
const numberish = fc.oneof(
  fc.integer().map(String),
  fc.double().map(String),
  fc.string({ maxLength: 8 }),
  fc.constant(""),
);
const cursorish = fc.oneof(
  fc.base64String({ maxLength: 120 }),
  fc.string({ maxLength: 60 }),
  fc
    .jsonValue()
    .map((v) => btoa(String.fromCharCode(...new TextEncoder().encode(JSON.stringify(v)))).replaceAll("=", "")),
  fc.constant("VALID"),
);

const queries = fc.record(
  {
    q: ftsish,
    category: fc.oneof(fc.constant("gear"), fc.string({ maxLength: 70 })),
    minPrice: numberish,
    maxPrice: numberish,
    inStock: fc.oneof(fc.constantFrom("true", "false"), fc.string({ maxLength: 5 })),
    sort: fc.oneof(fc.constantFrom("relevance", "price_asc", "price_desc", "newest"), fc.string({ maxLength: 10 })),
    limit: numberish,
    cursor: cursorish,
  },
  { requiredKeys: [] },
);

describe("the catalog never answers a 5xx", () => {
  it("to random search text: any text up to 200 characters is a valid search", async () => {
    const sorts = fc.constantFrom("relevance", "price_asc", "price_desc", "newest");
    await fc.assert(
      fc.asyncProperty(ftsish, sorts, async (q, sort) => {
        const res = await call(`/v1/products?${new URLSearchParams({ q: q.slice(0, 200), sort, category: "gear" })}`);
        expect(res.status).toBe(200);
        expect(Array.isArray(ProductList.parse(await res.json()).items)).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it("to random combinations of every search parameter", async () => {
    await fc.assert(
      fc.asyncProperty(queries, async (query) => {
        const params = new URLSearchParams();
        for (const [k, v] of Object.entries(query)) params.set(k, v === "VALID" ? validCursor : v);
        const res = await call(`/v1/products?${params}`);
        expect([200, 400]).toContain(res.status);
        if (res.status === 400) expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
        else expect(Array.isArray(ProductList.parse(await res.json()).items)).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it("to random admin bodies, and a rejected write changes nothing", async () => {
    const snapshot = async () => (await call(`/v1/admin/products/${product.id}`, { token: admin.token })).text();
    const body = fc.oneof(
      fc.jsonValue().map((v) => JSON.stringify(v)),
      fc
        .record(
          {
            name: fc.oneof(fc.string({ maxLength: 300 }), fc.integer()),
            price: fc.oneof(
              fc.record({ amount: fc.oneof(fc.integer(), fc.double()), currency: fc.string({ maxLength: 4 }) }),
              fc.jsonValue(),
            ),
            attributes: fc.jsonValue(),
            status: fc.string({ maxLength: 10 }),
            category: fc.string({ maxLength: 10 }),
            variants: fc.jsonValue(),
          },
          { requiredKeys: [] },
        )
        .map((o) => JSON.stringify(o)),
      fc.string({ unit: "binary", maxLength: 200 }),
    );
    let before = await snapshot();
    await fc.assert(
      fc.asyncProperty(body, async (raw) => {
        const res = await call(`/v1/admin/products/${product.id}`, {
          method: "PATCH",
          token: admin.token,
          body: raw,
          headers: { "Content-Type": "application/json" },
        });
        expect(res.status).toBeLessThan(500);
        if (res.status >= 400) {
          expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
          expect(await snapshot()).toBe(before);
        } else {
          before = await snapshot(); // a valid random patch is a legitimate change
        }
      }),
      { numRuns: 60 },
    );
  });
});
