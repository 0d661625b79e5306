import { sha256Hex } from "../encoding";

/** What the carrier needs to accept a parcel. */
export interface ShipmentRequest {
  orderId: string;
  carrier: string;
  service: string;
  /** Destination (the order's shipping address). */
  address: Record<string, string>;
  weightGrams: number;
  /** Sent to the carrier so a retried request books one parcel, not two. */
  idempotencyKey: string;
  /** Delivery attempt of the saga message (1-based); only the simulated carrier looks at it. */
  attempt: number;
}

export interface CreatedShipment {
  trackingNumber: string;
}

/** The carrier is down or busy: retry later. */
export class TransientCarrierError extends Error {
  override name = "TransientCarrierError";
}

/**
 * The seam a real carrier API (DHL, UPS, CTT …) implements, as payment providers do for money:
 * book a parcel, idempotently by key, and answer its tracking number.
 */
export interface CarrierAdapter {
  readonly name: string;
  createShipment(request: ShipmentRequest, signal: AbortSignal): Promise<CreatedShipment>;
}

/**
 * Postal codes that make the simulated carrier fail (like the simulated test cards):
 * `CARRIER-DOWN` fails every time (the order ends `needs_attention`), `CARRIER-BUSY` fails on the first
 * delivery and books the parcel on the retry.
 */
export const SIMULATED_CARRIER_FAILS = { always: "CARRIER-DOWN", once: "CARRIER-BUSY" } as const;

/**
 * The local carrier: no network, deterministic tracking numbers (the same order and carrier always
 * get the same number, so a retried booking answers the same parcel), failures on demand.
 */
export class SimulatedCarrier implements CarrierAdapter {
  readonly name = "simulated";

  async createShipment(request: ShipmentRequest): Promise<CreatedShipment> {
    const postalCode = request.address.postalCode;
    if (postalCode === SIMULATED_CARRIER_FAILS.always)
      throw new TransientCarrierError("carrier unavailable (simulated)");
    if (postalCode === SIMULATED_CARRIER_FAILS.once && request.attempt < 2)
      throw new TransientCarrierError("carrier busy (simulated, first attempt)");
    return { trackingNumber: await simulatedTrackingNumber(request.carrier, request.idempotencyKey) };
  }
}

/** `<3 letters of the carrier><16 digits>`, derived from the booking's idempotency key. */
export async function simulatedTrackingNumber(carrier: string, idempotencyKey: string): Promise<string> {
  const prefix = `${carrier.replace(/[^A-Za-z]/g, "").toUpperCase()}XXX`.slice(0, 3);
  const digest = await sha256Hex(`${carrier}\n${idempotencyKey}`);
  const digits = BigInt(`0x${digest.slice(0, 15)}`)
    .toString()
    .padStart(16, "0")
    .slice(-16);
  return `${prefix}${digits}`;
}

/** The carrier adapter this Worker books parcels with (only the simulated one exists so far). */
export function carrierFor(_env: Env, _carrier: string): CarrierAdapter {
  return simulated;
}
const simulated = new SimulatedCarrier();
