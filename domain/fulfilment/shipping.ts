import { and, asc, eq, inArray, sql } from "drizzle-orm";
import { type DrizzleD1Database, drizzle } from "drizzle-orm/d1";
import type {
  ShippingOption,
  ShippingRate,
  ShippingRateInput,
  ShippingZone,
  ShippingZoneInput,
} from "../../contracts/fulfilment";
import { shippingRates, shippingZoneCountries, shippingZones } from "../../d1/schema/fulfilment";
import { randomHex } from "../encoding";
import { DomainError, invalidInput, notFound } from "../errors";

/** What a cart's shipping is priced from. */
export interface Parcel {
  country: string;
  currency: string;
  /** Total weight of the physical lines, grams. */
  weightGrams: number;
  /** Subtotal after the promotion's item discount: what `freeAbove` is compared with. */
  discountedSubtotal: number;
}

export type RateRow = typeof shippingRates.$inferSelect;

/**
 * A rate's price for a parcel: `flat` is its amount; `weight` adds `perKg` for every started
 * kilogram (a 1,001 g parcel pays two); free once the discounted subtotal reaches `freeAbove`.
 */
export function priceRate(
  rate: Pick<RateRow, "kind" | "amount" | "perKg" | "freeAbove">,
  parcel: Pick<Parcel, "weightGrams" | "discountedSubtotal">,
): number {
  if (rate.freeAbove != null && parcel.discountedSubtotal >= rate.freeAbove) return 0;
  if (rate.kind === "flat") return rate.amount;
  return rate.amount + Math.ceil(parcel.weightGrams / 1000) * (rate.perKg ?? 0);
}

function toOption(rate: RateRow, parcel: Parcel): ShippingOption {
  return {
    id: rate.id,
    carrier: rate.carrier,
    service: rate.service,
    amount: { amount: priceRate(rate, parcel), currency: rate.currency },
    estimatedDays: rate.estimatedDays,
  };
}

/** The read of the active rates into the parcel's country in its currency (alone, or in a D1 batch). */
export function ratesQuery(db: DrizzleD1Database, parcel: Pick<Parcel, "country" | "currency">) {
  return db
    .select()
    .from(shippingRates)
    .where(
      and(
        eq(shippingRates.active, true),
        eq(shippingRates.currency, parcel.currency),
        inArray(
          shippingRates.zoneId,
          db
            .select({ id: shippingZoneCountries.zoneId })
            .from(shippingZoneCountries)
            .where(eq(shippingZoneCountries.country, parcel.country)),
        ),
      ),
    )
    .orderBy(asc(shippingRates.estimatedDays), asc(shippingRates.id));
}

/** Active rates into the parcel's country in its currency. */
async function ratesFor(env: Pick<Env, "DB">, parcel: Pick<Parcel, "country" | "currency">): Promise<RateRow[]> {
  return ratesQuery(drizzle(env.DB), parcel).all();
}

/** Every way to ship this parcel, priced, cheapest first. */
export async function shippingOptionsFor(env: Pick<Env, "DB">, parcel: Parcel): Promise<ShippingOption[]> {
  const options = (await ratesFor(env, parcel)).map((rate) => toOption(rate, parcel));
  return options.sort((a, b) => a.amount.amount - b.amount.amount || a.estimatedDays - b.estimatedDays);
}

/** The chosen option, priced for this parcel; 400 when it does not ship there (or does not exist). */
export async function chosenShippingOption(
  env: Pick<Env, "DB">,
  optionId: string,
  parcel: Parcel,
): Promise<ShippingOption> {
  return chosenFrom(await ratesFor(env, parcel), optionId, parcel);
}

/** `chosenShippingOption` over rates already read with `ratesQuery` for this parcel. */
export function chosenFrom(rates: readonly RateRow[], optionId: string, parcel: Parcel): ShippingOption {
  const option = rates.find((rate) => rate.id === optionId);
  if (!option) {
    throw invalidInput(`Shipping option ${optionId} does not ship ${parcel.currency} orders to ${parcel.country}`, [
      { path: "shippingOptionId", message: "not one of GET /v1/carts/{id}/shipping-options for this address" },
    ]);
  }
  return toOption(option, parcel);
}

// ---- admin ------------------------------------------------------------------------------------

/** Admin: a new zone. */
export async function createZone(env: Pick<Env, "DB">, input: ShippingZoneInput): Promise<ShippingZone> {
  const id = `zone_${randomHex(8)}`;
  const countries = [...new Set(input.countries)];
  await env.DB.batch([
    env.DB.prepare("INSERT INTO shipping_zones (id, name) VALUES (?, ?)").bind(id, input.name),
    ...countries.map((c) =>
      env.DB.prepare("INSERT INTO shipping_zone_countries (zone_id, country) VALUES (?, ?)").bind(id, c),
    ),
  ]);
  return { id, name: input.name, countries };
}

/** Admin: every zone with its countries. */
export async function listZones(env: Pick<Env, "DB">): Promise<ShippingZone[]> {
  const db = drizzle(env.DB);
  const [zones, countries] = await Promise.all([
    db.select().from(shippingZones).orderBy(asc(shippingZones.name)).all(),
    db.select().from(shippingZoneCountries).orderBy(asc(shippingZoneCountries.country)).all(),
  ]);
  return zones.map((z) => ({
    id: z.id,
    name: z.name,
    countries: countries.filter((c) => c.zoneId === z.id).map((c) => c.country),
  }));
}

function presentRate(row: RateRow): ShippingRate {
  return {
    id: row.id,
    zoneId: row.zoneId,
    carrier: row.carrier,
    service: row.service,
    currency: row.currency,
    kind: row.kind,
    amount: row.amount,
    ...(row.perKg != null ? { perKg: row.perKg } : {}),
    ...(row.freeAbove != null ? { freeAbove: row.freeAbove } : {}),
    estimatedDays: row.estimatedDays,
    active: row.active,
  };
}

/** Admin: a new rate into an existing zone. */
export async function createRate(env: Pick<Env, "DB">, input: ShippingRateInput): Promise<ShippingRate> {
  const db = drizzle(env.DB);
  const zone = await db
    .select({ id: shippingZones.id })
    .from(shippingZones)
    .where(eq(shippingZones.id, input.zoneId))
    .get();
  if (!zone) throw invalidInput("No such shipping zone", [{ path: "zoneId", message: "unknown zone" }]);
  const row = await db
    .insert(shippingRates)
    .values({
      id: `ship_${randomHex(8)}`,
      zoneId: input.zoneId,
      carrier: input.carrier,
      service: input.service,
      currency: input.currency,
      kind: input.kind,
      amount: input.amount,
      perKg: input.perKg ?? null,
      freeAbove: input.freeAbove ?? null,
      estimatedDays: input.estimatedDays,
      active: input.active,
    })
    .returning()
    .get();
  return presentRate(row);
}

/** Admin: every rate. */
export async function listRates(env: Pick<Env, "DB">): Promise<ShippingRate[]> {
  const rows = await drizzle(env.DB)
    .select()
    .from(shippingRates)
    .orderBy(asc(shippingRates.zoneId), asc(shippingRates.id))
    .all();
  return rows.map(presentRate);
}

/** Admin: changes a rate's price, threshold, estimate or active flag (orders keep their snapshot). */
export async function updateRate(
  env: Pick<Env, "DB">,
  id: string,
  patch: Partial<Pick<ShippingRateInput, "amount" | "perKg" | "freeAbove" | "estimatedDays" | "active">>,
): Promise<ShippingRate> {
  const db = drizzle(env.DB);
  const current = await db.select().from(shippingRates).where(eq(shippingRates.id, id)).get();
  if (!current) throw notFound("No such shipping rate");
  if (patch.perKg !== undefined && current.kind !== "weight") {
    throw new DomainError("invalid", "perKg applies to weight-based rates only", {
      fields: [{ path: "perKg", message: "this rate is flat" }],
    });
  }
  const row = await db
    .update(shippingRates)
    .set({ ...patch, updatedAt: sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))` })
    .where(eq(shippingRates.id, id))
    .returning()
    .get();
  return presentRate(row!);
}
