import type { CartEvent } from "../contracts/cart-events";
import { type AlertConfigEnv, alertThresholdsFor } from "../domain/analytics/alert-config";
import { evaluateOrderAlerts } from "../domain/analytics/alerts";
import { periodsOf } from "../domain/analytics/periods";
import {
  type Contribution,
  type CountableOrderEvent,
  contributionOf,
  ROLLUP_COUNTERS,
  type RollupCounters,
} from "../domain/analytics/rollup";
import { armAlertMonitor } from "../durable-objects/alert-monitor";

const COLUMN: Record<keyof RollupCounters, string> = {
  cartsCreated: "carts_created",
  checkoutsStarted: "checkouts_started",
  ordersPlaced: "orders_placed",
  ordersPaid: "orders_paid",
  paymentFailures: "payment_failures",
  ordersFailed: "orders_failed",
  grossRevenue: "gross_revenue",
  refunded: "refunded",
};
const COLUMNS = ROLLUP_COUNTERS.map((k) => COLUMN[k]);
const ADDS = COLUMNS.map((c) => `${c} = ${c} + excluded.${c}`).join(", ");
/**
 * Every statement reads the batch's rows from one JSON array (?1, json_each) and applies only rows
 * whose event this batch claimed (?2 the batch token; `$.e` a row's event id): one statement per
 * table for a whole queue batch, the claims first, all in one D1 batch (one transaction).
 */
const CLAIMED =
  "EXISTS (SELECT 1 FROM analytics_events WHERE event_id = json_extract(value, '$.e') AND claimed_by = ?2)";
const CLAIM = `INSERT INTO analytics_events (event_id, type, claimed_by, occurred_at)
  SELECT json_extract(value, '$.e'), json_extract(value, '$.t'), ?2, json_extract(value, '$.at')
    FROM json_each(?1) WHERE true
  ON CONFLICT (event_id) DO NOTHING`;
/** Sums of the claimed events' counters (`$.c`, in ROLLUP_COUNTERS order) per bucket and currency. */
const SUMS = COLUMNS.map((_, i) => `sum(json_extract(value, '$.c[${i}]'))`).join(", ");
const upsertRollup = (table: "analytics_hourly" | "analytics_daily", bucket: "hour" | "day") =>
  `INSERT INTO ${table} (${bucket}, currency, ${COLUMNS.join(", ")})
   SELECT json_extract(value, '$.${bucket}') AS b, json_extract(value, '$.cur') AS cur, ${SUMS}
     FROM json_each(?1) WHERE ${CLAIMED} GROUP BY b, cur
   ON CONFLICT (${bucket}, currency) DO UPDATE SET ${ADDS}`;
const UPSERT_HOURLY = upsertRollup("analytics_hourly", "hour");
const UPSERT_DAILY = upsertRollup("analytics_daily", "day");
/**
 * Product lines per day: units and revenue summed, the name of the batch's last line for the SKU
 * (SQLite takes a bare column from the row of the one max(): the last in batch order), as the
 * last of one upsert per line would leave it.
 */
const UPSERT_PRODUCT = `INSERT INTO analytics_product_daily (day, sku, currency, name, units, revenue)
  SELECT day, sku, cur, name, units, revenue FROM (
    SELECT json_extract(value, '$.day') AS day, json_extract(value, '$.sku') AS sku,
           json_extract(value, '$.cur') AS cur, json_extract(value, '$.name') AS name,
           sum(json_extract(value, '$.units')) AS units, sum(json_extract(value, '$.revenue')) AS revenue,
           max(key) AS last
      FROM json_each(?1) WHERE ${CLAIMED} GROUP BY day, sku, cur)
   WHERE true
  ON CONFLICT (day, sku, currency) DO UPDATE SET
    units = units + excluded.units, revenue = revenue + excluded.revenue, name = excluded.name`;
/** The same lines added to their week and their month (domain/analytics/periods.ts). */
const UPSERT_PRODUCT_PERIODS = `INSERT INTO analytics_product_periods (currency, span, start, sku, units, revenue)
  SELECT json_extract(value, '$.cur') AS cur, span.column1 AS s,
         CASE span.column1 WHEN 'week' THEN json_extract(value, '$.week') ELSE json_extract(value, '$.month') END AS st,
         json_extract(value, '$.sku') AS sku,
         sum(json_extract(value, '$.units')), sum(json_extract(value, '$.revenue'))
    FROM json_each(?1) JOIN (VALUES ('week'), ('month')) AS span
   WHERE ${CLAIMED} GROUP BY cur, s, st, sku
  ON CONFLICT (currency, span, start, sku) DO UPDATE SET
    units = units + excluded.units, revenue = revenue + excluded.revenue`;

/**
 * The D1 statements that count `contributions` exactly once, whatever was counted before. Each
 * event is claimed (its id, this batch's token) and the rollups add only what this batch claimed;
 * run them in one D1 batch (one transaction), so a failed batch counts and claims nothing and its
 * redelivery starts clean. Contributions must have distinct event ids. Five statements however
 * many events (four without product lines).
 */
export function rollupStatements(contributions: Contribution[], db: D1Database, token: string): D1PreparedStatement[] {
  if (contributions.length === 0) return [];
  const events = contributions.map((c) => ({
    e: c.eventId,
    t: c.type,
    at: c.occurredAt,
    hour: c.hour,
    day: c.day,
    cur: c.currency,
    c: ROLLUP_COUNTERS.map((k) => c.counters[k] ?? 0),
  }));
  const lines = contributions.flatMap((c) => {
    const { week, month } = periodsOf(c.day);
    return c.products.map((p) => ({
      e: c.eventId,
      day: c.day,
      week,
      month,
      cur: c.currency,
      sku: p.sku,
      name: p.name,
      units: p.units,
      revenue: p.revenue,
    }));
  });
  const eventsJson = JSON.stringify(events);
  const statements = [
    db.prepare(CLAIM).bind(eventsJson, token),
    db.prepare(UPSERT_HOURLY).bind(eventsJson, token),
    db.prepare(UPSERT_DAILY).bind(eventsJson, token),
  ];
  if (lines.length > 0) {
    const linesJson = JSON.stringify(lines);
    statements.push(
      db.prepare(UPSERT_PRODUCT).bind(linesJson, token),
      db.prepare(UPSERT_PRODUCT_PERIODS).bind(linesJson, token),
    );
  }
  return statements;
}

/**
 * The analytics consumer: rolls a queue batch's saga and cart events up into D1 by hour, day and
 * product (per day, week and month), each event counted once however often it is delivered and in
 * whatever order (the rollups are sums, so order does not matter, and a late event lands in its
 * own hour). Throws if D1 refuses, and the dispatcher retries those messages. Then re-evaluates
 * the order alerts (payment success and order failure rates) when the batch moved them, and arms
 * the alert monitor so the rates are checked again as the hour rolls on; an alert that cannot be
 * evaluated now is evaluated again by the monitor or the next batch, so it never fails the batch.
 */
export async function rollUpEvents(
  events: (CartEvent | CountableOrderEvent)[],
  env: Pick<Env, "DB" | "ALERT_MONITOR"> & AlertConfigEnv,
): Promise<void> {
  const byId = new Map<string, Contribution>();
  for (const event of events) {
    const contribution = contributionOf(event);
    if (contribution) byId.set(contribution.eventId, contribution);
  }
  if (byId.size === 0) return;
  const contributions = [...byId.values()];
  await env.DB.batch(rollupStatements(contributions, env.DB, crypto.randomUUID()));
  if (contributions.some((c) => c.counters.ordersPaid || c.counters.ordersFailed || c.counters.paymentFailures)) {
    try {
      const { watching } = await evaluateOrderAlerts(env, new Date(), alertThresholdsFor(env));
      if (watching) await armAlertMonitor(env);
    } catch (error) {
      console.warn(JSON.stringify({ level: "warn", msg: "order alerts not evaluated", error: String(error) }));
    }
  }
}
