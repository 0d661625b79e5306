import { asc, eq, sql } from "drizzle-orm";
import { type DrizzleD1Database, drizzle } from "drizzle-orm/d1";
import type { TaxRate, TaxRateInput } from "../../contracts/fulfilment";
import { taxRates } from "../../d1/schema/fulfilment";

/** The read of a destination's tax rule (run it alone, or in a D1 batch with other reads). */
export function taxRuleQuery(db: DrizzleD1Database, country: string) {
  return db
    .select({ rateBps: taxRates.rateBps, shippingTaxable: taxRates.shippingTaxable })
    .from(taxRates)
    .where(eq(taxRates.country, country));
}

/** Admin: sets a country's rule (insert or replace). */
export async function putTaxRate(env: Pick<Env, "DB">, country: string, input: TaxRateInput): Promise<TaxRate> {
  const row = await drizzle(env.DB)
    .insert(taxRates)
    .values({ country, rateBps: input.rateBps, shippingTaxable: input.shippingTaxable })
    .onConflictDoUpdate({
      target: taxRates.country,
      set: {
        rateBps: input.rateBps,
        shippingTaxable: input.shippingTaxable,
        updatedAt: sql`(strftime('%Y-%m-%dT%H:%M:%fZ','now'))`,
      },
    })
    .returning()
    .get();
  return row;
}

/** Admin: the whole table, by country. */
export async function listTaxRates(env: Pick<Env, "DB">): Promise<TaxRate[]> {
  return drizzle(env.DB).select().from(taxRates).orderBy(asc(taxRates.country)).all();
}
