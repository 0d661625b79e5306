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

/**
 * Inventory events carry the SKU's full level: project its `available` into the catalog, newest
 * revision wins. The claim is atomic in D1, so a duplicate or an older event projects nothing.
 * Two newer events can still interleave their catalog writes; the one that finds its revision
 * superseded afterwards re-projects the SKU's live level, so the catalog converges on the truth.
 */
export async function projectInventoryEvent(event: InventoryEvent, env: Env): Promise<void> {
  const claimed = await env.DB.prepare(
    `INSERT INTO inventory_projection (sku, revision) VALUES (?1, ?2)
     ON CONFLICT (sku) DO UPDATE SET revision = excluded.revision, updated_at = excluded.updated_at
       WHERE excluded.revision > inventory_projection.revision
     RETURNING revision`,
  )
    .bind(event.sku, event.revision)
    .first();
  if (!claimed) return;
  await projectAvailability(env, event.sku, event.available);
  const latest = await env.DB.prepare("SELECT revision FROM inventory_projection WHERE sku = ?")
    .bind(event.sku)
    .first<{ revision: number }>();
  if (latest && latest.revision > event.revision) {
    const level = await env.INVENTORY.getByName(event.sku).level();
    await projectAvailability(env, event.sku, level.available);
  }
}
