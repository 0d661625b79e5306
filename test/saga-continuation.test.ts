import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import type { OrderEvent } from "../contracts/saga-events";
import type { BreakerPermit, BreakerStatus } from "../durable-objects/circuit-breaker";
import type { OrderObject } from "../durable-objects/order";
import { orderShardOf } from "../durable-objects/order-shard";
import { SharedPermits } from "../queues/breaker-permits";
import { insertSku, stock } from "./commerce-fixtures";
import { later } from "./helpers";
import { deliverSagaBatch, emittedEvents, orderIdsInNewShard, placeWith, SHIPPING, viewOrder } from "./order-fixtures";

/** A saga queue that keeps what each send carried: one entry per `send`/`sendBatch` call. */
function sendRecordingQueue() {
  const sends: string[][] = [];
  const queue = {
    async send(body: { type: string }) {
      sends.push([body.type]);
    },
    async sendBatch(messages: { body: { type: string } }[]) {
      sends.push(messages.map((m) => m.body.type));
    },
  } as unknown as Queue;
  return { sends, queue };
}

/** Places a one-line order of `sku` on its live shard, whose events go to a recording queue. */
async function placeRecorded(sku: string) {
  const [orderId] = orderIdsInNewShard(1) as [string];
  const { sends, queue } = sendRecordingQueue();
  await runInDurableObject(orderShardOf(env, orderId), (instance: OrderObject) =>
    placeWith(instance, queue, orderId, sku),
  );
  const [placed] = (await emittedEvents(orderId)) as [OrderEvent];
  return { orderId, placed, sends };
}

const ledgerRows = async (orderId: string, kind: string) =>
  (
    await env.DB.prepare("SELECT COUNT(*) AS n FROM payment_ledger WHERE order_id = ? AND kind = ?")
      .bind(orderId, kind)
      .first<{ n: number }>()
  )?.n;

const providerCaptures = async (orderId: string) =>
  (
    await env.DB.prepare(
      "SELECT COUNT(*) AS n FROM simulated_payments WHERE idempotency_key LIKE ? AND operation = 'capture'",
    )
      .bind(`${orderId}:%`)
      .first<{ n: number }>()
  )?.n;

type InventoryStub = ReturnType<Env["INVENTORY"]["getByName"]>;

/** The inventory objects with their `commit` replaced by `commit` (reservations and the rest work as ever). */
function inventoryWithCommit(
  commit: (orderId: string, inventory: InventoryStub) => Promise<{ committed: boolean }>,
): Env["INVENTORY"] {
  return {
    getByName(sku: string) {
      const inventory = env.INVENTORY.getByName(sku);
      return {
        reserve: (input: Parameters<InventoryStub["reserve"]>[0]) => inventory.reserve(input),
        release: (orderId: string) => inventory.release(orderId),
        restock: (orderId: string) => inventory.restock(orderId),
        commit: (orderId: string) => commit(orderId, inventory),
      };
    },
  } as unknown as Env["INVENTORY"];
}

/** Inventory objects whose `commit` fails (an object that cannot be reached); reservations work. */
const commitsFailing = inventoryWithCommit(async () => {
  throw new Error("inventory object unreachable");
});

describe("the saga carried on in the delivery of order.placed (queues/saga-continuation.ts)", () => {
  it("one delivery reserves, charges and sells; the later events go out together, marked inline, and drive nothing", async () => {
    await insertSku("INLINE-ONE", { amount: 1999 });
    await stock("INLINE-ONE", 5);
    const { orderId, placed, sends } = await placeRecorded("INLINE-ONE");

    const delivery = await deliverSagaBatch([placed]);
    expect(delivery.retryMessages).toEqual([]);
    const order = await viewOrder(orderId);
    expect(order?.status).toBe("confirmed");
    expect(order?.history.map((h) => h.status)).toEqual(["pending", "reserved", "paid", "confirmed"]);

    const events = await emittedEvents(orderId);
    expect(events.map((e) => [e.type, "inline" in e ? e.inline : undefined])).toEqual([
      ["order.placed", undefined],
      ["order.reserved", true],
      ["order.paid", true],
      ["order.confirmed", undefined],
    ]);
    // order.placed went at once; the steps run inline waited for the last one and went with it.
    expect(sends).toEqual([["order.placed"], ["order.reserved", "order.paid", "order.confirmed"]]);

    // Delivered as the queue would deliver them, the inline events charge and sell nothing more.
    const again = await deliverSagaBatch(events.slice(1, 3));
    expect(again.retryMessages).toEqual([]);
    expect(await ledgerRows(orderId, "authorization")).toBe(1);
    expect(await ledgerRows(orderId, "capture")).toBe(1);
    expect(await providerCaptures(orderId)).toBe(1);
    expect(await env.INVENTORY.getByName("INLINE-ONE").level()).toMatchObject({ onHand: 5, sold: 1, reserved: 0 });
  });

  it("the charge and the sale are reported to the order in one call: paid and confirmed in one transaction", async () => {
    await insertSku("INLINE-TOGETHER", { amount: 1999 });
    await stock("INLINE-TOGETHER", 5);
    const { orderId, placed } = await placeRecorded("INLINE-TOGETHER");
    const shards = countingShards();

    expect((await deliverSagaBatch([placed], { ORDER_SHARDS: shards.binding })).retryMessages).toEqual([]);
    expect(shards.calls).toEqual(["reservationResult", "paymentResult"]);
    const order = await viewOrder(orderId);
    expect(order?.history.map((h) => h.status)).toEqual(["pending", "reserved", "paid", "confirmed"]);
    expect(await env.INVENTORY.getByName("INLINE-TOGETHER").level()).toMatchObject({ onHand: 5, sold: 1, reserved: 0 });
  });

  it("an order that ships is booked by the sale after the charge and confirmed by the same report", async () => {
    const [orderId] = orderIdsInNewShard(1) as [string];
    const { queue } = sendRecordingQueue();
    await insertSku("INLINE-SHIPS", { amount: 1999 });
    await stock("INLINE-SHIPS", 5);
    await runInDurableObject(orderShardOf(env, orderId), (instance: OrderObject) =>
      placeWith(instance, queue, orderId, "INLINE-SHIPS", undefined, { shipping: PARCEL_OPTION }),
    );
    const [placed] = (await emittedEvents(orderId)) as [OrderEvent];
    const shards = countingShards();

    expect((await deliverSagaBatch([placed], { ORDER_SHARDS: shards.binding })).retryMessages).toEqual([]);
    expect(shards.calls).toEqual(["reservationResult", "paymentResult"]);
    const order = await viewOrder(orderId);
    expect(order?.status).toBe("confirmed");
    expect(order?.shipment).toMatchObject({ carrier: "TestPost", status: "label_created" });
    expect(order?.shipment?.trackingNumber).toMatch(/\S/);
  });

  it("a sale made for an order cancelled while it was charged goes back, and the capture is refunded", async () => {
    await insertSku("INLINE-CANCELLED", { amount: 1999 });
    await stock("INLINE-CANCELLED", 5);
    const { orderId, placed } = await placeRecorded("INLINE-CANCELLED");
    // The customer cancels after the charge, just before the stock is sold (its release not yet run).
    const cancelBeforeCommit = inventoryWithCommit(async (id, inventory) => {
      expect((await orderShardOf(env, id).cancel(id)).ok).toBe(true);
      return inventory.commit(id);
    });

    expect((await deliverSagaBatch([placed], { INVENTORY: cancelBeforeCommit })).retryMessages).toEqual([]);
    expect(await env.INVENTORY.getByName("INLINE-CANCELLED").level()).toMatchObject({
      onHand: 5,
      sold: 0,
      reserved: 0,
    });
    const order = await viewOrder(orderId);
    expect(order?.status).toBe("cancelled");
    expect(order?.history.map((h) => h.status)).toEqual(["pending", "reserved", "cancelled"]);
    const events = await emittedEvents(orderId);
    expect(events.map((e) => e.type)).toContain("order.refund_requested");
    expect(await ledgerRows(orderId, "capture")).toBe(1);
    // The cancellation's own compensation, delivered afterwards, finds nothing more to put back.
    const cancelled = events.find((e) => e.type === "order.cancelled")!;
    expect((await deliverSagaBatch([cancelled])).retryMessages).toEqual([]);
    expect(await env.INVENTORY.getByName("INLINE-CANCELLED").level()).toMatchObject({ onHand: 5, sold: 0 });
  });

  it("a sale that finds its reservation gone is reported with the charge: paid, then refunded", async () => {
    await insertSku("INLINE-LOST", { amount: 1999 });
    await stock("INLINE-LOST", 5);
    const { orderId, placed } = await placeRecorded("INLINE-LOST");
    const reservationLost = inventoryWithCommit(async (id, inventory) => {
      await inventory.release(id);
      return inventory.commit(id);
    });
    const shards = countingShards();

    const delivery = await deliverSagaBatch([placed], { INVENTORY: reservationLost, ORDER_SHARDS: shards.binding });
    expect(delivery.retryMessages).toEqual([]);
    expect(shards.calls).toEqual(["reservationResult", "paymentResult"]);
    const order = await viewOrder(orderId);
    expect(order?.status).toBe("paid");
    const events = await emittedEvents(orderId);
    expect(events.map((e) => e.type)).toEqual([
      "order.placed",
      "order.reserved",
      "order.paid",
      "order.refund_requested",
    ]);
    expect(await env.INVENTORY.getByName("INLINE-LOST").level()).toMatchObject({ onHand: 5, sold: 0, reserved: 0 });
  });

  it("a delivery that fails partway is retried whole and resumes where the order stands: charged once, sold once", async () => {
    await insertSku("INLINE-RESUME", { amount: 1999 });
    await stock("INLINE-RESUME", 5);
    const { orderId, placed, sends } = await placeRecorded("INLINE-RESUME");

    // Payments misconfigured for the first delivery: reserved, then the delivery asks to be retried.
    const first = await deliverSagaBatch([placed], { PAYMENT_PROVIDER: "bogus" });
    expect(first.retryMessages).toHaveLength(1);
    expect((await viewOrder(orderId))?.status).toBe("reserved");
    expect(await ledgerRows(orderId, "authorization")).toBe(0);

    // The second charges it, then cannot reach the stock to sell it.
    const second = await deliverSagaBatch([placed], { INVENTORY: commitsFailing });
    expect(second.retryMessages).toHaveLength(1);
    expect((await viewOrder(orderId))?.status).toBe("paid");
    expect(await ledgerRows(orderId, "capture")).toBe(1);

    // The third finds the order paid and only sells it.
    const third = await deliverSagaBatch([placed]);
    expect(third.retryMessages).toEqual([]);
    const order = await viewOrder(orderId);
    expect(order?.status).toBe("confirmed");
    expect(order?.history.map((h) => h.status)).toEqual(["pending", "reserved", "paid", "confirmed"]);
    expect(await ledgerRows(orderId, "authorization")).toBe(1);
    expect(await ledgerRows(orderId, "capture")).toBe(1);
    expect(await providerCaptures(orderId)).toBe(1);
    expect(await env.INVENTORY.getByName("INLINE-RESUME").level()).toMatchObject({
      onHand: 5,
      sold: 1,
      reserved: 0,
    });
    // Nothing was relayed while the delivery was under way; the sale sent every step's event.
    expect(sends).toEqual([["order.placed"], ["order.reserved", "order.paid", "order.confirmed"]]);

    // A late copy of the first delivery changes nothing.
    expect((await deliverSagaBatch([placed])).retryMessages).toEqual([]);
    expect(await providerCaptures(orderId)).toBe(1);
    expect(await env.INVENTORY.getByName("INLINE-RESUME").level()).toMatchObject({ sold: 1, reserved: 0 });
  });

  it("an order that reached its step some other way is not carried on by a late order.placed", async () => {
    await insertSku("INLINE-OTHER", { amount: 1999 });
    await stock("INLINE-OTHER", 5);
    const { orderId, placed } = await placeRecorded("INLINE-OTHER");
    // Reserved by a report that did not carry on (as an approved review's reserved event drives its own charge).
    await orderShardOf(env, orderId).reservationResult(orderId, { ok: true });
    const events = await emittedEvents(orderId);
    expect(events.map((e) => [e.type, "inline" in e ? e.inline : undefined])).toEqual([
      ["order.placed", undefined],
      ["order.reserved", undefined],
    ]);
    // A redelivered order.placed sees the order reserved and leaves the charge to that event.
    expect((await deliverSagaBatch([placed])).retryMessages).toEqual([]);
    expect((await viewOrder(orderId))?.status).toBe("reserved");
    expect(await ledgerRows(orderId, "authorization")).toBe(0);
  });

  it("the sale step named by the payment's ack carries the parcel to book, as the order would answer it", async () => {
    const [orderId] = orderIdsInNewShard(1) as [string];
    const shard = orderShardOf(env, orderId);
    const { queue } = sendRecordingQueue();
    await runInDurableObject(shard, (instance: OrderObject) =>
      placeWith(instance, queue, orderId, "INLINE-PARCEL", undefined, { shipping: PARCEL_OPTION }),
    );
    const reserved = await shard.reservationResult(orderId, { ok: true }, { inline: true });
    const paid = await shard.paymentResult(
      orderId,
      { ok: true, authorizationId: "auth_1", captureId: "cap_1", amount: 1999 },
      { inline: true },
    );
    const toBook = await shard.pendingShipment(orderId);
    expect(toBook).toMatchObject({ weightGrams: 1200, address: SHIPPING, shipment: { status: "pending" } });
    expect(paid.next).toEqual({ step: "sell", toBook });
    // The charge step names it already: the sale that follows the charge books what the order would.
    expect(reserved.next).toEqual({ step: "charge", paymentToken: "tok_sim_success_4242", toBook });
    // A digital order (nothing ships) names nothing to book.
    const { orderId: digital } = await placeRecorded("INLINE-DIGITAL");
    const digitalReserved = await orderShardOf(env, digital).reservationResult(digital, { ok: true }, { inline: true });
    expect(digitalReserved.next).toEqual({ step: "charge", paymentToken: "tok_sim_success_4242", toBook: null });
    const digitalPaid = await orderShardOf(env, digital).paymentResult(
      digital,
      { ok: true, authorizationId: "auth_2", captureId: "cap_2", amount: 1999 },
      { inline: true },
    );
    expect(digitalPaid.next).toEqual({ step: "sell", toBook: null });
  });

  it("a charge asks the circuit breaker once for both of its provider calls", async () => {
    await insertSku("INLINE-PERMIT", { amount: 1999 });
    await stock("INLINE-PERMIT", 5);
    const { orderId, placed } = await placeRecorded("INLINE-PERMIT");
    const breakers = countingBreakers();

    expect((await deliverSagaBatch([placed], { CIRCUIT_BREAKER: breakers.binding })).retryMessages).toEqual([]);
    expect((await viewOrder(orderId))?.status).toBe("confirmed");
    expect(await ledgerRows(orderId, "authorization")).toBe(1);
    expect(await ledgerRows(orderId, "capture")).toBe(1);
    // Authorize and capture went through on one permit; a closed breaker with no failures needs no report.
    expect(breakers.asked).toEqual(["acquire"]);
  });

  it("the charges of one queue batch share the breaker's answer: one acquire per delivery", async () => {
    await insertSku("INLINE-BATCH", { amount: 1999 });
    await stock("INLINE-BATCH", 10);
    const orders = [];
    for (let i = 0; i < 5; i++) orders.push(await placeRecorded("INLINE-BATCH"));
    const breakers = countingBreakers();

    const delivery = await deliverSagaBatch(
      orders.map((o) => o.placed),
      { CIRCUIT_BREAKER: breakers.binding },
    );
    expect(delivery.retryMessages).toEqual([]);
    for (const { orderId } of orders) {
      expect((await viewOrder(orderId))?.status).toBe("confirmed");
      expect(await ledgerRows(orderId, "capture")).toBe(1);
    }
    expect(breakers.asked).toEqual(["acquire"]);

    // Shared within a delivery only: the next batch asks again.
    const next = await placeRecorded("INLINE-BATCH");
    await deliverSagaBatch([next.placed], { CIRCUIT_BREAKER: breakers.binding });
    expect(breakers.asked).toEqual(["acquire", "acquire"]);
  });
});

describe("SharedPermits", () => {
  const permit = (status: BreakerStatus): BreakerPermit => ({
    provider: "p",
    status,
    consecutiveFailures: 0,
    failingCustomers: 0,
    halfOpenSuccesses: 0,
    openedAt: null,
    allowed: status !== "open",
    retryAfterMs: 0,
  });

  it("shares an answer for a second, not after a failed call, and never a failed ask", async () => {
    const shared = new SharedPermits();
    let asks = 0;
    const acquire = async () => {
      asks++;
      return permit("closed");
    };
    await Promise.all([shared.get("p", acquire), shared.get("p", acquire), shared.get("q", acquire)]);
    expect(asks).toBe(2);
    shared.forget("p");
    await shared.get("p", acquire);
    expect(asks).toBe(3);
    later(1500);
    await shared.get("p", acquire);
    expect(asks).toBe(4);
    vi.restoreAllMocks();

    const failing = new SharedPermits();
    await expect(failing.get("p", () => Promise.reject(new Error("breaker unreachable")))).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 0));
    expect((await failing.get("p", acquire)).allowed).toBe(true);
  });
});

/** The order shards' binding, recording each RPC method called on their stubs. */
function countingShards(): { binding: Env["ORDER_SHARDS"]; calls: string[] } {
  const calls: string[] = [];
  const binding = {
    getByName(name: string) {
      const stub = env.ORDER_SHARDS.getByName(name);
      return new Proxy(stub, {
        get(target, method: string) {
          return (...args: unknown[]) => {
            calls.push(method);
            return (target as unknown as Record<string, (...a: unknown[]) => unknown>)[method]!(...args);
          };
        },
      });
    },
  } as unknown as Env["ORDER_SHARDS"];
  return { binding, calls };
}

/** A shipping option snapshot as checkout takes it, for a 1.2 kg parcel. */
const PARCEL_OPTION = {
  id: "ship_inline_parcel",
  carrier: "TestPost",
  service: "Standard",
  amount: { amount: 0, currency: "USD" },
  estimatedDays: 3,
  weightGrams: 1200,
};

/** The breaker binding as itty-durable's stub reaches it (idFromName, get().fetch), counting calls by method. */
function countingBreakers(): { binding: Env["CIRCUIT_BREAKER"]; asked: string[] } {
  const asked: string[] = [];
  const binding = {
    idFromName: (name: string) => env.CIRCUIT_BREAKER.idFromName(name),
    get: (id: DurableObjectId) => {
      const stub = env.CIRCUIT_BREAKER.get(id);
      return {
        fetch: (request: Request) => {
          asked.push(new URL(request.url).pathname.split("/").pop()!);
          return stub.fetch(request);
        },
      };
    },
  } as unknown as Env["CIRCUIT_BREAKER"];
  return { binding, asked };
}
