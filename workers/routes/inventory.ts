import { createRoute, z } from "@hono/zod-openapi";
import { inArray } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { InventoryLevel, ReserveInput, SkuCode } from "../../contracts/inventory-events";
import { productVariants } from "../../d1/schema/catalog";
import { findSku } from "../../domain/catalog/sku-lookup";
import { auditRequest } from "../audit";
import { requireAuth, requireRole } from "../middleware/auth";
import { userWriteRateLimit } from "../middleware/rate-limit";
import { bearerSecurity, createRouter, problemResponses, publicAccess } from "../openapi";
import { conflict, notFound, ProblemError } from "../problem";

const Level = InventoryLevel.openapi("InventoryLevel");
const SkuParams = z.object({ sku: SkuCode });
const OnHand = z.number().int().min(0).max(1_000_000_000);
const Threshold = z.number().int().min(0).max(1_000_000);
const SetStock = z.object({ onHand: OnHand, lowStockThreshold: Threshold.optional() }).strict().openapi("SetStock");
const SetStockBatch = z
  .object({
    items: z
      .array(z.object({ sku: SkuCode, onHand: OnHand, lowStockThreshold: Threshold.optional() }).strict())
      .min(1)
      .max(100)
      .refine((items) => new Set(items.map((i) => i.sku)).size === items.length, "each SKU at most once"),
    /** Only stock SKUs whose stock was never set (idempotent demo seeding). */
    onlyIfUnstocked: z.boolean().optional(),
  })
  .strict()
  .openapi("SetStockBatch");
const Reserve = ReserveInput.omit({ traceparent: true }).strict().openapi("ReserveStock");
const Reserved = z
  .object({ ok: z.literal(true), sku: z.string(), quantity: z.number().int(), expiresAt: z.string() })
  .openapi("Reservation");
const OrderParams = z.object({ sku: SkuCode, orderId: z.string().min(1).max(255) });

const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { "application/json": { schema } },
});

/** 404 unless the SKU exists in the catalog (keeps unknown SKUs from creating objects). */
async function requireKnownSku(env: Env, sku: string): Promise<void> {
  if (!(await findSku(env, sku))) throw notFound("No such SKU in the catalog");
}

function stockConflict(onHand: number, level: InventoryLevel): ProblemError {
  return conflict(
    `onHand ${onHand} is below reserved (${level.reserved}) + sold (${level.sold}) for ${level.sku}`,
    "stock-conflict",
  );
}

/** `/v1/inventory`: public stock levels, one InventoryObject per SKU. */
export const inventory = createRouter().openapi(
  createRoute({
    method: "get",
    path: "/{sku}",
    tags: ["Inventory"],
    operationId: "getInventoryLevel",
    security: publicAccess,
    summary: "Stock level of a SKU",
    request: { params: SkuParams },
    responses: {
      200: json(Level, "The SKU's counters"),
      ...problemResponses([400, "Not a SKU code"], [404, "No such SKU"], 429),
    },
  }),
  async (c) => {
    const { sku } = c.req.valid("param");
    await requireKnownSku(c.env, sku);
    return c.json(await c.env.INVENTORY.getByName(sku).level(), 200);
  },
);

/** `/v1/admin/inventory`: stock adjustment (admin) and direct reservations (admin or service). */
export const adminInventory = createRouter()
  .openapi(
    createRoute({
      method: "put",
      path: "/{sku}",
      tags: ["Inventory"],
      operationId: "setStock",
      summary: "Set units on hand (409 below reserved + sold)",
      security: bearerSecurity,
      middleware: [requireAuth(), requireRole("admin"), userWriteRateLimit()] as const,
      request: {
        params: SkuParams,
        body: { required: true, content: { "application/json": { schema: SetStock } } },
      },
      responses: {
        200: json(Level, "The new counters"),
        ...problemResponses(
          400,
          401,
          [403, "Not an admin"],
          [404, "No such SKU"],
          [409, "onHand below reserved + sold"],
          413,
          415,
          429,
          503,
        ),
      },
    }),
    async (c) => {
      const { sku } = c.req.valid("param");
      const { onHand, lowStockThreshold } = c.req.valid("json");
      await requireKnownSku(c.env, sku);
      const result = await c.env.INVENTORY.getByName(sku).adjust(onHand, {
        lowStockThreshold,
        correlationId: c.var.requestId,
      });
      if (!result.ok) throw stockConflict(onHand, result.level);
      await auditRequest(c, {
        action: "inventory.stock_set",
        target: `sku:${sku}`,
        details: { sku, onHand, ...(lowStockThreshold !== undefined ? { lowStockThreshold } : {}) },
      });
      return c.json(result.level, 200);
    },
  )
  .openapi(
    createRoute({
      method: "put",
      path: "/",
      tags: ["Inventory"],
      operationId: "setStockBatch",
      summary: "Set units on hand for up to 100 SKUs (all must exist; conflicts are reported per SKU)",
      security: bearerSecurity,
      middleware: [requireAuth(), requireRole("admin"), userWriteRateLimit()] as const,
      request: { body: { required: true, content: { "application/json": { schema: SetStockBatch } } } },
      responses: {
        200: json(
          z.object({
            items: z.array(Level),
            conflicts: z.array(z.object({ sku: z.string(), detail: z.string() })),
          }),
          "Levels of the SKUs that were set, and those refused",
        ),
        ...problemResponses(
          400,
          401,
          [403, "Not an admin"],
          [404, "Some SKU does not exist; nothing was changed"],
          413,
          415,
          429,
          503,
        ),
      },
    }),
    async (c) => {
      const { items, onlyIfUnstocked } = c.req.valid("json");
      const known = await drizzle(c.env.DB)
        .select({ sku: productVariants.sku })
        .from(productVariants)
        .where(
          inArray(
            productVariants.sku,
            items.map((i) => i.sku),
          ),
        )
        .all();
      const knownSet = new Set(known.map((k) => k.sku));
      const unknown = items.filter((i) => !knownSet.has(i.sku)).map((i) => i.sku);
      if (unknown.length > 0) throw notFound(`No such SKU(s) in the catalog: ${unknown.join(", ")}`);
      const results = await Promise.all(
        items.map((i) =>
          c.env.INVENTORY.getByName(i.sku).adjust(i.onHand, {
            lowStockThreshold: i.lowStockThreshold,
            onlyIfUnstocked,
            correlationId: c.var.requestId,
          }),
        ),
      );
      const levels: InventoryLevel[] = [];
      const conflicts: { sku: string; detail: string }[] = [];
      results.forEach((r, n) => {
        if (r.ok) levels.push(r.level);
        else conflicts.push({ sku: items[n]!.sku, detail: stockConflict(items[n]!.onHand, r.level).message });
      });
      if (levels.length > 0) {
        await auditRequest(c, {
          action: "inventory.stock_set",
          target: "inventory",
          details: { items: levels.map((l) => ({ sku: l.sku, onHand: l.onHand })), conflicts: conflicts.length },
        });
      }
      return c.json({ items: levels, conflicts }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/{sku}/reservations",
      tags: ["Inventory"],
      operationId: "reserveStock",
      summary: "Reserve units for an order id (idempotent by orderId); 409 when out of stock",
      description:
        "Admin route (operations and the reservation benchmark). Orders reserve, release and commit through the " +
        "saga, by Durable Object RPC, never over HTTP; so no service token can move stock.",
      security: bearerSecurity,
      middleware: [requireAuth(), requireRole("admin")] as const,
      request: {
        params: SkuParams,
        body: { required: true, content: { "application/json": { schema: Reserve } } },
      },
      responses: {
        200: json(Reserved, "Reserved (or already reserved by this order id)"),
        ...problemResponses(400, 401, [403, "Not an admin"], [409, "Out of stock"], 413, 415, 429, 503),
      },
    }),
    async (c) => {
      const { sku } = c.req.valid("param");
      const body = c.req.valid("json");
      // No catalog lookup on this hot path: a SKU never stocked simply has nothing available.
      const result = await c.env.INVENTORY.getByName(sku).reserve({ ...body, traceparent: c.var.trace?.traceparent });
      if (!result.ok) {
        throw new ProblemError(409, "out-of-stock", `Only ${result.available} unit(s) available`);
      }
      return c.json(result, 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/{sku}/reservations/{orderId}",
      tags: ["Inventory"],
      operationId: "releaseReservation",
      summary: "Release an order's reservation (no-op when none is live)",
      security: bearerSecurity,
      middleware: [requireAuth(), requireRole("admin")] as const,
      request: { params: OrderParams },
      responses: {
        200: json(z.object({ released: z.boolean() }), "Whether units went back to available"),
        ...problemResponses(400, 401, [403, "Not an admin"], 429, 503),
      },
    }),
    async (c) => {
      const { sku, orderId } = c.req.valid("param");
      return c.json(await c.env.INVENTORY.getByName(sku).release(orderId), 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/{sku}/reservations/{orderId}/commit",
      tags: ["Inventory"],
      operationId: "commitReservation",
      summary: "Turn an order's live reservation into a sale",
      security: bearerSecurity,
      middleware: [requireAuth(), requireRole("admin")] as const,
      request: { params: OrderParams },
      responses: {
        200: json(z.object({ committed: z.literal(true) }), "Sold"),
        ...problemResponses(
          400,
          401,
          [403, "Not an admin"],
          [409, "No live reservation for this order id"],
          413,
          415,
          429,
          503,
        ),
      },
    }),
    async (c) => {
      const { sku, orderId } = c.req.valid("param");
      const { committed } = await c.env.INVENTORY.getByName(sku).commit(orderId);
      if (!committed) throw conflict("No live reservation for this order id", "no-reservation");
      return c.json({ committed: true as const }, 200);
    },
  );
