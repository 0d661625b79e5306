import type { OrderTotals } from "../../contracts/fulfilment";

/** A country's tax rule: basis points (2300 = 23 %), and whether shipping is taxed too. */
export interface TaxRule {
  rateBps: number;
  shippingTaxable: boolean;
}

/** What an order's totals are computed from, all integer minor units of `currency`. */
export interface TotalsInput {
  currency: string;
  /** Sum of the lines (unit price × quantity). */
  subtotal: number;
  /** Taken off the goods by a promotion (clamped to the subtotal). */
  itemDiscount: number;
  /** The shipping option's price for this cart. */
  shipping: number;
  /** Taken off shipping by a free-shipping promotion (clamped to the shipping). */
  shippingDiscount: number;
  /** The destination's rule; null when the country has none (no tax). */
  tax: TaxRule | null;
}

/**
 * `round(amount × bps / 10,000)` with halves rounded up, exactly, for non-negative integers.
 * BigInt because a 50-line cart at the maximum price times a rate in basis points passes 2^53.
 */
export function basisPointsHalfUp(amount: number, bps: number): number {
  const product = BigInt(amount) * BigInt(bps);
  return Number((2n * product + 10_000n) / 20_000n);
}

/**
 * An order's totals. Rounding (README "Shipping, promotions and tax"): tax is computed once, on the
 * whole taxable base (discounted subtotal, plus discounted shipping where the country taxes
 * shipping), at the country's rate in basis points, rounded half up to the minor unit; nothing is
 * rounded per line, so the parts always add up — `subtotal − discount + shipping + tax = total` —
 * and no part is negative, because each discount is clamped to what it discounts.
 */
export function computeTotals(input: TotalsInput): OrderTotals {
  const { currency, subtotal, shipping } = input;
  const itemDiscount = Math.min(Math.max(0, input.itemDiscount), subtotal);
  const shippingDiscount = Math.min(Math.max(0, input.shippingDiscount), shipping);
  const discount = itemDiscount + shippingDiscount;
  const taxBase = subtotal - itemDiscount + (input.tax?.shippingTaxable ? shipping - shippingDiscount : 0);
  const tax = input.tax ? basisPointsHalfUp(taxBase, input.tax.rateBps) : 0;
  const money = (amount: number) => ({ amount, currency });
  return {
    subtotal: money(subtotal),
    discount: money(discount),
    shipping: money(shipping),
    tax: money(tax),
    total: money(subtotal - discount + shipping + tax),
  };
}
