// Reservations/s on ONE hot SKU object with 50 concurrent clients through the public API, p50/p99,
// zero oversell verified at the end, and how throughput scales across many SKUs.
//
//   npm run bench -- inventory          (or: node_modules/.bin/node bench/inventory.bench.ts)
//   BENCH_PORT=8811 BENCH_RUNS=5 …      (defaults: port 8810, 3 runs per scenario, medians reported)
//
// It starts its own server (scripts/serve.ts: the deploy bundle on Miniflare, no wrangler proxy) on
// a private port with a throwaway state directory, so it never touches `npm start`'s data. Every request is a real HTTP request through the whole gateway:
// request id, tracing, CORS, IP rate limit, ES256 JWT verification, zod validation, then one
// Durable Object RPC. The baseline, measured in the same run, is GET /health through the same
// gateway (no auth, no I/O), so the ratio says what auth + validation + the object cost.

import autocannon from "autocannon";
import { expectOk } from "../scripts/api-client.ts";
import { waitUntilReady } from "../scripts/local.ts";
import { insertBenchSkus, signLocalAccessToken, startPrivatePlatform } from "./private-platform.ts";

const PORT = Number(process.env.BENCH_PORT ?? 8810);
const BASE = `http://127.0.0.1:${PORT}`;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CLIENTS = 50;
const REQUESTS_PER_RUN = Number(process.env.BENCH_REQUESTS ?? 6000);
const HOT_SKU = "BENCH-HOT";
const SPREAD_SKUS = Array.from({ length: 100 }, (_, n) => `BENCH-S-${String(n).padStart(3, "0")}`);
const OVERSELL_SKU = "BENCH-OVERSELL";
const OVERSELL_UNITS = 2000;

// --- a private local platform (scripts/serve.ts; request logs stay on, as in production) ---------
const platform = startPrivatePlatform("inventory", PORT);
const allSkus = [HOT_SKU, OVERSELL_SKU, ...SPREAD_SKUS];
insertBenchSkus(platform, allSkus);
const token = (roles: string[]) => signLocalAccessToken(`bench-${roles[0]}`, roles);

/** The stock level of `sku` as the public API reports it. */
const stockLevel = (sku: string) =>
  expectOk(`GET /v1/inventory/${sku}`, platform.api().GET("/v1/inventory/{sku}", { params: { path: { sku } } }));

// --- load ---------------------------------------------------------------------------------------
interface Run {
  rps: number;
  p50: number;
  p99: number;
  ok: number;
  other: number;
  statuses: Record<string, { count: number }>;
}

let orderSeq = 0;
// Each request carries one of 256 client addresses, as 50 real clients would: the per-IP edge limit
// (10k/min) stays on the path and is paid for, without throttling one shared 127.0.0.1.
let ipSeq = 0;
const nextIp = () => {
  ipSeq = (ipSeq + 1) % 256;
  return `10.1.${ipSeq}.1`;
};
/** One fixed-size run (every request completes, so server-side counts can be checked exactly). */
async function load(opts: {
  amount: number;
  method: "GET" | "POST";
  path: () => string;
  auth?: string;
  body?: () => string;
}) {
  const latencies: number[] = [];
  const startedAt = performance.now();
  let lastResponseAt = startedAt;
  let finish: (result: autocannon.Result) => void = () => {};
  let fail: (error: Error) => void = () => {};
  const done = new Promise<autocannon.Result>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });
  const instance = autocannon(
    {
      url: BASE,
      connections: CLIENTS,
      amount: opts.amount,
      // Long enough that nothing is abandoned mid-flight: every request's outcome is counted.
      timeout: 60,
      requests: [
        {
          method: opts.method,
          headers: {
            ...(opts.auth ? { authorization: `Bearer ${opts.auth}` } : {}),
            ...(opts.method === "POST" ? { "content-type": "application/json" } : {}),
          },
          setupRequest: (req) => ({
            ...req,
            headers: { ...req.headers, "cf-connecting-ip": nextIp() },
            path: opts.path(),
            ...(opts.method === "POST"
              ? { body: opts.body?.() ?? JSON.stringify({ orderId: `bench-${++orderSeq}`, quantity: 1 }) }
              : {}),
          }),
        },
      ],
    },
    (error, result) => (error ? fail(error) : finish(result)),
  );
  instance.on("response", (_client: unknown, _status: number, _bytes: number, responseTime: number) => {
    latencies.push(responseTime);
    lastResponseAt = performance.now();
  });
  const result = await done;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? Number.NaN;
  const ok = result["2xx"];
  return {
    // autocannon's own duration is whole ticks of its 1 s sampler; the time to the last response
    // is what a fixed-size run actually took.
    rps: latencies.length / ((lastResponseAt - startedAt) / 1000),
    p50: Math.round(pct(0.5)),
    p99: Math.round(pct(0.99)),
    ok,
    other: result.non2xx + result.errors + result.timeouts,
    statuses: result.statusCodeStats as Record<string, { count: number }>,
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function scenario(name: string, opts: Parameters<typeof load>[0]): Promise<Run> {
  const runs: Run[] = [];
  for (let r = 0; r < RUNS; r++) runs.push(await load(opts));
  const out = {
    rps: median(runs.map((r) => r.rps)),
    p50: median(runs.map((r) => r.p50)),
    p99: median(runs.map((r) => r.p99)),
    ok: runs.reduce((s, r) => s + r.ok, 0),
    other: runs.reduce((s, r) => s + r.other, 0),
    statuses: {} as Record<string, { count: number }>,
  };
  for (const r of runs) {
    for (const [code, { count }] of Object.entries(r.statuses)) {
      out.statuses[code] = { count: (out.statuses[code]?.count ?? 0) + count };
    }
  }
  console.log(
    `${name.padEnd(44)} ${out.rps.toFixed(0).padStart(6)} req/s   p50 ${String(out.p50).padStart(4)} ms   p99 ${String(out.p99).padStart(4)} ms   (2xx ${out.ok}, other ${out.other} ${JSON.stringify(Object.fromEntries(Object.entries(out.statuses).map(([k, v]) => [k, v.count])))}; runs: ${runs.map((r) => r.rps.toFixed(0)).join(", ")})`,
  );
  return out;
}

try {
  await waitUntilReady(BASE, 120_000);
  // Reservations over HTTP are admin-only (issue 9, finding 5): operations reserve with an admin token.
  const [admin, reserver] = await Promise.all([token(["admin"]), token(["admin"])]);
  // Plenty of stock for the throughput runs (they measure reservations, not sold-out answers).
  const plenty = 100_000_000;
  for (let i = 0; i < allSkus.length; i += 100) {
    const items = allSkus
      .slice(i, i + 100)
      .map((sku) => ({ sku, onHand: sku === OVERSELL_SKU ? OVERSELL_UNITS : plenty }));
    await expectOk(
      "PUT /v1/admin/inventory",
      platform.api({ token: admin }).PUT("/v1/admin/inventory", { body: { items } }),
    );
  }

  const reserveOn = (skus: string[]) => {
    let n = 0;
    return () => `/v1/admin/inventory/${skus[n++ % skus.length]}/reservations`;
  };
  // Warm-up: JIT, first object instantiation, connection setup.
  await load({ amount: 1000, method: "GET", path: () => "/health" });
  await load({ amount: 1000, method: "POST", path: reserveOn(SPREAD_SKUS), auth: reserver });
  const hotWarmup = await load({ amount: 500, method: "POST", path: reserveOn([HOT_SKU]), auth: reserver });

  console.log(
    `\n${CLIENTS} clients, ${REQUESTS_PER_RUN} requests per run, median of ${RUNS} runs; ${new Date().toISOString()}\n`,
  );
  const baseline = await scenario("baseline: GET /health", {
    amount: REQUESTS_PER_RUN,
    method: "GET",
    path: () => "/health",
  });
  // Where the time goes: the same request refused right after JWT verification + zod validation.
  const authOnly = await scenario("auth + validation only (400, no object call)", {
    amount: REQUESTS_PER_RUN,
    method: "POST",
    path: () => `/v1/admin/inventory/${HOT_SKU}/reservations`,
    auth: reserver,
    body: () => "{}",
  });
  const hot = await scenario("reserve, 1 hot SKU", {
    amount: REQUESTS_PER_RUN,
    method: "POST",
    path: reserveOn([HOT_SKU]),
    auth: reserver,
  });
  const spread: [number, Run][] = [];
  for (const n of [10, 100]) {
    spread.push([
      n,
      await scenario(`reserve, spread over ${n} SKUs`, {
        amount: REQUESTS_PER_RUN,
        method: "POST",
        path: reserveOn(SPREAD_SKUS.slice(0, n)),
        auth: reserver,
      }),
    ]);
  }

  // Every 2xx reservation must be on the books, no more and no fewer.
  const hotLevel = await stockLevel(HOT_SKU);
  const hotExpected = hotWarmup.ok + hot.ok;
  if (hotLevel.reserved !== hotExpected) {
    throw new Error(`hot SKU: ${String(hotLevel.reserved)} reserved but ${hotExpected} reservations answered 2xx`);
  }

  // Oversell check: twice as many distinct orders as units, all at once on one SKU.
  const sellout = await load({
    amount: OVERSELL_UNITS * 2,
    method: "POST",
    path: reserveOn([OVERSELL_SKU]),
    auth: reserver,
  });
  const level = await stockLevel(OVERSELL_SKU);
  const conflicts = sellout.statuses["409"]?.count ?? 0;
  const oversold = sellout.ok !== OVERSELL_UNITS || level.reserved !== OVERSELL_UNITS || level.available !== 0;
  console.log(
    `\nsell-out: ${OVERSELL_UNITS * 2} orders for ${OVERSELL_UNITS} units → ${sellout.ok} reserved (200), ${conflicts} out of stock (409); level ${JSON.stringify(level)}`,
  );
  if (oversold || conflicts !== OVERSELL_UNITS) throw new Error("OVERSELL or lost reservation detected");
  console.log("zero oversell: OK");

  console.log(`\nsummary (medians)`);
  console.log(`  baseline GET /health           ${baseline.rps.toFixed(0)} req/s, p99 ${baseline.p99} ms`);
  console.log(`  auth + validation only          ${authOnly.rps.toFixed(0)} req/s, p99 ${authOnly.p99} ms`);
  console.log(
    `  hot SKU reservations           ${hot.rps.toFixed(0)} /s (${((hot.rps / baseline.rps) * 100).toFixed(0)}% of baseline), p50 ${hot.p50} ms, p99 ${hot.p99} ms; target ≥ 1500/s, p99 < 100 ms`,
  );
  for (const [n, r] of spread) {
    console.log(
      `  ${`${n} SKUs`.padEnd(30)} ${r.rps.toFixed(0)} /s (×${(r.rps / hot.rps).toFixed(2)} vs hot), p99 ${r.p99} ms`,
    );
  }
} finally {
  platform.stop();
}
process.exit(0);
