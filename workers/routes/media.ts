import { createRoute, z } from "@hono/zod-openapi";
import { bodyLimit } from "hono/body-limit";
import parseRange from "range-parser";
import { IdParam } from "../../contracts/catalog";
import { MEDIA_MAX_BYTES, MEDIA_TYPES, MediaKeyParam, ProductMedia } from "../../contracts/engagement";
import {
  acceptedMediaType,
  attachProductMedia,
  IMMUTABLE_CACHE_CONTROL,
  readMedia,
  statMedia,
} from "../../domain/media/store";
import { auditRequest } from "../audit";
import { requireAuth, requireRole } from "../middleware/auth";
import { userWriteRateLimit } from "../middleware/rate-limit";
import { bearerSecurity, createRouter, problemResponses, publicAccess } from "../openapi";
import { notFound, ProblemError } from "../problem";

const binary = { schema: z.string().openapi({ type: "string", format: "binary" }) };
const imageContent = Object.fromEntries(MEDIA_TYPES.map((type) => [type, binary]));
const header = (description: string) => ({ description, schema: { type: "string" as const } });
const servedHeaders = {
  ETag: header("The content's SHA-256 (the key without its extension), quoted"),
  "Cache-Control": header(IMMUTABLE_CACHE_CONTROL),
  "Accept-Ranges": header("bytes"),
};

/** RFC 9110 If-None-Match against one strong tag (weak comparison, as for GET). */
function ifNoneMatchHolds(headerValue: string | undefined, etag: string): boolean {
  if (!headerValue) return false;
  if (headerValue.trim() === "*") return true;
  return headerValue.split(",").some((tag) => tag.trim().replace(/^W\//, "") === etag);
}

/** Public image reads: immutable, content-addressed, range-capable. Mounted at /v1/media. */
export const media = createRouter().openapi(
  createRoute({
    method: "get",
    path: "/{key}",
    operationId: "getMedia",
    security: publicAccess,
    tags: ["Media"],
    summary: "A product image by its content-hash key (ETag, immutable caching, single byte ranges)",
    description:
      "A `Range: bytes=…` with one range answers 206 with that slice; several ranges, a malformed header or an `If-Range` that names another content get the whole image (RFC 9110 lets a server ignore Range); a range wholly past the end is 416.",
    request: { params: MediaKeyParam },
    responses: {
      200: { description: "The whole image", headers: servedHeaders, content: imageContent },
      206: {
        description: "One byte range of the image",
        headers: { ...servedHeaders, "Content-Range": header("bytes <first>-<last>/<size>") },
        content: imageContent,
      },
      304: { description: "Not modified (If-None-Match)" },
      ...problemResponses([400, "Not a media key"], [404, "No such image"], 416, 429, 503),
    },
  }),
  async (c) => {
    const { key } = c.req.valid("param");
    const etag = `"${key.slice(0, key.indexOf("."))}"`;
    const headers = new Headers({ ETag: etag, "Cache-Control": IMMUTABLE_CACHE_CONTROL, "Accept-Ranges": "bytes" });
    const conditional = ifNoneMatchHolds(c.req.header("if-none-match"), etag);
    const rangeHeader = c.req.header("range");
    const ifRange = c.req.header("if-range");
    const wantsRange = rangeHeader !== undefined && (ifRange === undefined || ifRange.trim() === etag);

    if (conditional || wantsRange) {
      const stat = await statMedia(c.env, key);
      if (!stat) throw notFound("No such image");
      if (conditional) return new Response(null, { status: 304, headers });
      const ranges = parseRange(stat.size, rangeHeader!, { combine: true });
      if (ranges === -1) {
        throw new ProblemError(416, "range-not-satisfiable", `The image has ${stat.size} bytes`, {
          headers: { "Content-Range": `bytes */${stat.size}` },
        });
      }
      if (ranges !== -2 && ranges.type === "bytes" && ranges.length === 1) {
        const { start, end } = ranges[0]!;
        const object = await readMedia(c.env, key, { offset: start, length: end - start + 1 });
        if (!object) throw notFound("No such image");
        headers.set("Content-Type", object.httpMetadata?.contentType ?? "application/octet-stream");
        headers.set("Content-Range", `bytes ${start}-${end}/${stat.size}`);
        headers.set("Content-Length", String(end - start + 1));
        return new Response(object.body, { status: 206, headers });
      }
    }
    const object = await readMedia(c.env, key);
    if (!object) throw notFound("No such image");
    headers.set("Content-Type", object.httpMetadata?.contentType ?? "application/octet-stream");
    headers.set("Content-Length", String(object.size));
    return new Response(object.body, { status: 200, headers });
  },
);

/** Image upload (admin role). Mounted at /v1/admin. */
export const adminMedia = createRouter().openapi(
  createRoute({
    method: "post",
    path: "/products/{id}/media",
    operationId: "uploadProductMedia",
    security: bearerSecurity,
    tags: ["Catalog admin"],
    summary: "Attach an image (PNG, JPEG or WebP, at most 5 MiB, raw body) to a product",
    description:
      "The type is checked against the bytes' own signature as well as `Content-Type`. The image is stored once under its SHA-256; uploading it again answers 200 with the same key.",
    // Auth and the write limit come before the body is read at all; then the streamed size limit.
    middleware: [
      requireAuth(),
      requireRole("admin"),
      userWriteRateLimit(),
      bodyLimit({
        maxSize: MEDIA_MAX_BYTES,
        onError: () => {
          throw new ProblemError(413, "body-too-large", `Images are limited to ${MEDIA_MAX_BYTES} bytes`);
        },
      }),
    ] as const,
    request: { params: IdParam, body: { required: true, content: imageContent } },
    responses: {
      201: {
        description: "Stored and listed on the product",
        content: { "application/json": { schema: ProductMedia } },
      },
      200: { description: "Already listed on the product", content: { "application/json": { schema: ProductMedia } } },
      ...problemResponses(
        [400, "Empty, or the bytes are not an image of the declared type"],
        401,
        [403, "Not an admin"],
        [404, "No such product (or archived)"],
        [409, "The product already holds the most images it may (`too-many-media`)"],
        [413, "Larger than 5 MiB"],
        [415, "Content-Type is not image/png, image/jpeg or image/webp"],
        429,
        503,
      ),
    },
  }),
  async (c) => {
    const declared = acceptedMediaType(c.req.header("content-type"));
    if (!declared) {
      throw new ProblemError(415, "unsupported-media-type", "Send image/png, image/jpeg or image/webp");
    }
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    const productId = c.req.valid("param").id;
    const { media: stored, created } = await attachProductMedia(c.env, productId, bytes, declared);
    if (created) {
      await auditRequest(c, {
        action: "catalog.media_added",
        target: `product:${productId}`,
        details: { productId, key: stored.key, contentType: stored.contentType, size: stored.size },
      });
      c.header("Location", stored.url);
    }
    return c.json(stored, created ? 201 : 200);
  },
);
