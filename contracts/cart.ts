import { SkuCode } from "./inventory-events.ts";
import { Money } from "./money.ts";
import { z } from "./zod.ts";

/** One cart line; `unitPrice` is the catalog price snapshotted when the SKU was added. */
export const CartLine = z.object({
  sku: SkuCode,
  productId: z.string(),
  name: z.string(),
  quantity: z.number().int().positive(),
  unitPrice: Money,
  lineTotal: Money,
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
