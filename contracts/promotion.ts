import { MAX_PRICE_AMOUNT, Money } from "./money.ts";
import { z } from "./zod.ts";

/** Codes are case-insensitive on input and stored upper case: `SUMMER-10`. */
export const PromotionCode = z
  .string()
  .trim()
  .toUpperCase()
  .regex(/^[A-Z0-9][A-Z0-9_-]{1,31}$/, "2-32 letters, digits, '-' or '_'");

export const PromotionKind = z.enum(["percent", "fixed", "free_shipping"]);
export type PromotionKind = z.infer<typeof PromotionKind>;

/** Why a code does not apply (422 `promotion-not-applicable`, in `errors[0].message`). */
export const PromotionRefusal = z.enum([
  "unknown",
  "inactive",
  "not_started",
  "expired",
  "below_minimum",
  "currency",
  "used_up",
  "already_used",
]);
export type PromotionRefusal = z.infer<typeof PromotionRefusal>;

const Amount = z.number().int().min(1).max(MAX_PRICE_AMOUNT);
const Limit = z.number().int().min(1).max(1_000_000_000);

/**
 * POST /v1/admin/promotions. `percent`: `value` 1-100 % off the subtotal; `fixed`: `value` minor
 * units of `currency` off (never more than the subtotal); `free_shipping`: the shipping charge off.
 * `minSubtotal` is in `currency`, so either needs it; a code with a currency applies to carts in
 * that currency only.
 */
export const PromotionInput = z
  .object({
    code: PromotionCode,
    kind: PromotionKind,
    value: Amount.optional(),
    currency: z
      .string()
      .regex(/^[A-Z]{3}$/, "ISO 4217 code, e.g. USD")
      .optional(),
    description: z.string().trim().min(1).max(200).optional(),
    minSubtotal: Amount.optional(),
    startsAt: z.iso.datetime().optional(),
    endsAt: z.iso.datetime().optional(),
    maxRedemptions: Limit.optional(),
    perCustomerLimit: Limit.optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    if (p.kind === "percent" && (p.value === undefined || p.value > 100))
      ctx.addIssue({ code: "custom", path: ["value"], message: "a percent promotion needs value 1-100" });
    if (p.kind === "fixed" && p.value === undefined)
      ctx.addIssue({ code: "custom", path: ["value"], message: "a fixed promotion needs value (minor units)" });
    if (p.kind === "free_shipping" && p.value !== undefined)
      ctx.addIssue({ code: "custom", path: ["value"], message: "free_shipping takes no value" });
    if ((p.kind === "fixed" || p.minSubtotal !== undefined) && p.currency === undefined)
      ctx.addIssue({ code: "custom", path: ["currency"], message: "fixed amounts and minSubtotal need a currency" });
    if (p.startsAt && p.endsAt && Date.parse(p.endsAt) <= Date.parse(p.startsAt))
      ctx.addIssue({ code: "custom", path: ["endsAt"], message: "endsAt must be after startsAt" });
  });
export type PromotionInput = z.infer<typeof PromotionInput>;

/** PATCH /v1/admin/promotions/{code}: `endsAt: null` removes the end. */
export const PromotionPatch = z
  .object({
    active: z.boolean().optional(),
    endsAt: z.iso.datetime().nullable().optional(),
    maxRedemptions: Limit.nullable().optional(),
  })
  .strict();
export type PromotionPatch = z.infer<typeof PromotionPatch>;

/** A promotion as the admin routes return it, with its live redemption count. */
export const Promotion = z.object({
  code: z.string(),
  kind: PromotionKind,
  value: z.number().int().optional(),
  currency: z.string().optional(),
  description: z.string(),
  minSubtotal: z.number().int().optional(),
  startsAt: z.string().optional(),
  endsAt: z.string().optional(),
  maxRedemptions: z.number().int().optional(),
  perCustomerLimit: z.number().int().optional(),
  active: z.boolean(),
  /** Orders holding a redemption now (cancelled orders gave theirs back). */
  redemptions: z.number().int().nonnegative(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
export type Promotion = z.infer<typeof Promotion>;

/** One discount a cart or order carries. A free-shipping discount is 0 until shipping is chosen. */
export const Discount = z.object({ code: z.string(), kind: PromotionKind, description: z.string(), amount: Money });
export type Discount = z.infer<typeof Discount>;

export const ApplyPromotion = z.object({ code: PromotionCode }).strict();
