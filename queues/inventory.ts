import type { z } from "zod";
import type { OrderCancelled, OrderLine, OrderPaid, OrderPlaced, OrderShipped } from "../contracts/saga-events";
import { parcelWeight } from "../domain/fulfilment/pricing";
import type { PendingShipment, SaleOutcome, StepAck } from "../durable-objects/order";
import { orderShardOf } from "../durable-objects/order-shard";
import { bookBesideSale } from "./shipping";

type Placed = z.infer<typeof OrderPlaced>;
type Paid = z.infer<typeof OrderPaid>;
type Cancelled = z.infer<typeof OrderCancelled>;
type Shipped = z.infer<typeof OrderShipped>;

/** The SKUs an order's lines name, each once: one inventory object per SKU. */
const skusOf = (items: OrderLine[]) => [...new Set(items.map((line) => line.sku))];

/** Reservations outlive the saga timeout by a wide margin; the alarm releases abandoned ones. */
const RESERVATION_TTL_MS = 15 * 60 * 1000;

/**
 * Inventory step of the saga. Every InventoryObject call is idempotent by order id, and the order
 * object ignores results it has already applied, so a duplicate message has one effect; a message
 * that arrives after the order moved on (cancelled meanwhile) undoes its own reservation.
 * `attempts` is the message's delivery count (the carrier booking made beside the sale passes it on).
 * On `order.placed` it answers the order's ack: with `next`, this delivery charges the order itself
 * (queues/saga-continuation.ts).
 */
export async function handleInventoryEvent(
  event: Placed | Paid | Cancelled | Shipped,
  env: Env,
  attempts = 1,
): Promise<StepAck | undefined> {
  const order = orderShardOf(env, event.orderId);
  const skus = skusOf(event.order.items);
  const releaseAll = () => Promise.all(skus.map((sku) => env.INVENTORY.getByName(sku).release(event.orderId)));

  switch (event.type) {
    case "order.placed": {
      // All or nothing: reserve every line in parallel (different SKUs are different objects),
      // and give back whatever was reserved if any line is short.
      const results = await Promise.all(
        event.order.items.map((line) =>
          env.INVENTORY.getByName(line.sku).reserve({
            orderId: event.orderId,
            quantity: line.quantity,
            ttlMs: RESERVATION_TTL_MS,
            ...(event.traceparent ? { traceparent: event.traceparent } : {}),
          }),
        ),
      );
      const ok = results.every((r) => r.ok);
      if (!ok) await releaseAll();
      const ack = await order.reservationResult(
        event.orderId,
        ok ? { ok: true } : { ok: false, reason: "out_of_stock" },
        { inline: true },
      );
      if (ok && !ack.accepted) await releaseAll();
      return ack;
    }
    case "order.paid":
      await sell(event.orderId, event.order.items, env, attempts);
      return;
    case "order.cancelled":
      // Release is a no-op for lines never reserved or already released; restock puts sold but
      // unshipped units back (an order cancelled after payment), and is a no-op otherwise.
      await Promise.all(
        skus.map(async (sku) => {
          const stock = env.INVENTORY.getByName(sku);
          await stock.release(event.orderId);
          await stock.restock(event.orderId);
        }),
      );
      return;
    case "order.shipped":
      // The parcel left: its units leave onHand and sold (once per order and SKU).
      await Promise.all(skus.map((sku) => env.INVENTORY.getByName(sku).ship(event.orderId)));
      return;
  }
}

/**
 * Sells a paid order's reservations and, for an order that ships, books the parcel in the same hop,
 * then reports the sale to the order. Run on `order.paid`, or by the delivery that charged the order
 * (queues/saga-continuation.ts) when the charge could not sell first.
 */
export async function sell(
  orderId: string,
  items: OrderLine[],
  env: Env,
  attempts: number,
  toBook?: PendingShipment | null,
): Promise<void> {
  const sold = await sellStock(orderId, items, env, attempts, toBook);
  await orderShardOf(env, orderId).commitResult(orderId, sold);
}

/**
 * The sale itself, not reported: every line's reservation committed and, once all are, the parcel
 * booked. What to book is `toBook` when the caller has it (the order named it with its step, read
 * in the same call), else read beside the stock commit — only for an order with lines to ship, the
 * same rule that made checkout ask for a shipping option. A line that lost its stock books nothing.
 */
export async function sellStock(
  orderId: string,
  items: OrderLine[],
  env: Env,
  attempts: number,
  toBook?: PendingShipment | null,
): Promise<SaleOutcome> {
  const skus = skusOf(items);
  const [results, pending] = await Promise.all([
    Promise.all(skus.map((sku) => env.INVENTORY.getByName(sku).commit(orderId))),
    toBook !== undefined
      ? toBook
      : parcelWeight(items) === null
        ? null
        : orderShardOf(env, orderId).pendingShipment(orderId),
  ]);
  const ok = results.every((r) => r.committed);
  const parcel = ok ? await bookBesideSale(env, orderId, pending, attempts) : undefined;
  return { ok, ...(parcel ? { parcel } : {}) };
}

/** Puts a sale back (the order it was for had been cancelled meanwhile); a no-op for lines not sold. */
export async function returnSale(orderId: string, items: OrderLine[], env: Env): Promise<void> {
  const skus = skusOf(items);
  await Promise.all(skus.map((sku) => env.INVENTORY.getByName(sku).restock(orderId)));
}
