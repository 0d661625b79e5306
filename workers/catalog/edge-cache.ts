import type { Context } from "hono";
import type { AppEnv } from "../env";
import { catalogVersion } from "./catalog-version";

/** How long the edge keeps an anonymous catalog response. Admin writes retire entries sooner (version bump). */
export const EDGE_TTL_SECONDS = 30;
/**
 * Browsers and other private caches must revalidate every time: a 304 costs one small round
 * trip, and it means an admin's change is visible on the very next request.
 */
const CLIENT_CACHE_CONTROL = "public, max-age=0, must-revalidate";
const PRIVATE_CACHE_CONTROL = "private, no-cache";

/** Strong ETag: SHA-256 of the exact body bytes, so equal bodies always share a tag. */
async function etagOf(body: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(body)));
  const b64 = btoa(String.fromCharCode(...digest.subarray(0, 18)))
    .replaceAll("+", "-")
    .replaceAll("/", "_");
  return `"${b64}"`;
}

/** RFC 9110 If-None-Match: a list of tags or `*`; weak comparison (a W/ prefix does not matter). */
function matchesIfNoneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  if (header.trim() === "*") return true;
  const bare = etag.replace(/^W\//, "");
  return header.split(",").some((tag) => tag.trim().replace(/^W\//, "") === bare);
}

function notModified(etag: string, cacheControl: string, cacheStatus: string): Response {
  return new Response(null, {
    status: 304,
    headers: { ETag: etag, "Cache-Control": cacheControl, "X-Edge-Cache": cacheStatus },
  });
}

/**
 * Answers a catalog GET with ETag / If-None-Match and, for anonymous callers, the Cache API.
 * The cache key carries the catalog version and the sorted query string, so `?a=1&b=2` and
 * `?b=2&a=1` share an entry and every admin write moves all keys to a fresh, empty namespace.
 * Authenticated callers bypass the shared cache (and get `private`), as their requests may one
 * day see more than the anonymous view.
 */
export async function cachedJson(c: Context<AppEnv>, compute: () => Promise<unknown>): Promise<Response> {
  const ifNoneMatch = c.req.header("if-none-match");
  const anonymous = !c.req.header("authorization");
  let cacheKey: Request | null = null;
  const cache = anonymous ? caches.default : null;
  if (cache) {
    const url = new URL(c.req.url);
    url.searchParams.sort();
    const version = await catalogVersion(c.env);
    cacheKey = new Request(`https://catalog-cache.edgepulse.internal/v${version}${url.pathname}${url.search}`);
    const hit = await cache.match(cacheKey);
    if (hit) {
      const etag = hit.headers.get("ETag") ?? "";
      if (matchesIfNoneMatch(ifNoneMatch, etag)) return notModified(etag, CLIENT_CACHE_CONTROL, "HIT");
      return new Response(hit.body, {
        status: 200,
        headers: {
          "Content-Type": "application/json",
          ETag: etag,
          "Cache-Control": CLIENT_CACHE_CONTROL,
          "X-Edge-Cache": "HIT",
        },
      });
    }
  }

  // Server-Timing tells a client (and the benchmark) how much of a miss was the catalog's own
  // work (D1 + serialization) as opposed to network and gateway; workerd's clock advances across I/O.
  const started = performance.now();
  const body = JSON.stringify(await compute());
  const serverTiming = `catalog;dur=${(performance.now() - started).toFixed(1)}`;
  const etag = await etagOf(body);
  const cacheControl = anonymous ? CLIENT_CACHE_CONTROL : PRIVATE_CACHE_CONTROL;
  const cacheStatus = anonymous ? "MISS" : "BYPASS";
  if (cache && cacheKey) {
    // Awaited rather than waitUntil: it is only the miss path, and the next request can rely on it.
    await cache.put(
      cacheKey,
      new Response(body, {
        headers: {
          "Content-Type": "application/json",
          ETag: etag,
          "Cache-Control": `public, max-age=${EDGE_TTL_SECONDS}`,
        },
      }),
    );
  }
  if (matchesIfNoneMatch(ifNoneMatch, etag)) return notModified(etag, cacheControl, cacheStatus);
  return new Response(body, {
    status: 200,
    headers: {
      "Content-Type": "application/json",
      ETag: etag,
      "Cache-Control": cacheControl,
      "X-Edge-Cache": cacheStatus,
      "Server-Timing": serverTiming,
    },
  });
}
