import type { Context } from "hono";
import { catalogVersion } from "../domain/catalog/catalog-version";
import { etagOf } from "../domain/encoding";
import type { AppEnv } from "./env";

/** How long the edge keeps an anonymous catalog response. Admin writes retire entries sooner (version bump). */
export const EDGE_TTL_SECONDS = 30;
/**
 * Browsers and other private caches must revalidate every time: a 304 costs one small round
 * trip, and it means an admin's change is visible on the very next request.
 */
const CLIENT_CACHE_CONTROL = "public, max-age=0, must-revalidate";
const PRIVATE_CACHE_CONTROL = "private, no-cache";

/** RFC 9110 If-None-Match: a list of tags or `*`; weak comparison (a W/ prefix does not matter). */
export function matchesIfNoneMatch(header: string | undefined, etag: string): boolean {
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

/** A cached body as both cache levels hold it. */
interface Entry {
  body: string;
  etag: string;
  expiresAt: number;
}

/**
 * Level 1: this isolate's memory, a small LRU. A hit costs no I/O at all, where the Cache API
 * (level 2) is a subrequest; locally that subrequest even costs more than the D1 primary-key
 * read it would save (bench/catalog.bench.ts). Keys carry the catalog version like level 2's, so
 * a purge reaches both alike; entries also expire with the edge TTL.
 */
const MEMORY_MAX_ENTRIES = 500;
const MEMORY_MAX_BODY_CHARS = 256 * 1024;
const memory = new Map<string, Entry>();

function memoryGet(key: string, now: number): Entry | undefined {
  const entry = memory.get(key);
  if (!entry) return undefined;
  memory.delete(key);
  if (entry.expiresAt <= now) return undefined;
  memory.set(key, entry); // most recently used goes last
  return entry;
}

function memorySet(key: string, entry: Entry): void {
  if (entry.body.length > MEMORY_MAX_BODY_CHARS) return;
  memory.set(key, entry);
  if (memory.size > MEMORY_MAX_ENTRIES) {
    const oldest = memory.keys().next().value;
    if (oldest !== undefined) memory.delete(oldest);
  }
}

function respond(
  entry: { body: string; etag: string },
  ifNoneMatch: string | undefined,
  cacheControl: string,
  cacheStatus: string,
  serverTiming: string,
): Response {
  if (matchesIfNoneMatch(ifNoneMatch, entry.etag)) return notModified(entry.etag, cacheControl, cacheStatus);
  return new Response(entry.body, {
    status: 200,
    headers: {
      "Content-Type": "application/json",
      ETag: entry.etag,
      "Cache-Control": cacheControl,
      "X-Edge-Cache": cacheStatus,
      "Server-Timing": serverTiming,
    },
  });
}

/**
 * The cache key of a catalog read: the catalog version, the route and its parsed parameters with
 * their keys sorted. Built from what the route validated, never from the raw URL, so parameters
 * the route ignores (`?x=<random>`) and their order cannot mint new entries and force a D1 read
 * per request; every admin write moves all keys to a fresh, empty namespace.
 */
function cacheKey(version: number, route: string, params: Record<string, unknown>): string {
  const canonical = Object.keys(params)
    .sort()
    .filter((name) => params[name] !== undefined)
    .map((name) => `${encodeURIComponent(name)}=${encodeURIComponent(JSON.stringify(params[name]))}`)
    .join("&");
  return `https://catalog-cache.edgepulse.internal/v${version}${route}?${canonical}`;
}

/**
 * Answers a catalog GET with ETag / If-None-Match and two cache levels: isolate memory, then the
 * Cache API (shared by the isolates of a location). `params` are the route's parsed parameters
 * (see `cacheKey`). The catalog shows every caller the same view, so a caller that sends
 * `Authorization` is served from the same entries — a header must not be a way around the cache —
 * but its response is marked `private` for caches between it and us.
 */
export async function cachedJson(
  c: Context<AppEnv>,
  params: Record<string, unknown>,
  compute: () => Promise<unknown>,
): Promise<Response> {
  const ifNoneMatch = c.req.header("if-none-match");
  const clientCacheControl = c.req.header("authorization") ? PRIVATE_CACHE_CONTROL : CLIENT_CACHE_CONTROL;
  const key = cacheKey(await catalogVersion(c.env), new URL(c.req.url).pathname, params);
  const now = Date.now();
  const inMemory = memoryGet(key, now);
  if (inMemory) return respond(inMemory, ifNoneMatch, clientCacheControl, "HIT", 'cache;desc="memory"');
  const hit = await caches.default.match(key);
  if (hit) {
    const entry = {
      body: await hit.text(),
      etag: hit.headers.get("ETag") ?? "",
      expiresAt: now + EDGE_TTL_SECONDS * 1000,
    };
    memorySet(key, entry);
    return respond(entry, ifNoneMatch, clientCacheControl, "HIT", 'cache;desc="edge"');
  }

  // Server-Timing tells a client (and the benchmark) how much of a miss was the catalog's own
  // work (D1 + serialization) as opposed to network and gateway; workerd's clock advances across I/O.
  const started = performance.now();
  const body = JSON.stringify(await compute());
  const serverTiming = `catalog;dur=${(performance.now() - started).toFixed(1)}`;
  const etag = await etagOf(body);
  memorySet(key, { body, etag, expiresAt: Date.now() + EDGE_TTL_SECONDS * 1000 });
  // After the response, not before it: this isolate's next request is served from memory anyway,
  // and locally the put is a durable write (the engagement bench's recommendations miss paid it
  // in its latency). Another isolate that asks before it lands computes the same body once more.
  c.executionCtx.waitUntil(
    caches.default.put(
      key,
      new Response(body, {
        headers: {
          "Content-Type": "application/json",
          ETag: etag,
          "Cache-Control": `public, max-age=${EDGE_TTL_SECONDS}`,
        },
      }),
    ),
  );
  return respond({ body, etag }, ifNoneMatch, clientCacheControl, "MISS", serverTiming);
}

/** Empties this isolate's memory level (tests use it to exercise the Cache API level on its own). */
export function forgetMemoryCache(): void {
  memory.clear();
}
