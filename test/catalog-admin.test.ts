import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { ProductDetail } from "../contracts/catalog";
import { findSku } from "../domain/catalog/sku-lookup";
import { adminClient, productBody, search } from "./catalog-fixtures";
import { call, tokenFor } from "./helpers";

let admin: Awaited<ReturnType<typeof adminClient>>;
let existing: ProductDetail;

async function countRows(): Promise<{ products: number; variants: number; fts: number; categories: number }> {
  const row = await env.DB.prepare(
    `SELECT (SELECT count(*) FROM products) AS products, (SELECT count(*) FROM product_variants) AS variants,
            (SELECT count(*) FROM products_fts) AS fts, (SELECT count(*) FROM categories) AS categories`,
  ).first<{ products: number; variants: number; fts: number; categories: number }>();
  return row!;
}

beforeAll(async () => {
  admin = await adminClient();
  await admin.category("apparel", "Apparel");
  await admin.category("shoes", "Shoes", "apparel");
  existing = await admin.product({ sku: "RUN-1", name: "Trail Runner", category: "shoes" });
});

describe("only admins can change the catalog", () => {
  const routes = (id: string) =>
    [
      ["POST", "/v1/admin/products", productBody({ category: "shoes" })],
      ["POST", "/v1/admin/products", { nonsense: true }],
      ["GET", `/v1/admin/products/${id}`, undefined],
      ["PATCH", `/v1/admin/products/${id}`, { name: "Hijacked" }],
      ["PATCH", `/v1/admin/products/${id}`, { price: "free" }],
      ["DELETE", `/v1/admin/products/${id}`, undefined],
      ["POST", "/v1/admin/categories", { id: "evil", name: "Evil" }],
    ] as const;

  it("a customer gets 403 on every admin route and nothing is written", async () => {
    const customer = await tokenFor("shopper-1", ["customer"]);
    const service = await tokenFor("collector", ["service"]);
    const before = await countRows();
    for (const token of [customer, service]) {
      for (const [method, path, json] of routes(existing.id)) {
        const res = await call(path, { method, token, json });
        expect(res.status, `${method} ${path}`).toBe(403);
        expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
      }
    }
    expect(await countRows()).toEqual(before);
    const now = ProductDetail.parse(await (await call(`/v1/products/${existing.id}`, { token: customer })).json());
    expect(now.name).toBe("Trail Runner");
    expect(now.status).toBe("active");
  });

  it("admin writes are rate limited per admin (100/min) with 429 + Retry-After; reads are not", async () => {
    const busy = await tokenFor(`busy-admin-${crypto.randomUUID()}`, ["admin"]);
    // The limiter counts in clock-aligned windows; allow for the walk straddling one boundary.
    const statuses: number[] = [];
    let limited: Response | undefined;
    while (!limited && statuses.length < 201) {
      const res = await call("/v1/admin/products/prd_missing", { method: "DELETE", token: busy });
      if (res.status === 429) limited = res;
      else statuses.push(res.status);
    }
    expect(statuses.length).toBeGreaterThanOrEqual(100);
    expect(statuses.every((s) => s === 404)).toBe(true);
    if (!limited) throw new Error("no 429 after 200 writes");
    expect(Number(limited.headers.get("retry-after"))).toBeGreaterThan(0);
    expect((await call(`/v1/admin/products/${existing.id}`, { token: busy })).status).toBe(200);
  });

  it("no token is 401 with WWW-Authenticate", async () => {
    for (const [method, path, json] of routes(existing.id)) {
      const res = await call(path, { method, json });
      expect(res.status, `${method} ${path}`).toBe(401);
      expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
    }
  });
});

describe("admin product CRUD", () => {
  it("creates a product with variants, searchable at once, priced by findSku", async () => {
    const res = await call("/v1/admin/products", {
      method: "POST",
      token: admin.token,
      json: {
        sku: "TEE-BLK-M",
        name: "Merino Tee",
        description: "Soft wool t-shirt",
        category: "apparel",
        price: { amount: 4500, currency: "EUR" },
        attributes: { brand: "Woolly", sizes: ["M", "L"] },
        variants: [{ sku: "TEE-BLK-L", name: "Merino Tee L", attributes: { color: "charcoal" } }],
      },
    });
    expect(res.status).toBe(201);
    const product = ProductDetail.parse(await res.json());
    expect(res.headers.get("location")).toBe(`/v1/products/${product.id}`);
    expect(product).toMatchObject({ sku: "TEE-BLK-M", category: "apparel", price: { amount: 4500, currency: "EUR" } });
    expect(product.variants?.map((v) => [v.sku, v.price.amount])).toEqual([
      ["TEE-BLK-M", 4500],
      ["TEE-BLK-L", 4500],
    ]);
    // Variant attributes are searchable too.
    expect((await search({ q: "charcoal" })).items.map((p) => p.id)).toEqual([product.id]);
    expect((await search({ q: "woolly" })).items.map((p) => p.id)).toEqual([product.id]);
    expect(await findSku(env, "TEE-BLK-L")).toMatchObject({
      productId: product.id,
      unitPrice: { amount: 4500, currency: "EUR" },
    });
  });

  it("keeps drafts out of public reads but shows them to admins", async () => {
    const draft = await admin.product({ name: "Secret Sneaker", category: "shoes", status: "draft" });
    expect((await call(`/v1/products/${draft.id}`)).status).toBe(404);
    expect((await search({ q: "secret" })).items).toEqual([]);
    const adminView = await call(`/v1/admin/products/${draft.id}`, { token: admin.token });
    expect(adminView.status).toBe(200);
    expect(adminView.headers.get("cache-control")).toBe("private, no-store");
    const published = await call(`/v1/admin/products/${draft.id}`, {
      method: "PATCH",
      token: admin.token,
      json: { status: "active" },
    });
    expect(published.status).toBe(200);
    expect((await search({ q: "secret" })).items.map((p) => p.id)).toEqual([draft.id]);
  });

  it("rejects invalid bodies with 400 errors[] and writes nothing", async () => {
    const before = await countRows();
    const bad: [Record<string, unknown>, string][] = [
      [productBody({ category: "shoes", name: undefined }), "name"],
      [productBody({ category: "shoes", price: { amount: -1, currency: "USD" } }), "price.amount"],
      [productBody({ category: "shoes", price: { amount: 9.99, currency: "USD" } }), "price.amount"],
      [productBody({ category: "shoes", price: { amount: 999, currency: "dollars" } }), "price.currency"],
      [productBody({ category: "shoes", colour: "red" }), "(root)"],
      [productBody({ category: "shoes", status: "deleted" }), "status"],
      [productBody({ category: "shoes", sku: "has space" }), "sku"],
      [productBody({ category: "shoes", attributes: { nested: { deep: true } } }), "attributes.nested"],
      [productBody({ category: "no-such-category" }), "category"],
      [productBody({ category: "shoes", sku: "DUP-1", variants: [{ sku: "DUP-1", name: "Twin" }] }), "variants"],
    ];
    for (const [json, path] of bad) {
      const res = await call("/v1/admin/products", { method: "POST", token: admin.token, json });
      expect(res.status, JSON.stringify(json)).toBe(400);
      const body = (await res.json()) as { errors: { path: string }[] };
      expect(
        body.errors.map((e) => e.path),
        JSON.stringify(json),
      ).toContain(path);
    }
    const patch = await call(`/v1/admin/products/${existing.id}`, { method: "PATCH", token: admin.token, json: {} });
    expect(patch.status).toBe(400);
    expect(await countRows()).toEqual(before);
  });

  it("answers a SKU clash with 409 and writes nothing", async () => {
    const before = await countRows();
    const primary = await call("/v1/admin/products", {
      method: "POST",
      token: admin.token,
      json: productBody({ sku: "RUN-1", category: "shoes" }),
    });
    expect(primary.status).toBe(409);
    const variant = await call("/v1/admin/products", {
      method: "POST",
      token: admin.token,
      json: productBody({ category: "shoes", variants: [{ sku: "TEE-BLK-L", name: "Stolen" }] }),
    });
    expect(variant.status).toBe(409);
    const viaPatch = await call(`/v1/admin/products/${existing.id}`, {
      method: "PATCH",
      token: admin.token,
      json: { variants: [{ sku: "TEE-BLK-M", name: "Stolen" }] },
    });
    expect(viaPatch.status).toBe(409);
    expect(await countRows()).toEqual(before);
    expect(await findSku(env, "TEE-BLK-M")).toMatchObject({ name: "Merino Tee" });
  });

  it("PATCH keeps the search index in step: the old name stops matching, the new one matches", async () => {
    const product = await admin.product({
      name: "Alpine Parka",
      category: "apparel",
      price: { amount: 20000, currency: "USD" },
    });
    const res = await call(`/v1/admin/products/${product.id}`, {
      method: "PATCH",
      token: admin.token,
      json: {
        name: "Glacier Anorak",
        price: { amount: 15000, currency: "USD" },
        variants: [{ sku: `${product.sku}-XL`, name: "Glacier Anorak XL", attributes: { size: "XL" } }],
      },
    });
    expect(res.status).toBe(200);
    const updated = ProductDetail.parse(await res.json());
    expect(updated.updatedAt > product.updatedAt).toBe(true);
    expect(updated.createdAt).toBe(product.createdAt);
    expect(updated.variants?.map((v) => [v.sku, v.name, v.price.amount])).toEqual([
      [product.sku, "Glacier Anorak", 15000],
      [`${product.sku}-XL`, "Glacier Anorak XL", 15000],
    ]);
    expect((await search({ q: "parka" })).items).toEqual([]);
    expect((await search({ q: "glacier" })).items.map((p) => p.id)).toEqual([product.id]);
    expect((await search({ q: "anorak", maxPrice: 15000 })).items.map((p) => p.id)).toEqual([product.id]);
    expect((await search({ q: "anorak", minPrice: 15001 })).items).toEqual([]);
    const primaryAsVariant = await call(`/v1/admin/products/${product.id}`, {
      method: "PATCH",
      token: admin.token,
      json: { variants: [{ sku: product.sku, name: "x" }] },
    });
    expect(primaryAsVariant.status).toBe(400);
    expect(
      (await call("/v1/admin/products/prd_missing", { method: "PATCH", token: admin.token, json: { name: "x" } }))
        .status,
    ).toBe(404);
  });

  it("If-Match guards a PATCH: the current ETag passes, a stale one is 412 and writes nothing", async () => {
    const product = await admin.product({ name: "Canvas Tote", category: "apparel" });
    const read = await call(`/v1/admin/products/${product.id}`, { token: admin.token });
    const etag = read.headers.get("etag")!;
    expect((await call(`/v1/products/${product.id}`)).headers.get("etag")).toBe(etag);
    const first = await call(`/v1/admin/products/${product.id}`, {
      method: "PATCH",
      token: admin.token,
      headers: { "If-Match": etag },
      json: { description: "Waxed canvas" },
    });
    expect(first.status).toBe(200);
    const stale = await call(`/v1/admin/products/${product.id}`, {
      method: "PATCH",
      token: admin.token,
      headers: { "If-Match": etag },
      json: { description: "Overwritten" },
    });
    expect(stale.status).toBe(412);
    expect(stale.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    const now = (await (await call(`/v1/admin/products/${product.id}`, { token: admin.token })).json()) as {
      description: string;
    };
    expect(now.description).toBe("Waxed canvas");
  });

  it("concurrent PATCHes of one product never lose an update", async () => {
    for (let round = 0; round < 3; round++) {
      const product = await admin.product({ name: `Race Cap ${round}`, category: "apparel" });
      const [a, b] = await Promise.all([
        call(`/v1/admin/products/${product.id}`, {
          method: "PATCH",
          token: admin.token,
          json: { description: `desc ${round}` },
        }),
        call(`/v1/admin/products/${product.id}`, {
          method: "PATCH",
          token: admin.token,
          json: { price: { amount: 777 + round, currency: "USD" } },
        }),
      ]);
      expect([200, 409]).toContain(a.status);
      expect([200, 409]).toContain(b.status);
      const final = (await (await call(`/v1/admin/products/${product.id}`, { token: admin.token })).json()) as {
        description: string;
        price: { amount: number };
      };
      // Each change that was acknowledged with 200 is in the final state; a 409 one is not.
      expect(final.description === `desc ${round}`).toBe(a.status === 200);
      expect(final.price.amount === 777 + round).toBe(b.status === 200);
    }
  });

  it("DELETE archives: gone from search and lists, still readable by id for orders", async () => {
    const product = await admin.product({ name: "Retired Boot", category: "shoes" });
    const del = await call(`/v1/admin/products/${product.id}`, { method: "DELETE", token: admin.token });
    expect(del.status).toBe(204);
    expect((await search({ q: "retired" })).items).toEqual([]);
    expect((await search({ category: "shoes", limit: 100 })).items.map((p) => p.id)).not.toContain(product.id);
    const byId = await call(`/v1/products/${product.id}`);
    expect(byId.status).toBe(200);
    expect(ProductDetail.parse(await byId.json()).status).toBe("archived");
    expect(await findSku(env, product.sku)).toMatchObject({ status: "archived" });
    expect((await call(`/v1/admin/products/${product.id}`, { method: "DELETE", token: admin.token })).status).toBe(204);
    expect((await call("/v1/admin/products/prd_missing", { method: "DELETE", token: admin.token })).status).toBe(404);
  });

  it("categories: created under a parent, listed parents first; bad parent 400, duplicate 409", async () => {
    const res = await call("/v1/admin/categories", {
      method: "POST",
      token: admin.token,
      json: { id: "sandals", name: "Sandals", parentId: "shoes" },
    });
    expect(res.status).toBe(201);
    const list = (await (await call("/v1/categories")).json()) as { items: { id: string; parentId: string | null }[] };
    const order = list.items.map((c) => c.id);
    expect(order.indexOf("apparel")).toBeLessThan(order.indexOf("shoes"));
    expect(order.indexOf("shoes")).toBeLessThan(order.indexOf("sandals"));
    expect(list.items.find((c) => c.id === "sandals")).toEqual({ id: "sandals", name: "Sandals", parentId: "shoes" });
    expect(
      (
        await call("/v1/admin/categories", {
          method: "POST",
          token: admin.token,
          json: { id: "x", name: "X", parentId: "nope" },
        })
      ).status,
    ).toBe(400);
    expect(
      (
        await call("/v1/admin/categories", {
          method: "POST",
          token: admin.token,
          json: { id: "sandals", name: "Again" },
        })
      ).status,
    ).toBe(409);
  });
});
