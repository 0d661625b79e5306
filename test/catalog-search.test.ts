import { beforeAll, describe, expect, it } from "vitest";
import type { ProductDetail } from "../contracts/catalog";
import { adminClient, categoryTree, search } from "./catalog-fixtures";
import { call } from "./helpers";

let admin: Awaited<ReturnType<typeof adminClient>>;
const made: Record<string, ProductDetail> = {};

beforeAll(async () => {
  admin = await adminClient();
  await categoryTree(admin);
  made.laptopPro = await admin.product({
    name: "UltraBook Pro Laptop 14",
    description: "A thin and light laptop with a bright display",
    category: "laptops",
    price: { amount: 149900, currency: "USD" },
    attributes: { brand: "Acme", color: "silver" },
  });
  made.laptopBag = await admin.product({
    name: "Commuter Backpack",
    description: "Padded sleeve fits a 15 inch laptop",
    category: "electronics",
    price: { amount: 5900, currency: "USD" },
    attributes: { brand: "Trekko", color: "black" },
  });
  made.headphones = await admin.product({
    name: "Studio Headphones",
    description: "Closed-back monitoring headphones",
    category: "audio",
    price: { amount: 12900, currency: "USD" },
    attributes: { brand: "Acme", color: "black" },
  });
  made.kettle = await admin.product({
    name: "Electric Kettle",
    description: "1.7 litre stainless steel kettle",
    category: "kitchen",
    price: { amount: 3900, currency: "USD" },
    attributes: { brand: "Hearth", material: "steel" },
  });
  made.desktop = await admin.product({
    name: "Tower Desktop",
    description: "Quiet desktop computer",
    category: "computers",
    price: { amount: 89900, currency: "USD" },
    attributes: { brand: "Acme", color: "black" },
  });
});

const ids = (page: { items: { id: string }[] }) => page.items.map((p) => p.id);

describe("full-text search", () => {
  it("matches word prefixes, autocomplete style", async () => {
    const page = await search({ q: "lap" });
    expect(ids(page)).toContain(made.laptopPro!.id);
    expect(ids(page)).toContain(made.laptopBag!.id);
    expect(ids(page)).not.toContain(made.kettle!.id);
  });

  it("ranks a name hit above a description hit (bm25 with column weights)", async () => {
    const page = await search({ q: "laptop" });
    expect(ids(page)).toEqual([made.laptopPro!.id, made.laptopBag!.id]);
  });

  it("searches attribute values and ANDs the words", async () => {
    expect(ids(await search({ q: "silver" }))).toEqual([made.laptopPro!.id]);
    const both = await search({ q: "acme black", sort: "price_asc" });
    expect(ids(both)).toEqual([made.headphones!.id, made.desktop!.id]);
  });

  it("stems, so a plural finds the singular", async () => {
    expect(ids(await search({ q: "kettles" }))).toEqual([made.kettle!.id]);
  });

  it("returns the Product shape of API.md", async () => {
    const [item] = (await search({ q: "kettle" })).items;
    expect(item).toMatchObject({
      id: made.kettle!.id,
      sku: made.kettle!.sku,
      name: "Electric Kettle",
      description: "1.7 litre stainless steel kettle",
      category: "kitchen",
      price: { amount: 3900, currency: "USD" },
      attributes: { brand: "Hearth", material: "steel" },
      available: 0,
    });
    expect(Date.parse(item!.createdAt)).not.toBeNaN();
    expect(Date.parse(item!.updatedAt)).not.toBeNaN();
  });
});

describe("filters, sorts and facets", () => {
  it("filters by category including all descendants", async () => {
    const page = await search({ category: "computers", sort: "price_asc" });
    expect(ids(page)).toEqual([made.desktop!.id, made.laptopPro!.id]);
    const electronics = await search({ category: "electronics" });
    expect(electronics.total).toBe(4);
    expect(ids(electronics)).not.toContain(made.kettle!.id);
  });

  it("filters by an inclusive price range", async () => {
    const page = await search({ minPrice: 5900, maxPrice: 12900, sort: "price_asc" });
    expect(ids(page)).toEqual([made.laptopBag!.id, made.headphones!.id]);
  });

  it("sorts by price both ways and by newest", async () => {
    const asc = (await search({ sort: "price_asc" })).items.map((p) => p.price.amount);
    expect(asc).toEqual([...asc].sort((a, b) => a - b));
    const desc = (await search({ sort: "price_desc" })).items.map((p) => p.price.amount);
    expect(desc).toEqual([...asc].reverse());
    const newest = await search({ sort: "newest" });
    expect(newest.items[0]!.id).toBe(made.desktop!.id);
    expect(newest.items.at(-1)!.id).toBe(made.laptopPro!.id);
  });

  it("computes category counts and the price range for the current filter", async () => {
    const page = await search({ q: "acme" });
    expect(page.total).toBe(3);
    expect(page.facets.price).toEqual({ min: 12900, max: 149900 });
    expect(page.facets.categories).toEqual(
      expect.arrayContaining([
        { value: "laptops", name: "Laptops", count: 1 },
        { value: "audio", name: "Audio", count: 1 },
        { value: "computers", name: "Computers", count: 1 },
      ]),
    );
    expect(page.facets.categories).toHaveLength(3);
    const none = await search({ q: "zzzznothing" });
    expect(none).toMatchObject({
      items: [],
      nextCursor: null,
      total: 0,
      facets: { categories: [], price: { min: null, max: null } },
    });
  });
});

describe("documentation", () => {
  it("lists every catalog route in /v1/openapi.json", async () => {
    const res = await call("/v1/openapi.json");
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths["/v1/products"] ?? {})).toEqual(["get"]);
    expect(Object.keys(doc.paths["/v1/products/{id}"] ?? {})).toEqual(["get"]);
    expect(Object.keys(doc.paths["/v1/categories"] ?? {})).toEqual(["get"]);
    expect(Object.keys(doc.paths["/v1/admin/products"] ?? {})).toEqual(["post"]);
    expect(Object.keys(doc.paths["/v1/admin/products/{id}"] ?? {}).sort()).toEqual(["delete", "get", "patch"]);
    expect(Object.keys(doc.paths["/v1/admin/categories"] ?? {})).toEqual(["post"]);
  });
});
