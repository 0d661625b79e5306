import { integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

/**
 * Units and gross revenue per product line per month-aligned week and per month
 * (domain/analytics/periods.ts), next to the per-day rows of `analytics_product_daily`: the
 * analytics consumer adds each paid line to its day, week and month in the same D1 batch, under
 * the same per-event claim, so all three always hold the same counts. Best sellers over a window
 * read a few signed buckets from here instead of every product-day of the window. Names stay in
 * the daily table (looked up for the winners only).
 */
export const analyticsProductPeriods = sqliteTable(
  "analytics_product_periods",
  {
    currency: text("currency").notNull(),
    span: text("span", { enum: ["week", "month"] }).notNull(),
    /** The bucket's first day, `YYYY-MM-DD` (a month's is the 1st; a week's the 1st, 8th, 15th, 22nd or 29th). */
    start: text("start").notNull(),
    sku: text("sku").notNull(),
    units: integer("units").notNull().default(0),
    revenue: integer("revenue").notNull().default(0),
  },
  // Key order = read order: one index range per bucket of a window, its rows already grouped by SKU.
  (t) => [primaryKey({ columns: [t.currency, t.span, t.start, t.sku] })],
);
