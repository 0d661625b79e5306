import { Money } from "./money.ts";
import { z } from "./zod.ts";

/**
 * Events a CartObject emits through its SQLite outbox onto the `saga-events` queue, written in the
 * same transaction as the change they announce. They start no saga step: the analytics consumer
 * counts them, so the funnel (carts created → checkouts started → paid) and the cart abandonment
 * rate come from facts, not guesses.
 */

export const CART_EVENT_VERSION = 1 as const;

const CartEventBase = z.object({
  id: z.uuid(),
  version: z.literal(CART_EVENT_VERSION),
  cartId: z.string().max(64),
  userId: z.string().max(64),
  occurredAt: z.iso.datetime(),
});

/** A customer created a cart (POST /v1/carts). */
export const CartCreated = CartEventBase.extend({ type: z.literal("cart.created") });
/** A cart was frozen for an order (POST /v1/orders): a checkout started. Emitted once per cart. */
export const CartCheckedOut = CartEventBase.extend({
  type: z.literal("cart.checked_out"),
  orderId: z.string().max(64),
  total: Money,
});

export const CartEvent = z.discriminatedUnion("type", [CartCreated, CartCheckedOut]);
export type CartEvent = z.infer<typeof CartEvent>;

type Envelope = "id" | "version" | "occurredAt";
/** What the CartObject supplies for a new event; it adds the envelope (id, version, time) itself. */
export type CartEventDraft =
  | Omit<z.infer<typeof CartCreated>, Envelope>
  | Omit<z.infer<typeof CartCheckedOut>, Envelope>;
