import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { circuitBreakerFor } from "../durable-objects/circuit-breaker";
import { insertSku, stock } from "./commerce-fixtures";
import {
  accepted,
  CARDS,
  cartWith,
  isFinal,
  newShopper,
  passSagaDeadline,
  placeOrder,
  waitForOrder,
} from "./order-fixtures";

// This file opens the "simulated" provider's breaker; every test file has its own storage, so
// the other saga tests never see it open.

describe("payment circuit breaker (shared Durable Object per provider)", () => {
  it("opens after 5 consecutive failures, half-opens after 30 s, closes after 2 successes", async () => {
    const breaker = circuitBreakerFor(env, "test-provider");
    // Failures from distinct customers, as in a real outage (one customer alone cannot open it: see below).
    for (let i = 1; i <= 4; i++)
      expect((await breaker.recordFailure("test-provider", `customer-${i}`)).status).toBe("closed");
    // A success in between resets the count: only *consecutive* failures open it.
    await breaker.recordSuccess("test-provider");
    for (let i = 1; i <= 4; i++) await breaker.recordFailure("test-provider", `customer-${i}`);
    expect((await breaker.acquire("test-provider")).allowed).toBe(true);
    expect(await breaker.recordFailure("test-provider", "customer-5")).toMatchObject({
      status: "open",
      consecutiveFailures: 5,
    });
    const denied = await breaker.acquire("test-provider");
    expect(denied).toMatchObject({ allowed: false, status: "open" });
    expect(denied.retryAfterMs).toBeGreaterThan(29_000);

    // The 30 s timer is the object's alarm.
    const stub = env.CIRCUIT_BREAKER.get(env.CIRCUIT_BREAKER.idFromName("test-provider"));
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await breaker.acquire("test-provider")).toMatchObject({ allowed: true, status: "half_open" });
    // A failure while half-open re-opens it at once.
    expect((await breaker.recordFailure("test-provider", "customer-1")).status).toBe("open");
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await breaker.recordSuccess("test-provider")).status).toBe("half_open");
    expect(await breaker.recordSuccess("test-provider")).toMatchObject({ status: "closed", consecutiveFailures: 0 });
    expect((await breaker.acquire("test-provider")).allowed).toBe(true);
  });

  it("while open, payments fail fast without calling the provider; the stalled saga is timed out by its alarm and stock is released", async () => {
    const breaker = circuitBreakerFor(env, "simulated");
    for (let i = 0; i < 5; i++) await breaker.recordFailure("simulated", `customer-${i}`);
    expect(await breaker.acquire("simulated")).toMatchObject({ allowed: false, status: "open" });

    await insertSku("BRK-1");
    await stock("BRK-1", 4);
    const shopper = await newShopper();
    const { id } = await accepted(
      await placeOrder(shopper, await cartWith(shopper, [{ sku: "BRK-1", quantity: 2 }]), CARDS.ok),
    );
    // Reserved, then stuck: the payment consumer is told to come back when the breaker allows.
    await waitForOrder(id, (o) => o.status === "reserved");
    await expect
      .poll(
        async () =>
          (
            await env.DB.prepare("SELECT COUNT(*) AS n FROM payment_ledger WHERE order_id = ?")
              .bind(id)
              .first<{ n: number }>()
          )?.n,
      )
      .toBe(0);
    expect(
      await env.DB.prepare("SELECT COUNT(*) AS n FROM simulated_payments WHERE idempotency_key LIKE ?")
        .bind(`${id}:%`)
        .first(),
    ).toEqual({ n: 0 });
    expect((await env.INVENTORY.getByName("BRK-1").level()).reserved).toBe(2);

    // The saga deadline passes (SAGA_TIMEOUT_MS): the alarm cancels with reason `timeout`.
    expect(await passSagaDeadline(id)).toBe(true);
    const order = await waitForOrder(id, isFinal);
    expect(order).toMatchObject({ status: "cancelled", reason: "timeout" });
    expect(order.history.map((h) => h.status)).toEqual(["pending", "reserved", "cancelled"]);
    await expect.poll(async () => (await env.INVENTORY.getByName("BRK-1").level()).reserved, { timeout: 5000 }).toBe(0);
    expect(await env.INVENTORY.getByName("BRK-1").level()).toMatchObject({ available: 4, sold: 0 });
  });
});
