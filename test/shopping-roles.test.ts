import { describe, expect, it } from "vitest";
import { Cart } from "../contracts/cart";
import { call, collectorToken, expectProblem, tokenFor } from "./helpers";

// Issue 9, finding 5: a service token (or an admin's) is not a shopper. Carts and orders answer
// 403 to anything but the `customer` role, before any cart or order is touched.
describe("carts and orders are for customers only", () => {
  it("refuses admin, service and collector tokens with 403 on every cart and order route", async () => {
    const customer = await tokenFor("shopper-1");
    const created = await call("/v1/carts", { method: "POST", token: customer });
    expect(created.status).toBe(201);
    const cart = Cart.parse(await created.json());

    const outsiders = {
      admin: await tokenFor("ops-1", ["admin"]),
      service: await tokenFor("svc-2", ["service"]),
      collector: await collectorToken(),
    };
    for (const [who, token] of Object.entries(outsiders)) {
      const attempts: [string, RequestInit & { json?: unknown }][] = [
        ["/v1/carts", { method: "POST" }],
        [`/v1/carts/${cart.id}`, {}],
        [`/v1/carts/${cart.id}/items`, { method: "POST", json: { sku: "ANY-1", quantity: 1 } }],
        [`/v1/carts/${cart.id}/items/ANY-1`, { method: "PATCH", json: { quantity: 2 } }],
        [`/v1/carts/${cart.id}/items/ANY-1`, { method: "DELETE" }],
        ["/v1/orders", { method: "POST", json: { cartId: cart.id, payment: { method: "card", token: "tok_visa" } } }],
        ["/v1/orders", {}],
        ["/v1/orders/o_0000000000000000000000", {}],
        ["/v1/orders/o_0000000000000000000000/cancel", { method: "POST" }],
      ];
      for (const [path, init] of attempts) {
        await expectProblem(await call(path, { ...init, token }), 403, `${who} ${init.method ?? "GET"} ${path}`);
      }
    }
    // Nothing changed, and the owner still shops as before.
    const after = await call(`/v1/carts/${cart.id}`, { token: customer });
    expect(after.status).toBe(200);
    expect(Cart.parse(await after.json())).toMatchObject({ items: [], status: "open" });
    expect((await call("/v1/orders", { token: customer })).status).toBe(200);
  });

  it("lets an account holding both admin and customer roles shop", async () => {
    const both = await tokenFor("ops-shopper", ["admin", "customer"]);
    expect((await call("/v1/carts", { method: "POST", token: both })).status).toBe(201);
  });
});
