import { MAX_PRICE_AMOUNT, Money } from "./money.ts";
import { z } from "./zod.ts";

/**
 * Shipping, tax and order totals: what an admin configures (zones, rates, tax table), what a shopper
 * is offered (shipping options) and what an order snapshots (totals, shipment). Amounts are integer
 * minor units of one currency; the rounding rules live in domain/tax/totals.ts.
 */

/** ISO 3166-1 alpha-2, upper case. */
export const CountryCode = z.string().regex(/^[A-Z]{2}$/, "ISO 3166-1 alpha-2 country code, e.g. PT");
const Currency = z.string().regex(/^[A-Z]{3}$/, "ISO 4217 code, e.g. USD");
const Amount = z.number().int().min(0).max(MAX_PRICE_AMOUNT);
/** Carrier and service names as shoppers read them (`DHL`, `Express`). */
const Label = z.string().trim().min(1).max(60);

/** Every amount of an order; `subtotal − discount + shipping + tax = total`, none negative. */
export const OrderTotals = z.object({
  subtotal: Money,
  discount: Money,
  shipping: Money,
  tax: Money,
  total: Money,
});
export type OrderTotals = z.infer<typeof OrderTotals>;

/**
 * `pending`: the carrier step has not run yet; `label_created`: the carrier accepted the parcel
 * (tracking number known); `failed`: the carrier kept refusing (the order `needs_attention`).
 */
export const ShipmentStatus = z.enum(["pending", "label_created", "failed", "shipped", "delivered"]);
export type ShipmentStatus = z.infer<typeof ShipmentStatus>;

export const Shipment = z.object({
  status: ShipmentStatus,
  carrier: z.string(),
  service: z.string(),
  trackingNumber: z.string().optional(),
  shippedAt: z.iso.datetime().optional(),
  deliveredAt: z.iso.datetime().optional(),
});
export type Shipment = z.infer<typeof Shipment>;

/** One way to ship a cart, priced for it (GET /v1/carts/{id}/shipping-options). */
export const ShippingOption = z.object({
  id: z.string(),
  carrier: z.string(),
  service: z.string(),
  amount: Money,
  estimatedDays: z.number().int().positive(),
});
export type ShippingOption = z.infer<typeof ShippingOption>;

export const ShippingOptionList = z.object({ items: z.array(ShippingOption) });
export type ShippingOptionList = z.infer<typeof ShippingOptionList>;

/** Admin: a set of destination countries shipped alike. */
export const ShippingZoneInput = z
  .object({
    name: Label,
    countries: z.array(CountryCode).min(1).max(250),
  })
  .strict();
export type ShippingZoneInput = z.infer<typeof ShippingZoneInput>;

export const ShippingZone = ShippingZoneInput.extend({ id: z.string() });
export type ShippingZone = z.infer<typeof ShippingZone>;

/**
 * Admin: a carrier service's price into one zone, in one currency. `flat` costs `amount`; `weight`
 * costs `amount` plus `perKg` for every started kilogram of the parcel. `freeAbove`: free when the
 * discounted subtotal reaches it.
 */
export const ShippingRateInput = z
  .object({
    zoneId: z.string().min(1).max(64),
    carrier: Label,
    service: Label,
    currency: Currency,
    kind: z.enum(["flat", "weight"]),
    amount: Amount,
    perKg: Amount.optional(),
    freeAbove: Amount.optional(),
    estimatedDays: z.number().int().min(1).max(90),
    active: z.boolean().default(true),
  })
  .strict()
  .refine((r) => r.kind === "weight" || r.perKg === undefined, {
    message: "perKg applies to weight-based rates only",
    path: ["perKg"],
  })
  .refine((r) => r.kind === "flat" || r.perKg !== undefined, {
    message: "a weight-based rate needs perKg",
    path: ["perKg"],
  });
export type ShippingRateInput = z.infer<typeof ShippingRateInput>;

/** Admin: a rate's price, threshold, estimate or active flag (carrier, service, zone and currency stay). */
export const ShippingRatePatch = z
  .object({
    amount: Amount.optional(),
    perKg: Amount.optional(),
    freeAbove: Amount.optional(),
    estimatedDays: z.number().int().min(1).max(90).optional(),
    active: z.boolean().optional(),
  })
  .strict();
export type ShippingRatePatch = z.infer<typeof ShippingRatePatch>;

export const ShippingRate = z.object({
  id: z.string(),
  zoneId: z.string(),
  carrier: z.string(),
  service: z.string(),
  currency: z.string(),
  kind: z.enum(["flat", "weight"]),
  amount: z.number().int(),
  perKg: z.number().int().optional(),
  freeAbove: z.number().int().optional(),
  estimatedDays: z.number().int(),
  active: z.boolean(),
});
export type ShippingRate = z.infer<typeof ShippingRate>;

export const ShippingRateList = z.object({ items: z.array(ShippingRate) });
export const ShippingZoneList = z.object({ items: z.array(ShippingZone) });

/** Tax rates are basis points (1/100 of a percent): 2300 = 23 %. At most 50 %. */
export const MAX_TAX_RATE_BPS = 5000;

/** Admin: a country's tax rule. `shippingTaxable`: whether shipping is taxed like goods there. */
export const TaxRateInput = z
  .object({
    rateBps: z.number().int().min(0).max(MAX_TAX_RATE_BPS),
    shippingTaxable: z.boolean(),
  })
  .strict();
export type TaxRateInput = z.infer<typeof TaxRateInput>;

export const TaxRate = TaxRateInput.extend({ country: CountryCode, updatedAt: z.string() });
export type TaxRate = z.infer<typeof TaxRate>;

export const TaxRateList = z.object({ items: z.array(TaxRate) });

/** POST /v1/admin/orders/{id}/ship: by default the shipment the carrier step created. */
export const ShipRequest = z
  .object({
    carrier: Label.optional(),
    trackingNumber: z
      .string()
      .trim()
      .regex(/^[A-Za-z0-9-]{4,40}$/, "4-40 letters, digits or '-'")
      .optional(),
  })
  .strict();
export type ShipRequest = z.infer<typeof ShipRequest>;
