import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { Cart } from "../contracts/cart";
import { forgetQuoteTables, quoteCheckout } from "../domain/fulfilment/pricing";
import { CART_IDLE_TTL_MS, type CartObject } from "../durable-objects/cart";
import { insertSku, stock } from "./commerce-fixtures";
import { call, expectProblem, tokenFor } from "./helpers";
import { ensureTestShipping } from "./order-fixtures";

let alice: string;
let bob: string;

beforeAll(async () => {
  [alice, bob] = await Promise.all([tokenFor("user-alice"), tokenFor("user-bob")]);
  await Promise.all([
    insertSku("MUG-01", { amount: 1250, name: "Mug" }),
    insertSku("TEE-01", { amount: 2000, name: "Tee" }),
    insertSku("EUR-01", { amount: 900, currency: "EUR" }),
    insertSku("DRAFT-01", { status: "draft" }),
  ]);
  await Promise.all([stock("MUG-01", 10), stock("TEE-01", 3), stock("EUR-01", 5), stock("DRAFT-01", 5)]);
});

afterEach(() => {
  vi.useRealTimers();
});

async function newCart(token = alice): Promise<Cart> {
  const res = await call("/v1/carts", { method: "POST", token });
  expect(res.status).toBe(201);
  return Cart.parse(await res.json());
}

const add = (id: string, json: unknown, token = alice) =>
  call(`/v1/carts/${id}/items`, { method: "POST", token, json });

describe("carts", () => {
  it("creates an empty cart owned by the caller", async () => {
    const cart = await newCart();
    expect(cart).toMatchObject({ items: [], total: { amount: 0, currency: "USD" }, status: "open" });
    expect(cart.id).toMatch(/^c_[A-Za-z0-9_-]{22}$/);
    const got = await call(`/v1/carts/${cart.id}`, { token: alice });
    expect(got.status).toBe(200);
    expect(await got.json()).toEqual(cart);
    await expectProblem(await call("/v1/carts", { method: "POST" }), 401);
  });

  it("adds, merges, updates and removes lines with the catalog price snapshotted", async () => {
    const { id } = await newCart();
    let res = await add(id, { sku: "MUG-01", quantity: 2 });
    expect(res.status).toBe(200);
    let cart = Cart.parse(await res.json());
    expect(cart.items).toEqual([
      {
        sku: "MUG-01",
        productId: "p-MUG-01",
        name: "Mug",
        quantity: 2,
        unitPrice: { amount: 1250, currency: "USD" },
        lineTotal: { amount: 2500, currency: "USD" },
        // No weight in the catalog attributes: the default parcel weight of a physical SKU.
        weightGrams: 500,
      },
    ]);

    // A later catalog price change does not touch the line already in the cart.
    await env.DB.prepare("UPDATE product_variants SET price_amount = 9999 WHERE sku = 'MUG-01'").run();
    cart = Cart.parse(await (await add(id, { sku: "MUG-01", quantity: 1 })).json());
    await env.DB.prepare("UPDATE product_variants SET price_amount = 1250 WHERE sku = 'MUG-01'").run();
    expect(cart.items[0]).toMatchObject({ quantity: 3, unitPrice: { amount: 1250 }, lineTotal: { amount: 3750 } });

    cart = Cart.parse(await (await add(id, { sku: "TEE-01", quantity: 1 })).json());
    expect(cart.total).toEqual({ amount: 3750 + 2000, currency: "USD" });

    res = await call(`/v1/carts/${id}/items/MUG-01`, { method: "PATCH", token: alice, json: { quantity: 5 } });
    expect(res.status).toBe(200);
    cart = Cart.parse(await res.json());
    expect(cart.items.map((l) => [l.sku, l.quantity])).toEqual([
      ["MUG-01", 5],
      ["TEE-01", 1],
    ]);
    expect(cart.total.amount).toBe(5 * 1250 + 2000);

    res = await call(`/v1/carts/${id}/items/MUG-01`, { method: "DELETE", token: alice });
    expect(res.status).toBe(200);
    cart = Cart.parse(await res.json());
    expect(cart.items.map((l) => l.sku)).toEqual(["TEE-01"]);

    res = await call(`/v1/carts/${id}/items/TEE-01`, { method: "PATCH", token: alice, json: { quantity: 0 } });
    expect(Cart.parse(await res.json()).items).toEqual([]);
    await expectProblem(await call(`/v1/carts/${id}/items/TEE-01`, { method: "DELETE", token: alice }), 404);
    await expectProblem(
      await call(`/v1/carts/${id}/items/TEE-01`, { method: "PATCH", token: alice, json: { quantity: 1 } }),
      404,
    );
  });

  it("answers 409 when more units are asked for than are available, changing nothing", async () => {
    const { id } = await newCart();
    await add(id, { sku: "TEE-01", quantity: 2 });
    const body = await expectProblem(await add(id, { sku: "TEE-01", quantity: 2 }), 409);
    expect(body.type).toMatch(/insufficient-stock$/);
    await expectProblem(
      await call(`/v1/carts/${id}/items/TEE-01`, { method: "PATCH", token: alice, json: { quantity: 4 } }),
      409,
    );
    const cart = Cart.parse(await (await call(`/v1/carts/${id}`, { token: alice })).json());
    expect(cart.items.map((l) => l.quantity)).toEqual([2]);

    // Reserved units are not available to carts either.
    await env.INVENTORY.getByName("TEE-01").reserve({ orderId: "someone-else", quantity: 2 });
    await expectProblem(await add(id, { sku: "TEE-01", quantity: 1 }), 409);
    await env.INVENTORY.getByName("TEE-01").release("someone-else");
    expect((await add(id, { sku: "TEE-01", quantity: 1 })).status).toBe(200);
  });

  it("hides a cart from everyone but its owner (404), for reads and writes", async () => {
    const cart = await newCart(alice);
    await add(cart.id, { sku: "MUG-01", quantity: 1 });
    await expectProblem(await call(`/v1/carts/${cart.id}`, { token: bob }), 404);
    await expectProblem(await add(cart.id, { sku: "MUG-01", quantity: 1 }, bob), 404);
    await expectProblem(
      await call(`/v1/carts/${cart.id}/items/MUG-01`, { method: "PATCH", token: bob, json: { quantity: 3 } }),
      404,
    );
    await expectProblem(await call(`/v1/carts/${cart.id}/items/MUG-01`, { method: "DELETE", token: bob }), 404);
    await expectProblem(await call(`/v1/carts/${cart.id}`), 401);
    expect(await env.CART.getByName(cart.id).view("user-bob")).toBeNull();
    const mine = Cart.parse(await (await call(`/v1/carts/${cart.id}`, { token: alice })).json());
    expect(mine.items.map((l) => [l.sku, l.quantity])).toEqual([["MUG-01", 1]]);
    // A well-formed id nobody created is just as unknown, and guessing ids creates no storage.
    await expectProblem(await call("/v1/carts/c_AAAAAAAAAAAAAAAAAAAAAA", { token: alice }), 404);
    await expectProblem(await add("c_AAAAAAAAAAAAAAAAAAAAAA", { sku: "MUG-01", quantity: 1 }), 404);
    const tables = await runInDurableObject(env.CART.getByName("c_AAAAAAAAAAAAAAAAAAAAAA"), (_i, state) =>
      state.storage.sql.exec("SELECT name FROM sqlite_master WHERE type = 'table'").toArray(),
    );
    expect(tables).toEqual([]);
  });

  it("rejects bad input with 400 problem+json and changes nothing", async () => {
    const { id } = await newCart();
    await add(id, { sku: "MUG-01", quantity: 1 });
    for (const json of [
      { sku: "MUG-01", quantity: 0 },
      { sku: "MUG-01", quantity: 100 },
      { sku: "MUG-01", quantity: 1.5 },
      { sku: "MUG-01", quantity: "2" },
      { sku: "bad sku!", quantity: 1 },
      { sku: "MUG-01" },
      { sku: "MUG-01", quantity: 1, price: 1 },
    ]) {
      const body = await expectProblem(await add(id, json), 400);
      expect(body.errors?.length).toBeGreaterThan(0);
    }
    await expectProblem(
      await call(`/v1/carts/${id}/items/MUG-01`, { method: "PATCH", token: alice, json: { quantity: -1 } }),
      400,
    );
    await expectProblem(await call("/v1/carts/not-a-cart-id", { token: alice }), 400);
    const notJson = await call(`/v1/carts/${id}/items`, {
      method: "POST",
      token: alice,
      body: "sku=MUG-01",
      headers: { "Content-Type": "text/plain" },
    });
    expect(notJson.status).toBe(415);
    // Unknown and unpublished SKUs are 404s.
    await expectProblem(await add(id, { sku: "NOPE-404", quantity: 1 }), 404);
    await expectProblem(await add(id, { sku: "DRAFT-01", quantity: 1 }), 404);
    const cart = Cart.parse(await (await call(`/v1/carts/${id}`, { token: alice })).json());
    expect(cart.items.map((l) => [l.sku, l.quantity])).toEqual([["MUG-01", 1]]);
  });

  it("enforces the per-line quantity limit and a single currency per cart", async () => {
    await insertSku("BULK-01", { amount: 1 });
    await stock("BULK-01", 500);
    const { id } = await newCart();
    expect((await add(id, { sku: "BULK-01", quantity: 60 })).status).toBe(200);
    const limit = await expectProblem(await add(id, { sku: "BULK-01", quantity: 40 }), 409);
    expect(limit.type).toMatch(/cart-quantity-limit$/);
    const currency = await expectProblem(await add(id, { sku: "EUR-01", quantity: 1 }), 409);
    expect(currency.type).toMatch(/cart-currency-mismatch$/);
  });

  it("checks out once per order id (view/checkout RPC) and then refuses changes", async () => {
    const { id } = await newCart();
    const stub = env.CART.getByName(id);
    expect(await stub.checkout("user-alice", "order-1")).toEqual({ ok: false, reason: "empty" });
    await add(id, { sku: "MUG-01", quantity: 2 });
    expect(await stub.checkout("user-bob", "order-1")).toEqual({ ok: false, reason: "not_found" });

    const first = await stub.checkout("user-alice", "order-1");
    expect(first.ok).toBe(true);
    if (!first.ok) return;
    expect(first.cart).toMatchObject({ status: "checked_out", orderId: "order-1", total: { amount: 2500 } });
    expect(await stub.checkout("user-alice", "order-1")).toEqual(first);
    expect(await stub.checkout("user-alice", "order-2")).toEqual({
      ok: false,
      reason: "checked_out",
      orderId: "order-1",
    });
    expect(await stub.view("user-alice")).toEqual(first.cart);

    const body = await expectProblem(await add(id, { sku: "MUG-01", quantity: 1 }), 409);
    expect(body.type).toMatch(/cart-checked-out$/);
    await expectProblem(await call(`/v1/carts/${id}/items/MUG-01`, { method: "DELETE", token: alice }), 409);
    expect((await stub.view("user-alice"))?.items[0]?.quantity).toBe(2);
  });

  it("checkoutQuoted quotes the cart for its destination and freezes it in one call; a refused quote freezes nothing", async () => {
    const shippingOptionId = await ensureTestShipping();
    const { id } = await newCart();
    await add(id, { sku: "MUG-01", quantity: 2 });
    const stub = env.CART.getByName(id);
    const open = await stub.view("user-alice");
    // A country no shipping zone covers: the refusal comes back as data, with the field at fault.
    const refused = await stub.checkoutQuoted("user-alice", "order-q1", { country: "AQ", shippingOptionId });
    expect(refused).toMatchObject({ ok: false, reason: "unquotable", refusal: { code: "invalid" } });
    if (refused.ok || refused.reason !== "unquotable") return;
    expect(refused.refusal.fields?.[0]?.path).toBe("shippingOptionId");
    expect(await stub.view("user-alice")).toEqual(open);

    const destination = { country: "US", shippingOptionId };
    const quoted = await stub.checkoutQuoted("user-alice", "order-q1", destination);
    expect(quoted.ok).toBe(true);
    if (!quoted.ok) return;
    expect(quoted.cart).toMatchObject({ status: "checked_out", orderId: "order-q1" });
    expect(quoted.quote).toEqual(await quoteCheckout(env, { cart: quoted.cart, ...destination }));
    // Idempotent like checkout: the same order id again answers the same; another is refused.
    expect(await stub.checkoutQuoted("user-alice", "order-q1", destination)).toEqual(quoted);
    expect(await stub.checkoutQuoted("user-alice", "order-q2", destination)).toEqual({
      ok: false,
      reason: "checked_out",
      orderId: "order-q1",
    });
    expect(await stub.checkoutQuoted("user-bob", "order-q1", destination)).toEqual({ ok: false, reason: "not_found" });
  });

  it("checkoutQuoted answers a busy D1 as a retryable refusal, not an error that would reach the client as a 500", async () => {
    const { id } = await newCart();
    await add(id, { sku: "MUG-01", quantity: 1 });
    const stub = env.CART.getByName(id);
    const refused = await runInDurableObject(stub, async (instance: CartObject) => {
      // What D1 throws when its database is locked, on the quote's read (no copy of the tables yet).
      forgetQuoteTables();
      const busy = {
        ...env.DB,
        prepare: (query: string) => env.DB.prepare(query),
        batch: () => Promise.reject(new Error("D1_ERROR: database is locked: SQLITE_BUSY")),
      } as unknown as D1Database;
      const real = (instance as unknown as { env: Env }).env;
      Object.assign(instance, { env: { ...real, DB: busy } });
      try {
        return await instance.checkoutQuoted("user-alice", "order-busy", { country: "US", shippingOptionId: "x" });
      } finally {
        Object.assign(instance, { env: real });
      }
    });
    expect(refused).toEqual({
      ok: false,
      reason: "unquotable",
      refusal: { code: "unavailable", kind: "store-unavailable", message: "The data store is busy; retry shortly" },
    });
    expect((await stub.view("user-alice"))?.status).toBe("open");
  });

  it("deletes a sent event's row with the cart's next event, not in a write of its own", async () => {
    const { id } = await newCart();
    const stub = env.CART.getByName(id);
    const outbox = () =>
      runInDurableObject(stub, (_instance, state) =>
        state.storage.sql
          .exec<{ type: string; event_id: string }>("SELECT type, event_id FROM outbox ORDER BY seq")
          .toArray(),
      );
    // cart.created went to the queue; its row stays until the next event's transaction removes it.
    const [created] = await outbox();
    expect(created?.type).toBe("cart.created");
    await add(id, { sku: "MUG-01", quantity: 1 });
    expect(await outbox()).toEqual([created]);
    expect((await stub.checkout("user-alice", `ord_${crypto.randomUUID()}`)).ok).toBe(true);
    const [checkedOut, ...rest] = await outbox();
    expect(checkedOut?.type).toBe("cart.checked_out");
    expect(rest).toEqual([]);
    // Both reached the funnel, each counted once (the rollup claims each event id).
    const claimed = () =>
      env.DB.prepare("SELECT type FROM analytics_events WHERE event_id IN (?, ?) ORDER BY type")
        .bind(created!.event_id, checkedOut!.event_id)
        .all<{ type: string }>();
    await expect
      .poll(async () => (await claimed()).results.map((r) => r.type))
      .toEqual(["cart.checked_out", "cart.created"]);
  });

  it("writes its alarm once, not on every change (each alarm write is a durable write of its own)", async () => {
    const { id } = await newCart();
    const stub = env.CART.getByName(id);
    const alarm = () => runInDurableObject(stub, (_instance, state) => state.storage.getAlarm());
    const armed = await alarm();
    expect(armed).not.toBeNull();
    await new Promise((r) => setTimeout(r, 5)); // a later change would move a rewritten alarm
    expect((await add(id, { sku: "MUG-01", quantity: 1 })).status).toBe(200);
    expect((await stub.checkout("user-alice", `ord_${crypto.randomUUID()}`)).ok).toBe(true);
    expect(await alarm()).toBe(armed);
  });

  it("expires an abandoned cart by alarm (then 404), but not one still in use", async () => {
    const { id } = await newCart();
    await add(id, { sku: "MUG-01", quantity: 1 });
    const stub = env.CART.getByName(id);

    // Not idle long enough: the alarm re-arms and the cart stays.
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + CART_IDLE_TTL_MS / 2 });
    await runDurableObjectAlarm(stub);
    // Days later the old access token has expired: sign a fresh one at the faked time.
    let token = await tokenFor("user-alice");
    expect((await call(`/v1/carts/${id}`, { token })).status).toBe(200);

    vi.setSystemTime(Date.now() + CART_IDLE_TTL_MS);
    token = await tokenFor("user-alice");
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    await expectProblem(await call(`/v1/carts/${id}`, { token }), 404);
    await expectProblem(await add(id, { sku: "MUG-01", quantity: 1 }, token), 404);
    expect(await stub.view("user-alice")).toBeNull();
  });
});
