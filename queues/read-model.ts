import type { InventoryEvent } from "../contracts/inventory-events";
import type { OrderEvent } from "../contracts/saga-events";
import { projectAvailability } from "../domain/catalog/availability";
import { purchaseCountStatements } from "../domain/recommendations/bought-together";

/**
 * Upserts the snapshots of a list of order events (a JSON array of rows, one statement for a whole
 * queue batch, the newest per order), each only if its revision is newer than the stored one — as
 * one upsert per event would, without a statement per event for D1 to prepare and run.
 */
const UPSERT_ORDER_VIEWS = `INSERT INTO orders_view
    (id, user_id, status, reason, total_amount, currency, item_count, items, payment_status,
     refunded_amount, revision, created_at, updated_at)
  SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'),
         json_extract(value, '$[3]'), json_extract(value, '$[4]'), json_extract(value, '$[5]'),
         json_extract(value, '$[6]'), json_extract(value, '$[7]'), json_extract(value, '$[8]'),
         json_extract(value, '$[9]'), json_extract(value, '$[10]'), json_extract(value, '$[11]'),
         json_extract(value, '$[12]')
    FROM json_each(?1) WHERE true ORDER BY key
  ON CONFLICT (id) DO UPDATE SET
    status = excluded.status, reason = excluded.reason, payment_status = excluded.payment_status,
    refunded_amount = excluded.refunded_amount, revision = excluded.revision, updated_at = excluded.updated_at
  WHERE excluded.revision > orders_view.revision`;

/** The read-model row an order event carries, in UPSERT_ORDER_VIEWS's column order. */
function viewRow(event: OrderEvent): (string | number | null)[] {
  const o = event.order;
  return [
    o.id,
    o.userId,
    o.status,
    o.reason ?? null,
    o.total.amount,
    o.total.currency,
    o.items.reduce((n, line) => n + line.quantity, 0),
    JSON.stringify(o.items),
    o.payment.status,
    o.payment.refunded,
    event.revision,
    o.createdAt,
    o.updatedAt,
  ];
}

/**
 * Read-model projection of order events: upsert the snapshots they carry, each only if its
 * revision is newer than the stored one, so duplicates and out-of-order deliveries converge on the
 * latest state. Returned as one statement so the dispatcher can write a whole queue batch in one
 * D1 call.
 */
export function orderProjection(events: OrderEvent[], env: Pick<Env, "DB">): D1PreparedStatement {
  return env.DB.prepare(UPSERT_ORDER_VIEWS).bind(JSON.stringify(newestPerOrder(events).map(viewRow)));
}

/**
 * The newest event of each order in the list: the only snapshot of it the upsert would keep. A
 * checkout's reserved, paid and confirmed events are relayed together and usually share a batch;
 * one row each instead of three.
 */
function newestPerOrder(events: OrderEvent[]): OrderEvent[] {
  const newest = new Map<string, OrderEvent>();
  for (const event of events) {
    const kept = newest.get(event.orderId);
    if (!kept || event.revision > kept.revision) newest.set(event.orderId, event);
  }
  return [...newest.values()];
}

/**
 * Projects order events into `orders_view`, and counts confirmed orders into the recommendation
 * counts, in one D1 batch (one implicit transaction): both are idempotent, so a retry of the batch
 * or a redelivered event changes nothing twice.
 */
export async function projectOrderEvents(events: OrderEvent[], env: Pick<Env, "DB">): Promise<void> {
  if (events.length === 0) return;
  await env.DB.batch([
    orderProjection(events, env),
    ...events.flatMap((event) => purchaseCountStatements(env.DB, event)),
  ]);
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
