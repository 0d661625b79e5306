// Sales summary: GET /v1/admin/analytics/summary for 90 days over 100,000 seeded orders, read from
// the rollups, against the naive way (scanning the orders read model, lines unpacked with json_each)
// measured in the same run on the same database.
//
//   npm run bench -- analytics          (or: node_modules/.bin/node bench/analytics.bench.ts)
//   BENCH_PORT=8806 BENCH_ORDERS=100000 BENCH_SAMPLES=200 …
//   BENCH_BASELINE_ROOT=/tmp/before  (a checkout of older code, e.g. `git worktree add /tmp/before
//   <rev>` plus a node_modules symlink and .dev.vars: served on BENCH_PORT+1 with the same data and
//   called alternately with this code's endpoint, for a same-run before → after)
//
// Seeding: orders over the last 90 days (1–3 lines over 1,200 SKUs; 93 % paid, 7 % declined, 3 %
// of paid ones partly refunded) and 1.4 carts per order. Their events go through the analytics
// consumer's own contribution function (domain/analytics/rollup.ts), aggregated as the consumer's
// upserts would leave them, and the orders into orders_view; both written straight into the
// private platform's D1 file (node:sqlite) while the Worker is idle, since pushing 400k events
// through the local queue would take far longer than the measurement. Then:
//   1. the endpoint through the whole gateway (HTTP, admin token), p50/p99 over BENCH_SAMPLES calls,
//      alternated with the same endpoint for one day and with GET /health (the floors);
//   2. the same summary code (analyticsSummary) on that file in-process, and the naive scan of
//      orders_view for the same figures: p50/p99 of each and the ratio;
//   3. a correctness check: both ways agree on orders, revenue and the best seller, and the top 10
//      read from the week/month/day buckets equals the top 10 summed from every product-day.
import { readdirSync } from "node:fs";
import { loadavg } from "node:os";
import path from "node:path";
import { DatabaseSync } from "node:sqlite";
import { runnerImport } from "vite";
import { coverDays, periodsOf } from "../domain/analytics/periods.ts";
import { contributionOf, ROLLUP_COUNTERS, type RollupCounters } from "../domain/analytics/rollup.ts";
import type * as SummaryModule from "../domain/analytics/summary.ts";
import { waitUntilReady } from "../scripts/local.ts";
import { signLocalAccessToken, startPrivatePlatform } from "./private-platform.ts";

// The very summary code the route runs (domain/analytics/summary.ts), loaded through Vite's module
// runner: its DomainError uses TypeScript syntax that Node's type stripping cannot run.
const { analyticsSummary } = (
  await runnerImport<typeof SummaryModule>(path.join(import.meta.dirname, "..", "domain", "analytics", "summary.ts"))
).module;

const PORT = Number(process.env.BENCH_PORT ?? 8806);
const ORDERS = Number(process.env.BENCH_ORDERS ?? 100_000);
const SAMPLES = Number(process.env.BENCH_SAMPLES ?? 200);
const BASELINE_ROOT = process.env.BENCH_BASELINE_ROOT;
const DAYS = 90;
const SKUS = 1200;
const DAY_MS = 86_400_000;

// --- deterministic data ---------------------------------------------------------------------------
// mulberry32: a small deterministic PRNG with integer math (an LCG in float math loses bits).
let seed = 42;
const random = () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
};

const percentile = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
};
const fmt = (ms: number) => `${ms.toFixed(2)} ms`;

const platform = startPrivatePlatform("analytics", PORT);
// BENCH_BASELINE_ROOT: a checkout of the code before a change, served beside this one on the same
// seeded data, its endpoint called alternately with this one's (same-run before → after).
const baseline = BASELINE_ROOT ? startPrivatePlatform("analytics-baseline", PORT + 1, { root: BASELINE_ROOT }) : null;
await waitUntilReady(platform.baseUrl, 240_000);
if (baseline) await waitUntilReady(baseline.baseUrl, 240_000);
function openD1File(state: string): DatabaseSync {
  const dbDir = path.join(state, "v3", "d1", "miniflare-D1DatabaseObject");
  const dbFile = readdirSync(dbDir).find((f) => f.endsWith(".sqlite") && f !== "metadata.sqlite");
  if (!dbFile) throw new Error(`no D1 database file under ${dbDir}`);
  const file = new DatabaseSync(path.join(dbDir, dbFile));
  file.exec("PRAGMA busy_timeout = 10000");
  return file;
}
const db = openD1File(platform.state);

console.log(`seeding ${ORDERS.toLocaleString("en-US")} orders over ${DAYS} days …`);
const seedStarted = Date.now();
const end = Math.floor(Date.now() / 3_600_000) * 3_600_000;
const start = end - DAYS * DAY_MS;
const hourly = new Map<string, RollupCounters>();
const daily = new Map<string, RollupCounters>();
const products = new Map<string, { day: string; sku: string; name: string; units: number; revenue: number }>();
const periods = new Map<string, { span: string; start: string; sku: string; units: number; revenue: number }>();
const add = (map: Map<string, RollupCounters>, key: string, counters: Partial<RollupCounters>) => {
  const row = map.get(key) ?? (Object.fromEntries(ROLLUP_COUNTERS.map((k) => [k, 0])) as unknown as RollupCounters);
  for (const k of ROLLUP_COUNTERS) row[k] += counters[k] ?? 0;
  map.set(key, row);
};
const orderRows: (string | number | null)[][] = [];
const count = (event: Parameters<typeof contributionOf>[0]) => {
  const c = contributionOf(event);
  if (!c) return;
  add(hourly, `${c.hour}|${c.currency}`, c.counters);
  add(daily, `${c.day}|${c.currency}`, c.counters);
  for (const p of c.products) {
    const key = `${c.day}|${p.sku}`;
    const row = products.get(key) ?? { day: c.day, sku: p.sku, name: p.name, units: 0, revenue: 0 };
    row.units += p.units;
    row.revenue += p.revenue;
    products.set(key, row);
    for (const [span, start] of Object.entries(periodsOf(c.day))) {
      const periodKey = `${span}|${start}|${p.sku}`;
      const period = periods.get(periodKey) ?? { span, start, sku: p.sku, units: 0, revenue: 0 };
      period.units += p.units;
      period.revenue += p.revenue;
      periods.set(periodKey, period);
    }
  }
};
for (let i = 0; i < ORDERS; i++) {
  const at = new Date(start + Math.floor(random() * (end - start))).toISOString();
  const lines = Array.from({ length: 1 + Math.floor(random() * 3) }, () => {
    const n = Math.floor(random() * SKUS);
    const unit = 500 + (n % 50) * 100;
    const quantity = 1 + Math.floor(random() * 3);
    return {
      sku: `BENCH-${String(n).padStart(5, "0")}`,
      productId: `p-${n}`,
      name: `Bench product ${n}`,
      quantity,
      unitPrice: { amount: unit, currency: "USD" },
      lineTotal: { amount: unit * quantity, currency: "USD" },
    };
  });
  const total = lines.reduce((s, l) => s + l.lineTotal.amount, 0);
  const paid = random() < 0.93;
  const refunded = paid && random() < 0.03 ? Math.floor(total / 2) : 0;
  const order = {
    reason: paid ? undefined : "payment_declined",
    total: { amount: total, currency: "USD" },
    items: lines,
  };
  const id = `ord_${i.toString(16).padStart(24, "0")}`;
  const event = (type: string, extra: Record<string, unknown> = {}) => ({
    id: `${id}:${type}`,
    type,
    occurredAt: at,
    order,
    ...extra,
  });
  count({
    id: `${id}:cart`,
    type: "cart.created",
    version: 1,
    cartId: id,
    userId: "u",
    occurredAt: at,
  });
  if (random() < 0.4)
    count({ id: `${id}:cart2`, type: "cart.created", version: 1, cartId: id, userId: "u", occurredAt: at });
  count({
    id: `${id}:checkout`,
    type: "cart.checked_out",
    version: 1,
    cartId: id,
    userId: "u",
    orderId: id,
    total: order.total,
    occurredAt: at,
  });
  count(event("order.placed"));
  count(paid ? event("order.paid") : event("order.cancelled"));
  if (refunded) count(event("order.refunded", { amount: refunded }));
  orderRows.push([
    id,
    `u-${i % 5000}`,
    paid ? (refunded ? "confirmed" : "confirmed") : "cancelled",
    paid ? null : "payment_declined",
    total,
    lines.length,
    JSON.stringify(lines),
    paid ? (refunded ? "partially_refunded" : "captured") : "failed",
    refunded,
    at,
    at,
  ]);
}

/** Writes the seeded orders and rollups into one platform's D1 file (the week/month rows if it has the table). */
function writeSeedData(file: DatabaseSync): void {
  file.exec("BEGIN");
  const insertOrder = file.prepare(
    `INSERT INTO orders_view (id, user_id, status, reason, total_amount, currency, item_count, items, payment_status,
       refunded_amount, revision, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'USD', ?, ?, ?, ?, 5, ?, ?)`,
  );
  for (const row of orderRows) insertOrder.run(...row);
  const columns = ROLLUP_COUNTERS.map((k) => k.replace(/[A-Z]/g, (ch) => `_${ch.toLowerCase()}`));
  const rollupInsert = (table: string, bucket: string) =>
    file.prepare(
      `INSERT INTO ${table} (${bucket}, currency, ${columns.join(", ")}) VALUES (?, ?, ${columns.map(() => "?").join(", ")})`,
    );
  const hourlyInsert = rollupInsert("analytics_hourly", "hour");
  for (const [key, row] of hourly) hourlyInsert.run(...key.split("|"), ...ROLLUP_COUNTERS.map((k) => row[k]));
  const dailyInsert = rollupInsert("analytics_daily", "day");
  for (const [key, row] of daily) dailyInsert.run(...key.split("|"), ...ROLLUP_COUNTERS.map((k) => row[k]));
  const productInsert = file.prepare(
    "INSERT INTO analytics_product_daily (day, sku, currency, name, units, revenue) VALUES (?, ?, 'USD', ?, ?, ?)",
  );
  for (const p of products.values()) productInsert.run(p.day, p.sku, p.name, p.units, p.revenue);
  const hasPeriods = file.prepare("SELECT 1 FROM sqlite_master WHERE name = 'analytics_product_periods'").get();
  const periodInsert =
    hasPeriods &&
    file.prepare(
      "INSERT INTO analytics_product_periods (currency, span, start, sku, units, revenue) VALUES ('USD', ?, ?, ?, ?, ?)",
    );
  if (periodInsert) for (const p of periods.values()) periodInsert.run(p.span, p.start, p.sku, p.units, p.revenue);
  file.exec("COMMIT");
}
writeSeedData(db);
if (baseline) {
  const baselineDb = openD1File(baseline.state);
  writeSeedData(baselineDb);
  baselineDb.close();
}
console.log(
  `seeded in ${((Date.now() - seedStarted) / 1000).toFixed(1)} s: ${hourly.size} hourly, ${daily.size} daily, ${products.size} product-day and ${periods.size} product-week/month rollup rows`,
);

// --- a D1-shaped adapter over the same file, for the in-process comparison -------------------------
type Bound = { sql: string; params: unknown[] };
const statement = (sql: string, params: unknown[] = []) => ({
  bind: (...next: unknown[]) => statement(sql, next),
  all: async () => ({ results: db.prepare(sql).all(...(params as never[])) }),
  first: async () => db.prepare(sql).get(...(params as never[])) ?? null,
  sql,
  params,
});
const d1 = {
  prepare: (sql: string) => statement(sql),
  batch: async (statements: Bound[]) =>
    statements.map((s) => ({ results: db.prepare(s.sql).all(...(s.params as never[])) })),
} as unknown as Parameters<typeof analyticsSummary>[0]["DB"];

const windowArgs = { from: new Date(end - DAYS * DAY_MS), to: new Date(end), currency: "USD" };

/** The same figures the naive way: scan the orders in the window, unpack every order's lines. */
function naiveSummary() {
  const from = windowArgs.from.toISOString();
  const to = windowArgs.to.toISOString();
  const byDay = db
    .prepare(
      `SELECT substr(created_at, 1, 10) AS day,
              sum(payment_status IN ('captured', 'partially_refunded', 'refunded')) AS orders,
              sum(CASE WHEN payment_status IN ('captured', 'partially_refunded', 'refunded') THEN total_amount ELSE 0 END)
                - sum(refunded_amount) AS revenue,
              sum(payment_status = 'failed') AS failures
         FROM orders_view WHERE created_at >= ? AND created_at < ? GROUP BY day ORDER BY day`,
    )
    .all(from, to) as { day: string; orders: number; revenue: number; failures: number }[];
  const top = db
    .prepare(
      `SELECT json_extract(j.value, '$.sku') AS sku, sum(json_extract(j.value, '$.quantity')) AS units,
              sum(json_extract(j.value, '$.lineTotal.amount')) AS revenue
         FROM orders_view o, json_each(o.items) j
        WHERE o.created_at >= ? AND o.created_at < ? AND o.payment_status IN ('captured', 'partially_refunded', 'refunded')
        GROUP BY sku ORDER BY revenue DESC LIMIT 10`,
    )
    .all(from, to) as { sku: string; units: number; revenue: number }[];
  return {
    orders: byDay.reduce((s, d) => s + d.orders, 0),
    revenue: byDay.reduce((s, d) => s + d.revenue, 0),
    top: top[0]?.sku,
  };
}

/**
 * Best sellers the way the summary read them before the week and month rollups (commit 02226b6):
 * every product-day of the window, summed per SKU over the covering index. The same-run baseline
 * (its index named: the day-first covering index added since would otherwise win and sort).
 */
function dayRowsTopProducts() {
  return db
    .prepare(
      `SELECT sku, sum(units) AS units, sum(revenue) AS revenue FROM analytics_product_daily INDEXED BY analytics_product_daily_sku_idx
        WHERE currency = 'USD' AND day >= ? AND day <= ? GROUP BY sku ORDER BY revenue DESC, sku LIMIT 10`,
    )
    .all(firstDay, lastDay) as { sku: string; units: number; revenue: number }[];
}
const firstDay = windowArgs.from.toISOString().slice(0, 10);
const lastDay = new Date(windowArgs.to.getTime() - 1).toISOString().slice(0, 10);
const cover = coverDays(firstDay, lastDay);
const rowsOf = (span: string, start: string) =>
  (
    db
      .prepare(
        span === "day"
          ? "SELECT count(*) AS n FROM analytics_product_daily WHERE currency = 'USD' AND day = ?"
          : "SELECT count(*) AS n FROM analytics_product_periods WHERE currency = 'USD' AND span = ? AND start = ?",
      )
      .get(...(span === "day" ? [start] : [span, start])) as { n: number }
  ).n;
const coverRows = cover.reduce((sum, t) => sum + rowsOf(t.span, t.start), 0);
const dayRows = (
  db
    .prepare("SELECT count(*) AS n FROM analytics_product_daily WHERE currency = 'USD' AND day >= ? AND day <= ?")
    .get(firstDay, lastDay) as { n: number }
).n;

// --- 1. the endpoint ----------------------------------------------------------------------------
const token = await signLocalAccessToken("bench-analytics-admin", ["admin"]);
const summaryUrl = (from: Date, to: Date) =>
  `${platform.baseUrl}/v1/admin/analytics/summary?from=${from.toISOString()}&to=${to.toISOString()}`;
const url = summaryUrl(windowArgs.from, windowArgs.to);
// The same endpoint for the last day only (one day bucket, 24 hours): auth, D1 round trip and
// serialisation without the 90-day reads.
const oneDayUrl = summaryUrl(new Date(end - DAY_MS), new Date(end));
const baselineUrl = baseline ? url.replace(platform.baseUrl, baseline.baseUrl) : "";
const call = async (target = url) => {
  const t = performance.now();
  const res = await fetch(target, { headers: { Authorization: `Bearer ${token}` } });
  const body = (await res.json()) as { orders: number; revenue: { amount: number }; topProducts: { sku: string }[] };
  if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${JSON.stringify(body)}`);
  return { ms: performance.now() - t, body };
};
for (let i = 0; i < 10; i++) {
  await call(); // warm: isolate, token cache, D1 page cache
  if (baseline) await call(baselineUrl);
}
const http: number[] = [];
const before: number[] = [];
const oneDay: number[] = [];
// The gateway's own floor: /health (no auth, no I/O). The three are alternated call by call, so
// each sees the same background load.
const floor: number[] = [];
let last: Awaited<ReturnType<typeof call>>["body"] | undefined;
for (let i = 0; i < SAMPLES; i++) {
  const r = await call();
  http.push(r.ms);
  last = r.body;
  oneDay.push((await call(oneDayUrl)).ms);
  if (baseline) {
    const b = await call(baselineUrl);
    before.push(b.ms);
    if (b.body.orders !== r.body.orders || b.body.topProducts[0]?.sku !== r.body.topProducts[0]?.sku) {
      throw new Error(`the baseline answers differently: ${JSON.stringify(b.body).slice(0, 300)}`);
    }
  }
  const t = performance.now();
  const res = await fetch(`${platform.baseUrl}/health`);
  await res.arrayBuffer();
  floor.push(performance.now() - t);
}

// --- 2. rollups vs naive scan, in-process on the same file ------------------------------------
const rollupMs: number[] = [];
const dayRowsMs: number[] = [];
const naiveMs: number[] = [];
let rollup: Awaited<ReturnType<typeof analyticsSummary>> | undefined;
let naive: ReturnType<typeof naiveSummary> | undefined;
const NAIVE_SAMPLES = Math.max(10, Math.floor(SAMPLES / 10));
let dayRowsTop: ReturnType<typeof dayRowsTopProducts> = [];
// Alternated call by call, so both see the same background load.
for (let i = 0; i < SAMPLES; i++) {
  let t = performance.now();
  rollup = await analyticsSummary({ DB: d1 }, windowArgs);
  rollupMs.push(performance.now() - t);
  t = performance.now();
  dayRowsTop = dayRowsTopProducts();
  dayRowsMs.push(performance.now() - t);
}
for (let i = 0; i < NAIVE_SAMPLES; i++) {
  const t = performance.now();
  naive = naiveSummary();
  naiveMs.push(performance.now() - t);
}
db.close();
platform.stop();
baseline?.stop();

// --- 3. report ------------------------------------------------------------------------------------
const sameTop =
  JSON.stringify(rollup!.topProducts.map((p) => [p.sku, p.units, p.revenue.amount])) ===
  JSON.stringify(dayRowsTop.map((p) => [p.sku, p.units, p.revenue]));
const agree =
  sameTop &&
  rollup!.orders === naive!.orders &&
  rollup!.revenue.amount === naive!.revenue &&
  rollup!.topProducts[0]?.sku === naive!.top;
console.log(`
summary of ${DAYS} days over ${ORDERS.toLocaleString("en-US")} orders (${rollup!.orders.toLocaleString("en-US")} paid)
  GET /v1/admin/analytics/summary   p50 ${fmt(percentile(http, 50))}   p99 ${fmt(percentile(http, 99))}   (${SAMPLES} calls; target p99 < 50 ms: ${percentile(http, 99) < 50 ? "met" : "NOT met"})
${
  baseline
    ? `  the same, baseline code           p50 ${fmt(percentile(before, 50))}   p99 ${fmt(percentile(before, 99))}   (${BASELINE_ROOT}; after/before p50 ×${(percentile(http, 50) / percentile(before, 50)).toFixed(2)}, p99 ×${(percentile(http, 99) / percentile(before, 99)).toFixed(2)})\n`
    : ""
}  the same for the last day only     p50 ${fmt(percentile(oneDay, 50))}   p99 ${fmt(percentile(oneDay, 99))}
  GET /health (gateway floor)       p50 ${fmt(percentile(floor, 50))}   p99 ${fmt(percentile(floor, 99))}
  same database, in-process:
    rollups (analyticsSummary)      p50 ${fmt(percentile(rollupMs, 50))}   p99 ${fmt(percentile(rollupMs, 99))}
    naive scan of orders_view       p50 ${fmt(percentile(naiveMs, 50))}   p99 ${fmt(percentile(naiveMs, 99))}   (${NAIVE_SAMPLES} runs)
    naive / rollups (p50)           ×${(percentile(naiveMs, 50) / percentile(rollupMs, 50)).toFixed(0)}
    best sellers from day rows only p50 ${fmt(percentile(dayRowsMs, 50))}   p99 ${fmt(percentile(dayRowsMs, 99))}   (the query before week/month rollups, alternated with the summary)
  best sellers read ${coverRows.toLocaleString("en-US")} rows from ${cover.length} buckets (${cover.map((t) => `${t.sign < 0 ? "-" : "+"}${t.span} ${t.start}`).join(", ")}) instead of ${dayRows.toLocaleString("en-US")} product-day rows
  load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}
  all ways agree (orders, revenue, best seller; top 10 from buckets = from day rows): ${agree ? "yes" : `NO: rollups ${JSON.stringify({ orders: rollup!.orders, revenue: rollup!.revenue.amount, top: rollup!.topProducts[0]?.sku })} naive ${JSON.stringify(naive)}`}
  endpoint answered ${last?.orders} orders, revenue ${last?.revenue.amount}
`);
if (!agree) process.exit(1);
