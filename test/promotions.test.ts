import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { Cart } from "../contracts/cart";
import { Promotion } from "../contracts/promotion";
import { insertSku, stock } from "./commerce-fixtures";
import { adminToken, applyCode, checkout, createPromotion, shippingSetup, withCode } from "./fulfilment-fixtures";
import { call, expectProblem } from "./helpers";
import { accepted, cartViaRpc, cartWith, newShopper, waitForOrder, waitForOrders } from "./order-fixtures";

const HOUR = 3600_000;

async function redemptions(code: string): Promise<number> {
  const res = await call(`/v1/admin/promotions/${code}`, { token: await adminToken() });
  expect(res.status).toBe(200);
  return Promotion.parse(await res.json()).redemptions;
}

async function cartOf(token: string, cartId: string): Promise<Cart> {
  return Cart.parse(await (await call(`/v1/carts/${cartId}`, { token })).json());
}

describe("promotion codes", () => {
  it("the cart shows its discount; a code that does not apply is 422 with the reason and changes nothing", async () => {
    await insertSku("PROMO-A", { amount: 2000 });
    await stock("PROMO-A", 20);
    const { standard } = await shippingSetup(["GB"]);
    const now = Date.now();
    const [percent, fixed, freeShipping, expired, future, big, euro, paused] = await Promise.all([
      createPromotion({ kind: "percent", value: 15 }),
      createPromotion({ kind: "fixed", value: 500, currency: "USD", minSubtotal: 3000 }),
      createPromotion({ kind: "free_shipping" }),
      createPromotion({ kind: "percent", value: 10, endsAt: new Date(now - HOUR).toISOString() }),
      createPromotion({ kind: "percent", value: 10, startsAt: new Date(now + HOUR).toISOString() }),
      createPromotion({ kind: "percent", value: 10, currency: "USD", minSubtotal: 100_000 }),
      createPromotion({ kind: "fixed", value: 500, currency: "EUR" }),
      createPromotion({ kind: "percent", value: 10 }),
    ]);
    const admin = await adminToken();
    const patched = await call(`/v1/admin/promotions/${paused!.code}`, {
      method: "PATCH",
      token: admin,
      json: { active: false },
    });
    expect(Promotion.parse(await patched.json()).active).toBe(false);

    const shopper = await newShopper();
    const cartId = await cartWith(shopper, [{ sku: "PROMO-A", quantity: 2 }]);
    const cart = await withCode(shopper, cartId, percent!.code.toLowerCase());
    expect(cart.promotionCode).toBe(percent!.code);
    expect(cart.discounts).toEqual([
      { code: percent!.code, kind: "percent", description: "15 % off", amount: { amount: 600, currency: "USD" } },
    ]);

    const refusals: [string, string][] = [
      [expired!.code, "expired"],
      [future!.code, "not_started"],
      [big!.code, "below_minimum"],
      [euro!.code, "currency"],
      [paused!.code, "inactive"],
      ["NO-SUCH-CODE", "unknown"],
    ];
    for (const [code, reason] of refusals) {
      const problem = await expectProblem(await applyCode(shopper, cartId, code), 422, code);
      expect(problem.type).toBe("https://edgepulse.dev/problems/promotion-not-applicable");
      expect(problem.errors).toEqual([{ path: "code", message: reason }]);
    }
    // Still the code that applied, untouched.
    expect(await cartOf(shopper.token, cartId)).toEqual(cart);

    // Another code replaces it; removing it leaves no discount.
    expect((await withCode(shopper, cartId, fixed!.code)).discounts[0]?.amount.amount).toBe(500);
    const removed = await call(`/v1/carts/${cartId}/promotion`, { method: "DELETE", token: shopper.token });
    expect(Cart.parse(await removed.json()).discounts).toEqual([]);

    // Free shipping takes the shipping charge off at checkout; no tax rule for GB here.
    await withCode(shopper, cartId, freeShipping!.code);
    const res = await checkout(shopper, cartId, standard.id);
    expect(res.status, await res.clone().text()).toBe(202);
    const order = await waitForOrder((await accepted(res)).id, (o) => o.status === "confirmed");
    expect(order.promotionCode).toBe(freeShipping!.code);
    expect(order.totals).toMatchObject({
      subtotal: { amount: 4000 },
      discount: { amount: 500 },
      shipping: { amount: 500 },
      tax: { amount: 0 },
      total: { amount: 4000 },
    });
    expect(order.payment.captured).toBe(4000);
  });

  it("50 concurrent checkouts against maxRedemptions 10: exactly 10 orders carry the discount", async () => {
    await insertSku("PROMO-HOT", { amount: 1000 });
    await stock("PROMO-HOT", 100);
    const { standard } = await shippingSetup(["GB"]);
    const promo = await createPromotion({ kind: "fixed", value: 300, currency: "USD", maxRedemptions: 10 });
    const shoppers = await Promise.all(Array.from({ length: 50 }, () => newShopper()));
    const carts = await Promise.all(
      shoppers.map(async (shopper) => {
        const cartId = await cartViaRpc(shopper, [{ sku: "PROMO-HOT", quantity: 1 }]);
        await withCode(shopper, cartId, promo.code);
        return cartId;
      }),
    );

    const responses = await Promise.all(shoppers.map((s, i) => checkout(s, carts[i]!, standard.id)));
    const placed = responses.filter((r) => r.status === 202);
    const refused = responses.filter((r) => r.status !== 202);
    expect(placed).toHaveLength(10);
    for (const res of refused) {
      expect((await expectProblem(res, 422)).errors).toEqual([{ path: "promotionCode", message: "used_up" }]);
    }
    // A refused checkout left its cart open to change and retry.
    const refusedIndex = responses.findIndex((r) => r.status !== 202);
    expect((await cartOf(shoppers[refusedIndex]!.token, carts[refusedIndex]!)).status).toBe("open");

    const orders = await waitForOrders(await Promise.all(placed.map(async (r) => (await accepted(r)).id)));
    for (const order of orders) {
      expect(order.status).toBe("confirmed");
      expect(order.totals?.discount.amount).toBe(300);
      expect(order.payment.captured).toBe(order.totals?.total.amount);
    }
    expect(await redemptions(promo.code)).toBe(10);
  });

  it("perCustomerLimit 1 with the same customer checking out 5 carts at once: one discounted order", async () => {
    await insertSku("PROMO-ONCE", { amount: 1000 });
    await stock("PROMO-ONCE", 20);
    const { standard } = await shippingSetup(["GB"]);
    const promo = await createPromotion({ kind: "percent", value: 20, perCustomerLimit: 1 });
    const shopper = await newShopper();
    const carts = await Promise.all(
      Array.from({ length: 5 }, async () => {
        const cartId = await cartWith(shopper, [{ sku: "PROMO-ONCE", quantity: 1 }]);
        await withCode(shopper, cartId, promo.code);
        return cartId;
      }),
    );
    const responses = await Promise.all(carts.map((cartId) => checkout(shopper, cartId, standard.id)));
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 202)).toHaveLength(1);
    // The others: the code is used (422), or the customer's in-flight checkout limit answered first (429).
    expect(statuses.every((s) => s === 202 || s === 422 || s === 429)).toBe(true);
    for (const res of responses.filter((r) => r.status === 422)) {
      expect((await expectProblem(res, 422)).errors).toEqual([{ path: "promotionCode", message: "already_used" }]);
    }
    const order = await waitForOrder((await accepted(responses.find((r) => r.status === 202)!)).id, (o) =>
      ["confirmed", "cancelled"].includes(o.status),
    );
    expect(order.totals?.discount.amount).toBe(200);
    expect(await redemptions(promo.code)).toBe(1);
  });

  it("a cancelled order gives its redemption back (saga compensation), so the code can be used again", async () => {
    await insertSku("PROMO-BACK", { amount: 5000 });
    await stock("PROMO-BACK", 10);
    const { standard } = await shippingSetup(["GB"]);
    const promo = await createPromotion({ kind: "percent", value: 50, maxRedemptions: 1, perCustomerLimit: 1 });
    const first = await newShopper();
    const firstCart = await cartWith(first, [{ sku: "PROMO-BACK", quantity: 1 }]);
    await withCode(first, firstCart, promo.code);
    const placed = await checkout(first, firstCart, standard.id);
    expect(placed.status).toBe(202);
    const { id } = await accepted(placed);
    expect((await waitForOrder(id, (o) => o.status === "confirmed")).totals?.discount.amount).toBe(2500);
    expect(await redemptions(promo.code)).toBe(1);

    // Used up for everyone else meanwhile.
    const second = await newShopper();
    const secondCart = await cartWith(second, [{ sku: "PROMO-BACK", quantity: 1 }]);
    const usedUp = await expectProblem(await applyCode(second, secondCart, promo.code), 422);
    expect(usedUp.errors?.[0]?.message).toBe("used_up");

    expect((await call(`/v1/orders/${id}/cancel`, { method: "POST", token: first.token })).status).toBe(202);
    await waitForOrder(id, (o) => o.status === "cancelled");
    await expect.poll(() => redemptions(promo.code), { timeout: 10_000 }).toBe(0);
    // Given back exactly once, however often the cancellation is delivered.
    expect(await env.PROMOTION.getByName(promo.code).release(id)).toEqual({ released: false });

    await withCode(second, secondCart, promo.code);
    const again = await checkout(second, secondCart, standard.id);
    expect(again.status, await again.clone().text()).toBe(202);
    expect(
      (await waitForOrder((await accepted(again)).id, (o) => o.status === "confirmed")).totals?.discount.amount,
    ).toBe(2500);
    expect(await redemptions(promo.code)).toBe(1);
  });
});
