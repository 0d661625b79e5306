import { sql } from "drizzle-orm";
import { index, integer, primaryKey, real, sqliteTable, text } from "drizzle-orm/sqlite-core";

const nowIso = sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`;

/**
 * Saga and cart events already counted by the analytics rollups (queues/analytics.ts). A batch
 * claims each event id here with a per-batch token in the same D1 transaction as its rollup
 * updates, and those updates only apply where the claim is this batch's own: a redelivered event
 * finds its id claimed by an earlier batch and counts nothing.
 */
export const analyticsEvents = sqliteTable("analytics_events", {
  eventId: text("event_id").primaryKey(),
  type: text("type").notNull(),
  claimedBy: text("claimed_by").notNull(),
  occurredAt: text("occurred_at").notNull(),
});

/**
 * The rollup columns, one set per bucket (hour or day) and currency. Cart events carry no money
 * and are counted under currency `""`; funnel counts are summed across currencies, money only in
 * the currency asked for.
 */
const rollupColumns = {
  currency: text("currency").notNull(),
  cartsCreated: integer("carts_created").notNull().default(0),
  checkoutsStarted: integer("checkouts_started").notNull().default(0),
  ordersPlaced: integer("orders_placed").notNull().default(0),
  ordersPaid: integer("orders_paid").notNull().default(0),
  paymentFailures: integer("payment_failures").notNull().default(0),
  /** Orders cancelled for any reason but the customer's own (stock, payment, timeout). */
  ordersFailed: integer("orders_failed").notNull().default(0),
  /** Captured money, minor units (at `order.paid`). */
  grossRevenue: integer("gross_revenue").notNull().default(0),
  /** Money returned, minor units (at `order.refunded`, in the refund's own hour). */
  refunded: integer("refunded").notNull().default(0),
};

/** Rollups by UTC hour (`2026-12-02T14`): the edges of a summary window and the alert windows. */
export const analyticsHourly = sqliteTable(
  "analytics_hourly",
  { hour: text("hour").notNull(), ...rollupColumns },
  (t) => [primaryKey({ columns: [t.hour, t.currency] })],
);

/** Rollups by UTC day (`2026-12-02`): the whole days of a summary window. */
export const analyticsDaily = sqliteTable("analytics_daily", { day: text("day").notNull(), ...rollupColumns }, (t) => [
  primaryKey({ columns: [t.day, t.currency] }),
]);

/** Units and gross revenue per product line per UTC day, counted when the order is paid. */
export const analyticsProductDaily = sqliteTable(
  "analytics_product_daily",
  {
    day: text("day").notNull(),
    sku: text("sku").notNull(),
    currency: text("currency").notNull(),
    /** The line's name as the newest counted order carried it. */
    name: text("name").notNull(),
    units: integer("units").notNull().default(0),
    revenue: integer("revenue").notNull().default(0),
  },
  (t) => [
    primaryKey({ columns: [t.day, t.sku, t.currency] }),
    // Covering index for best sellers over a window: one sequential pass grouped by SKU (index
    // order), no table lookups and no temporary sort for the grouping.
    index("analytics_product_daily_sku_idx").on(t.currency, t.sku, t.day, t.units, t.revenue),
    // Covering index for the day buckets of a summary (domain/analytics/summary.ts): a day's rows
    // in one range, without a lookup into the table per row (the key alone lacks units and revenue).
    index("analytics_product_daily_day_idx").on(t.currency, t.day, t.sku, t.units, t.revenue),
  ],
);

/**
 * Business alerts as an append-only event log: a `raised` row when a rule starts firing for its
 * subject, a `resolved` row when it stops. A rule's current state is its subject's newest row.
 */
export const alerts = sqliteTable(
  "alerts",
  {
    seq: integer("seq").primaryKey({ autoIncrement: true }),
    /** `payment_success_rate` | `order_failure_rate` | `collector_down`. */
    kind: text("kind").notNull(),
    /** What the rule is about: `orders`, or a collector's exchange (`kraken`). */
    subject: text("subject").notNull(),
    state: text("state", { enum: ["raised", "resolved"] }).notNull(),
    value: real("value"),
    threshold: real("threshold"),
    message: text("message").notNull(),
    at: text("at").notNull().default(nowIso),
  },
  (t) => [index("alerts_subject_idx").on(t.kind, t.subject, t.seq)],
);

/**
 * Operator retries of a saga (POST /v1/admin/sagas/:orderId/retry). A dead letter is redelivered
 * once: its id is the primary key, so a repeated or concurrent retry finds it taken and sends
 * nothing again. A stuck saga's latest event (or a needs-attention order's carrier booking) is
 * redelivered at most once per step deadline: a retry row of the order younger than that makes a
 * repeat send nothing (domain/orders/saga-operations.ts); each redelivery is a row.
 */
export const sagaRetries = sqliteTable(
  "saga_retries",
  {
    /** The dead letter redelivered, or `<orderId>:<uuid>` for a redelivery of a stuck saga's latest event. */
    id: text("id").primaryKey(),
    orderId: text("order_id").notNull(),
    eventId: text("event_id"),
    eventType: text("event_type"),
    actor: text("actor").notNull(),
    at: text("at").notNull().default(nowIso),
  },
  (t) => [index("saga_retries_order_idx").on(t.orderId)],
);
