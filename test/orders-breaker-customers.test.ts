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
  placeOrder,
  type Shopper,
  waitForOrder,
  waitForOrders,
} from "./order-fixtures";

// Own file: the last test opens the "simulated" provider's breaker, and every test file has its
// own storage. Test cards only exist on the simulated provider, which the hang card hangs until
// PAYMENT_TIMEOUT_MS (300 ms in tests): each such order is one provider failure for the breaker.
// Whole sagas on a shared machine: the deadlines are generous on purpose.

/** Places one hang-card order per shopper listed (in parallel) and waits until all have ended. */
async function hangOrders(shoppers: Shopper[], sku: string): Promise<void> {
  const ids = await Promise.all(
    shoppers.map(async (s) => {
      const res = await placeOrder(s, await cartWith(s, [{ sku, quantity: 1 }]), CARDS.hang);
      expect(res.status, await res.clone().text()).toBe(202);
      return (await accepted(res)).id;
    }),
  );
  for (const order of await waitForOrders(ids))
    expect(order).toMatchObject({ status: "cancelled", reason: "payment_error" });
}

describe("one customer cannot open the shared payment breaker for everyone", () => {
  it("10 hang-card orders from one customer leave it closed, and another customer's good card confirms", async () => {
    await insertSku("BRK-ONE");
    await stock("BRK-ONE", 20);
    const attacker = await newShopper();
    // In rounds of 3: at most 3 of one customer's orders may be in flight at once.
    for (const round of [3, 3, 3, 1])
      await hangOrders(
        Array.from({ length: round }, () => attacker),
        "BRK-ONE",
      );

    const breaker = await circuitBreakerFor(env, "simulated").acquire("simulated");
    // The failures were counted (10 in a row), but all from one customer: still closed.
    expect(breaker).toMatchObject({ allowed: true, status: "closed", consecutiveFailures: 10, failingCustomers: 1 });

    const other = await newShopper();
    const res = await placeOrder(other, await cartWith(other, [{ sku: "BRK-ONE", quantity: 1 }]), CARDS.ok);
    expect((await waitForOrder((await accepted(res)).id, isFinal)).status).toBe("confirmed");
    expect(await circuitBreakerFor(env, "simulated").acquire("simulated")).toMatchObject({
      status: "closed",
      consecutiveFailures: 0,
    });
  }, 60_000);

  it("failures from 3 or more customers still open it (a real outage fails everyone)", async () => {
    await insertSku("BRK-MANY");
    await stock("BRK-MANY", 10);
    const [a, b, c] = await Promise.all([newShopper(), newShopper(), newShopper()]);
    await hangOrders([a!, a!, b!, b!, c!], "BRK-MANY");
    const permit = await circuitBreakerFor(env, "simulated").acquire("simulated");
    expect(permit).toMatchObject({ allowed: false, status: "open", failingCustomers: 3 });
    expect(permit.consecutiveFailures).toBeGreaterThanOrEqual(5);
  }, 60_000);
});
