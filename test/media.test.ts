import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { AuditPage } from "../contracts/audit";
import { ProductDetail } from "../contracts/catalog";
import { ProductMedia } from "../contracts/engagement";
import { base64UrlDecode, hex } from "../domain/encoding";
import { insertSku } from "./commerce-fixtures";
import { call, expectProblem, tokenFor } from "./helpers";

// A real 1×1 PNG, then bodies that start with the JPEG and WebP signatures (only the signature
// decides the type; R2 stores any bytes).
const PNG = base64UrlDecode(
  "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg",
);
const JPEG = Uint8Array.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00, ...randomBytes(300)]);
const WEBP = Uint8Array.from([
  ...new TextEncoder().encode("RIFF"),
  0x24,
  0,
  0,
  0,
  ...new TextEncoder().encode("WEBPVP8 "),
  ...randomBytes(200),
]);

function randomBytes(n: number): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(n));
}

let adminToken: string;
beforeAll(async () => {
  adminToken = await tokenFor(`media-admin-${crypto.randomUUID()}`, ["admin"]);
});

async function freshProduct(): Promise<string> {
  const sku = `MED-${crypto.randomUUID().slice(0, 8)}`;
  await insertSku(sku);
  return `p-${sku}`;
}

function upload(productId: string, bytes: Uint8Array, contentType: string, token = adminToken): Promise<Response> {
  return call(`/v1/admin/products/${productId}/media`, {
    method: "POST",
    token,
    headers: { "Content-Type": contentType },
    body: bytes,
  });
}

async function uploaded(productId: string, bytes: Uint8Array, contentType: string): Promise<ProductMedia> {
  const res = await upload(productId, bytes, contentType);
  expect(res.status, await res.clone().text()).toBe(201);
  return ProductMedia.parse(await res.json());
}

const sha256Hex = async (bytes: Uint8Array) => hex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));

async function adminProduct(id: string): Promise<ProductDetail> {
  const res = await call(`/v1/admin/products/${id}`, { token: adminToken });
  expect(res.status).toBe(200);
  return ProductDetail.parse(await res.json());
}

describe("upload", () => {
  it("stores each type under its content hash, lists it on the product, and a repeat changes nothing", async () => {
    const id = await freshProduct();
    const png = await uploaded(id, PNG, "image/png");
    expect(png).toEqual({
      key: `${await sha256Hex(PNG)}.png`,
      url: `/v1/media/${await sha256Hex(PNG)}.png`,
      contentType: "image/png",
      size: PNG.length,
    });
    const jpeg = await uploaded(id, JPEG, "image/jpeg; charset=binary");
    const webp = await uploaded(id, WEBP, "image/webp");
    expect([jpeg.key, webp.key]).toEqual([`${await sha256Hex(JPEG)}.jpg`, `${await sha256Hex(WEBP)}.webp`]);

    const again = await upload(id, PNG, "image/png");
    expect(again.status).toBe(200);
    expect(ProductMedia.parse(await again.json())).toEqual(png);
    expect((await adminProduct(id)).media.map((m) => m.key).sort()).toEqual([png.key, jpeg.key, webp.key].sort());
    // Each new image is audited once (the repeat added nothing, so it is not).
    const audited = await call(`/v1/admin/audit?action=catalog.media_added&limit=100`, { token: adminToken });
    const entries = AuditPage.parse(await audited.json()).items.filter((e) => e.target === `product:${id}`);
    expect(entries.map((e) => e.details.key).sort()).toEqual([png.key, jpeg.key, webp.key].sort());
  });

  it("refuses wrong signatures, wrong or missing types, oversize bodies, non-admins and unknown products — storing nothing", async () => {
    const id = await freshProduct();
    const before = (await env.MEDIA_BUCKET.list()).objects.length;
    const cases: [string, Response, number][] = [
      ["JPEG bytes declared PNG", await upload(id, JPEG, "image/png"), 400],
      ["text declared PNG", await upload(id, new TextEncoder().encode("<svg onload=alert(1)>"), "image/png"), 400],
      ["truncated signature", await upload(id, PNG.subarray(0, 5), "image/png"), 400],
      ["empty body", await upload(id, new Uint8Array(0), "image/png"), 400],
      ["SVG type", await upload(id, PNG, "image/svg+xml"), 415],
      ["text type", await upload(id, PNG, "text/plain"), 415],
      ["JSON type", await upload(id, PNG, "application/json"), 415],
      ["GIF type", await upload(id, PNG, "image/gif"), 415],
      ["over 5 MiB", await upload(id, new Uint8Array(5 * 1024 * 1024 + 1).fill(0x89), "image/png"), 413],
      ["customer", await upload(id, PNG, "image/png", await tokenFor(`c-${crypto.randomUUID()}`)), 403],
      [
        "no token",
        await call(`/v1/admin/products/${id}/media`, {
          method: "POST",
          body: PNG,
          headers: { "Content-Type": "image/png" },
        }),
        401,
      ],
      ["unknown product", await upload("p-nope", PNG, "image/png"), 404],
    ];
    for (const [label, res, status] of cases) await expectProblem(res, status, label);
    expect((await adminProduct(id)).media).toEqual([]);
    expect((await env.MEDIA_BUCKET.list()).objects.length).toBe(before);
  });

  it("accepts exactly 5 MiB", async () => {
    const id = await freshProduct();
    const big = new Uint8Array(5 * 1024 * 1024);
    big.set(PNG.subarray(0, 8));
    big.set(randomBytes(64), 8);
    expect((await upload(id, big, "image/png")).status).toBe(201);
  });
});

describe("serving", () => {
  it("returns the identical bytes with ETag, immutable caching and its type; 304 on If-None-Match", async () => {
    const id = await freshProduct();
    const { url, key } = await uploaded(id, JPEG, "image/jpeg");
    const res = await call(url);
    expect(res.status).toBe(200);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(JPEG);
    expect(res.headers.get("Content-Type")).toBe("image/jpeg");
    expect(res.headers.get("Content-Length")).toBe(String(JPEG.length));
    expect(res.headers.get("Cache-Control")).toBe("public, max-age=31536000, immutable");
    expect(res.headers.get("Accept-Ranges")).toBe("bytes");
    const etag = res.headers.get("ETag");
    expect(etag).toBe(`"${key.split(".")[0]}"`);

    const revalidated = await call(url, { headers: { "If-None-Match": etag! } });
    expect(revalidated.status).toBe(304);
    expect(await revalidated.text()).toBe("");
  });

  it("answers single ranges with 206, ignores multi-range and stale If-Range, 416 past the end", async () => {
    const id = await freshProduct();
    const { url } = await uploaded(id, WEBP, "image/webp");
    const size = WEBP.length;
    const slice = async (range: string, extra: Record<string, string> = {}) => {
      const res = await call(url, { headers: { Range: range, ...extra } });
      return { res, bytes: new Uint8Array(await res.arrayBuffer()) };
    };

    const first = await slice("bytes=0-9");
    expect(first.res.status).toBe(206);
    expect(first.bytes).toEqual(WEBP.subarray(0, 10));
    expect(first.res.headers.get("Content-Range")).toBe(`bytes 0-9/${size}`);
    expect(first.res.headers.get("Content-Length")).toBe("10");

    const middle = await slice("bytes=100-149");
    expect(middle.bytes).toEqual(WEBP.subarray(100, 150));
    const suffix = await slice("bytes=-16");
    expect(suffix.res.status).toBe(206);
    expect(suffix.bytes).toEqual(WEBP.subarray(size - 16));
    expect(suffix.res.headers.get("Content-Range")).toBe(`bytes ${size - 16}-${size - 1}/${size}`);
    const open = await slice(`bytes=${size - 5}-`);
    expect(open.bytes).toEqual(WEBP.subarray(size - 5));
    const clamped = await slice(`bytes=${size - 3}-${size + 100}`);
    expect(clamped.bytes).toEqual(WEBP.subarray(size - 3));

    for (const whole of [
      await slice("bytes=0-1, 5-6"),
      await slice("bytes=zz"),
      await slice("bytes=0-3", { "If-Range": '"other"' }),
    ]) {
      expect(whole.res.status).toBe(200);
      expect(whole.bytes).toEqual(WEBP);
    }
    const past = await call(url, { headers: { Range: `bytes=${size}-` } });
    await expectProblem(past, 416);
    expect(past.headers.get("Content-Range")).toBe(`bytes */${size}`);
  });

  it("refuses keys that are not content hashes, path traversal included, and 404s unknown ones", async () => {
    for (const path of [
      "/v1/media/..%2F..%2Fetc%2Fpasswd",
      "/v1/media/%2e%2e%2fwrangler.toml",
      "/v1/media/..%5c..%5cwrangler.toml",
      `/v1/media/${"a".repeat(64)}.png%00.html`,
      `/v1/media/${"A".repeat(64)}.png`,
      `/v1/media/${"a".repeat(64)}.gif`,
      `/v1/media/${"a".repeat(63)}.png`,
      "/v1/media/x",
    ]) {
      const res = await call(path);
      expect([400, 404], path).toContain(res.status);
      expect(res.headers.get("Content-Type"), path).toBe("application/problem+json");
    }
    await expectProblem(await call(`/v1/media/${"0".repeat(64)}.png`), 404);
    await expectProblem(await call(`/v1/media/${"0".repeat(64)}.png`, { headers: { Range: "bytes=0-1" } }), 404);
  });
});

describe("product deletion", () => {
  it("takes the product's images along, but keeps an image another product still shows", async () => {
    const [a, b] = [await freshProduct(), await freshProduct()];
    const own = await uploaded(
      a,
      JPEG.map((x, i) => (i < 4 ? x : x ^ 0x5a)),
      "image/jpeg",
    );
    const shared = await uploaded(a, PNG, "image/png");
    expect((await upload(b, PNG, "image/png")).status).toBe(201);

    const deleted = await call(`/v1/admin/products/${a}`, { method: "DELETE", token: adminToken });
    expect(deleted.status).toBe(204);
    expect((await adminProduct(a)).media).toEqual([]);
    await expectProblem(await call(own.url), 404);
    expect(await env.MEDIA_BUCKET.head(own.key)).toBeNull();
    expect((await call(shared.url)).status).toBe(200);
    expect((await adminProduct(b)).media.map((m) => m.key)).toEqual([shared.key]);
    // An archived product takes no new images.
    await expectProblem(await upload(a, WEBP, "image/webp"), 404);
  });
});
