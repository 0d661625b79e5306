import { SkuCode } from "./inventory-events.ts";
import { Money } from "./money.ts";
import { Discount } from "./promotion.ts";
import { z } from "./zod.ts";

/** One cart line; `unitPrice` is the catalog price snapshotted when the SKU was added. */
export const CartLine = z.object({
  sku: SkuCode,
  productId: z.string(),
  name: z.string(),
  quantity: z.number().int().positive(),
  unitPrice: Money,
  lineTotal: Money,
  /** Shipping weight of one unit in grams, snapshotted with the price; absent for digital goods. */
  weightGrams: z.number().int().nonnegative().optional(),
});
export type CartLine = z.infer<typeof CartLine>;

export const CartStatus = z.enum(["open", "checked_out"]);
export type CartStatus = z.infer<typeof CartStatus>;

/** A cart as the API and the order saga see it. */
export const Cart = z.object({
  id: z.string(),
  ownerId: z.string(),
  items: z.array(CartLine),
  total: Money,
  status: CartStatus,
  /** The promotion code applied to the cart, checked again (and redeemed) at checkout. */
  promotionCode: z.string().optional(),
  /** What the applied code takes off now (free shipping shows 0 until shipping is chosen). */
  discounts: z.array(Discount).default([]),
  /** Set once the cart is checked out into an order. */
  orderId: z.string().optional(),
  updatedAt: z.iso.datetime(),
});
export type Cart = z.infer<typeof Cart>;

/** Result of `CartObject.checkout(ownerId, orderId)`. */
export type CheckoutResult =
  | { ok: true; cart: Cart }
  | { ok: false; reason: "not_found" | "empty" | "checked_out"; orderId?: string };

/** Per-line quantity limit and line-count limit of a cart. */
export const MAX_LINE_QUANTITY = 99;
export const MAX_CART_LINES = 50;
