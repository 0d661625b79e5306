import { createRoute, z } from "@hono/zod-openapi";
import { Cart, MAX_LINE_QUANTITY } from "../../contracts/cart";
import { CountryCode, ShippingOptionList } from "../../contracts/fulfilment";
import { SkuCode } from "../../contracts/inventory-events";
import { ApplyPromotion } from "../../contracts/promotion";
import { randomBase64Url } from "../../domain/encoding";
import { DomainError } from "../../domain/errors";
import { parcelWeight } from "../../domain/fulfilment/pricing";
import { shippingOptionsFor } from "../../domain/fulfilment/shipping";
import { refusalText } from "../../domain/promotions/rules";
import type { CartMutation } from "../../durable-objects/cart";
import { authOf, requireAuth, requireRole } from "../middleware/auth";
import { userWriteRateLimit } from "../middleware/rate-limit";
import { bearerSecurity, createRouter, problemResponses } from "../openapi";
import { conflict, notFound, ProblemError } from "../problem";

/** Cart ids are opaque: `c_` plus 22 base64url characters (128 random bits). */
export const CartId = z
  .string()
  .regex(/^c_[A-Za-z0-9_-]{22}$/, "not a cart id")
  .openapi({ example: "c_3q2-7wEjRzK8b1x9mYpQvA" });

/** A new random cart id. */
export function newCartId(): string {
  return `c_${randomBase64Url(16)}`;
}

const CartSchema = Cart.openapi("Cart");
const Quantity = z.number().int().min(1).max(MAX_LINE_QUANTITY);
const AddItem = z.object({ sku: SkuCode, quantity: Quantity }).strict().openapi("CartAddItem");
const SetQuantity = z
  .object({ quantity: z.number().int().min(0).max(MAX_LINE_QUANTITY) })
  .strict()
  .openapi("CartSetQuantity");
const CartParams = z.object({ id: CartId });
const ShippingOptionListSchema = ShippingOptionList.openapi("ShippingOptionList");
const ApplyPromotionSchema = ApplyPromotion.openapi("ApplyPromotion");
const LineParams = z.object({ id: CartId, sku: SkuCode });

const cartResponse = (description: string) => ({
  description,
  content: { "application/json": { schema: CartSchema } },
});

/** Turns a refused cart mutation into the matching problem+json; returns the cart otherwise. */
function unwrap(result: CartMutation): Cart {
  if (result.ok) return result.cart;
  switch (result.error) {
    case "not_found":
      throw notFound("No such cart");
    case "unknown_sku":
      throw notFound("No such SKU in the catalog");
    case "line_not_found":
      throw notFound("This SKU is not in the cart");
    case "checked_out":
      throw conflict("The cart has been checked out and can no longer change", "cart-checked-out");
    case "unavailable":
      throw new ProblemError(409, "insufficient-stock", `Only ${result.available} unit(s) of this SKU are available`);
    case "quantity_limit":
      throw conflict(`A cart line holds at most ${MAX_LINE_QUANTITY} units`, "cart-quantity-limit");
    case "too_many_lines":
      throw conflict("The cart has reached its maximum number of lines", "cart-line-limit");
    case "currency_mismatch":
      throw conflict(`Every line of this cart is priced in ${result.currency}`, "cart-currency-mismatch");
  }
}

/** `/v1/carts`: one CartObject per cart; only its owner can see or change it (others get 404). */
export const carts = createRouter()
  .openapi(
    createRoute({
      method: "post",
      path: "/",
      tags: ["Carts"],
      operationId: "createCart",
      summary: "Create an empty cart owned by the caller",
      security: bearerSecurity,
      middleware: [requireAuth(), requireRole("customer"), userWriteRateLimit()] as const,
      responses: {
        201: cartResponse("The new cart"),
        ...problemResponses(401, [403, "Not a customer"], [409, "Cart id collision; retry"], 413, 415, 429, 503),
      },
    }),
    async (c) => {
      const { userId } = authOf(c);
      const id = newCartId();
      const cart = await c.env.CART.getByName(id).create(userId);
      if (!cart) throw conflict("Cart id collision; retry", "cart-id-collision");
      return c.json(cart, 201, { Location: `/v1/carts/${id}` });
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/{id}",
      tags: ["Carts"],
      operationId: "getCart",
      summary: "The caller's cart",
      security: bearerSecurity,
      middleware: [requireAuth(), requireRole("customer")] as const,
      request: { params: CartParams },
      responses: {
        200: cartResponse("The cart"),
        ...problemResponses(
          [400, "Not a cart id"],
          401,
          [403, "Not a customer"],
          [404, "No such cart (or not yours)"],
          429,
          503,
        ),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const cart = await c.env.CART.getByName(id).view(authOf(c).userId);
      if (!cart) throw notFound("No such cart");
      return c.json(cart, 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/{id}/items",
      tags: ["Carts"],
      operationId: "addCartItem",
      summary: "Add units of a SKU (price snapshotted now); 409 when that many are not available",
      security: bearerSecurity,
      middleware: [requireAuth(), requireRole("customer"), userWriteRateLimit()] as const,
      request: {
        params: CartParams,
        body: { required: true, content: { "application/json": { schema: AddItem } } },
      },
      responses: {
        200: cartResponse("The updated cart"),
        ...problemResponses(
          400,
          401,
          [403, "Not a customer"],
          [404, "No such cart or SKU"],
          [409, "Not enough stock, the line or cart is at its limit, another currency, or the cart is checked out"],
          413,
          415,
          429,
          503,
        ),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { sku, quantity } = c.req.valid("json");
      const result = await c.env.CART.getByName(id).addItem(authOf(c).userId, sku, quantity);
      return c.json(unwrap(result), 200);
    },
  )
  .openapi(
    createRoute({
      method: "patch",
      path: "/{id}/items/{sku}",
      tags: ["Carts"],
      operationId: "setCartItemQuantity",
      summary: "Set a line's quantity (0 removes it)",
      security: bearerSecurity,
      middleware: [requireAuth(), requireRole("customer"), userWriteRateLimit()] as const,
      request: {
        params: LineParams,
        body: { required: true, content: { "application/json": { schema: SetQuantity } } },
      },
      responses: {
        200: cartResponse("The updated cart"),
        ...problemResponses(
          400,
          401,
          [403, "Not a customer"],
          [404, "No such cart or line"],
          [409, "Not enough stock, or the cart is checked out"],
          413,
          415,
          429,
          503,
        ),
      },
    }),
    async (c) => {
      const { id, sku } = c.req.valid("param");
      const { quantity } = c.req.valid("json");
      const result = await c.env.CART.getByName(id).setQuantity(authOf(c).userId, sku, quantity);
      return c.json(unwrap(result), 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/{id}/items/{sku}",
      tags: ["Carts"],
      operationId: "removeCartItem",
      summary: "Remove a line",
      security: bearerSecurity,
      middleware: [requireAuth(), requireRole("customer"), userWriteRateLimit()] as const,
      request: { params: LineParams },
      responses: {
        200: cartResponse("The updated cart"),
        ...problemResponses(
          400,
          401,
          [403, "Not a customer"],
          [404, "No such cart or line"],
          [409, "The cart is checked out"],
          429,
          503,
        ),
      },
    }),
    async (c) => {
      const { id, sku } = c.req.valid("param");
      const result = await c.env.CART.getByName(id).removeItem(authOf(c).userId, sku);
      return c.json(unwrap(result), 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/{id}/shipping-options",
      tags: ["Carts"],
      operationId: "listCartShippingOptions",
      summary: "How the cart can ship to a country, priced for its weight and discounted subtotal",
      description:
        "Options are the active rates of every shipping zone that covers `country`, in the cart's currency, " +
        "cheapest first. Weight-based rates charge per started kilogram; a rate is free once the subtotal after " +
        "the cart's promotion reaches its threshold. A cart with nothing to ship (digital goods) has no options.",
      security: bearerSecurity,
      middleware: [requireAuth(), requireRole("customer")] as const,
      request: { params: CartParams, query: z.object({ country: CountryCode }) },
      responses: {
        200: {
          description: "The options",
          content: { "application/json": { schema: ShippingOptionListSchema } },
        },
        ...problemResponses(
          [400, "Not a cart id, or no country"],
          401,
          [403, "Not a customer"],
          [404, "No such cart (or not yours)"],
          429,
          503,
        ),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { country } = c.req.valid("query");
      const cart = await c.env.CART.getByName(id).view(authOf(c).userId);
      if (!cart) throw notFound("No such cart");
      const weightGrams = parcelWeight(cart.items);
      if (weightGrams === null) return c.json({ items: [] }, 200);
      const discount = cart.discounts.find((d) => d.kind !== "free_shipping")?.amount.amount ?? 0;
      const items = await shippingOptionsFor(c.env, {
        country,
        currency: cart.total.currency,
        weightGrams,
        discountedSubtotal: cart.total.amount - discount,
      });
      return c.json({ items }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/{id}/promotion",
      tags: ["Carts"],
      operationId: "applyCartPromotion",
      summary: "Apply a promotion code (one per cart); 422 promotion-not-applicable with the reason",
      description:
        "The reason is `errors[0].message`: `unknown`, `inactive`, `not_started`, `expired`, `below_minimum`, " +
        "`currency`, `used_up` or `already_used`. The code is checked again, and redeemed, when the order is placed.",
      security: bearerSecurity,
      middleware: [requireAuth(), requireRole("customer"), userWriteRateLimit()] as const,
      request: {
        params: CartParams,
        body: { required: true, content: { "application/json": { schema: ApplyPromotionSchema } } },
      },
      responses: {
        200: cartResponse("The cart with its discounts"),
        ...problemResponses(
          400,
          401,
          [403, "Not a customer"],
          [404, "No such cart (or not yours)"],
          [409, "The cart is checked out"],
          413,
          415,
          [422, "The code does not apply to this cart (reason in errors[0].message)"],
          429,
          503,
        ),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const { code } = c.req.valid("json");
      const { userId } = authOf(c);
      const cart = await c.env.CART.getByName(id).view(userId);
      if (!cart) throw notFound("No such cart");
      const verdict = await c.env.PROMOTION.getByName(code).check(userId, {
        subtotal: cart.total.amount,
        currency: cart.total.currency,
        now: Date.now(),
      });
      if (!verdict.ok) {
        throw new DomainError("unprocessable", refusalText(verdict.reason, verdict.rule), {
          kind: "promotion-not-applicable",
          fields: [{ path: "code", message: verdict.reason }],
        });
      }
      return c.json(unwrap(await c.env.CART.getByName(id).applyPromotion(userId, verdict.rule)), 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/{id}/promotion",
      tags: ["Carts"],
      operationId: "removeCartPromotion",
      summary: "Remove the cart's promotion code",
      security: bearerSecurity,
      middleware: [requireAuth(), requireRole("customer"), userWriteRateLimit()] as const,
      request: { params: CartParams },
      responses: {
        200: cartResponse("The cart without discounts"),
        ...problemResponses(
          [400, "Not a cart id"],
          401,
          [403, "Not a customer"],
          [404, "No such cart (or not yours)"],
          [409, "The cart is checked out"],
          429,
          503,
        ),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      return c.json(unwrap(await c.env.CART.getByName(id).removePromotion(authOf(c).userId)), 200);
    },
  );
