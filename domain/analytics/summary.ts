import type { AnalyticsSummary } from "../../contracts/analytics.ts";
import { invalidInput } from "../errors.ts";
import { coverDays } from "./periods.ts";
import { ROLLUP_COUNTERS, type RollupCounters } from "./rollup.ts";

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** The longest window a summary covers: a year and a day (the console asks for up to 90 days). */
export const MAX_SUMMARY_DAYS = 366;
const TOP_PRODUCTS = 10;

const COLUMNS = ROLLUP_COUNTERS.map((k) => k.replace(/[A-Z]/g, (ch) => `_${ch.toLowerCase()}`));
const ALL_COLUMNS = ROLLUP_COUNTERS.map((_, i) => `a${i}`);
const MONEY_COLUMNS = ROLLUP_COUNTERS.map((_, i) => `m${i}`);

/**
 * Per UTC day of the window, every counter over all currencies (`a0…`) and in the summary's
 * currency ?7 (`m0…`): whole days from `analytics_daily` (?1..?2), the edge hours from
 * `analytics_hourly` (?3..?4 and ?5..?6). One statement and one row per day, so the Worker gets
 * ~90 small rows for 90 days rather than a row per day and currency from each table.
 */
const DAY_TOTALS_SQL = `
  SELECT bucket, ${COLUMNS.map((c, i) => `sum(${c}) AS ${ALL_COLUMNS[i]}`).join(", ")},
         ${COLUMNS.map((c, i) => `sum(CASE WHEN currency = ?7 THEN ${c} ELSE 0 END) AS ${MONEY_COLUMNS[i]}`).join(", ")}
    FROM (SELECT day AS bucket, currency, ${COLUMNS.join(", ")} FROM analytics_daily WHERE day >= ?1 AND day < ?2
          UNION ALL
          SELECT substr(hour, 1, 10), currency, ${COLUMNS.join(", ")} FROM analytics_hourly
           WHERE (hour >= ?3 AND hour < ?4) OR (hour >= ?5 AND hour < ?6))
   GROUP BY bucket`;

/**
 * Best sellers over the days `?3..?4`: per SKU, the signed sum of the window's cover (?1, JSON
 * `[[span, start, sign], …]`, domain/analytics/periods.ts) over the week and month rollups and the
 * day rows, so a 90-day window reads ~7 buckets of rows instead of 90 (CROSS JOIN keeps the few
 * terms as the outer loop: one range of a covering index per bucket, `currency, span, start` or
 * `currency, day`, so no row costs a table lookup). A SKU a subtracted bucket cancels out has no
 * units left and is not a seller. The name (the newest one counted in the window) is looked up for
 * the winners only.
 */
export const TOP_PRODUCTS_SQL = `
  WITH terms AS (
    SELECT value ->> '$[0]' AS span, value ->> '$[1]' AS start, value ->> '$[2]' AS sign FROM json_each(?1)
  ), lines AS (
    SELECT p.sku, t.sign * p.units AS units, t.sign * p.revenue AS revenue
      FROM terms t CROSS JOIN analytics_product_periods p
     WHERE p.currency = ?2 AND p.span = t.span AND p.start = t.start
    UNION ALL
    SELECT d.sku, t.sign * d.units, t.sign * d.revenue
      FROM terms t CROSS JOIN analytics_product_daily d
     WHERE t.span = 'day' AND d.currency = ?2 AND d.day = t.start
  )
  SELECT w.sku, w.units, w.revenue,
         (SELECT n.name FROM analytics_product_daily n
           WHERE n.currency = ?2 AND n.sku = w.sku AND n.day >= ?3 AND n.day <= ?4
           ORDER BY n.day DESC LIMIT 1) AS name
    FROM (SELECT sku, sum(units) AS units, sum(revenue) AS revenue FROM lines
           GROUP BY sku HAVING sum(units) > 0 ORDER BY revenue DESC, sku LIMIT ?5) w
   ORDER BY w.revenue DESC, w.sku`;

const zero = (): RollupCounters => ({
  cartsCreated: 0,
  checkoutsStarted: 0,
  ordersPlaced: 0,
  ordersPaid: 0,
  paymentFailures: 0,
  ordersFailed: 0,
  grossRevenue: 0,
  refunded: 0,
});

const hourKey = (ms: number) => new Date(ms).toISOString().slice(0, 13);
const dayKey = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const rate = (numerator: number, denominator: number) => (denominator > 0 ? numerator / denominator : null);

/**
 * The sales summary of `[from, to)` in `currency`, read only from the rollups (never by scanning
 * orders): whole UTC days from `analytics_daily`, the partial days at either edge from
 * `analytics_hourly`, best sellers from the product rollups by month, week and day (over the
 * window's whole days, edge days included); two reads in one D1 batch.
 * The window is widened to whole hours, the rollups' finest grain. Funnel counts are over every
 * currency; money, orders and best sellers are in `currency`.
 */
export async function analyticsSummary(
  env: Pick<Env, "DB">,
  window: { from: Date; to: Date; currency: string },
): Promise<AnalyticsSummary> {
  const fromMs = Math.floor(window.from.getTime() / HOUR_MS) * HOUR_MS;
  const toMs = Math.ceil(window.to.getTime() / HOUR_MS) * HOUR_MS;
  if (!(toMs > fromMs)) throw invalidInput("`from` must be before `to`", [{ path: "from", message: "after to" }]);
  if (toMs - fromMs > MAX_SUMMARY_DAYS * DAY_MS) {
    throw invalidInput(`A summary covers at most ${MAX_SUMMARY_DAYS} days`, [
      { path: "from", message: `more than ${MAX_SUMMARY_DAYS} days before to` },
    ]);
  }
  // Whole days inside the window come from the daily rollup; the rest (edge hours) from the hourly one.
  const firstWholeDay = Math.ceil(fromMs / DAY_MS) * DAY_MS;
  const endWholeDays = Math.floor(toMs / DAY_MS) * DAY_MS;
  const hasWholeDays = endWholeDays > firstWholeDay;
  const hourRanges: [number, number][] = hasWholeDays
    ? [
        [fromMs, firstWholeDay],
        [endWholeDays, toMs],
      ]
    : [[fromMs, toMs]];
  const firstDay = dayKey(fromMs);
  const lastDay = dayKey(toMs - 1);
  const [dayTotals, products] = await env.DB.batch<Record<string, number | string>>([
    env.DB.prepare(DAY_TOTALS_SQL).bind(
      hasWholeDays ? dayKey(firstWholeDay) : "",
      hasWholeDays ? dayKey(endWholeDays) : "",
      hourKey(hourRanges[0]![0]),
      hourKey(hourRanges[0]![1]),
      hourRanges[1] ? hourKey(hourRanges[1][0]) : "",
      hourRanges[1] ? hourKey(hourRanges[1][1]) : "",
      window.currency,
    ),
    env.DB.prepare(TOP_PRODUCTS_SQL).bind(
      JSON.stringify(coverDays(firstDay, lastDay).map((t) => [t.span, t.start, t.sign])),
      window.currency,
      firstDay,
      lastDay,
      TOP_PRODUCTS,
    ),
  ]);

  const days = new Map<string, { all: RollupCounters; money: RollupCounters }>();
  for (let ms = Math.floor(fromMs / DAY_MS) * DAY_MS; ms < toMs; ms += DAY_MS) {
    days.set(dayKey(ms), { all: zero(), money: zero() });
  }
  for (const row of dayTotals?.results ?? []) {
    const day = days.get(String(row.bucket));
    if (!day) continue;
    ROLLUP_COUNTERS.forEach((key, i) => {
      day.all[key] = Number(row[ALL_COLUMNS[i]!] ?? 0);
      day.money[key] = Number(row[MONEY_COLUMNS[i]!] ?? 0);
    });
  }
  const all = zero();
  const money = zero();
  for (const day of days.values()) {
    for (const key of ROLLUP_COUNTERS) {
      all[key] += day.all[key];
      money[key] += day.money[key];
    }
  }
  const cash = (amount: number) => ({ amount, currency: window.currency });
  return {
    from: new Date(fromMs).toISOString(),
    to: new Date(toMs).toISOString(),
    orders: money.ordersPaid,
    revenue: cash(money.grossRevenue - money.refunded),
    grossRevenue: cash(money.grossRevenue),
    refunded: cash(money.refunded),
    averageOrderValue: cash(money.ordersPaid > 0 ? Math.round(money.grossRevenue / money.ordersPaid) : 0),
    paymentSuccessRate: rate(all.ordersPaid, all.ordersPaid + all.paymentFailures),
    cartAbandonmentRate:
      all.cartsCreated > 0 ? Math.min(1, Math.max(0, 1 - all.checkoutsStarted / all.cartsCreated)) : null,
    orderFailureRate: rate(all.ordersFailed, all.ordersPaid + all.ordersFailed),
    funnel: { cartsCreated: all.cartsCreated, checkoutsStarted: all.checkoutsStarted, paid: all.ordersPaid },
    topProducts: (products?.results ?? []).map((p) => ({
      sku: String(p.sku),
      name: String(p.name),
      units: Number(p.units),
      revenue: cash(Number(p.revenue)),
    })),
    byDay: [...days].map(([date, day]) => ({
      date,
      orders: day.money.ordersPaid,
      revenue: cash(day.money.grossRevenue - day.money.refunded),
      cartsCreated: day.all.cartsCreated,
      checkoutsStarted: day.all.checkoutsStarted,
      paymentFailures: day.all.paymentFailures,
    })),
  };
}
