import type { z } from "zod";
import type { OrderShipmentRequested } from "../contracts/saga-events";
import { carrierFor, TransientCarrierError } from "../domain/fulfilment/carrier";
import type { PendingShipment } from "../durable-objects/order";
import { orderShardOf } from "../durable-objects/order-shard";
import { backoffSeconds, MAX_DELIVERIES, RetryLater } from "./retry";

type ShipmentRequested = z.infer<typeof OrderShipmentRequested>;

/** A carrier call that hangs is abandoned after this and retried like any transient failure. */
const CARRIER_TIMEOUT_MS = 10_000;
/**
 * The booking tried beside the stock commit gets less: when the carrier is slow or down the order
 * goes on to the carrier step, which retries with backoff, rather than holding up the sale.
 */
const BESIDE_SALE_TIMEOUT_MS = 2_000;

/**
 * Books the parcel with its carrier and answers the tracking number; throws TransientCarrierError
 * when the carrier is down, busy or does not answer within `timeoutMs`. The booking carries an
 * idempotency key derived from the order, so every try for one order books one parcel.
 */
async function bookParcel(
  env: Env,
  orderId: string,
  pending: PendingShipment,
  attempt: number,
  timeoutMs: number,
): Promise<string> {
  const { shipment } = pending;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new TransientCarrierError("carrier timeout")), timeoutMs);
  try {
    const booked = await carrierFor(env, shipment.carrier).createShipment(
      {
        orderId,
        carrier: shipment.carrier,
        service: shipment.service,
        address: pending.address,
        weightGrams: pending.weightGrams,
        idempotencyKey: `${orderId}:shipment`,
        attempt,
      },
      controller.signal,
    );
    return booked.trackingNumber;
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The first booking, made by the inventory step right after the stock commit of `order.paid`, so
 * an order that ships confirms in that same hop instead of one queue message, order commit and
 * relay later. Undefined when there is nothing to book or the carrier failed this time: the order
 * then takes the carrier step (handleShippingEvent) with its retries and `needs_attention`.
 */
export async function bookBesideSale(
  env: Env,
  orderId: string,
  pending: PendingShipment | null,
  attempt: number,
): Promise<{ trackingNumber: string } | undefined> {
  if (!pending) return undefined;
  try {
    return { trackingNumber: await bookParcel(env, orderId, pending, attempt, BESIDE_SALE_TIMEOUT_MS) };
  } catch (error) {
    if (error instanceof TransientCarrierError) return undefined;
    throw error;
  }
}

/**
 * Shipping step of the saga, for parcels not booked beside the stock commit: the carrier books the
 * parcel and answers its tracking number (→ `confirmed`). A carrier that fails is retried with the
 * queue's backoff; on the last delivery the order is flagged `needs_attention` instead of sitting
 * in `paid` unnoticed (an admin then ships it by hand, retries, or cancels it with a full refund).
 */
export async function handleShippingEvent(event: ShipmentRequested, env: Env, attempts: number): Promise<void> {
  const order = orderShardOf(env, event.orderId);
  const pending = await order.pendingShipment(event.orderId);
  // Already booked, flagged or cancelled meanwhile: nothing left for this message to do.
  if (!pending) return;
  try {
    const trackingNumber = await bookParcel(env, event.orderId, pending, attempts, CARRIER_TIMEOUT_MS);
    await order.shipmentResult(event.orderId, { ok: true, trackingNumber });
  } catch (error) {
    if (!(error instanceof TransientCarrierError)) throw error;
    if (attempts < MAX_DELIVERIES) throw new RetryLater(backoffSeconds(attempts), error.message);
    await order.shipmentResult(event.orderId, {
      ok: false,
      problem: `carrier ${pending.shipment.carrier} failed ${attempts} times: ${error.message}`,
    });
  }
}
