import { createExecutionContext, createMessageBatch, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { SagaDetail, SagaList, SagaRetryAccepted } from "../contracts/analytics";
import { AuditPage } from "../contracts/audit";
import {
  type ShipmentRequest,
  SimulatedCarrier,
  simulatedTrackingNumber,
  TransientCarrierError,
} from "../domain/fulfilment/carrier";
import type { OrderObject } from "../durable-objects/order";
import { orderShardOf } from "../durable-objects/order-shard";
import { dispatchBatch } from "../queues/dispatch";
import { insertSku, stock } from "./commerce-fixtures";
import { call, expectProblem, tokenFor } from "./helpers";
import {
  accepted,
  cartWith,
  deliverSagaBatch,
  isFinal,
  newShopper,
  orderEvent,
  orderLine,
  placeOrder,
  SHIPPING,
  viewOrder,
  waitForOrder,
} from "./order-fixtures";

const admin = () => tokenFor("u-saga-admin", ["admin"]);

async function sagas(state: string): Promise<SagaList> {
  const res = await call(`/v1/admin/sagas?state=${state}`, { token: await admin() });
  expect(res.status).toBe(200);
  return SagaList.parse(await res.json());
}

const retry = async (orderId: string) =>
  call(`/v1/admin/sagas/${orderId}/retry`, { method: "POST", token: await admin() });

const ledger = async (orderId: string, kind: "capture" | "refund") =>
  (
    await env.DB.prepare("SELECT count(*) AS n FROM payment_ledger WHERE order_id = ? AND kind = ?")
      .bind(orderId, kind)
      .first<{ n: number }>()
  )?.n;
const refunds = (orderId: string) => ledger(orderId, "refund");

/** Hands `body` to the dead-letter queue's consumer, as if it had exhausted its 4 deliveries. */
async function deadLetter(id: string, body: unknown): Promise<void> {
  const batch = createMessageBatch("saga-events-dlq", [{ id, timestamp: new Date(), attempts: 4, body }]);
  await dispatchBatch(batch, env, createExecutionContext());
}

describe("saga operations (GET /v1/admin/sagas, POST /v1/admin/sagas/:orderId/retry)", () => {
  it("lists a dead-lettered step, redelivers it once on retry, and shows it all in the saga's log", async () => {
    await insertSku("SAGA-OPS", { amount: 2000 });
    await stock("SAGA-OPS", 5);
    const shopper = await newShopper();
    const placed = await accepted(
      await placeOrder(shopper, await cartWith(shopper, [{ sku: "SAGA-OPS", quantity: 1 }])),
    );
    const order = await waitForOrder(placed.id, isFinal);
    expect(order.status).toBe("confirmed");
    await expect.poll(async () => (await sagas("in-flight")).byStatus.confirmed ?? 0).toBeGreaterThan(0);

    // A refund whose message ran out of deliveries (the provider was down): a person must look.
    const refund = orderEvent(
      "order.refund_requested",
      { id: placed.id, userId: shopper.userId, status: "confirmed" },
      { refundId: "rf_dead_lettered", amount: 500, revision: 9 },
    );
    await deadLetter("dlq-msg-1", refund);
    expect((await viewOrder(placed.id))?.needsAttention).toMatch(/order\.refund_requested/);
    const listed = (await sagas("dead-lettered")).items.find((s) => s.orderId === placed.id);
    expect(listed).toMatchObject({
      state: "dead-lettered",
      status: "confirmed",
      lastStep: "payment.refund",
      lastEvent: "order.refund_requested",
      attempts: 4,
      total: { amount: 2000, currency: "USD" },
    });
    expect(listed?.error).toMatch(/exhausted 4 deliveries/);
    expect(await refunds(placed.id)).toBe(0);

    const first = await retry(placed.id);
    expect(first.status).toBe(202);
    expect(SagaRetryAccepted.parse(await first.json()).redelivered).toEqual([
      { eventId: refund.id, type: "order.refund_requested" },
    ]);
    // The payment step really runs again: the refund reaches the provider and the ledger.
    await expect.poll(() => refunds(placed.id), { timeout: 10_000 }).toBe(1);
    expect((await viewOrder(placed.id))?.needsAttention).toBeUndefined();
    expect((await sagas("dead-lettered")).items.map((s) => s.orderId)).not.toContain(placed.id);

    // Retrying again (a double click, a second operator) is accepted and sends nothing.
    const again = await retry(placed.id);
    expect(again.status).toBe(202);
    expect(SagaRetryAccepted.parse(await again.json()).redelivered).toEqual([]);
    expect(await refunds(placed.id)).toBe(1);

    // Both retries are in the audit log, by the admin, on the order.
    const audited = await call("/v1/admin/audit", { token: await admin() });
    expect(audited.status).toBe(200);
    const retries = AuditPage.parse(await audited.json()).items.filter(
      (e) => e.action === "saga.retry_requested" && e.target === `order:${placed.id}`,
    );
    expect(retries.map((e) => e.actor)).toEqual(["user:u-saga-admin", "user:u-saga-admin"]);

    const detail = await call(`/v1/admin/sagas/${placed.id}`, { token: await admin() });
    expect(detail.status).toBe(200);
    const { order: viewed, log } = SagaDetail.parse(await detail.json());
    expect(viewed.history.map((h) => h.status)).toEqual(["pending", "reserved", "paid", "confirmed"]);
    // Every event the order emitted, in order (the fulfilment steps add their own in between).
    const emitted = log.filter((e) => e.kind === "event").map((e) => e.type);
    expect(
      emitted.filter((t) => ["order.placed", "order.reserved", "order.paid", "order.confirmed"].includes(t!)),
    ).toEqual(["order.placed", "order.reserved", "order.paid", "order.confirmed"]);
    expect(log.filter((e) => e.kind !== "event").map((e) => [e.kind, e.type])).toEqual([
      ["dead-letter", "order.refund_requested"],
      ["retry", "order.refund_requested"],
    ]);
  });

  it("lists a saga with no progress past its step deadline as stuck", async () => {
    const old = new Date(Date.now() - 5 * 60_000).toISOString();
    const id = `ord_stuck${crypto.randomUUID().replaceAll("-", "").slice(0, 19)}`;
    await env.DB.prepare(
      `INSERT INTO orders_view (id, user_id, status, total_amount, currency, item_count, items, payment_status,
         refunded_amount, revision, created_at, updated_at)
       VALUES (?, 'u-stuck', 'reserved', 999, 'USD', 1, '[]', 'pending', 0, 2, ?, ?)`,
    )
      .bind(id, old, old)
      .run();
    const stuck = (await sagas("stuck")).items.find((s) => s.orderId === id);
    expect(stuck).toMatchObject({ state: "stuck", lastStep: "payment.charge", lastEvent: "order.reserved" });
    expect(stuck?.error).toMatch(/no progress for 30\d s/);
    expect((await sagas("in-flight")).items.map((s) => s.orderId)).toContain(id);
  });

  it("lists a real saga whose message was lost as stuck past the step deadline; a retry redelivers it once and the saga finishes", async () => {
    await insertSku("SAGA-LOST", { amount: 1500 });
    await stock("SAGA-LOST", 5);
    const orderId = `ord_${crypto.randomUUID().replaceAll("-", "").slice(0, 24)}`;
    const stub = orderShardOf(env, orderId);
    // The queue is swapped on the order's live shard for one that loses every message it is given.
    const lost: { type: string }[] = [];
    const blackHole = {
      async send(body: { type: string }) {
        lost.push(body);
      },
      async sendBatch(messages: { body: { type: string } }[]) {
        lost.push(...messages.map((m) => m.body));
      },
    } as unknown as Queue;
    await runInDurableObject(stub, async (instance: OrderObject) => {
      (instance as unknown as { env: Env }).env = { ...env, SAGA_EVENTS: blackHole };
      await instance.place({
        orderId,
        userId: "u-saga-lost",
        items: [orderLine("p-SAGA-LOST", "SAGA-LOST", 1, 1500)],
        total: { amount: 1500, currency: "USD" },
        paymentToken: "tok_sim_success_4242",
        shippingAddress: SHIPPING,
        correlationId: orderId,
      });
    });
    // order.placed reaches the consumers (read model, reservation), but payments are misconfigured
    // for that delivery: it stops after the reservation and asks to be retried, and that retry is
    // lost. The order.reserved it wrote for itself (`inline`) waits unsent for the next relay.
    expect(lost.map((m) => m.type)).toEqual(["order.placed"]);
    const delivery = await deliverSagaBatch(lost.splice(0), { PAYMENT_PROVIDER: "bogus" });
    expect(delivery.retryMessages).toHaveLength(1);
    expect(lost).toEqual([]);
    expect((await viewOrder(orderId))?.status).toBe("reserved");

    // A minute and a half later nothing has moved: past the 60 s step deadline, it is stuck.
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + 90_000 });
    try {
      const stuck = (await sagas("stuck")).items.find((s) => s.orderId === orderId);
      expect(stuck).toMatchObject({ state: "stuck", lastStep: "inventory.reserve", lastEvent: "order.placed" });
      expect(stuck?.error).toMatch(/no progress for 9\d s/);
    } finally {
      vi.useRealTimers();
    }

    // The queue works again; the operator retries twice (a double click): one redelivery.
    await runInDurableObject(stub, (instance: OrderObject) => {
      (instance as unknown as { env: Env }).env = env;
    });
    const [first, second] = [await retry(orderId), await retry(orderId)];
    expect(first.status).toBe(202);
    expect(SagaRetryAccepted.parse(await first.json()).redelivered).toEqual([
      { eventId: expect.any(String), type: "order.reserved" },
    ]);
    expect(second.status).toBe(202);
    expect(SagaRetryAccepted.parse(await second.json()).redelivered).toEqual([]);
    expect((await waitForOrder(orderId, isFinal)).status).toBe("confirmed");
    expect(await ledger(orderId, "capture")).toBe(1);
    expect((await sagas("stuck")).items.map((s) => s.orderId)).not.toContain(orderId);
    const retries = await env.DB.prepare("SELECT event_type FROM saga_retries WHERE order_id = ?").bind(orderId).all();
    expect(retries.results).toEqual([{ event_type: "order.reserved" }]);
  });

  it("retrying an order the carrier step gave up on (needs_attention) books its shipment, once", async () => {
    await insertSku("SAGA-CARRIER", { amount: 900 });
    await stock("SAGA-CARRIER", 5);
    const shopper = await newShopper();
    // The carrier is down for this order until the operator's retry.
    const carrierDown = { on: true };
    let booked = 0;
    const original = SimulatedCarrier.prototype.createShipment;
    const spy = vi.spyOn(SimulatedCarrier.prototype, "createShipment").mockImplementation(async function (
      this: SimulatedCarrier,
      request: ShipmentRequest,
    ) {
      if (request.orderId === placed?.id) {
        if (carrierDown.on) throw new TransientCarrierError("carrier unavailable (test outage)");
        booked++;
      }
      return original.call(this, request);
    });
    let placed: { id: string } | undefined;
    try {
      placed = await accepted(
        await placeOrder(shopper, await cartWith(shopper, [{ sku: "SAGA-CARRIER", quantity: 1 }])),
      );
      // Four deliveries (1 + 2 + 4 s of backoff), then flagged for a person.
      const flagged = await waitForOrder(placed.id, (o) => o.status === "needs_attention", 45_000);
      expect(flagged.shipment).toMatchObject({ status: "failed" });
      await expect
        .poll(async () => (await sagas("stuck")).items.find((s) => s.orderId === placed!.id)?.lastStep, {
          timeout: 10_000,
        })
        .toBe("shipping.create");

      carrierDown.on = false;
      const [first, second] = [await retry(placed.id), await retry(placed.id)];
      expect(SagaRetryAccepted.parse(await first.json()).redelivered).toEqual([
        { eventId: expect.any(String), type: "order.shipment_requested" },
      ]);
      expect(SagaRetryAccepted.parse(await second.json()).redelivered).toEqual([]);
      const confirmed = await waitForOrder(placed.id, (o) => o.status === "confirmed", 30_000);
      expect(confirmed.needsAttention).toBeUndefined();
      expect(confirmed.shipment).toMatchObject({
        status: "label_created",
        trackingNumber: await simulatedTrackingNumber(confirmed.shipment!.carrier, `${placed.id}:shipment`),
      });
      expect(booked).toBe(1);
    } finally {
      spy.mockRestore();
    }
  });

  it("refuses what it cannot do: unknown order 404, settled saga 409, customer 403, bad state 400", async () => {
    const token = await admin();
    await expectProblem(await retry("ord_000000000000000000000000"), 404);
    await expectProblem(await call("/v1/admin/sagas/ord_000000000000000000000000", { token }), 404);
    await expectProblem(await call("/v1/admin/sagas?state=everything", { token }), 400);
    const customer = await tokenFor("u-saga-customer");
    await expectProblem(await call("/v1/admin/sagas", { token: customer }), 403);
    await expectProblem(
      await call("/v1/admin/sagas/ord_000000000000000000000000/retry", { method: "POST", token: customer }),
      403,
    );

    await insertSku("SAGA-OPS-2", { amount: 700 });
    await stock("SAGA-OPS-2", 2);
    const shopper = await newShopper();
    const placed = await accepted(
      await placeOrder(shopper, await cartWith(shopper, [{ sku: "SAGA-OPS-2", quantity: 1 }])),
    );
    await waitForOrder(placed.id, isFinal);
    await expect
      .poll(
        async () =>
          (await env.DB.prepare("SELECT status FROM orders_view WHERE id = ?").bind(placed.id).first())?.status,
      )
      .toBe("confirmed");
    const settled = await expectProblem(await retry(placed.id), 409);
    expect(settled.type).toMatch(/saga-settled/);
  });
});
