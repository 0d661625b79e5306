import { drizzle } from "drizzle-orm/d1";
import type { Cart } from "../../contracts/cart";
import type { OrderTotals, ShippingOption } from "../../contracts/fulfilment";
import { DomainError, invalidInput } from "../errors";
import { IsolateCopies } from "../isolate-copy";
import { discountOf, refusalText } from "../promotions/rules";
import { taxRuleQuery } from "../tax/rates";
import { computeTotals, type TaxRule } from "../tax/totals";
import { chosenFrom, type RateRow, ratesQuery } from "./shipping";

/** The shipping an order snapshots: the option as priced at checkout and the parcel's weight. */
export interface ShippingSnapshot extends ShippingOption {
  weightGrams: number;
}

/** What an order is charged, decided once at checkout and snapshotted into the OrderObject. */
export interface CheckoutPricing {
  totals: OrderTotals;
  /** Absent when nothing in the cart ships (digital goods only). */
  shipping?: ShippingSnapshot;
  /** Set when the cart's code was redeemed for this order. */
  promotionCode?: string;
}

/** What a checkout is priced from, before anything is redeemed. */
export interface QuoteInput {
  cart: Cart;
  country: string;
  shippingOptionId?: string;
}

/** The side-effect-free half of pricing: the destination's tax rule and the chosen option, priced. */
export interface CheckoutQuote {
  tax: TaxRule | null;
  option: ShippingOption | null;
  weightGrams: number | null;
}

/** Physical lines' total weight in grams, or null when nothing in the cart ships. */
export function parcelWeight(items: Cart["items"]): number | null {
  const physical = items.filter((line) => line.weightGrams !== undefined);
  if (physical.length === 0) return null;
  return physical.reduce((sum, line) => sum + line.weightGrams! * line.quantity, 0);
}

/** What a quote reads: the destination's tax rule, and the active rates into it in the cart's currency. */
interface QuoteTables {
  tax: TaxRule | null;
  rates: RateRow[];
}

/**
 * Every checkout quotes from these tables, which only admins change: an isolate keeps a copy per
 * destination and currency for a second (one D1 batch fewer per checkout). An admin's change to a
 * zone, rate or tax rule therefore applies to checkouts within a second, and at once in the
 * isolate that made it (`forgetQuoteTables`). An option the copy does not know is looked up again
 * at once, so a rate created a moment ago in another isolate is never refused.
 */
const quoteTables = new IsolateCopies<QuoteTables>(1000);

/** After an admin's change to shipping zones, rates or tax rules: this isolate's next quote reads them. */
export function forgetQuoteTables(): void {
  quoteTables.forget();
}

/** The tax rule and the rates in one D1 round trip (each call passes the binding and the database). */
async function readQuoteTables(env: Env, country: string, currency: string): Promise<QuoteTables> {
  const db = drizzle(env.DB);
  const [taxRows, rates] = await db.batch([taxRuleQuery(db, country), ratesQuery(db, { country, currency })]);
  return { tax: taxRows[0] ?? null, rates };
}

/**
 * Validates and prices what a checkout can refuse without side effects: a cart with something to
 * ship needs a shipping option that ships its currency to the address's country (400 otherwise).
 * The route runs this on the cart before freezing it, so a bad option changes nothing.
 */
export async function quoteCheckout(env: Env, input: QuoteInput): Promise<CheckoutQuote> {
  const { cart } = input;
  const weightGrams = parcelWeight(cart.items);
  if (weightGrams !== null && input.shippingOptionId === undefined) {
    throw invalidInput("This cart has items to ship: choose a shipping option", [
      { path: "shippingOptionId", message: "required (GET /v1/carts/{id}/shipping-options)" },
    ]);
  }
  const currency = cart.total.currency;
  const key = `${input.country}|${currency}`;
  const read = () => readQuoteTables(env, input.country, currency);
  let tables = await quoteTables.get(key, read);
  if (weightGrams === null) return { tax: tables.tax, option: null, weightGrams };
  // The cart shows the discount of its code's terms (kind and value never change after creation),
  // so the option can be priced against the discounted subtotal before the code is redeemed.
  const preview = cart.discounts[0];
  const itemDiscount = preview && preview.kind !== "free_shipping" ? preview.amount.amount : 0;
  const parcel = {
    country: input.country,
    currency,
    weightGrams,
    discountedSubtotal: cart.total.amount - itemDiscount,
  };
  if (!tables.rates.some((rate) => rate.id === input.shippingOptionId)) tables = await quoteTables.refresh(key, read);
  return { tax: tables.tax, option: chosenFrom(tables.rates, input.shippingOptionId!, parcel), weightGrams };
}

/**
 * Prices the frozen cart of order `orderId` from its quote: redeems the cart's promotion code for
 * the order (its PromotionObject decides, exactly once and within its limits), then computes the
 * totals. A refused code is 422 `promotion-not-applicable` with the reason in `errors[0].message`;
 * the caller gives a redemption back (`releaseRedemption`) if the order is not placed after all.
 */
export async function priceCheckout(
  env: Env,
  quote: CheckoutQuote,
  order: { cart: Cart; userId: string; orderId: string },
): Promise<CheckoutPricing> {
  const { cart } = order;
  const currency = cart.total.currency;
  const subtotal = cart.total.amount;
  const shipping = quote.option?.amount.amount ?? 0;
  let itemDiscount = 0;
  let shippingDiscount = 0;
  if (cart.promotionCode) {
    const verdict = await env.PROMOTION.getByName(cart.promotionCode).redeem(order.orderId, order.userId, {
      subtotal,
      currency,
      now: Date.now(),
    });
    if (!verdict.ok) {
      throw new DomainError("unprocessable", refusalText(verdict.reason, verdict.rule), {
        kind: "promotion-not-applicable",
        fields: [{ path: "promotionCode", message: verdict.reason }],
      });
    }
    const off = discountOf(verdict.rule, { subtotal, shipping });
    itemDiscount = off.items;
    shippingDiscount = off.shipping;
  }
  const totals = computeTotals({ currency, subtotal, itemDiscount, shipping, shippingDiscount, tax: quote.tax });
  return {
    totals,
    ...(quote.option && quote.weightGrams !== null
      ? { shipping: { ...quote.option, weightGrams: quote.weightGrams } }
      : {}),
    ...(cart.promotionCode ? { promotionCode: cart.promotionCode } : {}),
  };
}

/** True when the frozen cart is what was quoted (a concurrent edit between the two is re-quoted). */
export function sameContents(a: Cart, b: Cart): boolean {
  return a.promotionCode === b.promotionCode && JSON.stringify(a.items) === JSON.stringify(b.items);
}

/** Gives back a redemption made by `priceCheckout` for an order that was not placed after all. */
export async function releaseRedemption(env: Env, pricing: CheckoutPricing | null, orderId: string): Promise<void> {
  if (pricing?.promotionCode) await env.PROMOTION.getByName(pricing.promotionCode).release(orderId);
}
