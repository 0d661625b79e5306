import type { CancelReason, OrderLine, OrderList, OrderStatus, PaymentStatus } from "../../contracts/order";
import { decodeCreatedAtCursor, encodeCreatedAtCursor } from "../keyset-cursor";

/** One row of `orders_view`, the read model the saga's events project into D1. */
interface OrderViewRow {
  id: string;
  status: OrderStatus;
  reason: string | null;
  total_amount: number;
  currency: string;
  item_count: number;
  items: string;
  payment_status: PaymentStatus;
  refunded_amount: number;
  created_at: string;
  updated_at: string;
}

/**
 * A customer's orders, newest first, from the read model (never from the Order objects, which
 * would be one call per order). Keyset pagination on (created_at, id): the cursor is the last
 * item's pair, so pages stay stable while new orders arrive.
 */
export async function listCustomerOrders(
  env: Pick<Env, "DB">,
  userId: string,
  page: { limit: number; cursor?: string },
): Promise<OrderList> {
  const after = page.cursor === undefined ? null : decodeCreatedAtCursor(page.cursor);
  const rows = await env.DB.prepare(
    `SELECT * FROM orders_view WHERE user_id = ?1
       AND (?2 IS NULL OR created_at < ?2 OR (created_at = ?2 AND id < ?3))
     ORDER BY created_at DESC, id DESC LIMIT ?4`,
  )
    .bind(userId, after?.createdAt ?? null, after?.id ?? null, page.limit + 1)
    .all<OrderViewRow>();
  const items = rows.results.slice(0, page.limit);
  const last = items.at(-1);
  return {
    items: items.map((r) => ({
      id: r.id,
      status: r.status,
      ...(r.reason ? { reason: r.reason as CancelReason } : {}),
      total: { amount: r.total_amount, currency: r.currency },
      itemCount: r.item_count,
      items: JSON.parse(r.items) as OrderLine[],
      payment: { status: r.payment_status, refunded: r.refunded_amount },
      createdAt: r.created_at,
      updatedAt: r.updated_at,
    })),
    nextCursor: rows.results.length > page.limit && last ? encodeCreatedAtCursor(last.created_at, last.id) : null,
  };
}
