// Checkout end to end: POST /v1/orders → `confirmed` (reserve → pay → commit → carrier booking,
// four queue hops through the saga), p50/p99 at 1, 10 and 50 concurrent shoppers; then orders/s across 1, 10 and
// 100 SKUs to show how throughput scales with the number of inventory objects involved.
//
//   npm run bench -- checkout          (or: node_modules/.bin/node bench/checkout.bench.ts)
//   BENCH_PORT=8821 BENCH_RUNS=5 …     (defaults: port 8820, 3 runs per scenario, medians reported;
//                                       BENCH_SCALE multiplies the checkouts per run)
//
// It starts its own server (scripts/serve.ts: the deploy bundle on Miniflare) on a private port
// with a throwaway state directory (never `npm start`'s data) and the repo's wrangler.toml —
// including the local queue settings (max_batch_size 100, max_batch_timeout 0) that decide most of
// the end-to-end latency. Each shopper sends its own CF-Connecting-IP, as real shoppers would.
//
// A shopper = a fresh user with its own access token and a cart holding one unit of one SKU
// (prepared before the clock starts). The timed part starts when POST /v1/orders is sent and ends
// at the `confirmed` entry of the order's history (server clock = this machine's clock); the
// shopper learns it in the POST itself (`Prefer: wait`: the answer is the ended checkout, one
// request; bench/private-platform.ts checkOut, which follows the order with GET's long poll when a
// server answers 202), so the client's timing does not quantize the figure. Baseline, measured in the same run at the same
// concurrency: GET /health through the same gateway.
//
// Also: BENCH_PHASES=latency|throughput (default both), BENCH_SKUS=1,10,100 (throughput runs),
// BENCH_SERVER_ROOT=<checkout> serves another checkout of the repo with this client (bench/compare.ts
// runs the code before a change and after it back to back that way), BENCH_PROFILE=<dir> takes V8
// CPU profiles (bench/cpu-profile.ts) of the first 1-SKU throughput run and prints where the time
// went (BENCH_PROFILE_ISOLATES: a regex of workerd isolates, default the Worker's own;
// BENCH_PROFILE_INTERVAL_US: the sampling interval, default 1,000). The last line of output is
// `BENCH_RESULT {json}` for bench/compare.ts.

import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";
import path from "node:path";
import { type ApiClient, expectOk } from "../scripts/api-client.ts";
import { ROOT, waitUntilReady } from "../scripts/local.ts";
import { type CpuProfile, startCpuProfile, summarise, writeProfiles } from "./cpu-profile.ts";
import {
  checkOut,
  insertBenchSkus,
  signLocalAccessToken,
  startPrivatePlatform,
  stockAndShipTo,
} from "./private-platform.ts";

const PORT = Number(process.env.BENCH_PORT ?? 8820);
const BASE = `http://127.0.0.1:${PORT}`;
const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const SKUS = Array.from({ length: 100 }, (_, n) => `BENCH-CO-${String(n).padStart(3, "0")}`);
const SHIPPING = { name: "Bench Shopper", line1: "1 Load St", city: "Testville", postalCode: "00000", country: "US" };

const PHASES = (process.env.BENCH_PHASES ?? "latency,throughput").split(",");
const THROUGHPUT_SKUS = (process.env.BENCH_SKUS ?? "1,10,100").split(",").map(Number);
const SERVER_ROOT = process.env.BENCH_SERVER_ROOT ? path.resolve(process.env.BENCH_SERVER_ROOT) : ROOT;
const PROFILE_DIR = process.env.BENCH_PROFILE;
const INSPECTOR_PORT = PORT + 1000;
// serve.ts reads it from its environment, which the platform inherits.
if (PROFILE_DIR) process.env.INSPECTOR_PORT = String(INSPECTOR_PORT);

// --- a private local platform -------------------------------------------------------------------
const platform = startPrivatePlatform("checkout", PORT, { root: SERVER_ROOT });
insertBenchSkus(platform, SKUS);
const queueSettings = /queue = "saga-events"\nmax_batch_size = (\d+)\nmax_batch_timeout = (\d+)/.exec(
  readFileSync(path.join(SERVER_ROOT, "wrangler.toml"), "utf8"),
);
const token = signLocalAccessToken;
/** The flat US rate every bench order ships with (issue 14: physical goods need a shipping option). */
let shippingOptionId = "";

// --- one shopper ---------------------------------------------------------------------------------
interface Prepared {
  /** The shopper's own client: its access token, and its own CF-Connecting-IP (real shoppers
   * arrive from many addresses, so the per-IP edge limit stays per shopper). */
  api: ApiClient;
  cartId: string;
}
let shopperSeq = 0;
/** A new user with a one-line cart (not timed). */
async function prepare(sku: string): Promise<Prepared> {
  const n = ++shopperSeq;
  const ip = `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
  const api = platform.api({ token: await token(`bench-shopper-${randomUUID()}`, ["customer"]), ip });
  const cart = await expectOk("create cart", api.POST("/v1/carts"));
  await expectOk(
    "add item",
    api.POST("/v1/carts/{id}/items", { params: { path: { id: cart.id } }, body: { sku, quantity: 1 } }),
  );
  return { api, cartId: cart.id };
}
/**
 * The timed part: from sending POST /v1/orders to the order's `confirmed` history entry. The POST asks
 * to wait for the outcome (checkOut); `placeMs` ends at the order's first history entry, when the
 * server had placed it.
 */
async function checkout(p: Prepared): Promise<{ ms: number; status: string; placeMs: number }> {
  const { order, sentAt } = await checkOut(
    p.api,
    {
      cartId: p.cartId,
      payment: { method: "card", cardNumber: "4242424242424242" },
      shippingAddress: SHIPPING,
      shippingOptionId,
    },
    ["confirmed", "cancelled", "refunded"],
  );
  const at = (entry: { at: string } | undefined) => Date.parse(entry!.at) - sentAt;
  return { ms: at(order.history.at(-1)), status: order.status, placeMs: at(order.history[0]) };
}

/** Runs `total` prepared checkouts with `concurrency` shoppers at a time. */
async function run(prepared: Prepared[], concurrency: number) {
  const results: { ms: number; status: string; placeMs: number }[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < prepared.length) results.push(await checkout(prepared[next++]!));
    }),
  );
  return { results, seconds: (performance.now() - started) / 1000 };
}

async function prepareMany(n: number, skus: string[]): Promise<Prepared[]> {
  const out: Prepared[] = [];
  for (let i = 0; i < n; i += 25) {
    out.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(25, n - i) }, (_, k) => prepare(skus[(i + k) % skus.length]!)),
      )),
    );
  }
  return out;
}

/** Baseline at the same concurrency: GET /health, one request per "shopper" iteration. */
async function baseline(concurrency: number, total: number) {
  const times: number[] = [];
  const anonymous = platform.api();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < total) {
        const t = performance.now();
        // Through the same client as the shoppers, so both sides of the ratio pay the same for it.
        await anonymous.GET("/health", { headers: { "CF-Connecting-IP": `10.200.0.${next % 250}` } });
        times.push(performance.now() - t);
      }
    }),
  );
  return times;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};
const fmt = (ms: number) => `${ms.toFixed(0)} ms`;

try {
  await waitUntilReady(BASE, 120_000);
  const admin = platform.api({ token: await token("bench-admin", ["admin"]), ip: "10.255.255.1" });
  shippingOptionId = await stockAndShipTo(admin, SKUS, SHIPPING.country);

  // Warm-up: first object instantiations, JIT, queue consumer start.
  await run(await prepareMany(20, SKUS), 10);

  const loadBefore = loadavg()[0]!;
  console.log(
    `\nserving ${SERVER_ROOT}; queue saga-events: max_batch_size ${queueSettings?.[1]}, max_batch_timeout ${queueSettings?.[2]} s; the outcome in the POST (Prefer: wait; checkOut); state in ${platform.dir}; ${new Date().toISOString()}; load average ${loadBefore.toFixed(2)}\n`,
  );
  const latency: { c: number; p50: number; p99: number; place50: number; base50: number; base99: number; n: number }[] =
    [];
  const latencyScenarios = [
    [1, 30 * SCALE],
    [10, 150 * SCALE],
    [50, 400 * SCALE],
  ] as const;
  for (const [concurrency, total] of PHASES.includes("latency") ? latencyScenarios : []) {
    const runs: Omit<(typeof latency)[number], "c" | "n">[] = [];
    for (let r = 0; r < RUNS; r++) {
      const prepared = await prepareMany(total, SKUS);
      await platform.untilIdle();
      const base = await baseline(concurrency, total);
      const { results } = await run(prepared, concurrency);
      const bad = results.filter((x) => x.status !== "confirmed").length;
      if (bad) throw new Error(`${bad} checkouts did not confirm`);
      const ms = results.map((x) => x.ms);
      runs.push({
        p50: pct(ms, 50),
        p99: pct(ms, 99),
        place50: pct(
          results.map((x) => x.placeMs),
          50,
        ),
        base50: pct(base, 50),
        base99: pct(base, 99),
      });
    }
    const row = {
      c: concurrency,
      n: total,
      p50: median(runs.map((x) => x.p50)),
      p99: median(runs.map((x) => x.p99)),
      place50: median(runs.map((x) => x.place50)),
      base50: median(runs.map((x) => x.base50)),
      base99: median(runs.map((x) => x.base99)),
    };
    latency.push(row);
    console.log(
      `${String(concurrency).padStart(2)} shoppers, ${String(total).padStart(4)} checkouts × ${RUNS}: POST→confirmed p50 ${fmt(row.p50)}, p99 ${fmt(row.p99)} (placed p50 ${fmt(row.place50)}: POST sent → the order's first history entry); baseline GET /health p50 ${fmt(row.base50)}, p99 ${fmt(row.base99)}; p99 per run: ${runs.map((x) => fmt(x.p99)).join(", ")}`,
    );
  }

  console.log("");
  const throughput: { skus: number; rate: number; cpu: number }[] = [];
  for (const n of PHASES.includes("throughput") ? THROUGHPUT_SKUS : []) {
    const rates: number[] = [];
    const cpuPerOrder: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const prepared = await prepareMany(300 * SCALE, SKUS.slice(0, n));
      await platform.untilIdle();
      const profiling =
        PROFILE_DIR && n === THROUGHPUT_SKUS[0] && r === 0
          ? await startCpuProfile(INSPECTOR_PORT, {
              isolates: new RegExp(process.env.BENCH_PROFILE_ISOLATES ?? "^core:user:edgepulse$"),
              samplingIntervalUs: Number(process.env.BENCH_PROFILE_INTERVAL_US ?? 1000),
            })
          : undefined;
      const cpuBefore = platform.serverCpuMs();
      const { results, seconds } = await run(prepared, 50);
      const confirmed = results.filter((x) => x.status === "confirmed").length;
      // Settled work only: the consumers may still be projecting/notifying the last orders.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      if (profiling) {
        const profiles: Map<string, CpuProfile> = await profiling.stop();
        writeProfiles(profiles, PROFILE_DIR!);
        console.log(`V8 CPU profile of the run above (${confirmed} orders), written to ${PROFILE_DIR}:`);
        const bundleFile = path.join(SERVER_ROOT, ".local", "serve-dist", "index.js");
        console.log(summarise(profiles, { bundleFile, perUnit: { count: confirmed, name: "order" }, top: 40 }));
      }
      cpuPerOrder.push((platform.serverCpuMs() - cpuBefore) / confirmed);
      rates.push(confirmed / seconds);
    }
    const rate = median(rates);
    const cpu = median(cpuPerOrder);
    throughput.push({ skus: n, rate, cpu });
    console.log(
      `${String(n).padStart(3)} SKUs: ${rate.toFixed(0)} orders/s confirmed (50 shoppers, ${300 * SCALE} orders × ${RUNS}; per run: ${rates.map((x) => x.toFixed(0)).join(", ")}); server CPU ${cpu.toFixed(1)} ms per order (incl. the shoppers' order reads)`,
    );
  }

  console.log("\nsummary");
  for (const r of latency) {
    console.log(
      `  ${String(r.c).padStart(2)} concurrent: e2e p50 ${fmt(r.p50)} / p99 ${fmt(r.p99)}  (= ×${(r.p50 / r.base50).toFixed(0)} / ×${(r.p99 / r.base99).toFixed(0)} the GET /health baseline)${r.c === 50 ? `; target p99 < 1000 ms: ${r.p99 < 1000 ? "met" : "NOT met"}` : ""}`,
    );
  }
  const one = throughput[0]!.rate;
  for (const t of throughput)
    console.log(
      `  ${String(t.skus).padStart(3)} SKUs: ${t.rate.toFixed(0)} orders/s (×${(t.rate / one).toFixed(2)} vs 1 SKU), ${t.cpu.toFixed(1)} CPU-ms/order`,
    );
  console.log(
    `BENCH_RESULT ${JSON.stringify({ root: SERVER_ROOT, loadBefore, loadAfter: loadavg()[0], latency, throughput })}`,
  );
} finally {
  platform.stop();
}
process.exit(0);
