import { env } from "cloudflare:workers";
import { expect } from "vitest";
import { Cart } from "../contracts/cart";
import { ShippingOptionList, ShippingRate, ShippingZone } from "../contracts/fulfilment";
import { Promotion, type PromotionInput } from "../contracts/promotion";
import { call, tokenFor } from "./helpers";
import { CARDS, SHIPPING, type Shopper } from "./order-fixtures";

/** An admin's token (synthetic user: admin routes need no users row). */
export const adminToken = () => tokenFor(`admin-${crypto.randomUUID()}`, ["admin"]);

/** POST as admin, asserting `status`; returns the parsed JSON body. */
export async function adminPost<T>(token: string, path: string, json: unknown, status = 201): Promise<T> {
  const res = await call(path, { method: "POST", token, json });
  expect(res.status, await res.clone().text()).toBe(status);
  return res.json<T>();
}

/**
 * A zone for `countries` with two carriers' services through the admin API: a flat `Standard`
 * (500, free from 10,000) and a weight-based `Express` (900 + 250 per started kg). Returns their ids.
 */
export async function shippingSetup(countries: string[], currency = "USD") {
  const token = await adminToken();
  const zone = ShippingZone.parse(
    await adminPost(token, "/v1/admin/shipping/zones", { name: `Zone ${countries.join("+")}`, countries }),
  );
  const rate = async (body: Record<string, unknown>) =>
    ShippingRate.parse(
      await adminPost(token, "/v1/admin/shipping/rates", { zoneId: zone.id, currency, estimatedDays: 3, ...body }),
    );
  const standard = await rate({
    carrier: "PostNord",
    service: "Standard",
    kind: "flat",
    amount: 500,
    freeAbove: 10_000,
  });
  const express = await rate({
    carrier: "DHL",
    service: "Express",
    kind: "weight",
    amount: 900,
    perKg: 250,
    estimatedDays: 1,
  });
  return { zone, standard, express, token };
}

/** Sets a country's tax rule through the admin API. */
export async function setTax(country: string, rateBps: number, shippingTaxable: boolean): Promise<void> {
  const res = await call(`/v1/admin/tax-rates/${country}`, {
    method: "PUT",
    token: await adminToken(),
    json: { rateBps, shippingTaxable },
  });
  expect(res.status, await res.clone().text()).toBe(200);
}

/** Creates a promotion code through the admin API (a unique code unless `code` is given). */
export async function createPromotion(input: Partial<PromotionInput> & Pick<PromotionInput, "kind">) {
  const code = input.code ?? `T${crypto.randomUUID().replaceAll("-", "").slice(0, 12).toUpperCase()}`;
  return Promotion.parse(await adminPost(await adminToken(), "/v1/admin/promotions", { ...input, code }));
}

/** POST /v1/carts/{id}/promotion. */
export function applyCode(shopper: Shopper, cartId: string, code: string): Promise<Response> {
  return call(`/v1/carts/${cartId}/promotion`, { method: "POST", token: shopper.token, json: { code } });
}

/** Applies a code that must apply; returns the cart. */
export async function withCode(shopper: Shopper, cartId: string, code: string): Promise<Cart> {
  const res = await applyCode(shopper, cartId, code);
  expect(res.status, await res.clone().text()).toBe(200);
  return Cart.parse(await res.json());
}

/** GET /v1/carts/{id}/shipping-options?country=. */
export async function shippingOptions(shopper: Shopper, cartId: string, country: string) {
  const res = await call(`/v1/carts/${cartId}/shipping-options?country=${country}`, { token: shopper.token });
  expect(res.status, await res.clone().text()).toBe(200);
  return ShippingOptionList.parse(await res.json()).items;
}

/** POST /v1/orders with a chosen shipping option and address. */
export function checkout(
  shopper: Shopper,
  cartId: string,
  shippingOptionId: string | undefined,
  address: Record<string, string> = SHIPPING,
  card: string = CARDS.ok,
): Promise<Response> {
  return call("/v1/orders", {
    method: "POST",
    token: shopper.token,
    json: {
      cartId,
      payment: { method: "card", cardNumber: card },
      shippingAddress: address,
      ...(shippingOptionId ? { shippingOptionId } : {}),
    },
  });
}

/** Money the ledger shows as still held for an order: captures minus refunds. */
export async function ledgerHeld(orderId: string): Promise<number> {
  const row = await env.DB.prepare(
    `SELECT COALESCE(SUM(CASE kind WHEN 'capture' THEN amount WHEN 'refund' THEN -amount ELSE 0 END), 0) AS held
     FROM payment_ledger WHERE order_id = ?`,
  )
    .bind(orderId)
    .first<{ held: number }>();
  return row?.held ?? 0;
}

/** The notification kinds recorded for an order, oldest first. */
export async function emailKinds(orderId: string): Promise<string[]> {
  const { results } = await env.DB.prepare("SELECT kind FROM notifications WHERE order_id = ? ORDER BY created_at")
    .bind(orderId)
    .all<{ kind: string }>();
  return results.map((r) => r.kind);
}
