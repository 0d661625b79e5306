import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { ProductDetail, ProductList, ProductQuery } from "../contracts/catalog";
import { projectAvailability } from "../domain/catalog/availability";
import { searchProducts } from "../domain/catalog/search";
import { forgetMemoryCache } from "../workers/edge-cache";
import { adminClient } from "./catalog-fixtures";
import { call } from "./helpers";

let admin: Awaited<ReturnType<typeof adminClient>>;
let lamp: ProductDetail;

beforeAll(async () => {
  admin = await adminClient();
  await admin.category("lighting", "Lighting");
  lamp = await admin.product({
    sku: "LAMP-1",
    name: "Desk Lamp",
    category: "lighting",
    variants: [{ sku: "LAMP-1-BRASS", name: "Desk Lamp Brass" }],
  });
});

describe("ETag and the edge cache", () => {
  it("an anonymous product read is cached and revalidates to 304", async () => {
    const first = await call(`/v1/products/${lamp.id}`);
    expect(first.status).toBe(200);
    const etag = first.headers.get("etag");
    expect(etag).toMatch(/^"[\w-]+"$/);
    expect(first.headers.get("cache-control")).toBe("public, max-age=0, must-revalidate");
    expect(first.headers.get("x-edge-cache")).toBe("MISS");
    expect(first.headers.get("server-timing")).toMatch(/^catalog;dur=\d+(\.\d)?$/);
    const body = await first.text();

    const second = await call(`/v1/products/${lamp.id}`);
    expect(second.headers.get("x-edge-cache")).toBe("HIT");
    expect(second.headers.get("etag")).toBe(etag);
    expect(await second.text()).toBe(body);

    for (const ifNoneMatch of [etag!, `W/${etag}`, `"other", ${etag}`, "*"]) {
      const revalidated = await call(`/v1/products/${lamp.id}`, { headers: { "If-None-Match": ifNoneMatch } });
      expect(revalidated.status, ifNoneMatch).toBe(304);
      expect(revalidated.headers.get("etag")).toBe(etag);
      expect(await revalidated.text()).toBe("");
    }
    const stale = await call(`/v1/products/${lamp.id}`, { headers: { "If-None-Match": '"something-else"' } });
    expect(stale.status).toBe(200);
  });

  it("has two levels: isolate memory first, then the Cache API shared by a location's isolates", async () => {
    const path = "/v1/products?category=lighting&limit=7";
    expect((await call(path)).headers.get("x-edge-cache")).toBe("MISS");
    const memoryHit = await call(path);
    expect(memoryHit.headers.get("x-edge-cache")).toBe("HIT");
    expect(memoryHit.headers.get("server-timing")).toBe('cache;desc="memory"');
    // As if another isolate served the next request: once the miss's put has landed (it is written
    // after the response), the Cache API level answers.
    let edgeHit = new Response();
    await expect
      .poll(async () => {
        forgetMemoryCache();
        edgeHit = await call(path);
        return edgeHit.headers.get("server-timing");
      })
      .toBe('cache;desc="edge"');
    expect(edgeHit.headers.get("x-edge-cache")).toBe("HIT");
    expect(edgeHit.headers.get("etag")).toBe(memoryHit.headers.get("etag"));
    expect(await edgeHit.text()).toBe(await memoryHit.text());
    expect((await call(path)).headers.get("server-timing")).toBe('cache;desc="memory"');
  });

  it("lists are cached too, with parameter order not mattering; authenticated reads share the entries, privately", async () => {
    const a = await call("/v1/products?category=lighting&sort=price_asc");
    expect(a.headers.get("x-edge-cache")).toBe("MISS");
    const b = await call("/v1/products?sort=price_asc&category=lighting");
    expect(b.headers.get("x-edge-cache")).toBe("HIT");
    expect(b.headers.get("etag")).toBe(a.headers.get("etag"));
    const withNotMatch = await call("/v1/products?sort=price_asc&category=lighting", {
      headers: { "If-None-Match": a.headers.get("etag")! },
    });
    expect(withNotMatch.status).toBe(304);

    const authed = await call("/v1/products?category=lighting&sort=price_asc", { token: admin.token });
    expect(authed.headers.get("x-edge-cache")).toBe("HIT");
    expect(authed.headers.get("cache-control")).toBe("private, no-cache");
    expect(authed.headers.get("etag")).toBe(a.headers.get("etag"));
    const categories = await call("/v1/categories");
    expect(categories.headers.get("etag")).toBeTruthy();
  });

  it("parameters the route ignores and any Authorization header cannot force a miss (cache-busting)", async () => {
    const first = await call("/v1/products?category=lighting&sort=newest");
    expect(first.headers.get("x-edge-cache")).toBe("MISS");
    for (let i = 0; i < 3; i++) {
      const busted = await call(`/v1/products?category=lighting&sort=newest&x=${crypto.randomUUID()}`);
      expect(busted.headers.get("x-edge-cache")).toBe("HIT");
      expect(busted.headers.get("etag")).toBe(first.headers.get("etag"));
      const garbageAuth = await call("/v1/products?category=lighting&sort=newest", {
        headers: { Authorization: `Bearer ${crypto.randomUUID()}` },
      });
      expect(garbageAuth.headers.get("x-edge-cache")).toBe("HIT");
      expect(garbageAuth.headers.get("cache-control")).toBe("private, no-cache");
    }
    const byId = await call(`/v1/products/${lamp.id}?utm=${crypto.randomUUID()}`);
    expect((await call(`/v1/products/${lamp.id}?utm=${crypto.randomUUID()}`)).headers.get("x-edge-cache")).toBe("HIT");
    expect(byId.status).toBe(200);
  });

  it("an admin write purges cached products and list pages at once", async () => {
    const list = await call("/v1/products?q=lamp");
    const product = await call(`/v1/products/${lamp.id}`);
    await call("/v1/products?q=lamp"); // now cached
    const oldListTag = list.headers.get("etag")!;
    const oldTag = product.headers.get("etag")!;

    forgetMemoryCache(); // the purge must reach the Cache API level too, not only memory
    const patch = await call(`/v1/admin/products/${lamp.id}`, {
      method: "PATCH",
      token: admin.token,
      json: { name: "Desk Lamp Mark II", price: { amount: 2500, currency: "USD" } },
    });
    expect(patch.status).toBe(200);

    const after = await call(`/v1/products/${lamp.id}`, { headers: { "If-None-Match": oldTag } });
    expect(after.status).toBe(200);
    expect(after.headers.get("x-edge-cache")).toBe("MISS");
    expect(ProductDetail.parse(await after.json()).name).toBe("Desk Lamp Mark II");
    const listAfter = await call("/v1/products?q=lamp", { headers: { "If-None-Match": oldListTag } });
    expect(listAfter.status).toBe(200);
    expect(ProductList.parse(await listAfter.json()).items[0]!.price.amount).toBe(2500);

    await call(`/v1/admin/products/${lamp.id}`, { method: "DELETE", token: admin.token });
    expect(ProductList.parse(await (await call("/v1/products?q=lamp")).json()).items).toEqual([]);
    await call(`/v1/admin/products/${lamp.id}`, { method: "PATCH", token: admin.token, json: { status: "active" } });
  });

  it("errors are never cached", async () => {
    const missing = await call("/v1/products/prd_nothere");
    expect(missing.status).toBe(404);
    expect(missing.headers.get("etag")).toBeNull();
    expect((await call("/v1/products/prd_nothere")).status).toBe(404);
  });
});

describe("availability projection (the inventory seam)", () => {
  it("sets a SKU's count idempotently and rolls the product up as the sum over its variants", async () => {
    expect(await projectAvailability(env, "LAMP-1", 3)).toBe(true);
    expect(await projectAvailability(env, "LAMP-1-BRASS", 4)).toBe(true);
    expect(await projectAvailability(env, "LAMP-1-BRASS", 4)).toBe(true); // redelivered event
    // Availability moves without a catalog version bump (public reads may lag by the edge TTL), so
    // read where nothing is cached: the admin view and the search itself.
    const read = async () =>
      ProductDetail.parse(await (await call(`/v1/admin/products/${lamp.id}`, { token: admin.token })).json());
    let product = await read();
    expect(product.available).toBe(7);
    expect(product.variants?.map((v) => v.available)).toEqual([3, 4]);

    const inStock = async () =>
      (await searchProducts(env, ProductQuery.parse({ inStock: "true", category: "lighting" }))).items.map((p) => p.id);
    expect(await inStock()).toEqual([lamp.id]);

    await projectAvailability(env, "LAMP-1", 0);
    await projectAvailability(env, "LAMP-1-BRASS", -2); // oversold: shown as none
    product = await read();
    expect(product.available).toBe(0);
    expect(product.variants?.map((v) => v.available)).toEqual([0, 0]);
    expect(await inStock()).toEqual([]);
    expect((await call("/v1/products?inStock=false&category=lighting", { token: admin.token })).status).toBe(200);
  });

  it("ignores SKUs the catalog does not know", async () => {
    expect(await projectAvailability(env, "NOT-A-SKU", 5)).toBe(false);
  });
});
