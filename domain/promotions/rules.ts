import type { PromotionKind, PromotionRefusal } from "../../contracts/promotion";

/** A promotion's terms as its PromotionObject stores them (what a cart snapshots to show discounts). */
export interface PromotionRule {
  code: string;
  kind: PromotionKind;
  value?: number;
  currency?: string;
  description: string;
  minSubtotal?: number;
  startsAt?: string;
  endsAt?: string;
  active: boolean;
}

/** The cart a code is checked against: its subtotal and currency, at `now` (ms). */
export interface PromotionContext {
  subtotal: number;
  currency: string;
  now: number;
}

/**
 * Why the terms refuse this cart, or null when they allow it. The counted limits (maxRedemptions,
 * perCustomerLimit) are the PromotionObject's to decide: only it sees every redemption.
 */
export function termsRefusal(rule: PromotionRule, cart: PromotionContext): PromotionRefusal | null {
  if (!rule.active) return "inactive";
  if (rule.startsAt && cart.now < Date.parse(rule.startsAt)) return "not_started";
  if (rule.endsAt && cart.now >= Date.parse(rule.endsAt)) return "expired";
  if (rule.currency && rule.currency !== cart.currency) return "currency";
  if (rule.minSubtotal !== undefined && cart.subtotal < rule.minSubtotal) return "below_minimum";
  return null;
}

/**
 * What the terms take off: `items` from the goods, `shipping` from the shipping charge. Percent
 * discounts are rounded down to the minor unit (never more than the stated percentage); a fixed
 * amount never exceeds the subtotal; free shipping takes the whole charge.
 */
export function discountOf(rule: PromotionRule, amounts: { subtotal: number; shipping: number }) {
  switch (rule.kind) {
    case "percent":
      return { items: Number((BigInt(amounts.subtotal) * BigInt(rule.value ?? 0)) / 100n), shipping: 0 };
    case "fixed":
      return { items: Math.min(rule.value ?? 0, amounts.subtotal), shipping: 0 };
    case "free_shipping":
      return { items: 0, shipping: amounts.shipping };
  }
}

/** Human text for a refusal (problem `detail`). */
export function refusalText(reason: PromotionRefusal, rule?: PromotionRule): string {
  switch (reason) {
    case "unknown":
      return "There is no such promotion code";
    case "inactive":
      return "This promotion code is no longer active";
    case "not_started":
      return `This promotion code is valid from ${rule?.startsAt}`;
    case "expired":
      return `This promotion code expired at ${rule?.endsAt}`;
    case "below_minimum":
      return `This promotion code needs a subtotal of at least ${rule?.minSubtotal} ${rule?.currency} minor units`;
    case "currency":
      return `This promotion code applies to ${rule?.currency} carts only`;
    case "used_up":
      return "This promotion code has been used up";
    case "already_used":
      return "You have already used this promotion code as often as it allows";
  }
}

/** The description shown when the admin gave none: `10 % off`, `5.00 USD off`, `Free shipping`. */
export function defaultDescription(rule: Pick<PromotionRule, "kind" | "value" | "currency">): string {
  switch (rule.kind) {
    case "percent":
      return `${rule.value} % off`;
    case "fixed":
      return `${((rule.value ?? 0) / 100).toFixed(2)} ${rule.currency} off`;
    case "free_shipping":
      return "Free shipping";
  }
}
