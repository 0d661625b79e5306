import { createRoute, z } from "@hono/zod-openapi";
import { Cart, MAX_LINE_QUANTITY } from "../../contracts/cart";
import { SkuCode } from "../../contracts/inventory-events";
import { randomBase64Url } from "../../domain/encoding";
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
  );
