// Demo shipping, tax and promotions through the admin API (after the catalog and stock, before the
// demo orders): three shipping zones, two carriers' services into each (a flat CTT Standard that is
// free from 75.00 and a weight-based DHL Express), the tax table for the demo countries and two
// promotion codes. Idempotent: zones and rates are written only when there are none yet, tax rates
// are PUTs, and an existing promotion code (409) is left as it is.
import { expectOk } from "../api-client.ts";
import type { SeedContext } from "../local.ts";

const ZONES = [
  { name: "Portugal", countries: ["PT"] },
  { name: "European Union", countries: ["ES", "FR", "DE", "IT", "NL", "BE", "IE", "AT"] },
  { name: "United Kingdom and North America", countries: ["GB", "US", "CA"] },
];

/** Per zone, in the order above: [CTT Standard flat, days], [DHL Express base, per kg, days]. */
const PRICES: [[number, number], [number, number, number]][] = [
  [
    [450, 3],
    [900, 150, 1],
  ],
  [
    [990, 5],
    [1490, 300, 2],
  ],
  [
    [1490, 8],
    [2490, 500, 3],
  ],
];

/** Basis points and whether shipping is taxed there (EU VAT taxes delivery with the goods; US states mostly do not). */
const TAX: Record<string, [number, boolean]> = {
  PT: [2300, true],
  ES: [2100, true],
  FR: [2000, true],
  DE: [1900, true],
  IT: [2200, true],
  NL: [2100, true],
  BE: [2100, true],
  IE: [2300, true],
  AT: [2000, true],
  GB: [2000, true],
  US: [0, false],
  CA: [500, true],
};

export const DEMO_PROMOTIONS = [
  { code: "WELCOME10", kind: "percent", value: 10, perCustomerLimit: 1, description: "10 % off your first order" },
  {
    code: "FREESHIP",
    kind: "free_shipping",
    currency: "USD",
    minSubtotal: 5000,
    description: "Free shipping from 50.00",
  },
] as const;

export default async function seedFulfilment(ctx: SeedContext): Promise<void> {
  const admin = ctx.api(await ctx.adminToken());
  const zones = await expectOk("shipping zones", admin.GET("/v1/admin/shipping/zones"));
  if (zones.items.length === 0) {
    for (const [i, zone] of ZONES.entries()) {
      const created = await expectOk("shipping zone", admin.POST("/v1/admin/shipping/zones", { body: zone }));
      const [[standard, standardDays], [express, perKg, expressDays]] = PRICES[i]!;
      const base = { zoneId: created.id, currency: "USD", active: true };
      await expectOk(
        "CTT rate",
        admin.POST("/v1/admin/shipping/rates", {
          body: {
            ...base,
            carrier: "CTT",
            service: "Standard",
            kind: "flat",
            amount: standard,
            freeAbove: 7500,
            estimatedDays: standardDays,
          },
        }),
      );
      await expectOk(
        "DHL rate",
        admin.POST("/v1/admin/shipping/rates", {
          body: {
            ...base,
            carrier: "DHL",
            service: "Express",
            kind: "weight",
            amount: express,
            perKg,
            estimatedDays: expressDays,
          },
        }),
      );
    }
    ctx.log(`fulfilment: ${ZONES.length} shipping zones, CTT Standard and DHL Express into each`);
  } else {
    ctx.log("fulfilment: shipping zones exist already");
  }
  for (const [country, [rateBps, shippingTaxable]] of Object.entries(TAX)) {
    await expectOk(
      "tax rate",
      admin.PUT("/v1/admin/tax-rates/{country}", { params: { path: { country } }, body: { rateBps, shippingTaxable } }),
    );
  }
  for (const promotion of DEMO_PROMOTIONS) {
    const { response } = await admin.POST("/v1/admin/promotions", { body: { ...promotion } });
    if (response.status !== 201 && response.status !== 409) {
      throw new Error(`promotion ${promotion.code}: HTTP ${response.status}`);
    }
  }
  ctx.log(
    `fulfilment: tax rates for ${Object.keys(TAX).length} countries; codes ${DEMO_PROMOTIONS.map((p) => p.code).join(", ")}`,
  );
}
