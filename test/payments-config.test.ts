import { createExecutionContext, createMessageBatch, getQueueResult, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DomainError } from "../domain/errors";
import { type PaymentConfigEnv, parsePaymentConfig } from "../domain/payments/config";
import { dispatchBatch } from "../queues/dispatch";
import { app } from "../workers/app";
import { insertSku, stock } from "./commerce-fixtures";
import { expectProblem } from "./helpers";
import {
  accepted,
  CARDS,
  cartViaRpc,
  ensureTestShipping,
  newShopper,
  reservedEvent,
  SHIPPING,
  waitForOrder,
} from "./order-fixtures";

const config = (vars: Partial<PaymentConfigEnv>) =>
  parsePaymentConfig({ ENVIRONMENT: "local", PAYMENT_PROVIDER: "simulated", ...vars });

/** The Worker's fetch with some vars changed, as a misconfigured deployment would have them. */
async function fetchWith(vars: Partial<PaymentConfigEnv>, path: string, init: RequestInit = {}): Promise<Response> {
  const ctx = createExecutionContext();
  const res = await app.fetch(new Request(`http://edgepulse.test${path}`, init), { ...env, ...vars }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

const MISCONFIGURED: [string, Partial<PaymentConfigEnv>][] = [
  ["an unknown provider name", { PAYMENT_PROVIDER: "bogus" }],
  ["a provider name in the wrong case", { PAYMENT_PROVIDER: "Stripe" }],
  ["stripe without STRIPE_SECRET_KEY", { PAYMENT_PROVIDER: "stripe", STRIPE_SECRET_KEY: "" }],
  ["simulated in production", { ENVIRONMENT: "production" }],
  ["simulated in staging without the test-mode flag", { ENVIRONMENT: "staging" }],
  ["simulated with a test-mode flag that is not exactly true", { ENVIRONMENT: "staging", PAYMENT_TEST_MODE: "1" }],
];

describe("payment configuration", () => {
  it("accepts exactly: simulated locally or in test mode, stripe with its key", () => {
    expect(config({})).toEqual({ provider: "simulated", testMode: false });
    expect(config({ ENVIRONMENT: "staging", PAYMENT_TEST_MODE: "true" })).toEqual({
      provider: "simulated",
      testMode: true,
    });
    expect(config({ ENVIRONMENT: "production", PAYMENT_PROVIDER: "stripe", STRIPE_SECRET_KEY: "sk_test_x" })).toEqual({
      provider: "stripe",
      secretKey: "sk_test_x",
    });
  });

  it.each(MISCONFIGURED)("refuses %s", (_label, vars) => {
    expect(() => config(vars)).toThrow(DomainError);
    try {
      config(vars);
    } catch (error) {
      expect(error).toMatchObject({ code: "unavailable", kind: "payment-unavailable" });
    }
  });
});

describe("a misconfigured Worker refuses checkout instead of confirming orders without taking money", () => {
  it.each(MISCONFIGURED)(
    "POST /v1/orders with %s: 503 payment-unavailable, Retry-After, nothing created",
    async (_label, vars) => {
      await insertSku("CFG-1");
      await stock("CFG-1", 5);
      const shopper = await newShopper();
      const cartId = await cartViaRpc(shopper, [{ sku: "CFG-1", quantity: 1 }]);
      const res = await fetchWith(vars, "/v1/orders", {
        method: "POST",
        headers: {
          Authorization: `Bearer ${shopper.token}`,
          "Content-Type": "application/json",
          "Idempotency-Key": `k-${crypto.randomUUID()}`,
        },
        body: JSON.stringify({ cartId, payment: { method: "card", cardNumber: CARDS.ok }, shippingAddress: SHIPPING }),
      });
      const problem = await expectProblem(res, 503);
      expect(problem.type).toBe("https://edgepulse.dev/problems/payment-unavailable");
      expect(Number(res.headers.get("Retry-After"))).toBeGreaterThan(0);
      // Nothing was created: the cart is still open, no order, no idempotency record, no stock held.
      expect((await env.CART.getByName(cartId).view(shopper.userId))?.status).toBe("open");
      expect(
        await env.DB.prepare("SELECT COUNT(*) AS n FROM idempotency_keys WHERE scope = ?")
          .bind(`orders:${shopper.userId}`)
          .first(),
      ).toEqual({ n: 0 });
      expect(await env.INVENTORY.getByName("CFG-1").level()).toMatchObject({ reserved: 0, sold: 0 });
    },
  );

  it("staging with PAYMENT_TEST_MODE = true checks out as before", async () => {
    await insertSku("CFG-2");
    await stock("CFG-2", 5);
    const shopper = await newShopper();
    const cartId = await cartViaRpc(shopper, [{ sku: "CFG-2", quantity: 1 }]);
    const res = await fetchWith({ ENVIRONMENT: "staging", PAYMENT_TEST_MODE: "true" }, "/v1/orders", {
      method: "POST",
      headers: { Authorization: `Bearer ${shopper.token}`, "Content-Type": "application/json" },
      body: JSON.stringify({
        cartId,
        payment: { method: "card", cardNumber: CARDS.ok },
        shippingAddress: SHIPPING,
        shippingOptionId: await ensureTestShipping(),
      }),
    });
    expect(res.status).toBe(202);
    await waitForOrder((await accepted(res)).id, (o) => o.status !== "pending");
  });

  it.each(MISCONFIGURED)("/ready with %s: 503 naming the reason", async (_label, vars) => {
    const res = await fetchWith(vars, "/ready");
    expect(res.status).toBe(503);
    const body = await res.json<{ status: string; checks: Record<string, string>; reasons: Record<string, string> }>();
    expect(body).toMatchObject({
      status: "unavailable",
      checks: { d1: "ok", durableObjects: "ok", payments: "failed" },
    });
    expect(body.reasons.payments).toMatch(/PAYMENT_PROVIDER|STRIPE_SECRET_KEY|simulated/);
  });
});

describe("the payment consumer never falls back to the simulated provider", () => {
  it.each(MISCONFIGURED)(
    "with %s it moves no money and retries (then the DLQ), every delivery",
    async (_label, vars) => {
      const orderId = `ord_cfg_${crypto.randomUUID().slice(0, 8)}`;
      for (const attempts of [1, 4]) {
        const batch = createMessageBatch("saga-events", [
          { id: `m-${attempts}`, timestamp: new Date(), attempts, body: reservedEvent(orderId) },
        ]);
        const ctx = createExecutionContext();
        await dispatchBatch(batch, { ...env, ...vars }, ctx);
        const result = await getQueueResult(batch, ctx);
        expect(result).toMatchObject({ explicitAcks: [], retryMessages: [{ msgId: `m-${attempts}` }] });
      }
      const count = async (sql: string) => (await env.DB.prepare(sql).bind(`${orderId}%`).first<{ n: number }>())?.n;
      expect(await count("SELECT COUNT(*) AS n FROM payment_ledger WHERE order_id LIKE ?")).toBe(0);
      expect(await count("SELECT COUNT(*) AS n FROM simulated_payments WHERE idempotency_key LIKE ?")).toBe(0);
    },
  );
});
