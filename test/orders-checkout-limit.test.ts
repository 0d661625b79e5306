import { env } from "cloudflare:workers";
import { beforeAll, describe, expect, it } from "vitest";
import { sha256Hex } from "../domain/encoding";
import { circuitBreakerFor } from "../durable-objects/circuit-breaker";
import { CHECKOUT_IN_FLIGHT_LIMIT } from "../durable-objects/order";
import { customerOrderShard, newOrderId, orderShard } from "../durable-objects/order-shard";
import { insertSku, stock } from "./commerce-fixtures";
import { call, expectProblem } from "./helpers";
import { accepted, CARDS, cartViaRpc, isFinal, newShopper, placeOrder, waitForOrder } from "./order-fixtures";

// Orders must stay in flight for as long as a test looks at them, whatever the machine's speed:
// this file opens the simulated provider's breaker (its own storage; no other file sees it), so
// every order stops at `reserved` with its payment deferred, exactly like a provider outage.
beforeAll(async () => {
  const breaker = circuitBreakerFor(env, "simulated");
  for (let i = 0; i < 5; i++) await breaker.recordFailure("simulated", `outage-customer-${i}`);
  expect(await breaker.acquire("simulated")).toMatchObject({ allowed: false });
  await insertSku("LIMIT-1");
  await stock("LIMIT-1", 1000);
});

const cartStatus = async (userId: string, cartId: string) => (await env.CART.getByName(cartId).view(userId))?.status;

describe("at most 3 in-flight checkouts per customer", () => {
  it("a burst of 10 concurrent checkouts by one customer: exactly 3 accepted, 7 refused with 429 and nothing created", async () => {
    const shopper = await newShopper();
    const carts = await Promise.all(
      Array.from({ length: 10 }, () => cartViaRpc(shopper, [{ sku: "LIMIT-1", quantity: 1 }])),
    );
    const responses = await Promise.all(carts.map((cartId) => placeOrder(shopper, cartId, CARDS.ok)));
    const statuses = responses.map((r) => r.status);
    expect(statuses.filter((s) => s === 202)).toHaveLength(CHECKOUT_IN_FLIGHT_LIMIT);
    expect(statuses.filter((s) => s === 429)).toHaveLength(10 - CHECKOUT_IN_FLIGHT_LIMIT);
    for (const [i, res] of responses.entries()) {
      if (res.status === 202) {
        expect(await cartStatus(shopper.userId, carts[i]!)).toBe("checked_out");
        continue;
      }
      const problem = await expectProblem(res, 429);
      expect(problem.type).toBe("https://edgepulse.dev/problems/too-many-checkouts");
      expect(Number(res.headers.get("Retry-After"))).toBeGreaterThan(0);
      // Refused before anything happened: the cart is still open for a later try.
      expect(await cartStatus(shopper.userId, carts[i]!)).toBe("open");
    }
    // Another customer is not affected by this one's limit.
    const other = await newShopper();
    expect((await placeOrder(other, await cartViaRpc(other, [{ sku: "LIMIT-1", quantity: 1 }]))).status).toBe(202);
  });

  it("a slot frees when an order ends; an Idempotency-Key replay of an admitted order is not a new checkout", async () => {
    const shopper = await newShopper();
    const key = { "Idempotency-Key": `k-${crypto.randomUUID()}` };
    const keyedCart = await cartViaRpc(shopper, [{ sku: "LIMIT-1", quantity: 1 }]);
    const first = await placeOrder(shopper, keyedCart, CARDS.ok, key);
    expect(first.status).toBe(202);
    const ids = [(await accepted(first)).id];
    for (let i = 1; i < CHECKOUT_IN_FLIGHT_LIMIT; i++) {
      const res = await placeOrder(shopper, await cartViaRpc(shopper, [{ sku: "LIMIT-1", quantity: 1 }]));
      ids.push((await accepted(res)).id);
    }
    for (const id of ids) await waitForOrder(id, (o) => o.status === "reserved");
    const spare = await cartViaRpc(shopper, [{ sku: "LIMIT-1", quantity: 1 }]);
    await expectProblem(await placeOrder(shopper, spare), 429);

    // The same request again (a client retrying after a lost response) is replayed, not refused.
    const replay = await placeOrder(shopper, keyedCart, CARDS.ok, key);
    expect(replay.status).toBe(202);
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");

    // The customer cancels one: its slot is free again.
    expect((await call(`/v1/orders/${ids[1]}/cancel`, { method: "POST", token: shopper.token })).status).toBe(202);
    await waitForOrder(ids[1]!, isFinal);
    expect((await placeOrder(shopper, spare)).status).toBe(202);
  });

  it("customers who share an order shard each get their own 3: concurrent bursts of 5 by two of them admit exactly 3 each", async () => {
    const first = await newShopper();
    let secondId = `u-${crypto.randomUUID()}`;
    while (customerOrderShard(secondId) !== customerOrderShard(first.userId)) secondId = `u-${crypto.randomUUID()}`;
    const second = await newShopper(secondId);
    const burst = async (shopper: typeof first) => {
      const carts = await Promise.all(
        Array.from({ length: 5 }, () => cartViaRpc(shopper, [{ sku: "LIMIT-1", quantity: 1 }])),
      );
      return Promise.all(carts.map(async (cartId) => (await placeOrder(shopper, cartId, CARDS.ok)).status));
    };
    const [a, b] = await Promise.all([burst(first), burst(second)]);
    for (const statuses of [a, b]) {
      expect(statuses.filter((s) => s === 202)).toHaveLength(CHECKOUT_IN_FLIGHT_LIMIT);
      expect(statuses.filter((s) => s === 429)).toHaveLength(5 - CHECKOUT_IN_FLIGHT_LIMIT);
    }
  });

  it("a checkout that creates no order (empty cart) gives its slot back at once", async () => {
    const shopper = await newShopper();
    for (let i = 0; i < CHECKOUT_IN_FLIGHT_LIMIT + 2; i++) {
      const empty = await cartViaRpc(shopper, []);
      await expectProblem(await placeOrder(shopper, empty), 409);
    }
    expect((await placeOrder(shopper, await cartViaRpc(shopper, [{ sku: "LIMIT-1", quantity: 1 }]))).status).toBe(202);
  });

  it("a refusal is not an Idempotency-Key's answer: the same request is placed once a slot is free", async () => {
    const shopper = await newShopper();
    const ids: string[] = [];
    for (let i = 0; i < CHECKOUT_IN_FLIGHT_LIMIT; i++) {
      ids.push(
        (await accepted(await placeOrder(shopper, await cartViaRpc(shopper, [{ sku: "LIMIT-1", quantity: 1 }])))).id,
      );
    }
    const cartId = await cartViaRpc(shopper, [{ sku: "LIMIT-1", quantity: 1 }]);
    const key = { "Idempotency-Key": `k-${crypto.randomUUID()}` };
    await expectProblem(await placeOrder(shopper, cartId, CARDS.ok, key), 429);
    expect(await cartStatus(shopper.userId, cartId)).toBe("open");
    expect((await call(`/v1/orders/${ids[0]}/cancel`, { method: "POST", token: shopper.token })).status).toBe(202);
    await waitForOrder(ids[0]!, isFinal);
    const retried = await placeOrder(shopper, cartId, CARDS.ok, key);
    expect(retried.status).toBe(202);
    expect(retried.headers.get("Idempotent-Replayed")).toBeNull();
    const { id } = await accepted(retried);
    expect(id).toBe(await newOrderId(shopper.userId, key["Idempotency-Key"]));
    expect(await cartStatus(shopper.userId, cartId)).toBe("checked_out");
  });
});

describe("newOrderId", () => {
  it("lands every order of a customer in the customer's own shard; a key always gives the same id", async () => {
    for (let i = 0; i < 20; i++) {
      const userId = `u-${crypto.randomUUID()}`;
      const random = await newOrderId(userId);
      expect(random).toMatch(/^ord_[0-9a-f]{24}$/);
      expect(orderShard(random)).toBe(customerOrderShard(userId));
      const keyed = await newOrderId(userId, `key-${i}`);
      expect(keyed).toMatch(/^ord_[0-9a-f]{24}$/);
      expect(orderShard(keyed)).toBe(customerOrderShard(userId));
      expect(await newOrderId(userId, `key-${i}`)).toBe(keyed);
      expect(await newOrderId(`${userId}-other`, `key-${i}`)).not.toBe(keyed);
    }
  });

  it("a key whose first id (the one keys derived before) lands in the customer's shard keeps it", async () => {
    let userId = `u-${crypto.randomUUID()}`;
    const key = "k-first";
    const first = async (u: string) => `ord_${(await sha256Hex(`${u}\n${key}`)).slice(0, 24)}`;
    while (orderShard(await first(userId)) !== customerOrderShard(userId)) userId = `u-${crypto.randomUUID()}`;
    expect(await newOrderId(userId, key)).toBe(await first(userId));
  });

  it("random ids, drawn from the spares kept by shard, are never handed out twice", async () => {
    const customers = Array.from({ length: 8 }, () => `u-${crypto.randomUUID()}`);
    const ids: string[] = [];
    for (let i = 0; i < 400; i++) {
      const userId = customers[i % customers.length]!;
      const id = await newOrderId(userId);
      expect(orderShard(id)).toBe(customerOrderShard(userId));
      ids.push(id);
    }
    expect(new Set(ids).size).toBe(ids.length);
  });
});
