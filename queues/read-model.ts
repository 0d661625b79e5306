import { sql } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import type { InventoryEvent } from "../contracts/inventory-events";
import type { OrderEvent } from "../contracts/saga-events";
import { ordersView } from "../d1/schema/orders";
import { projectAvailability } from "../workers/catalog/availability";

/**
 * Read-model projection. Orders: upsert the snapshot the event carries, only if its revision is
 * newer than the stored one, so duplicates and out-of-order deliveries converge on the latest
 * state. Inventory: the catalog's `available` column, via the catalog's own projection function.
 */
export async function projectOrderEvent(event: OrderEvent, env: Env): Promise<void> {
  const o = event.order;
  const row = {
    id: o.id,
    userId: o.userId,
    status: o.status,
    reason: o.reason ?? null,
    totalAmount: o.total.amount,
    currency: o.total.currency,
    itemCount: o.items.reduce((n, line) => n + line.quantity, 0),
    items: o.items,
    paymentStatus: o.payment.status,
    refundedAmount: o.payment.refunded,
    revision: event.revision,
    createdAt: o.createdAt,
    updatedAt: o.updatedAt,
  };
  await drizzle(env.DB)
    .insert(ordersView)
    .values(row)
    .onConflictDoUpdate({
      target: ordersView.id,
      set: {
        status: sql`excluded.status`,
        reason: sql`excluded.reason`,
        paymentStatus: sql`excluded.payment_status`,
        refundedAmount: sql`excluded.refunded_amount`,
        revision: sql`excluded.revision`,
        updatedAt: sql`excluded.updated_at`,
      },
      setWhere: sql`excluded.revision > ${ordersView.revision}`,
    });
}

/** Inventory events carry the SKU's full level: project its `available` into the catalog. */
export async function projectInventoryEvent(event: InventoryEvent, env: Env): Promise<void> {
  await projectAvailability(env, event.sku, event.available);
}
