import type { z } from "zod";
import type { OrderShipmentRequested } from "../contracts/saga-events";
import { carrierFor, TransientCarrierError } from "../domain/fulfilment/carrier";
import { backoffSeconds, MAX_DELIVERIES, RetryLater } from "./retry";

type ShipmentRequested = z.infer<typeof OrderShipmentRequested>;

/** A carrier call that hangs is abandoned after this and retried like any transient failure. */
const CARRIER_TIMEOUT_MS = 10_000;

/**
 * Shipping step of the saga: once the stock is sold, the carrier books the parcel and answers its
 * tracking number (→ `confirmed`). A carrier that fails is retried with the queue's backoff; on the
 * last delivery the order is flagged `needs_attention` instead of sitting in `paid` unnoticed (an
 * admin then ships it by hand, retries, or cancels it with a full refund). The booking carries an
 * idempotency key derived from the order, so a redelivered message books one parcel.
 */
export async function handleShippingEvent(event: ShipmentRequested, env: Env, attempts: number): Promise<void> {
  const order = env.ORDER.getByName(event.orderId);
  const pending = await order.pendingShipment();
  // Already booked, flagged or cancelled meanwhile: nothing left for this message to do.
  if (!pending) return;
  const { shipment } = pending;
  const carrier = carrierFor(env, shipment.carrier);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new TransientCarrierError("carrier timeout")), CARRIER_TIMEOUT_MS);
  try {
    const booked = await carrier.createShipment(
      {
        orderId: event.orderId,
        carrier: shipment.carrier,
        service: shipment.service,
        address: pending.address,
        weightGrams: pending.weightGrams,
        idempotencyKey: `${event.orderId}:shipment`,
        attempt: attempts,
      },
      controller.signal,
    );
    await order.shipmentResult({ ok: true, trackingNumber: booked.trackingNumber });
  } catch (error) {
    if (!(error instanceof TransientCarrierError)) throw error;
    if (attempts < MAX_DELIVERIES) throw new RetryLater(backoffSeconds(attempts), error.message);
    await order.shipmentResult({
      ok: false,
      problem: `carrier ${shipment.carrier} failed ${attempts} times: ${error.message}`,
    });
  } finally {
    clearTimeout(timer);
  }
}
