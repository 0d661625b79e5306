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
const PLACEHOLDERS = COLUMNS.map((_, i) => `?${i + 3}`).join(", ");
const ADDS = COLUMNS.map((c) => `${c} = ${c} + excluded.${c}`).join(", ");
/** The rollup only applies where this batch claimed the event (?11 event id, ?12 batch token). */
const CLAIMED = "EXISTS (SELECT 1 FROM analytics_events WHERE event_id = ?11 AND claimed_by = ?12)";

const upsertRollup = (table: "analytics_hourly" | "analytics_daily", bucket: "hour" | "day") =>
  `INSERT INTO ${table} (${bucket}, currency, ${COLUMNS.join(", ")})
   SELECT ?1, ?2, ${PLACEHOLDERS} WHERE ${CLAIMED}
   ON CONFLICT (${bucket}, currency) DO UPDATE SET ${ADDS}`;
const UPSERT_HOURLY = upsertRollup("analytics_hourly", "hour");
const UPSERT_DAILY = upsertRollup("analytics_daily", "day");
const UPSERT_PRODUCT = `INSERT INTO analytics_product_daily (day, sku, currency, name, units, revenue)
  SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM analytics_events WHERE event_id = ?7 AND claimed_by = ?8)
  ON CONFLICT (day, sku, currency) DO UPDATE SET
    units = units + excluded.units, revenue = revenue + excluded.revenue, name = excluded.name`;
/** The same line added to its week and its month (domain/analytics/periods.ts) in one statement. */
const UPSERT_PRODUCT_PERIODS = `INSERT INTO analytics_product_periods (currency, span, start, sku, units, revenue)
  SELECT ?1, column1, column2, ?4, ?5, ?6 FROM (VALUES ('week', ?2), ('month', ?3))
   WHERE EXISTS (SELECT 1 FROM analytics_events WHERE event_id = ?7 AND claimed_by = ?8)
  ON CONFLICT (currency, span, start, sku) DO UPDATE SET
    units = units + excluded.units, revenue = revenue + excluded.revenue`;
const CLAIM = `INSERT INTO analytics_events (event_id, type, claimed_by, occurred_at) VALUES (?1, ?2, ?3, ?4)
  ON CONFLICT (event_id) DO NOTHING`;

/**
 * The D1 statements that count `contributions` exactly once, whatever was counted before. Each
 * event is claimed (its id, this batch's token) and its rollup upserts apply only under that
 * claim; run them in one D1 batch (one transaction), so a failed batch counts and claims nothing
 * and its redelivery starts clean. Contributions must have distinct event ids.
 */
export function rollupStatements(contributions: Contribution[], db: D1Database, token: string): D1PreparedStatement[] {
  const statements: D1PreparedStatement[] = [];
  for (const c of contributions) {
    statements.push(db.prepare(CLAIM).bind(c.eventId, c.type, token, c.occurredAt));
    const values = ROLLUP_COUNTERS.map((k) => c.counters[k] ?? 0);
    statements.push(db.prepare(UPSERT_HOURLY).bind(c.hour, c.currency, ...values, c.eventId, token));
    statements.push(db.prepare(UPSERT_DAILY).bind(c.day, c.currency, ...values, c.eventId, token));
    const { week, month } = periodsOf(c.day);
    for (const p of c.products) {
      statements.push(
        db.prepare(UPSERT_PRODUCT).bind(c.day, p.sku, c.currency, p.name, p.units, p.revenue, c.eventId, token),
        db.prepare(UPSERT_PRODUCT_PERIODS).bind(c.currency, week, month, p.sku, p.units, p.revenue, c.eventId, token),
      );
    }
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
