import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { Order, OrderList } from "../contracts/order";
import { insertSku, stock } from "./commerce-fixtures";
import { call } from "./helpers";
import { accepted, CARDS, cartWith, isFinal, newShopper, placeOrder, waitForOrder } from "./order-fixtures";

async function ledger(orderId: string) {
  const { results } = await env.DB.prepare(
    "SELECT kind, amount, detail FROM payment_ledger WHERE order_id = ? ORDER BY created_at",
  )
    .bind(orderId)
    .all<{ kind: string; amount: number; detail: string | null }>();
  return results;
}

describe("order saga end to end (POST /v1/orders → queue consumers → final state)", () => {
  it("a good card ends confirmed: stock sold, payment captured, history complete, read model and email updated", async () => {
    await insertSku("SAGA-OK", { amount: 1500 });
    await stock("SAGA-OK", 5);
    const shopper = await newShopper(undefined, `ok-${crypto.randomUUID()}@example.test`);
    const cartId = await cartWith(shopper, [{ sku: "SAGA-OK", quantity: 2 }]);
    const res = await placeOrder(shopper, cartId);
    expect(res.status).toBe(202);
    const placed = await accepted(res);
    expect(placed.status).toBe("pending");

    const order = await waitForOrder(placed.id, isFinal);
    expect(order.status).toBe("confirmed");
    expect(order.history.map((h) => h.status)).toEqual(["pending", "reserved", "paid", "confirmed"]);
    expect(order.payment).toMatchObject({ status: "captured", captured: 3000 });
    expect(await env.INVENTORY.getByName("SAGA-OK").level()).toMatchObject({
      onHand: 5,
      reserved: 0,
      sold: 2,
      available: 3,
    });
    expect((await ledger(placed.id)).map((l) => l.kind)).toEqual(["authorization", "capture"]);

    const viaApi = await call(`/v1/orders/${placed.id}`, { token: shopper.token });
    expect(viaApi.status).toBe(200);
    expect(Order.parse(await viaApi.json())).toMatchObject({
      id: placed.id,
      status: "confirmed",
      total: { amount: 3000, currency: "USD" },
    });

    // Read model and notification are projected asynchronously from order.confirmed.
    await expect
      .poll(
        async () => OrderList.parse(await (await call("/v1/orders", { token: shopper.token })).json()).items[0]?.status,
      )
      .toBe("confirmed");
    await expect
      .poll(
        async () =>
          (await env.DB.prepare("SELECT kind FROM notifications WHERE order_id = ?").bind(placed.id).all()).results,
      )
      .toEqual([{ kind: "order_confirmed" }]);
  });

  it.each([
    ["declined", CARDS.declined, "payment_declined", "card_declined"],
    ["insufficient funds", CARDS.insufficient, "payment_declined", "insufficient_funds"],
    ["provider timeout", CARDS.hang, "payment_error", "timeout"],
  ])("%s ends cancelled (%s) with stock released", async (_name, card, reason, detail) => {
    const sku = `SAGA-FAIL-${detail}`;
    await insertSku(sku);
    await stock(sku, 3);
    const shopper = await newShopper();
    const res = await placeOrder(shopper, await cartWith(shopper, [{ sku, quantity: 3 }]), card);
    expect(res.status).toBe(202);
    const { id } = await accepted(res);
    const order = await waitForOrder(id, isFinal);
    expect(order).toMatchObject({ status: "cancelled", reason });
    expect(order.history.map((h) => h.status)).toEqual(["pending", "reserved", "cancelled"]);
    expect(order.payment.captured).toBe(0);
    await expect.poll(async () => (await env.INVENTORY.getByName(sku).level()).reserved).toBe(0);
    expect(await env.INVENTORY.getByName(sku).level()).toMatchObject({ onHand: 3, sold: 0, available: 3 });
    expect((await ledger(id)).map((l) => l.detail)).toContain(detail);
  });

  it("a transient provider failure is retried with backoff and then succeeds", async () => {
    await insertSku("SAGA-TRANSIENT");
    await stock("SAGA-TRANSIENT", 1);
    const shopper = await newShopper();
    const res = await placeOrder(
      shopper,
      await cartWith(shopper, [{ sku: "SAGA-TRANSIENT", quantity: 1 }]),
      CARDS.transient,
    );
    const { id } = await accepted(res);
    const order = await waitForOrder(id, isFinal, 15_000);
    expect(order.status).toBe("confirmed");
    const attempts = (await ledger(id)).filter((l) => l.kind === "failure").length;
    expect(attempts).toBe(2);
    expect(await env.INVENTORY.getByName("SAGA-TRANSIENT").level()).toMatchObject({ sold: 1, reserved: 0 });
  });

  it("out of stock ends cancelled out_of_stock and reserves nothing of the other lines", async () => {
    await insertSku("SAGA-PLENTY");
    await insertSku("SAGA-SCARCE");
    await stock("SAGA-PLENTY", 10);
    await stock("SAGA-SCARCE", 1);
    const a = await newShopper();
    const b = await newShopper();
    // Both carts pass the add-to-cart availability check; only one order can get the last unit.
    const cartA = await cartWith(a, [
      { sku: "SAGA-PLENTY", quantity: 2 },
      { sku: "SAGA-SCARCE", quantity: 1 },
    ]);
    const cartB = await cartWith(b, [
      { sku: "SAGA-PLENTY", quantity: 2 },
      { sku: "SAGA-SCARCE", quantity: 1 },
    ]);
    const [ra, rb] = await Promise.all([placeOrder(a, cartA), placeOrder(b, cartB)]);
    const ids = [(await accepted(ra)).id, (await accepted(rb)).id];
    const orders = await Promise.all(ids.map((id) => waitForOrder(id, isFinal)));
    expect(orders.map((o) => o.status).sort()).toEqual(["cancelled", "confirmed"]);
    expect(orders.find((o) => o.status === "cancelled")?.reason).toBe("out_of_stock");
    await expect.poll(async () => (await env.INVENTORY.getByName("SAGA-PLENTY").level()).reserved).toBe(0);
    expect(await env.INVENTORY.getByName("SAGA-PLENTY").level()).toMatchObject({ sold: 2, available: 8 });
    expect(await env.INVENTORY.getByName("SAGA-SCARCE").level()).toMatchObject({ sold: 1, reserved: 0, available: 0 });
  });
});
