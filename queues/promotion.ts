import type { z } from "zod";
import type { OrderCancelled } from "../contracts/saga-events";

/**
 * Promotion compensation of the saga: a cancelled order gives its redemption back, so the code's
 * `maxRedemptions` and the customer's `perCustomerLimit` count it no more. Idempotent by order id.
 */
export async function handlePromotionEvent(event: z.infer<typeof OrderCancelled>, env: Env): Promise<void> {
  const code = event.order.promotionCode;
  if (code) await env.PROMOTION.getByName(code).release(event.orderId);
}
