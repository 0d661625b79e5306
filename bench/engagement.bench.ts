// Product page over GraphQL vs the equivalent REST calls, and recommendations at 10k products.
//
//   npm run bench -- engagement          (or: node_modules/.bin/node bench/engagement.bench.ts)
//   BENCH_PORT=8862 BENCH_RUNS=5 BENCH_SAMPLES=300 …   (defaults: 8860, 3 runs, 200 samples)
//
// It starts its own server (scripts/serve.ts) on a private port with a throwaway state directory,
// loads the demo generator's 10,000-product catalog, and precomputed engagement data written
// straight to D1 (what the read-model consumer and the review route would have built): ~10
// bought-together partners per product (both directions), units sold for every product, 15
// reviews and 2 images on each of the 1,000 products the page requests hit.
//
// A "product page" is what a storefront shows: the product (price, stock, rating, images), its
// newest 10 reviews and its recommendations. REST: GET /v1/products/:id, /reviews?limit=10 and
// /recommendations, sent in parallel as a browser would; GraphQL: one POST /v1/graphql selecting
// the same fields. The one-at-a-time figures use a product nobody asked for before in every
// sample, so REST misses the edge cache (its product and recommendations reads are cached 30 s
// per product, keyed by the catalog version; a miss also pays the local Cache API write) and
// GraphQL is never cached; "REST warm" repeats products REST has already served. Throughput
// walks on through products not asked for yet, so REST misses its cache there too. Baseline, same run:
// GET /health through the same gateway.
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import autocannon from "autocannon";
import { catalogSql, generateProducts } from "../scripts/catalog-generator.ts";
import { waitUntilReady, wrangler } from "../scripts/local.ts";
import { startPrivatePlatform } from "./private-platform.ts";
import { median, quantile } from "./stats.ts";

const PORT = Number(process.env.BENCH_PORT ?? 8860);
const BASE = `http://127.0.0.1:${PORT}`;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 200);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const PRODUCTS = 10_000;
const PAGE_PRODUCTS = 1000;

const platform = startPrivatePlatform("engagement", PORT);
let ipSeq = 0;
const nextIp = () => `10.1.${(ipSeq >> 8) & 255}.${ipSeq++ & 255}`;

/** Deterministic pseudo-random numbers (mulberry32), so every run loads the same data. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function loadData(): string[] {
  const products = generateProducts(PRODUCTS);
  const sql = catalogSql(products);
  const rand = random(13);
  const byCategory = new Map<string, string[]>();
  for (const p of products) byCategory.set(p.categoryId, [...(byCategory.get(p.categoryId) ?? []), p.id]);
  const pairs = new Map<string, number>();
  for (const p of products) {
    const peers = byCategory.get(p.categoryId) ?? [];
    for (let k = 0; k < 5; k++) {
      const other = peers[Math.floor(rand() * peers.length)]!;
      if (other === p.id) continue;
      const orders = 1 + Math.floor(rand() * 40);
      for (const key of [`${p.id}|${other}`, `${other}|${p.id}`]) pairs.set(key, (pairs.get(key) ?? 0) + orders);
    }
  }
  const chunks = <T>(xs: T[], n: number) =>
    Array.from({ length: Math.ceil(xs.length / n) }, (_, i) => xs.slice(i * n, i * n + n));
  for (const chunk of chunks([...pairs], 500)) {
    sql.push(
      `INSERT INTO product_pairs (product_id, other_id, orders) VALUES ${chunk
        .map(([key, orders]) => {
          const [a, b] = key.split("|");
          return `('${a}', '${b}', ${orders})`;
        })
        .join(", ")};`,
    );
  }
  for (const chunk of chunks(products, 500)) {
    sql.push(
      `INSERT INTO product_sales (product_id, units) VALUES ${chunk.map((p) => `('${p.id}', ${Math.floor(rand() * 500)})`).join(", ")};`,
    );
  }
  const pageIds = Array.from({ length: PAGE_PRODUCTS }, (_, i) => products[(i * 7919) % PRODUCTS]!.id);
  for (const id of pageIds) {
    let sum = 0;
    const reviews: string[] = [];
    for (let r = 0; r < 15; r++) {
      const rating = 1 + Math.floor(rand() * 5);
      sum += rating;
      const at = new Date(Date.UTC(2026, 10, 1 + r)).toISOString();
      reviews.push(
        `('rev_${id}_${r}', '${id}', 'u-bench-${r}', 'Reviewer ${r}', ${rating}, 'Review ${r}', 'Plain text body of review ${r}, a few sentences long to be realistic.', '${at}')`,
      );
    }
    sql.push(
      `INSERT INTO reviews (id, product_id, user_id, author_name, rating, title, body, created_at) VALUES ${reviews.join(", ")};`,
      `INSERT INTO product_ratings (product_id, rating_sum, rating_count) VALUES ('${id}', ${sum}, 15);`,
      `INSERT INTO product_media (product_id, key, content_type, size) VALUES ('${id}', '${"a".repeat(60)}${id.slice(-4)}.png', 'image/png', 48213), ('${id}', '${"b".repeat(60)}${id.slice(-4)}.jpg', 'image/jpeg', 90331);`,
    );
  }
  const file = path.join(platform.dir, "engagement.sql");
  writeFileSync(file, sql.join("\n"));
  wrangler(["d1", "execute", "DB", "--local", "--persist-to", platform.state, "--file", file], { quiet: true });
  return pageIds;
}

const PAGE_QUERY = `query Page($id: ID!) { product(id: $id) {
  id sku name description category categoryName price { amount currency } available status createdAt updatedAt
  rating { average count } media { key url contentType size }
  reviews(first: 10) { items { id productId rating title body authorName createdAt } nextCursor }
  recommendations { id sku name description category categoryName price { amount currency } available status
    createdAt updatedAt rating { average count } }
} }`;

async function restPage(id: string): Promise<void> {
  const headers = { "cf-connecting-ip": nextIp() };
  const responses = await Promise.all(
    [`/v1/products/${id}`, `/v1/products/${id}/reviews?limit=10`, `/v1/products/${id}/recommendations`].map((p) =>
      fetch(`${BASE}${p}`, { headers }),
    ),
  );
  for (const res of responses) {
    await res.arrayBuffer();
    if (res.status !== 200) throw new Error(`REST page ${id}: HTTP ${res.status}`);
  }
}

async function graphqlPage(id: string): Promise<void> {
  const res = await fetch(`${BASE}/v1/graphql`, {
    method: "POST",
    headers: { "content-type": "application/json", "cf-connecting-ip": nextIp() },
    body: JSON.stringify({ query: PAGE_QUERY, variables: { id } }),
  });
  const body = (await res.json()) as { data?: { product?: { reviews: { items: unknown[] } } }; errors?: unknown };
  if (res.status !== 200 || body.errors || body.data?.product?.reviews.items.length !== 10) {
    throw new Error(`GraphQL page ${id}: HTTP ${res.status} ${JSON.stringify(body).slice(0, 300)}`);
  }
}

/** Worker-side time of the last catalog miss (Server-Timing `catalog;dur`), per request. */
const workerTimes: number[] = [];

async function single(path: string, headers: Record<string, string> = {}): Promise<void> {
  const res = await fetch(`${BASE}${path}`, { headers: { ...headers, "cf-connecting-ip": nextIp() } });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`${path}: HTTP ${res.status}`);
  const dur = /catalog;dur=([\d.]+)/.exec(res.headers.get("server-timing") ?? "")?.[1];
  if (dur) workerTimes.push(Number(dur));
}

interface Latency {
  p50: number;
  p99: number;
}

/** One at a time (no queueing): what a shopper waits for, p50 and p99 over SAMPLES. */
async function latency(name: string, run: (i: number) => Promise<void>): Promise<Latency> {
  const samples: number[] = [];
  for (let i = 0; i < SAMPLES; i++) {
    const started = performance.now();
    await run(i);
    samples.push(performance.now() - started);
  }
  const out = { p50: quantile(samples, 0.5), p99: quantile(samples, 0.99) };
  console.log(`${name.padEnd(44)} p50 ${out.p50.toFixed(1).padStart(6)} ms   p99 ${out.p99.toFixed(1).padStart(6)} ms`);
  return out;
}

/** Requests per second with CONNECTIONS concurrent connections, median of RUNS × SECONDS. */
async function throughput(name: string, requests: autocannon.Request[], requestsPerPage = 1): Promise<number> {
  const rates: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const result = await autocannon({ url: BASE, connections: CONNECTIONS, duration: SECONDS, requests });
    const failed = result.non2xx + result.errors + result.timeouts;
    if (failed > 0) throw new Error(`${name}: ${failed} requests did not answer 2xx`);
    rates.push(result.requests.total / result.duration / requestsPerPage);
  }
  const rate = median(rates);
  console.log(
    `${name.padEnd(44)} ${rate.toFixed(0).padStart(6)} /s   (runs: ${rates.map((x) => x.toFixed(0)).join(", ")})`,
  );
  return rate;
}

try {
  // Load first, then wait for the server: a keep-alive connection from the readiness check left
  // idle through the ~2 min load was closed by the server, and undici's reuse of it failed (EPIPE).
  const started = Date.now();
  const ids = loadData();
  console.log(`loaded ${PRODUCTS.toLocaleString("en-US")} products + engagement data in ${Date.now() - started} ms`);
  await waitUntilReady(BASE, 120_000);
  const id = (i: number) => ids[i % ids.length]!;

  // Warm-up (JIT, SQLite page cache) on products the measurements below do not use.
  const COLD_FROM = 100;
  for (let i = 0; i < 60; i++) await Promise.all([restPage(id(i)), graphqlPage(id(i)), single("/health")]);

  console.log(`\n1 at a time, ${SAMPLES} samples (${new Date().toISOString()}):`);
  const health = await latency("baseline: GET /health", () => single("/health"));
  workerTimes.length = 0;
  const recs = await latency("GET /recommendations, cache miss (10k)", (i) =>
    single(`/v1/products/${id(COLD_FROM + i)}/recommendations`),
  );
  const recsWorker = { p50: quantile(workerTimes, 0.5), p99: quantile(workerTimes, 0.99) };
  console.log(
    `${"  its Worker time (Server-Timing catalog)".padEnd(44)} p50 ${recsWorker.p50.toFixed(1).padStart(6)} ms   p99 ${recsWorker.p99.toFixed(1).padStart(6)} ms`,
  );
  const pagesFrom = COLD_FROM + SAMPLES;
  const rest = await latency("product page: 3 REST calls in parallel", (i) => restPage(id(pagesFrom + i)));
  const gql = await latency("product page: 1 GraphQL query", (i) => graphqlPage(id(pagesFrom + SAMPLES + i)));
  const restWarm = await latency("product page: REST, edge cache warm", (i) => restPage(id(pagesFrom + i)));

  console.log(`\nthroughput, ${CONNECTIONS} connections, median of ${RUNS} × ${SECONDS} s:`);
  const withIp = (req: autocannon.Request) => ({ ...req, headers: { ...req.headers, "cf-connecting-ip": nextIp() } });
  let n = 0;
  const healthRps = await throughput("baseline: GET /health (req/s)", [
    { method: "GET", path: "/health", setupRequest: withIp },
  ]);
  const restPages = await throughput(
    "product pages via REST (pages/s, 3 req each)",
    [
      {
        method: "GET",
        setupRequest: (req) => {
          const i = n++;
          const suffix = ["", "/reviews?limit=10", "/recommendations"][i % 3];
          return withIp({ ...req, path: `/v1/products/${id(Math.floor(i / 3))}${suffix}` });
        },
      },
    ],
    3,
  );
  const gqlPages = await throughput("product pages via GraphQL (pages/s)", [
    {
      method: "POST",
      path: "/v1/graphql",
      headers: { "content-type": "application/json" },
      setupRequest: (req) =>
        withIp({ ...req, body: JSON.stringify({ query: PAGE_QUERY, variables: { id: id(n++) } }) }),
    },
  ]);

  console.log("\nsummary:");
  console.log(
    `  recommendations on a cache miss: p50 ${recs.p50.toFixed(1)} / p99 ${recs.p99.toFixed(1)} ms end to end, Worker time p50 ${recsWorker.p50.toFixed(1)} / p99 ${recsWorker.p99.toFixed(1)} ms (target p99 < 20 ms at 10k products); baseline /health p50 ${health.p50.toFixed(1)} / p99 ${health.p99.toFixed(1)} ms`,
  );
  console.log(
    `  product page p50 / p99: GraphQL ${gql.p50.toFixed(1)} / ${gql.p99.toFixed(1)} ms vs REST cold ${rest.p50.toFixed(1)} / ${rest.p99.toFixed(1)} ms (GraphQL ×${(gql.p50 / rest.p50).toFixed(2)} / ×${(gql.p99 / rest.p99).toFixed(2)}), REST warm ${restWarm.p50.toFixed(1)} / ${restWarm.p99.toFixed(1)} ms`,
  );
  console.log(
    `  product pages/s: GraphQL ${gqlPages.toFixed(0)} vs REST (edge-cache misses) ${restPages.toFixed(0)} (×${(gqlPages / restPages).toFixed(2)}); baseline ${healthRps.toFixed(0)} req/s`,
  );
} catch (error) {
  // The server's own log says why it stopped answering (it is removed with the state directory).
  console.error(readFileSync(path.join(platform.dir, "server.log"), "utf8").split("\n").slice(-40).join("\n"));
  throw error;
} finally {
  platform.stop();
}
process.exit(0);
