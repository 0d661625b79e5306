import {
  MEDIA_KEY_PATTERN,
  MEDIA_MAX_BYTES,
  MEDIA_TYPES,
  type MediaType,
  type ProductMedia,
} from "../../contracts/engagement";
import { bumpVersion, noteVersion } from "../catalog/catalog-version";
import { hex } from "../encoding";
import { conflict, DomainError, invalidInput, notFound } from "../errors";
import { type ProductMediaRow, toProductMedia } from "./media-row";

/** At most this many images per product (a product page shows a gallery, not an archive). */
export const MAX_MEDIA_PER_PRODUCT = 20;

const EXTENSIONS: Record<MediaType, string> = { "image/png": "png", "image/jpeg": "jpg", "image/webp": "webp" };

/**
 * The image type the bytes themselves say they are, from their file signature (PNG's 8-byte
 * signature, JPEG's SOI marker, WebP's RIFF/WEBP header), or null. Three fixed signatures do not
 * warrant a dependency: `file-type` and friends read far more formats than we accept.
 */
export function sniffImageType(bytes: Uint8Array): MediaType | null {
  const starts = (offset: number, signature: number[]) =>
    bytes.length >= offset + signature.length && signature.every((b, i) => bytes[offset + i] === b);
  if (starts(0, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return "image/png";
  if (starts(0, [0xff, 0xd8, 0xff])) return "image/jpeg";
  if (starts(0, [0x52, 0x49, 0x46, 0x46]) && starts(8, [0x57, 0x45, 0x42, 0x50])) return "image/webp";
  return null;
}

/** Whether a declared Content-Type (parameters ignored) is one we store. */
export function acceptedMediaType(contentType: string | undefined): MediaType | null {
  const bare = (contentType ?? "").split(";")[0]!.trim().toLowerCase();
  return (MEDIA_TYPES as readonly string[]).includes(bare) ? (bare as MediaType) : null;
}

/**
 * Attaches an image to a product: the bytes must be the declared type by their signature; they
 * are stored in R2 under their SHA-256 (so the same image is stored once, and a key can never
 * name two contents), then listed on the product. Attaching the same image again changes nothing.
 */
export async function attachProductMedia(
  env: Pick<Env, "DB" | "MEDIA_BUCKET">,
  productId: string,
  bytes: Uint8Array,
  declared: MediaType,
): Promise<{ media: ProductMedia; created: boolean }> {
  if (bytes.length === 0) throw invalidInput("The image is empty", [{ path: "(body)", message: "No bytes" }]);
  if (bytes.length > MEDIA_MAX_BYTES) {
    throw new DomainError("invalid", `Images are limited to ${MEDIA_MAX_BYTES} bytes`, { kind: "body-too-large" });
  }
  const actual = sniffImageType(bytes);
  if (actual !== declared) {
    throw invalidInput(`The bytes are not a ${declared} image`, [
      { path: "(body)", message: actual ? `The content is ${actual}` : "Not a PNG, JPEG or WebP file" },
    ]);
  }
  const product = await env.DB.prepare(
    `SELECT p.status AS status, (SELECT count(*) FROM product_media m WHERE m.product_id = p.id) AS media
     FROM products p WHERE p.id = ?`,
  )
    .bind(productId)
    .first<{ status: string; media: number }>();
  if (!product || product.status === "archived") throw notFound("No such product");

  const digest = hex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
  const key = `${digest}.${EXTENSIONS[actual]}`;
  const existing = await env.DB.prepare("SELECT 1 FROM product_media WHERE product_id = ? AND key = ?")
    .bind(productId, key)
    .first();
  const media = toProductMedia({ product_id: productId, key, content_type: actual, size: bytes.length });
  if (existing) return { media, created: false };
  if (product.media >= MAX_MEDIA_PER_PRODUCT) {
    throw conflict(`A product holds at most ${MAX_MEDIA_PER_PRODUCT} images`, "too-many-media");
  }

  // The object first, then the row: a row never names bytes that are not there. The SHA-256
  // checksum makes R2 itself refuse a body that changed on the way.
  await env.MEDIA_BUCKET.put(key, bytes, {
    httpMetadata: { contentType: actual, cacheControl: IMMUTABLE_CACHE_CONTROL },
    sha256: digest,
  });
  const results = await env.DB.batch<{ value: number }>([
    env.DB.prepare(
      "INSERT OR IGNORE INTO product_media (product_id, key, content_type, size) VALUES (?, ?, ?, ?)",
    ).bind(productId, key, actual, bytes.length),
    // Products list their media, so cached product pages must go (as after any admin write).
    bumpVersion(env.DB),
  ]);
  const version = results.at(-1)?.results[0]?.value;
  if (version !== undefined) noteVersion(version);
  return { media, created: true };
}

/**
 * Removes a product's images (its deletion takes them along): the rows go in one batch, then each
 * R2 object no other product still lists. Idempotent, so a retry after a failure finishes the job.
 */
export async function removeProductMedia(env: Pick<Env, "DB" | "MEDIA_BUCKET">, productId: string): Promise<number> {
  const { results } = await env.DB.prepare("SELECT key FROM product_media WHERE product_id = ?")
    .bind(productId)
    .all<Pick<ProductMediaRow, "key">>();
  if (results.length === 0) return 0;
  const keys = results.map((r) => r.key);
  const [, stillListed, bumped] = await env.DB.batch<Record<string, unknown>>([
    env.DB.prepare("DELETE FROM product_media WHERE product_id = ?").bind(productId),
    env.DB.prepare("SELECT DISTINCT key FROM product_media WHERE key IN (SELECT value FROM json_each(?))").bind(
      JSON.stringify(keys),
    ),
    bumpVersion(env.DB),
  ]);
  const version = (bumped?.results[0] as { value?: number } | undefined)?.value;
  if (version !== undefined) noteVersion(version);
  const shared = new Set((stillListed?.results ?? []).map((r) => String(r.key)));
  const orphans = keys.filter((key) => !shared.has(key));
  if (orphans.length > 0) await env.MEDIA_BUCKET.delete(orphans);
  return keys.length;
}

/** Served images never change under their key (it is their hash): caches may keep them for a year. */
export const IMMUTABLE_CACHE_CONTROL = "public, max-age=31536000, immutable";

/** A byte range of an image: `offset` and `length` already resolved against its size. */
export interface ByteRange {
  offset: number;
  length: number;
}

/** The stored image `key` (whole, or `range` of it), or null when there is none. */
export async function readMedia(
  env: Pick<Env, "MEDIA_BUCKET">,
  key: string,
  range?: ByteRange,
): Promise<R2ObjectBody | null> {
  if (!MEDIA_KEY_PATTERN.test(key)) return null;
  return env.MEDIA_BUCKET.get(key, range ? { range } : undefined);
}

/** Size and type of the stored image `key` without its bytes (to resolve a Range first), or null. */
export async function statMedia(env: Pick<Env, "MEDIA_BUCKET">, key: string): Promise<R2Object | null> {
  if (!MEDIA_KEY_PATTERN.test(key)) return null;
  return env.MEDIA_BUCKET.head(key);
}
