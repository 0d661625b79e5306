import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text } from "drizzle-orm/sqlite-core";

const nowIso = sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`;

/** A set of destination countries shipped alike (admin-managed). */
export const shippingZones = sqliteTable("shipping_zones", {
  id: text("id").primaryKey(),
  name: text("name").notNull(),
  createdAt: text("created_at").notNull().default(nowIso),
  updatedAt: text("updated_at").notNull().default(nowIso),
});

/** Which countries a zone covers; looked up by country when a cart asks for its options. */
export const shippingZoneCountries = sqliteTable(
  "shipping_zone_countries",
  {
    zoneId: text("zone_id")
      .notNull()
      .references(() => shippingZones.id),
    country: text("country").notNull(),
  },
  (t) => [primaryKey({ columns: [t.zoneId, t.country] }), index("shipping_zone_countries_country_idx").on(t.country)],
);

/**
 * A carrier service's price into one zone in one currency: `flat` is `amount`; `weight` is
 * `amount` plus `per_kg` per started kilogram. `free_above`: free from that discounted subtotal.
 * Rates are never deleted (orders snapshot their price, but the id stays meaningful): `active = 0`.
 */
export const shippingRates = sqliteTable(
  "shipping_rates",
  {
    id: text("id").primaryKey(),
    zoneId: text("zone_id")
      .notNull()
      .references(() => shippingZones.id),
    carrier: text("carrier").notNull(),
    service: text("service").notNull(),
    currency: text("currency").notNull(),
    kind: text("kind", { enum: ["flat", "weight"] }).notNull(),
    amount: integer("amount").notNull(),
    perKg: integer("per_kg"),
    freeAbove: integer("free_above"),
    estimatedDays: integer("estimated_days").notNull(),
    active: integer("active", { mode: "boolean" }).notNull().default(true),
    createdAt: text("created_at").notNull().default(nowIso),
    updatedAt: text("updated_at").notNull().default(nowIso),
  },
  (t) => [index("shipping_rates_zone_idx").on(t.zoneId)],
);

/** Per-country tax rule: basis points on the discounted subtotal, and on shipping where taxable. */
export const taxRates = sqliteTable("tax_rates", {
  country: text("country").primaryKey(),
  rateBps: integer("rate_bps").notNull(),
  shippingTaxable: integer("shipping_taxable", { mode: "boolean" }).notNull(),
  updatedAt: text("updated_at").notNull().default(nowIso),
});
