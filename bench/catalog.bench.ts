// Catalog read path: req/s and p50/p99 for search (q + filter + facets) and product-by-id, uncached
// vs cached, on a 10,000-product catalog; then how search latency grows from 1k to 10k to 100k.
//
//   npm run bench -- catalog            (or: node_modules/.bin/node bench/catalog.bench.ts)
//   BENCH_PORT=8802 BENCH_RUNS=5 BENCH_SIZES=1000,10000 …   (defaults: 8800, 3 runs, 1k/10k/100k)
//
// It starts its own server (scripts/serve.ts) on a private port with a throwaway state directory, loads
// catalogs made by the demo generator (scripts/catalog-generator.ts) with `wrangler d1 execute`,
// and drives real HTTP through the whole gateway with autocannon. "Uncached" requests carry an
// Authorization header, which makes the Worker bypass the edge cache (public reads do not verify
// it), so they pay D1 + FTS5 + ETag every time; "cached" requests are anonymous and warmed first.
// The baseline, measured in the same run, is GET /health through the same gateway (no I/O).
import { rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import autocannon from "autocannon";
import { catalogSql, generateProducts } from "../scripts/catalog-generator.ts";
import { waitUntilReady, wrangler } from "../scripts/local.ts";
import { startPrivatePlatform } from "./private-platform.ts";

const PORT = Number(process.env.BENCH_PORT ?? 8800);
const BASE = `http://127.0.0.1:${PORT}`;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const SIZES = (process.env.BENCH_SIZES ?? "1000,10000,100000").split(",").map(Number);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const LATENCY_SAMPLES = Number(process.env.BENCH_SAMPLES ?? 150);
const MAIN_SIZE = 10_000;

// --- a private local platform -------------------------------------------------------------------
// scripts/serve.ts: the deployable bundle on Miniflare/workerd, without wrangler dev's proxy worker
// on the request path, and rate-limit bindings served from memory as in production (Miniflare's
// own simulation writes a SQLite row per call, which would dominate every figure here).
const platform = startPrivatePlatform("catalog", PORT);
const common = ["--persist-to", platform.state];

// Every request carries one of 256 CF-Connecting-IP values, as traffic from many shoppers would:
// the per-IP limit (10k/min) stays in the path, but ten connections from one address would
// otherwise be throttled within seconds.
let ipSeq = 0;
const nextIp = () => `10.0.${(ipSeq >> 8) & 255}.${ipSeq++ & 255}`;

/** Grows the catalog to `count` products (stable ids: the ones already there are skipped). */
function loadCatalog(count: number): number {
  const started = Date.now();
  const file = path.join(platform.dir, `catalog-${count}.sql`);
  writeFileSync(file, catalogSql(generateProducts(count)).join("\n"));
  wrangler(["d1", "execute", "DB", "--local", ...common, "--file", file], { quiet: true });
  rmSync(file);
  return Date.now() - started;
}

// --- load ---------------------------------------------------------------------------------------
interface Run {
  rps: number;
  p50: number;
  p99: number;
  non2xx: number;
}

/** `amount` requests, or (amount = 0) SECONDS seconds of load. */
async function load(paths: string[], amount: number, headers: Record<string, string> = {}): Promise<Run> {
  let n = 0;
  const result = await autocannon({
    url: BASE,
    connections: CONNECTIONS,
    ...(amount > 0 ? { amount } : { duration: SECONDS }),
    requests: [
      {
        method: "GET",
        headers,
        setupRequest: (req) => ({
          ...req,
          path: paths[n++ % paths.length],
          headers: { ...req.headers, "cf-connecting-ip": nextIp() },
        }),
      },
    ],
  });
  return {
    rps: result.requests.total / result.duration,
    p50: result.latency.p50,
    p99: result.latency.p99,
    non2xx: result.non2xx + result.errors + result.timeouts,
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

async function scenario(name: string, paths: string[], amount: number, headers?: Record<string, string>) {
  const runs: Run[] = [];
  for (let r = 0; r < RUNS; r++) runs.push(await load(paths, amount, headers));
  const out = {
    rps: median(runs.map((r) => r.rps)),
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    non2xx: runs.reduce((s, r) => s + r.non2xx, 0),
  };
  console.log(
    `${name.padEnd(46)} ${out.rps.toFixed(0).padStart(6)} req/s   p50 ${String(out.p50).padStart(4)} ms   p99 ${String(out.p99).padStart(4)} ms   (non-2xx ${out.non2xx}; runs: ${runs.map((r) => r.rps.toFixed(0)).join(", ")})`,
  );
  if (out.non2xx > 0) throw new Error(`${name}: ${out.non2xx} requests did not answer 2xx`);
  return out;
}

interface Latency {
  p50: number;
  p99: number;
  /** The Worker's own time for the catalog work (Server-Timing `catalog;dur`), D1 included. */
  serverP50: number;
  serverP99: number;
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? Number.NaN;
};

/**
 * Latency without queueing: one request at a time, so p99 is what a shopper waits, not how long
 * a request queued behind nine others on a saturated 2-core box.
 */
async function latency(name: string, paths: string[], headers: Record<string, string> = {}): Promise<Latency> {
  const client: number[] = [];
  const server: number[] = [];
  for (let i = 0; i < LATENCY_SAMPLES; i++) {
    const started = performance.now();
    const res = await fetch(`${BASE}${paths[i % paths.length]}`, {
      headers: { ...headers, "cf-connecting-ip": nextIp() },
    });
    await res.arrayBuffer();
    client.push(performance.now() - started);
    if (res.status !== 200) throw new Error(`${name}: HTTP ${res.status}`);
    const dur = /catalog;dur=([\d.]+)/.exec(res.headers.get("server-timing") ?? "")?.[1];
    if (dur) server.push(Number(dur));
  }
  const out = {
    p50: quantile(client, 0.5),
    p99: quantile(client, 0.99),
    serverP50: quantile(server, 0.5),
    serverP99: quantile(server, 0.99),
  };
  console.log(
    `${`${name}, 1 at a time`.padEnd(46)} p50 ${out.p50.toFixed(1)} ms  p99 ${out.p99.toFixed(1)} ms   in-Worker catalog work p50 ${out.serverP50.toFixed(1)} ms p99 ${out.serverP99.toFixed(1)} ms`,
  );
  return out;
}

const UNCACHED = { authorization: "Bearer bench-cache-bypass" };

/** Realistic shopper searches: text + a category or price filter + stock, facets always computed. */
const SEARCHES = [
  "q=laptop&category=computers&inStock=true",
  "q=running%20shoe&category=apparel&maxPrice=15000",
  "q=head&category=electronics&inStock=true",
  "q=kettle&category=home",
  "q=bluetooth%20speaker&minPrice=5000&inStock=true",
  "q=tent&category=sports&sort=price_asc",
  "q=yoga%20mat&inStock=true",
  "q=monitor%2027&category=computer-accessories",
  "q=coffee&category=kitchen&sort=price_desc",
  "q=bike&category=cycling&minPrice=10000",
  "q=acme&inStock=true",
  "q=novel&category=books",
].map((qs) => `/v1/products?${qs}&limit=20`);
/** Browsing without text: whole category subtrees with facets, the heaviest facet work. */
const BROWSES = [
  "category=electronics",
  "category=apparel&sort=price_asc",
  "category=home&inStock=true",
  "sort=newest",
].map((qs) => `/v1/products?${qs}&limit=20`);

try {
  await waitUntilReady(BASE, 120_000);
  const growth: { size: number; search: Run; browse: Run; searchLat: Latency; browseLat: Latency }[] = [];
  const main: Record<string, Run> = {};
  const mainLat: Record<string, Latency> = {};
  for (const size of SIZES) {
    const ms = loadCatalog(size);
    console.log(`\n--- catalog of ${size.toLocaleString("en-US")} products (loaded in ${ms} ms) ---`);
    // Warm-up: JIT, SQLite page cache, connection setup.
    await load(["/health"], 300);
    await load(SEARCHES, 120, UNCACHED);
    await load(BROWSES, 60, UNCACHED);
    const searchLat = await latency(`search uncached (${size})`, SEARCHES, UNCACHED);
    const browseLat = await latency(`browse + facets uncached (${size})`, BROWSES, UNCACHED);
    const search = await scenario(`search uncached (${size})`, SEARCHES, 0, UNCACHED);
    const browse = await scenario(`browse + facets uncached (${size})`, BROWSES, 0, UNCACHED);
    growth.push({ size, search, browse, searchLat, browseLat });
    if (size === MAIN_SIZE) {
      const productPaths = Array.from(
        { length: 200 },
        (_, i) => `/v1/products/seed-p-${String(1 + ((i * 7919) % size)).padStart(6, "0")}`,
      );
      main.baseline = await scenario("baseline: GET /health", ["/health"], 0);
      mainLat.baseline = await latency("baseline: GET /health", ["/health"]);
      mainLat.byIdUncached = await latency("product by id, uncached", productPaths, UNCACHED);
      main.byIdUncached = await scenario("product by id, uncached", productPaths, 0, UNCACHED);
      await load(productPaths, 400); // fill the edge cache
      mainLat.byIdCached = await latency("product by id, cached", productPaths);
      main.byIdCached = await scenario("product by id, cached", productPaths, 0);
      await load(SEARCHES, 100);
      mainLat.searchCached = await latency("search, cached", SEARCHES);
      main.searchCached = await scenario("search, cached", SEARCHES, 0);
      main.search = search;
      mainLat.search = searchLat;
    }
  }

  console.log(
    `\nsummary: throughput = medians of ${RUNS} × ${SECONDS} s runs with ${CONNECTIONS} connections; latency = ${LATENCY_SAMPLES} sequential requests (${new Date().toISOString()})`,
  );
  const { baseline, byIdUncached, byIdCached, search, searchCached } = main;
  if (baseline && byIdUncached && byIdCached && search && searchCached) {
    const line = (label: string, r: Run, l: Latency | undefined, extra = "") =>
      console.log(
        `  ${label.padEnd(26)} ${r.rps.toFixed(0).padStart(6)} req/s (${((r.rps / baseline.rps) * 100).toFixed(0)}% of baseline); 1-at-a-time p50 ${l?.p50.toFixed(1)} ms p99 ${l?.p99.toFixed(1)} ms${extra}`,
      );
    line("baseline GET /health", baseline, mainLat.baseline);
    line("product by id, uncached", byIdUncached, mainLat.byIdUncached, " (target p99 < 20 ms)");
    line(
      "product by id, cached",
      byIdCached,
      mainLat.byIdCached,
      `; ×${(byIdCached.rps / byIdUncached.rps).toFixed(1)} the uncached rate (target ≥ ×5)`,
    );
    line("search, uncached", search, mainLat.search, " (target p99 < 50 ms)");
    line(
      "search, cached",
      searchCached,
      mainLat.searchCached,
      `; ×${(searchCached.rps / search.rps).toFixed(1)} the uncached rate (target ≥ ×5)`,
    );
  }
  console.log("  search latency by catalog size (uncached, 1 at a time; in-Worker catalog work in brackets):");
  for (const g of growth) {
    const f = (l: Latency) =>
      `p50 ${l.p50.toFixed(1)} ms p99 ${l.p99.toFixed(1)} ms [${l.serverP50.toFixed(1)} / ${l.serverP99.toFixed(1)} ms]`;
    console.log(
      `    ${g.size.toLocaleString("en-US").padStart(7)} products: search ${f(g.searchLat)}, ${g.search.rps.toFixed(0)} req/s; browse+facets ${f(g.browseLat)}, ${g.browse.rps.toFixed(0)} req/s`,
    );
  }
} finally {
  platform.stop();
}
process.exit(0);
