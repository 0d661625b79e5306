import { drizzle } from "drizzle-orm/d1";
import type { Cart } from "../../contracts/cart";
import type { OrderTotals, ShippingOption } from "../../contracts/fulfilment";
import { DomainError, invalidInput } from "../errors";
import { discountOf, refusalText } from "../promotions/rules";
import { taxRuleFor, taxRuleQuery } from "../tax/rates";
import { computeTotals, type TaxRule } from "../tax/totals";
import { chosenFrom, ratesQuery } from "./shipping";

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
  // The cart shows the discount of its code's terms (kind and value never change after creation),
  // so the option can be priced against the discounted subtotal before the code is redeemed.
  const preview = cart.discounts[0];
  const itemDiscount = preview && preview.kind !== "free_shipping" ? preview.amount.amount : 0;
  if (weightGrams === null) return { tax: await taxRuleFor(env, input.country), option: null, weightGrams };
  const parcel = {
    country: input.country,
    currency: cart.total.currency,
    weightGrams,
    discountedSubtotal: cart.total.amount - itemDiscount,
  };
  // The tax rule and the rates in one D1 round trip (each call passes the binding and the database).
  const db = drizzle(env.DB);
  const [taxRows, rates] = await db.batch([taxRuleQuery(db, input.country), ratesQuery(db, parcel)]);
  return { tax: taxRows[0] ?? null, option: chosenFrom(rates, input.shippingOptionId!, parcel), weightGrams };
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
