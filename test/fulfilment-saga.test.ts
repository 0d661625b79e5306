import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { Order, OrderList } from "../contracts/order";
import { SIMULATED_CARRIER_FAILS, simulatedTrackingNumber } from "../domain/fulfilment/carrier";
import { insertSku, stock } from "./commerce-fixtures";
import {
  adminToken,
  checkout,
  emailKinds,
  ledgerHeld,
  setTax,
  shippingOptions,
  shippingSetup,
} from "./fulfilment-fixtures";
import { call, expectProblem } from "./helpers";
import { accepted, cartWith, emittedEvents, newShopper, type Shopper, waitForOrder } from "./order-fixtures";

const LISBON = { name: "Ana", line1: "Rua 1", city: "Lisboa", postalCode: "1100-001", country: "PT" };

/** The types of the saga events an order has written, oldest first. */
const sagaEvents = async (orderId: string) => (await emittedEvents(orderId)).map((event) => event.type);

const ship = async (orderId: string, json?: unknown) =>
  call(`/v1/admin/orders/${orderId}/ship`, { method: "POST", token: await adminToken(), ...(json ? { json } : {}) });
const deliver = async (orderId: string) =>
  call(`/v1/admin/orders/${orderId}/deliver`, { method: "POST", token: await adminToken() });

/** A shopper (with an email, for notifications) whose order of `quantity` × `sku` ships by `optionId`. */
async function orderShipped(sku: string, quantity: number, optionId: string, address = LISBON) {
  const shopper: Shopper = await newShopper(undefined, `ship-${crypto.randomUUID()}@example.test`);
  const cartId = await cartWith(shopper, [{ sku, quantity }]);
  const res = await checkout(shopper, cartId, optionId, address);
  expect(res.status, await res.clone().text()).toBe(202);
  return { shopper, cartId, orderId: (await accepted(res)).id };
}

describe("fulfilment in the order saga", () => {
  it("prices shipping and tax, books the carrier, then ship and deliver move the order, stock and read model on", async () => {
    await insertSku("FUL-SHIP", { amount: 2500 });
    await stock("FUL-SHIP", 10);
    const { standard, express } = await shippingSetup(["PT"]);
    await setTax("PT", 2300, true);

    const shopper = await newShopper(undefined, `ful-${crypto.randomUUID()}@example.test`);
    const cartId = await cartWith(shopper, [{ sku: "FUL-SHIP", quantity: 2 }]);
    // 2 × 500 g = 1 kg: Express is 900 + 1 × 250; Standard is flat 500 (subtotal below its 10,000 threshold).
    const options = await shippingOptions(shopper, cartId, "PT");
    expect(options.map((o) => [o.id, o.amount.amount])).toEqual([
      [standard.id, 500],
      [express.id, 1150],
    ]);
    expect(await shippingOptions(shopper, cartId, "JP")).toEqual([]);

    const res = await checkout(shopper, cartId, express.id, LISBON);
    expect(res.status, await res.clone().text()).toBe(202);
    const { id } = await accepted(res);
    const confirmed = await waitForOrder(id, (o) => o.status === "confirmed");
    // Tax: 23 % of (5,000 + 1,150) = 1,414.5 → 1,415 (half up, once on the whole base).
    expect(confirmed.totals).toEqual({
      subtotal: { amount: 5000, currency: "USD" },
      discount: { amount: 0, currency: "USD" },
      shipping: { amount: 1150, currency: "USD" },
      tax: { amount: 1415, currency: "USD" },
      total: { amount: 7565, currency: "USD" },
    });
    expect(confirmed.total).toEqual({ amount: 7565, currency: "USD" });
    expect(confirmed.payment).toMatchObject({ status: "captured", captured: 7565 });
    expect(await ledgerHeld(id)).toBe(7565);
    expect(confirmed.shipment).toEqual({
      status: "label_created",
      carrier: "DHL",
      service: "Express",
      trackingNumber: await simulatedTrackingNumber("DHL", `${id}:shipment`),
    });
    expect(confirmed.history.map((h) => h.status)).toEqual(["pending", "reserved", "paid", "confirmed"]);
    // The parcel was booked beside the stock commit: no separate carrier step, one hop fewer.
    expect(await sagaEvents(id)).toEqual(["order.placed", "order.reserved", "order.paid", "order.confirmed"]);
    expect(await env.INVENTORY.getByName("FUL-SHIP").level()).toMatchObject({ onHand: 10, sold: 2, available: 8 });

    // Not shipped yet: nothing to deliver.
    await expectProblem(await deliver(id), 409);
    const shipped = await ship(id);
    expect(shipped.status, await shipped.clone().text()).toBe(200);
    expect(Order.parse(await shipped.json())).toMatchObject({
      status: "shipped",
      shipment: { status: "shipped", trackingNumber: confirmed.shipment!.trackingNumber },
    });
    // Shipping again changes nothing; a shipped order cannot be cancelled.
    expect((await ship(id)).status).toBe(200);
    await expectProblem(await call(`/v1/orders/${id}/cancel`, { method: "POST", token: shopper.token }), 409);
    // The units leave onHand and sold together (inventory consumer, from order.shipped).
    await expect
      .poll(() => env.INVENTORY.getByName("FUL-SHIP").level(), { timeout: 10_000 })
      .toMatchObject({ onHand: 8, sold: 0, reserved: 0, available: 8 });

    const delivered = await deliver(id);
    expect(delivered.status).toBe(200);
    const final = Order.parse(await delivered.json());
    expect(final.status).toBe("delivered");
    expect(final.shipment?.deliveredAt).toBeDefined();
    expect(final.history.map((h) => h.status)).toEqual([
      "pending",
      "reserved",
      "paid",
      "confirmed",
      "shipped",
      "delivered",
    ]);
    await expect
      .poll(() => emailKinds(id), { timeout: 10_000 })
      .toEqual(["order_confirmed", "order_shipped", "order_delivered"]);
    await expect
      .poll(
        async () => OrderList.parse(await (await call("/v1/orders", { token: shopper.token })).json()).items[0]?.status,
        { timeout: 10_000 },
      )
      .toBe("delivered");
    // Stock units left once: a second ship event would not move them again.
    expect(await env.INVENTORY.getByName("FUL-SHIP").ship(id)).toEqual({ shipped: false });
  });

  it("a confirmed order cancelled before shipping is refunded in full and its stock is back", async () => {
    await insertSku("FUL-CANCEL", { amount: 4000 });
    await stock("FUL-CANCEL", 5);
    const { standard } = await shippingSetup(["PT"]);
    await setTax("PT", 2300, true);
    const { shopper, orderId } = await orderShipped("FUL-CANCEL", 1, standard.id);
    const confirmed = await waitForOrder(orderId, (o) => o.status === "confirmed");
    const total = confirmed.totals!.total.amount;
    expect(confirmed.payment.captured).toBe(total);
    expect(await env.INVENTORY.getByName("FUL-CANCEL").level()).toMatchObject({ sold: 1, available: 4 });

    const cancel = await call(`/v1/orders/${orderId}/cancel`, { method: "POST", token: shopper.token });
    expect(cancel.status).toBe(202);
    const cancelled = await waitForOrder(orderId, (o) => o.status === "cancelled");
    expect(cancelled.reason).toBe("customer");
    expect(cancelled.history.map((h) => h.status).slice(-3)).toEqual(["confirmed", "refunded", "cancelled"]);
    expect(cancelled.payment).toEqual({ status: "refunded", captured: total, refunded: total });
    expect(await ledgerHeld(orderId)).toBe(0);
    await expect
      .poll(() => env.INVENTORY.getByName("FUL-CANCEL").level(), { timeout: 10_000 })
      .toMatchObject({ onHand: 5, sold: 0, reserved: 0, available: 5 });
    // Cancelling again is the same answer; shipping a cancelled order is refused.
    expect((await call(`/v1/orders/${orderId}/cancel`, { method: "POST", token: shopper.token })).status).toBe(202);
    await expectProblem(await ship(orderId), 409);
    await expect.poll(() => emailKinds(orderId), { timeout: 10_000 }).toContain("order_cancelled");
  });

  it("a failing carrier is retried; one that keeps failing leaves the order visibly needing attention", async () => {
    await insertSku("FUL-CARRIER", { amount: 1000 });
    await stock("FUL-CARRIER", 5);
    const { standard } = await shippingSetup(["PT"]);
    const [flaky, down] = await Promise.all([
      orderShipped("FUL-CARRIER", 1, standard.id, { ...LISBON, postalCode: SIMULATED_CARRIER_FAILS.once }),
      orderShipped("FUL-CARRIER", 1, standard.id, { ...LISBON, postalCode: SIMULATED_CARRIER_FAILS.always }),
    ]);

    // Fails on the first delivery, books the parcel on the retry.
    const recovered = await waitForOrder(flaky.orderId, (o) => o.status === "confirmed", 30_000);
    expect(recovered.shipment?.trackingNumber).toBe(
      await simulatedTrackingNumber("PostNord", `${flaky.orderId}:shipment`),
    );
    // The booking beside the stock commit failed, so the carrier step took over (and retried).
    expect(await sagaEvents(flaky.orderId)).toEqual([
      "order.placed",
      "order.reserved",
      "order.paid",
      "order.shipment_requested",
      "order.confirmed",
    ]);

    // Fails every delivery (1 + 2 + 4 s of backoff): flagged, not silently stuck in `paid`.
    const stuck = await waitForOrder(down.orderId, (o) => o.status === "needs_attention", 45_000);
    expect(stuck.shipment).toMatchObject({ status: "failed", carrier: "PostNord" });
    expect(stuck.needsAttention).toMatch(/failed 4 times/);
    expect(stuck.payment.status).toBe("captured");
    const viaApi = Order.parse(await (await call(`/v1/orders/${down.orderId}`, { token: down.shopper.token })).json());
    expect(viaApi.status).toBe("needs_attention");

    // No booking, so no tracking number of its own: the admin ships it with theirs.
    const refused = await expectProblem(await ship(down.orderId), 400);
    expect(refused.errors?.[0]?.path).toBe("trackingNumber");
    const shipped = await ship(down.orderId, { carrier: "CTT", trackingNumber: "CTT-123456789PT" });
    expect(shipped.status).toBe(200);
    expect(Order.parse(await shipped.json())).toMatchObject({
      status: "shipped",
      shipment: { status: "shipped", carrier: "CTT", trackingNumber: "CTT-123456789PT" },
    });
    expect((await waitForOrder(down.orderId, (o) => o.status === "shipped")).needsAttention).toBeUndefined();
  });
});
