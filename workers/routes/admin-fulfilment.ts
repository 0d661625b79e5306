import { createRoute, z } from "@hono/zod-openapi";
import {
  CountryCode,
  ShippingRate,
  ShippingRateInput,
  ShippingRateList,
  ShippingRatePatch,
  ShippingZone,
  ShippingZoneInput,
  ShippingZoneList,
  TaxRate,
  TaxRateInput,
  TaxRateList,
} from "../../contracts/fulfilment";
import { Promotion, PromotionCode, PromotionInput, PromotionPatch } from "../../contracts/promotion";
import { forgetQuoteTables } from "../../domain/fulfilment/pricing";
import { createRate, createZone, listRates, listZones, updateRate } from "../../domain/fulfilment/shipping";
import { listTaxRates, putTaxRate } from "../../domain/tax/rates";
import { auditRequest } from "../audit";
import { requireAuth, requireRole } from "../middleware/auth";
import { userWriteRateLimit } from "../middleware/rate-limit";
import { createRouter, problemResponses, bearerSecurity as security } from "../openapi";
import { conflict, notFound } from "../problem";

// Auth runs as route middleware, before body validation: a non-admin gets 403 whatever it sends.
const adminOnly = [requireAuth(), requireRole("admin"), userWriteRateLimit()];
const json = <T extends z.ZodType>(schema: T) => ({ "application/json": { schema } });
const notAdmin = [403, "Not an admin"] as const;
const TAGS = ["Fulfilment admin"];

const ZoneSchema = ShippingZone.openapi("ShippingZone");
const ZoneInputSchema = ShippingZoneInput.openapi("ShippingZoneInput");
const RateSchema = ShippingRate.openapi("ShippingRate");
const RateInputSchema = ShippingRateInput.openapi("ShippingRateInput");
const RatePatchSchema = ShippingRatePatch.openapi("ShippingRatePatch");
const TaxRateSchema = TaxRate.openapi("TaxRate");
const TaxRateInputSchema = TaxRateInput.openapi("TaxRateInput");
const PromotionSchema = Promotion.openapi("Promotion");
const PromotionInputSchema = PromotionInput.openapi("PromotionInput");
const PromotionPatchSchema = PromotionPatch.openapi("PromotionPatch");
const RateId = z.object({ id: z.string().regex(/^ship_[0-9a-f]{16}$/, "not a shipping rate id") });
const CodeParam = z.object({ code: PromotionCode });

/**
 * Shipping zones and rates, the tax table and promotion codes (admin role only). Mounted at
 * /v1/admin. Orders snapshot what they were charged, so changes here affect only later checkouts:
 * at once in this isolate (its checkout quote tables are forgotten), within a second in the others.
 */
export const adminFulfilment = createRouter()
  .openapi(
    createRoute({
      method: "post",
      path: "/shipping/zones",
      operationId: "createShippingZone",
      tags: TAGS,
      summary: "Create a shipping zone (a set of destination countries)",
      security,
      middleware: adminOnly,
      request: { body: { required: true, content: json(ZoneInputSchema) } },
      responses: {
        201: { description: "Created", content: json(ZoneSchema) },
        ...problemResponses(400, 401, notAdmin, 413, 415, 429, 503),
      },
    }),
    async (c) => {
      const zone = await createZone(c.env, c.req.valid("json"));
      forgetQuoteTables();
      await auditRequest(c, { action: "shipping.zone_created", target: `shipping-zone:${zone.id}`, details: zone });
      return c.json(zone, 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/shipping/zones",
      operationId: "listShippingZones",
      tags: TAGS,
      summary: "Every shipping zone with its countries",
      security,
      middleware: adminOnly,
      responses: {
        200: { description: "The zones", content: json(ShippingZoneList.openapi("ShippingZoneList")) },
        ...problemResponses(401, notAdmin, 429, 503),
      },
    }),
    async (c) => c.json({ items: await listZones(c.env) }, 200),
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/shipping/rates",
      operationId: "createShippingRate",
      tags: TAGS,
      summary: "Create a carrier service's rate into a zone (flat or weight-based, optionally free above)",
      security,
      middleware: adminOnly,
      request: { body: { required: true, content: json(RateInputSchema) } },
      responses: {
        201: { description: "Created", content: json(RateSchema) },
        ...problemResponses([400, "Invalid rate, or no such zone"], 401, notAdmin, 413, 415, 429, 503),
      },
    }),
    async (c) => {
      const rate = await createRate(c.env, c.req.valid("json"));
      forgetQuoteTables();
      await auditRequest(c, { action: "shipping.rate_created", target: `shipping-rate:${rate.id}`, details: rate });
      return c.json(rate, 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/shipping/rates",
      operationId: "listShippingRates",
      tags: TAGS,
      summary: "Every shipping rate, active or not",
      security,
      middleware: adminOnly,
      responses: {
        200: { description: "The rates", content: json(ShippingRateList.openapi("ShippingRateList")) },
        ...problemResponses(401, notAdmin, 429, 503),
      },
    }),
    async (c) => c.json({ items: await listRates(c.env) }, 200),
  )
  .openapi(
    createRoute({
      method: "patch",
      path: "/shipping/rates/{id}",
      operationId: "updateShippingRate",
      tags: TAGS,
      summary: "Change a rate's price, threshold, estimate or active flag",
      security,
      middleware: adminOnly,
      request: { params: RateId, body: { required: true, content: json(RatePatchSchema) } },
      responses: {
        200: { description: "The rate", content: json(RateSchema) },
        ...problemResponses(400, 401, notAdmin, [404, "No such rate"], 413, 415, 429, 503),
      },
    }),
    async (c) => {
      const patch = c.req.valid("json");
      const rate = await updateRate(c.env, c.req.valid("param").id, patch);
      forgetQuoteTables();
      await auditRequest(c, { action: "shipping.rate_updated", target: `shipping-rate:${rate.id}`, details: patch });
      return c.json(rate, 200);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/tax-rates",
      operationId: "listTaxRates",
      tags: TAGS,
      summary: "The per-country tax table",
      security,
      middleware: adminOnly,
      responses: {
        200: { description: "The table", content: json(TaxRateList.openapi("TaxRateList")) },
        ...problemResponses(401, notAdmin, 429, 503),
      },
    }),
    async (c) => c.json({ items: await listTaxRates(c.env) }, 200),
  )
  .openapi(
    createRoute({
      method: "put",
      path: "/tax-rates/{country}",
      operationId: "putTaxRate",
      tags: TAGS,
      summary: "Set a country's tax rate (basis points) and whether shipping is taxed there",
      security,
      middleware: adminOnly,
      request: {
        params: z.object({ country: CountryCode }),
        body: { required: true, content: json(TaxRateInputSchema) },
      },
      responses: {
        200: { description: "The country's rule", content: json(TaxRateSchema) },
        ...problemResponses(400, 401, notAdmin, 413, 415, 429, 503),
      },
    }),
    async (c) => {
      const rule = await putTaxRate(c.env, c.req.valid("param").country, c.req.valid("json"));
      forgetQuoteTables();
      await auditRequest(c, { action: "tax.rate_set", target: `tax-rate:${rule.country}`, details: rule });
      return c.json(rule, 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/promotions",
      operationId: "createPromotion",
      tags: TAGS,
      summary: "Create a promotion code (percent, fixed or free shipping; limits counted exactly)",
      security,
      middleware: adminOnly,
      request: { body: { required: true, content: json(PromotionInputSchema) } },
      responses: {
        201: { description: "Created", content: json(PromotionSchema) },
        ...problemResponses(400, 401, notAdmin, [409, "The code exists"], 413, 415, 429, 503),
      },
    }),
    async (c) => {
      const input = c.req.valid("json");
      const promotion = await c.env.PROMOTION.getByName(input.code).define(input);
      if (!promotion) throw conflict(`Promotion ${input.code} exists already`, "promotion-exists");
      await auditRequest(c, { action: "promotion.created", target: `promotion:${promotion.code}`, details: input });
      c.header("Location", `/v1/admin/promotions/${promotion.code}`);
      return c.json(promotion, 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/promotions/{code}",
      operationId: "getPromotion",
      tags: TAGS,
      summary: "A promotion with its live redemption count",
      security,
      middleware: adminOnly,
      request: { params: CodeParam },
      responses: {
        200: { description: "The promotion", content: json(PromotionSchema) },
        ...problemResponses(400, 401, notAdmin, [404, "No such code"], 429, 503),
      },
    }),
    async (c) => {
      const promotion = await c.env.PROMOTION.getByName(c.req.valid("param").code).view();
      if (!promotion) throw notFound("No such promotion code");
      return c.json(promotion, 200);
    },
  )
  .openapi(
    createRoute({
      method: "patch",
      path: "/promotions/{code}",
      operationId: "updatePromotion",
      tags: TAGS,
      summary: "Deactivate a code, move its end, or change its redemption limit",
      security,
      middleware: adminOnly,
      request: { params: CodeParam, body: { required: true, content: json(PromotionPatchSchema) } },
      responses: {
        200: { description: "The promotion", content: json(PromotionSchema) },
        ...problemResponses(400, 401, notAdmin, [404, "No such code"], 413, 415, 429, 503),
      },
    }),
    async (c) => {
      const patch = c.req.valid("json");
      const promotion = await c.env.PROMOTION.getByName(c.req.valid("param").code).patch(patch);
      if (!promotion) throw notFound("No such promotion code");
      await auditRequest(c, { action: "promotion.updated", target: `promotion:${promotion.code}`, details: patch });
      return c.json(promotion, 200);
    },
  );
