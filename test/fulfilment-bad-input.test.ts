import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { Cart } from "../contracts/cart";
import { insertSku, stock } from "./commerce-fixtures";
import { adminToken, checkout, createPromotion, shippingSetup, withCode } from "./fulfilment-fixtures";
import { call, expectProblem, tokenFor } from "./helpers";
import { cartWith, newShopper } from "./order-fixtures";

/** Everything the admin routes write, as one comparable string. */
async function fulfilmentTables(): Promise<string> {
  const tables = ["shipping_zones", "shipping_zone_countries", "shipping_rates", "tax_rates"];
  const rows = await env.DB.batch(tables.map((t) => env.DB.prepare(`SELECT * FROM ${t} ORDER BY 1, 2`)));
  return JSON.stringify(rows.map((r) => r.results));
}

describe("fulfilment bad input: 4xx problem+json, nothing changed", () => {
  it("admin bodies with negative, absurd or inconsistent values", async () => {
    const { zone, standard } = await shippingSetup(["PT"]);
    const existing = await createPromotion({ kind: "percent", value: 10 });
    const token = await adminToken();
    const before = await fulfilmentTables();
    const promotionBefore = await (await call(`/v1/admin/promotions/${existing.code}`, { token })).text();

    const rate = { zoneId: zone.id, carrier: "DHL", service: "Eco", currency: "USD", kind: "flat", estimatedDays: 2 };
    const cases: [string, string, unknown, number][] = [
      ["POST", "/v1/admin/shipping/zones", { name: "", countries: ["PT"] }, 400],
      ["POST", "/v1/admin/shipping/zones", { name: "EU", countries: [] }, 400],
      ["POST", "/v1/admin/shipping/zones", { name: "EU", countries: ["Portugal"] }, 400],
      ["POST", "/v1/admin/shipping/zones", { name: "EU", countries: ["PT"], vat: true }, 400],
      ["POST", "/v1/admin/shipping/rates", { ...rate, amount: -1 }, 400],
      ["POST", "/v1/admin/shipping/rates", { ...rate, amount: 1e15 }, 400],
      ["POST", "/v1/admin/shipping/rates", { ...rate, amount: 1.5 }, 400],
      ["POST", "/v1/admin/shipping/rates", { ...rate, amount: 100, estimatedDays: 0 }, 400],
      ["POST", "/v1/admin/shipping/rates", { ...rate, amount: 100, currency: "usd" }, 400],
      ["POST", "/v1/admin/shipping/rates", { ...rate, amount: 100, kind: "weight" }, 400],
      ["POST", "/v1/admin/shipping/rates", { ...rate, amount: 100, perKg: 50 }, 400],
      ["POST", "/v1/admin/shipping/rates", { ...rate, amount: 100, zoneId: "zone_nope" }, 400],
      ["PATCH", `/v1/admin/shipping/rates/${standard.id}`, { amount: -5 }, 400],
      ["PATCH", `/v1/admin/shipping/rates/${standard.id}`, { perKg: 10 }, 400],
      ["PATCH", "/v1/admin/shipping/rates/ship_0000000000000bad", { amount: 5 }, 404],
      ["PUT", "/v1/admin/tax-rates/PT", { rateBps: -1, shippingTaxable: true }, 400],
      ["PUT", "/v1/admin/tax-rates/PT", { rateBps: 99_999, shippingTaxable: true }, 400],
      ["PUT", "/v1/admin/tax-rates/PT", { rateBps: 2300 }, 400],
      ["PUT", "/v1/admin/tax-rates/Portugal", { rateBps: 2300, shippingTaxable: true }, 400],
      ["POST", "/v1/admin/promotions", { code: "BAD-1", kind: "percent", value: 150 }, 400],
      ["POST", "/v1/admin/promotions", { code: "BAD-2", kind: "percent" }, 400],
      ["POST", "/v1/admin/promotions", { code: "BAD-3", kind: "fixed", value: 500 }, 400],
      ["POST", "/v1/admin/promotions", { code: "BAD-4", kind: "fixed", value: -500, currency: "USD" }, 400],
      ["POST", "/v1/admin/promotions", { code: "BAD-5", kind: "free_shipping", value: 10 }, 400],
      ["POST", "/v1/admin/promotions", { code: "BAD-6", kind: "percent", value: 5, maxRedemptions: -1 }, 400],
      ["POST", "/v1/admin/promotions", { code: "BAD-7", kind: "percent", value: 5, perCustomerLimit: 1.5 }, 400],
      [
        "POST",
        "/v1/admin/promotions",
        { code: "BAD-8", kind: "percent", value: 5, startsAt: "2030-01-02T00:00:00Z", endsAt: "2030-01-01T00:00:00Z" },
        400,
      ],
      ["POST", "/v1/admin/promotions", { code: "has space", kind: "percent", value: 5 }, 400],
      ["POST", "/v1/admin/promotions", { code: existing.code, kind: "percent", value: 50 }, 409],
      ["PATCH", `/v1/admin/promotions/${existing.code}`, { maxRedemptions: 0 }, 400],
      ["PATCH", `/v1/admin/promotions/${existing.code}`, { endsAt: "tomorrow" }, 400],
      ["PATCH", "/v1/admin/promotions/NO-SUCH", { active: false }, 404],
    ];
    for (const [method, path, json, status] of cases) {
      await expectProblem(
        await call(path, { method, token, json }),
        status,
        `${method} ${path} ${JSON.stringify(json)}`,
      );
    }
    // A customer gets 403 whatever the body.
    const customer = await tokenFor(`u-${crypto.randomUUID()}`);
    await expectProblem(
      await call("/v1/admin/tax-rates/PT", {
        method: "PUT",
        token: customer,
        json: { rateBps: 0, shippingTaxable: false },
      }),
      403,
    );
    expect(await fulfilmentTables()).toBe(before);
    expect(await (await call(`/v1/admin/promotions/${existing.code}`, { token })).text()).toBe(promotionBefore);
    // No object was left behind for codes that were refused.
    expect(await env.PROMOTION.getByName("BAD-1").view()).toBeNull();
  });

  it("checkout with a missing, unknown or foreign shipping option is a 400 that leaves cart, stock and code alone", async () => {
    await insertSku("BAD-SHIP", { amount: 1000 });
    await stock("BAD-SHIP", 5);
    const { standard } = await shippingSetup(["PT"]);
    const promo = await createPromotion({ kind: "percent", value: 10, maxRedemptions: 5 });
    const shopper = await newShopper();
    const cartId = await cartWith(shopper, [{ sku: "BAD-SHIP", quantity: 2 }]);
    await withCode(shopper, cartId, promo.code);
    const cartBefore = await (await call(`/v1/carts/${cartId}`, { token: shopper.token })).text();
    const lisbon = { name: "A", line1: "R 1", city: "Lisboa", postalCode: "1100", country: "PT" };

    const attempts: [string | undefined, Record<string, string>][] = [
      [undefined, lisbon],
      ["ship_00000000000000aa", lisbon],
      // The option exists but its zone does not ship to Japan.
      [standard.id, { ...lisbon, country: "JP" }],
    ];
    for (const [optionId, address] of attempts) {
      const problem = await expectProblem(await checkout(shopper, cartId, optionId, address), 400);
      expect(problem.errors?.[0]?.path).toBe("shippingOptionId");
    }
    expect(await (await call(`/v1/carts/${cartId}`, { token: shopper.token })).text()).toBe(cartBefore);
    expect(Cart.parse(JSON.parse(cartBefore)).status).toBe("open");
    expect(await env.INVENTORY.getByName("BAD-SHIP").level()).toMatchObject({ reserved: 0, sold: 0, available: 5 });
    expect((await env.PROMOTION.getByName(promo.code).view())?.redemptions).toBe(0);
    const { n } = (await env.DB.prepare("SELECT count(*) AS n FROM orders_view WHERE user_id = ?")
      .bind(shopper.userId)
      .first<{ n: number }>())!;
    expect(n).toBe(0);

    await expectProblem(
      await call(`/v1/carts/${cartId}/shipping-options?country=Portugal`, { token: shopper.token }),
      400,
    );
    await expectProblem(await call(`/v1/carts/${cartId}/shipping-options`, { token: shopper.token }), 400);
    await expectProblem(
      await call(`/v1/carts/${cartId}/promotion`, { method: "POST", token: shopper.token, json: { code: "" } }),
      400,
    );
    // Someone else's cart is not there at all.
    const other = await newShopper();
    await expectProblem(await call(`/v1/carts/${cartId}/shipping-options?country=PT`, { token: other.token }), 404);
    await expectProblem(
      await call(`/v1/carts/${cartId}/promotion`, { method: "POST", token: other.token, json: { code: promo.code } }),
      404,
    );
  });
});
