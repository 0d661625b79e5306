import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { Cart } from "../contracts/cart";
import { OrderList, RefundAccepted } from "../contracts/order";
import { Problem } from "../contracts/problem";
import { OrderObject } from "../durable-objects/order";
import { newOrderId, orderShardOf } from "../durable-objects/order-shard";
import { insertSku, stock } from "./commerce-fixtures";
import { call, tokenFor } from "./helpers";
import {
  accepted,
  CARDS,
  cartWith,
  isFinal,
  newShopper,
  placeOrder,
  SHIPPING,
  viewOrder,
  waitForOrder,
} from "./order-fixtures";

const storedKeys = async () =>
  (await env.DB.prepare("SELECT COUNT(*) AS n FROM idempotency_keys").first<{ n: number }>())?.n;

describe("POST /v1/orders with Idempotency-Key", () => {
  it("same key + same body → the first response; other body → 422; never a second order", async () => {
    await insertSku("IDEM-1");
    await stock("IDEM-1", 5);
    const shopper = await newShopper();
    const cartId = await cartWith(shopper, [{ sku: "IDEM-1", quantity: 1 }]);
    const key = { "Idempotency-Key": `k-${crypto.randomUUID()}` };
    const first = await placeOrder(shopper, cartId, CARDS.ok, key);
    expect(first.status).toBe(202);
    const body = await accepted(first);
    expect(first.headers.get("location")).toBe(`/v1/orders/${body.id}`);

    const replay = await placeOrder(shopper, cartId, CARDS.ok, key);
    expect(replay.status).toBe(202);
    expect(await replay.json()).toEqual(body);
    expect(replay.headers.get("idempotent-replayed")).toBe("true");

    const other = await placeOrder(shopper, cartId, CARDS.declined, key);
    expect(other.status).toBe(422);
    expect(other.headers.get("content-type")).toContain("application/problem+json");

    // Without the key, the frozen cart refuses a second checkout: no double order either way.
    const again = await placeOrder(shopper, cartId);
    expect(again.status).toBe(409);
    expect(Problem.parse(await again.json()).detail).toContain(body.id);
    expect((await waitForOrder(body.id, isFinal)).status).toBe("confirmed");
    expect(await env.INVENTORY.getByName("IDEM-1").level()).toMatchObject({ sold: 1, reserved: 0 });
  });

  it("concurrent duplicates: one 202, the rest 409 (in progress) or the replayed 202 — one order", async () => {
    await insertSku("IDEM-2");
    await stock("IDEM-2", 5);
    const shopper = await newShopper();
    const cartId = await cartWith(shopper, [{ sku: "IDEM-2", quantity: 1 }]);
    const key = { "Idempotency-Key": `k-${crypto.randomUUID()}` };
    const responses = await Promise.all(Array.from({ length: 8 }, () => placeOrder(shopper, cartId, CARDS.ok, key)));
    const statuses = responses.map((r) => r.status);
    expect(statuses.every((s) => s === 202 || s === 409)).toBe(true);
    expect(statuses).toContain(409);
    const ids = new Set(
      await Promise.all(responses.filter((r) => r.status === 202).map(async (r) => (await accepted(r)).id)),
    );
    expect(ids.size).toBe(1);
    const [id] = [...ids];
    expect((await waitForOrder(id!, isFinal)).status).toBe("confirmed");
    expect(await env.INVENTORY.getByName("IDEM-2").level()).toMatchObject({ sold: 1, reserved: 0 });
  });

  it("bad input is a 400 problem+json and changes nothing (cart stays open, no key stored)", async () => {
    await insertSku("IDEM-BAD");
    await stock("IDEM-BAD", 5);
    const shopper = await newShopper();
    const cartId = await cartWith(shopper, [{ sku: "IDEM-BAD", quantity: 1 }]);
    const before = await storedKeys();
    const cases: unknown[] = [
      {},
      { cartId, payment: { method: "card" }, shippingAddress: SHIPPING },
      { cartId, payment: { method: "card", cardNumber: "4242424242424241" }, shippingAddress: SHIPPING },
      {
        cartId,
        payment: { method: "card", cardNumber: CARDS.ok, token: "tok_sim_success_4242" },
        shippingAddress: SHIPPING,
      },
      { cartId, payment: { method: "card", token: "tok_unknown" }, shippingAddress: SHIPPING },
      { cartId, payment: { method: "cash" }, shippingAddress: SHIPPING },
      {
        cartId,
        payment: { method: "card", cardNumber: CARDS.ok },
        shippingAddress: { ...SHIPPING, country: "Britain" },
      },
      { cartId, payment: { method: "card", cardNumber: CARDS.ok }, shippingAddress: SHIPPING, extra: 1 },
    ];
    for (const json of cases) {
      const res = await call("/v1/orders", { method: "POST", token: shopper.token, json });
      expect(res.status, JSON.stringify(json)).toBe(400);
      expect(res.headers.get("content-type")).toContain("application/problem+json");
    }
    const badKey = await call("/v1/orders", {
      method: "POST",
      token: shopper.token,
      headers: { "Idempotency-Key": "x".repeat(256) },
      json: { cartId, payment: { method: "card", cardNumber: CARDS.ok }, shippingAddress: SHIPPING },
    });
    expect(badKey.status).toBe(400);
    expect(await storedKeys()).toBe(before);
    const cart = await call(`/v1/carts/${cartId}`, { token: shopper.token });
    expect(Cart.parse(await cart.json()).status).toBe("open");
    expect((await call("/v1/orders", { method: "POST", json: {} })).status).toBe(401);
  });
});

describe("order visibility, cancel and refunds", () => {
  it("a customer never sees or cancels another's order (404), and cannot cancel a shipped one (409)", async () => {
    await insertSku("ACL-1", { amount: 1000 });
    await stock("ACL-1", 5);
    const owner = await newShopper();
    const stranger = await newShopper();
    const { id } = await accepted(await placeOrder(owner, await cartWith(owner, [{ sku: "ACL-1", quantity: 1 }])));
    expect((await call(`/v1/orders/${id}`, { token: stranger.token })).status).toBe(404);
    expect((await call(`/v1/orders/${id}/cancel`, { method: "POST", token: stranger.token })).status).toBe(404);
    // Asking for an order that does not exist creates no storage for it (anyone can ask): not in its
    // shard, and not in the object of its own an order placed before the shards has, asked next.
    const unknown = "ord_000000000000000000000000";
    const tables = (stub: DurableObjectStub) =>
      runInDurableObject(
        stub,
        (_i, state) =>
          state.storage.sql
            .exec<{ n: number }>(
              "SELECT count(*) AS n FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '_cf_%'",
            )
            .one().n,
      );
    const shardTables = await tables(orderShardOf(env, unknown));
    expect((await call(`/v1/orders/${unknown}`, { token: owner.token })).status).toBe(404);
    expect(await tables(orderShardOf(env, unknown))).toBe(shardTables);
    expect(await tables(env.ORDER.getByName(unknown))).toBe(0);
    expect((await call("/v1/orders/not-an-id", { token: owner.token })).status).toBe(400);
    await waitForOrder(id, isFinal);
    // A confirmed order can still be cancelled (refunded in full: test/fulfilment-saga.test.ts); a shipped one not.
    const admin = await tokenFor(`admin-${crypto.randomUUID()}`, ["admin"]);
    expect((await call(`/v1/admin/orders/${id}/ship`, { method: "POST", token: admin })).status).toBe(200);
    const cancel = await call(`/v1/orders/${id}/cancel`, { method: "POST", token: owner.token });
    expect(cancel.status).toBe(409);
    expect((await viewOrder(id))?.status).toBe("shipped");

    // The stranger's list is empty; the owner's list has the order (read model, newest first).
    await expect
      .poll(async () =>
        OrderList.parse(await (await call("/v1/orders", { token: owner.token })).json()).items.map((o) => o.id),
      )
      .toEqual([id]);
    const theirs = OrderList.parse(await (await call("/v1/orders", { token: stranger.token })).json());
    expect(theirs.items).toEqual([]);
  });

  it("GET /v1/orders pages newest first with a cursor", async () => {
    await insertSku("LIST-1");
    await stock("LIST-1", 10);
    const shopper = await newShopper();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await placeOrder(shopper, await cartWith(shopper, [{ sku: "LIST-1", quantity: 1 }]));
      ids.push((await accepted(res)).id);
    }
    await Promise.all(ids.map((id) => waitForOrder(id, isFinal)));
    await expect
      .poll(
        async () =>
          (
            await env.DB.prepare("SELECT COUNT(*) AS n FROM orders_view WHERE user_id = ?")
              .bind(shopper.userId)
              .first<{ n: number }>()
          )?.n,
      )
      .toBe(3);
    const page1 = OrderList.parse(await (await call("/v1/orders?limit=2", { token: shopper.token })).json());
    expect(page1.items.map((o) => o.id)).toEqual([ids[2], ids[1]]);
    expect(page1.nextCursor).toBeTruthy();
    const page2 = OrderList.parse(
      await (await call(`/v1/orders?limit=2&cursor=${page1.nextCursor}`, { token: shopper.token })).json(),
    );
    expect(page2).toEqual({ items: [expect.objectContaining({ id: ids[0] })], nextCursor: null });
    expect((await call("/v1/orders?cursor=%%%", { token: shopper.token })).status).toBe(400);
    expect((await call("/v1/orders?limit=101", { token: shopper.token })).status).toBe(400);
  });

  it("customer cancel of a reserved order → cancelled (customer), stock released, email sent", async () => {
    await insertSku("CANCEL-1");
    await stock("CANCEL-1", 3);
    const shopper = await newShopper(undefined, `cancel-${crypto.randomUUID()}@example.test`);
    const cartId = await cartWith(shopper, [{ sku: "CANCEL-1", quantity: 3 }]);
    // The "hang" card holds the payment step (PAYMENT_TIMEOUT_MS) while the order is reserved,
    // so the cancel deterministically lands before payment.
    const { id } = await accepted(await placeOrder(shopper, cartId, CARDS.hang));
    await waitForOrder(id, (o) => o.status === "reserved");
    const res = await call(`/v1/orders/${id}/cancel`, { method: "POST", token: shopper.token });
    expect(res.status).toBe(202);
    const order = await waitForOrder(id, isFinal);
    expect(order).toMatchObject({ status: "cancelled", reason: "customer" });
    await expect.poll(async () => (await env.INVENTORY.getByName("CANCEL-1").level()).available).toBe(3);
    await expect
      .poll(
        async () => (await env.DB.prepare("SELECT kind FROM notifications WHERE order_id = ?").bind(id).all()).results,
      )
      .toEqual([{ kind: "order_cancelled" }]);
    // Cancelling again is idempotent.
    expect((await call(`/v1/orders/${id}/cancel`, { method: "POST", token: shopper.token })).status).toBe(202);
  });

  it("admin refunds: partial then the rest, idempotent per key, never more than captured", async () => {
    await insertSku("REFUND-1", { amount: 5000 });
    await stock("REFUND-1", 2);
    const shopper = await newShopper(undefined, `refund-${crypto.randomUUID()}@example.test`);
    const { id } = await accepted(
      await placeOrder(shopper, await cartWith(shopper, [{ sku: "REFUND-1", quantity: 1 }])),
    );
    await waitForOrder(id, isFinal);
    const admin = await tokenFor(`admin-${crypto.randomUUID()}`, ["admin"]);
    const refund = (amount: number | undefined, key: string) =>
      call(`/v1/admin/orders/${id}/refund`, {
        method: "POST",
        token: admin,
        headers: { "Idempotency-Key": key },
        json: amount === undefined ? {} : { amount },
      });

    expect(
      (await call(`/v1/admin/orders/${id}/refund`, { method: "POST", token: shopper.token, json: {} })).status,
    ).toBe(403);
    const partial = await refund(2000, "r1");
    expect(partial.status).toBe(202);
    const partialBody = RefundAccepted.parse(await partial.json());
    expect(partialBody.amount).toBe(2000);
    const replay = await refund(2000, "r1");
    expect(await replay.json()).toEqual(partialBody);
    expect((await refund(3000, "r1")).status).toBe(422);
    expect((await refund(3001, "r2")).status).toBe(409);
    await waitForOrder(id, (o) => o.payment.refunded === 2000);
    expect((await viewOrder(id))?.status).toBe("confirmed");

    const rest = await refund(undefined, "r3");
    expect(rest.status).toBe(202);
    expect(RefundAccepted.parse(await rest.json()).amount).toBe(3000);
    const order = await waitForOrder(id, (o) => o.status === "refunded");
    expect(order.payment).toMatchObject({ status: "refunded", refunded: 5000, captured: 5000 });
    expect(order.history.map((h) => h.status)).toEqual(["pending", "reserved", "paid", "confirmed", "refunded"]);
    expect((await refund(1, "r4")).status).toBe(409);
    const ledger = await env.DB.prepare(
      "SELECT amount FROM payment_ledger WHERE order_id = ? AND kind = 'refund' ORDER BY amount",
    )
      .bind(id)
      .all<{ amount: number }>();
    expect(ledger.results.map((r) => r.amount)).toEqual([2000, 3000]);
    await expect
      .poll(
        async () =>
          (
            await env.DB.prepare(
              "SELECT COUNT(*) AS n FROM notifications WHERE order_id = ? AND kind = 'order_refunded'",
            )
              .bind(id)
              .first<{ n: number }>()
          )?.n,
      )
      .toBe(2);
  });
});

describe("GET /v1/orders/{id}: ETag and long poll", () => {
  it("304 while unchanged; Prefer: wait answers as soon as the order changes; strangers never wait", async () => {
    await insertSku("WATCH-1");
    await stock("WATCH-1", 2);
    const shopper = await newShopper();
    const stranger = await newShopper();
    // A confirmed order waits for people (the admin's ship): nothing moves it by itself.
    const { id } = await accepted(
      await placeOrder(shopper, await cartWith(shopper, [{ sku: "WATCH-1", quantity: 1 }])),
    );
    await waitForOrder(id, (o) => o.status === "confirmed");
    const get = (headers: Record<string, string> = {}, token = shopper.token) =>
      call(`/v1/orders/${id}`, { token, headers });

    const first = await get();
    expect(first.status).toBe(200);
    const etag = first.headers.get("ETag")!;
    expect(etag).toMatch(/^"\d+-[A-Za-z0-9_-]+"$/);
    expect(((await first.json()) as { status: string }).status).toBe("confirmed");
    const unchanged = await get({ "If-None-Match": etag });
    expect(unchanged.status).toBe(304);
    expect(unchanged.headers.get("ETag")).toBe(etag);

    // Nothing changes: the long poll waits out its time (a lower bound only), then 304.
    const started = Date.now();
    const timedOut = await get({ "If-None-Match": etag, Prefer: "wait=1" });
    expect(timedOut.status).toBe(304);
    expect(timedOut.headers.get("Preference-Applied")).toBe("wait=1");
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);

    // A change wakes it: the admin ships while the poll waits (up to 20 s, so only the change ends it in time).
    const waiting = get({ "If-None-Match": etag, Prefer: "wait=20" });
    await new Promise((r) => setTimeout(r, 200));
    const admin = await tokenFor(`admin-${crypto.randomUUID()}`, ["admin"]);
    expect((await call(`/v1/admin/orders/${id}/ship`, { method: "POST", token: admin })).status).toBe(200);
    const changed = await waiting;
    expect(changed.status).toBe(200);
    expect(changed.headers.get("ETag")).not.toBe(etag);
    expect(((await changed.json()) as { status: string }).status).toBe("shipped");

    // Someone else's order is a 404 at once, whatever they send; a stale or foreign ETag answers at once.
    const strangerStarted = Date.now();
    expect((await get({ "If-None-Match": etag, Prefer: "wait=20" }, stranger.token)).status).toBe(404);
    expect(Date.now() - strangerStarted).toBeLessThan(15_000);
    const stale = await get({ "If-None-Match": etag, Prefer: "wait=999" });
    expect(stale.status).toBe(200);
    expect(stale.headers.get("Preference-Applied")).toBe("wait=20");
    expect((await get({ "If-None-Match": '"not-ours"', Prefer: "wait=20" })).status).toBe(200);
    expect((await get({ Prefer: "x".repeat(300) })).status).toBe(400);
  });

  it("?until= waits through other changes for one of the statuses asked for; an unknown status is a 400", async () => {
    await insertSku("WATCH-2");
    await stock("WATCH-2", 1);
    const shopper = await newShopper();
    const { id } = await accepted(
      await placeOrder(shopper, await cartWith(shopper, [{ sku: "WATCH-2", quantity: 1 }])),
    );
    // A checkout page waiting for the outcome: one request, answered once the saga has ended.
    const outcome = await call(`/v1/orders/${id}?until=confirmed,cancelled,needs_attention`, {
      token: shopper.token,
      headers: { Prefer: "wait=20" },
    });
    expect(outcome.status).toBe(200);
    expect(((await outcome.json()) as { status: string }).status).toBe("confirmed");
    const etag = outcome.headers.get("ETag")!;
    const get = (query: string, headers: Record<string, string>) =>
      call(`/v1/orders/${id}${query}`, { token: shopper.token, headers });

    // Already there: at once, and 304 when the client's ETag still matches (no 20 s wait).
    const started = Date.now();
    expect((await get("?until=confirmed", { Prefer: "wait=20" })).status).toBe(200);
    expect((await get("?until=confirmed", { Prefer: "wait=20", "If-None-Match": etag })).status).toBe(304);
    expect(Date.now() - started).toBeLessThan(15_000);

    // Shipping is a change but not the one asked for: the poll answers only at delivery.
    const waiting = get("?until=delivered", { Prefer: "wait=20", "If-None-Match": etag });
    let answered = false;
    void waiting.then(() => {
      answered = true;
    });
    const admin = await tokenFor(`admin-${crypto.randomUUID()}`, ["admin"]);
    expect((await call(`/v1/admin/orders/${id}/ship`, { method: "POST", token: admin })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 300));
    expect(answered).toBe(false);
    expect((await call(`/v1/admin/orders/${id}/deliver`, { method: "POST", token: admin })).status).toBe(200);
    const delivered = await waiting;
    expect(delivered.status).toBe(200);
    expect(((await delivered.json()) as { status: string }).status).toBe("delivered");

    for (const bad of ["?until=nope", "?until=confirmed,,cancelled", `?until=${"a".repeat(300)}`]) {
      const response = await get(bad, { Prefer: "wait=20" });
      expect(response.status).toBe(400);
      expect(response.headers.get("Content-Type")).toContain("application/problem+json");
    }
  });
});

describe("POST /v1/orders with Prefer: wait", () => {
  it("answers 200 with the order once the checkout has ended; a replay waits the same way", async () => {
    await insertSku("WAITPOST-1");
    await stock("WAITPOST-1", 5);
    const shopper = await newShopper();
    const key = { "Idempotency-Key": `k-${crypto.randomUUID()}` };
    const cartId = await cartWith(shopper, [{ sku: "WAITPOST-1", quantity: 1 }]);
    const response = await placeOrder(shopper, cartId, CARDS.ok, { Prefer: "wait=20", ...key });
    expect(response.status).toBe(200);
    expect(response.headers.get("Preference-Applied")).toBe("wait=20");
    const order = (await response.json()) as { id: string; status: string; totals: { total: number } };
    expect(order.status).toBe("confirmed");
    expect(response.headers.get("Location")).toBe(`/v1/orders/${order.id}`);
    // The same representation as GET /v1/orders/{id}: its ETag makes that request conditional.
    const again = await call(`/v1/orders/${order.id}`, {
      token: shopper.token,
      headers: { "If-None-Match": response.headers.get("ETag")! },
    });
    expect(again.status).toBe(304);
    expect(await env.INVENTORY.getByName("WAITPOST-1").level()).toMatchObject({ sold: 1, reserved: 0 });

    const replay = await placeOrder(shopper, cartId, CARDS.ok, { Prefer: "wait=20", ...key });
    expect(replay.status).toBe(200);
    expect(replay.headers.get("Idempotent-Replayed")).toBe("true");
    expect(((await replay.json()) as { id: string }).id).toBe(order.id);
    expect(await env.INVENTORY.getByName("WAITPOST-1").level()).toMatchObject({ sold: 1, reserved: 0 });
  });

  it("a declined card is an outcome too; a checkout still under way after N seconds answers 202", async () => {
    await insertSku("WAITPOST-2");
    await stock("WAITPOST-2", 5);
    const shopper = await newShopper();
    const declined = await placeOrder(
      shopper,
      await cartWith(shopper, [{ sku: "WAITPOST-2", quantity: 1 }]),
      CARDS.declined,
      { Prefer: "wait=20" },
    );
    expect(declined.status).toBe(200);
    expect(((await declined.json()) as { status: string }).status).toBe("cancelled");

    // The provider fails twice (503) before it charges: the redeliveries wait 1 s and then 2 s, so the
    // order is still being charged when the second is up.
    const started = Date.now();
    const hanging = await placeOrder(
      shopper,
      await cartWith(shopper, [{ sku: "WAITPOST-2", quantity: 1 }]),
      CARDS.transient,
      {
        Prefer: "wait=1",
      },
    );
    expect(hanging.status).toBe(202);
    expect(hanging.headers.get("Preference-Applied")).toBe("wait=1");
    const body = await accepted(hanging);
    expect(["pending", "reserved"]).toContain(body.status);
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(hanging.headers.get("Location")).toBe(`/v1/orders/${body.id}`);
    expect((await waitForOrder(body.id, isFinal)).status).toBe("confirmed");

    const tooLong = await placeOrder(shopper, await cartWith(shopper, [{ sku: "WAITPOST-2", quantity: 1 }]), CARDS.ok, {
      Prefer: "x".repeat(300),
    });
    expect(tooLong.status).toBe(400);
    expect(tooLong.headers.get("Content-Type")).toContain("application/problem+json");
  });
});

describe("POST /v1/orders with Prefer: wait, when the outcome cannot be asked", () => {
  it("answers the 202 it would without the preference: the order is placed and carries on", async () => {
    await insertSku("WAITPOST-3");
    await stock("WAITPOST-3", 2);
    const shopper = await newShopper();
    const key = `k-${crypto.randomUUID()}`;
    // With a key the order id is derived from it (the route's rule).
    const orderId = await newOrderId(shopper.userId, key);
    // Every shard's `watch` fails while the checkout runs (as when its object is being reset).
    const watch = OrderObject.prototype.watch;
    OrderObject.prototype.watch = () => Promise.reject(new Error("Durable Object reset"));
    try {
      const response = await placeOrder(
        shopper,
        await cartWith(shopper, [{ sku: "WAITPOST-3", quantity: 1 }]),
        CARDS.ok,
        { Prefer: "wait=20", "Idempotency-Key": key },
      );
      expect(response.status).toBe(202);
      expect(await accepted(response)).toMatchObject({ id: orderId });
    } finally {
      OrderObject.prototype.watch = watch;
    }
    expect((await waitForOrder(orderId, isFinal)).status).toBe("confirmed");
  });
});

describe("OpenAPI", () => {
  it("documents the order routes", async () => {
    const doc = (await (await call("/v1/openapi.json")).json()) as { paths: Record<string, Record<string, unknown>> };
    expect(Object.keys(doc.paths["/v1/orders"] ?? {}).sort()).toEqual(["get", "post"]);
    expect(doc.paths["/v1/orders/{id}"]?.get).toBeTruthy();
    expect(doc.paths["/v1/orders/{id}/cancel"]?.post).toBeTruthy();
    expect(doc.paths["/v1/admin/orders/{id}/refund"]?.post).toBeTruthy();
  });
});
