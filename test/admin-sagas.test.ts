import { createExecutionContext, createMessageBatch } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { SagaDetail, SagaList, SagaRetryAccepted } from "../contracts/analytics";
import { AuditPage } from "../contracts/audit";
import { dispatchBatch } from "../queues/dispatch";
import { insertSku, stock } from "./commerce-fixtures";
import { call, expectProblem, tokenFor } from "./helpers";
import {
  accepted,
  cartWith,
  isFinal,
  newShopper,
  orderEvent,
  placeOrder,
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

const refunds = async (orderId: string) =>
  (
    await env.DB.prepare("SELECT count(*) AS n FROM payment_ledger WHERE order_id = ? AND kind = 'refund'")
      .bind(orderId)
      .first<{ n: number }>()
  )?.n;

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
