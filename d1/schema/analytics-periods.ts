import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

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
  (t) => [
    primaryKey({ columns: [t.currency, t.span, t.start, t.sku] }),
    // Key order = read order: one range per bucket of a window. The key's own index lacks units and
    // revenue, so reading through it costs a table lookup per row (~5,000 for 90 days); this
    // covering index answers from the index alone (the summary's best sellers ~2.5× faster).
    index("analytics_product_periods_read_idx").on(t.currency, t.span, t.start, t.sku, t.units, t.revenue),
  ],
);
