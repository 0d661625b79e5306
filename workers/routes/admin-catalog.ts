import { createRoute, type z } from "@hono/zod-openapi";
import { Category, CategoryCreate, IdParam, ProductCreate, ProductDetail, ProductPatch } from "../../contracts/catalog";
import { archiveProduct, createCategory, createProduct, getProduct, updateProduct } from "../../domain/catalog/store";
import { etagOf } from "../../domain/encoding";
import { removeProductMedia } from "../../domain/media/store";
import { auditRequest } from "../audit";
import { requireAuth, requireRole } from "../middleware/auth";
import { userWriteRateLimit } from "../middleware/rate-limit";
import { createRouter, problemResponses, bearerSecurity as security } from "../openapi";
import { notFound } from "../problem";

// Auth runs as route middleware, i.e. before body validation: a non-admin gets 403 whatever it sends.
// The per-user write limit (100/min) counts only writes; the admin GET passes straight through.
const adminOnly = [requireAuth(), requireRole("admin"), userWriteRateLimit()];
const json = <T extends z.ZodType>(schema: T) => ({ "application/json": { schema } });
const notAdmin = [403, "Not an admin"] as const;

/** Catalog administration (admin role only): products and categories. Mounted at /v1/admin. */
export const adminCatalog = createRouter()
  .openapi(
    createRoute({
      method: "post",
      path: "/products",
      operationId: "createProduct",
      tags: ["Catalog admin"],
      summary: "Create a product (with optional extra variants)",
      security,
      middleware: adminOnly,
      request: { body: { required: true, content: json(ProductCreate) } },
      responses: {
        201: { description: "Created", content: json(ProductDetail) },
        ...problemResponses(400, 401, notAdmin, [409, "SKU already in use"], 413, 415, 429, 503),
      },
    }),
    async (c) => {
      const product = await createProduct(c.env, c.req.valid("json"));
      await auditRequest(c, {
        action: "catalog.product_created",
        target: `product:${product.id}`,
        details: { productId: product.id },
      });
      c.header("Location", `/v1/products/${product.id}`);
      return c.json(product, 201);
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/products/{id}",
      operationId: "getAdminProduct",
      tags: ["Catalog admin"],
      summary: "One product, drafts included (never cached)",
      security,
      middleware: adminOnly,
      request: { params: IdParam },
      responses: {
        200: { description: "The product", content: json(ProductDetail) },
        ...problemResponses(400, 401, notAdmin, [404, "No such product"], 429, 503),
      },
    }),
    async (c) => {
      const product = await getProduct(c.env, c.req.valid("param").id, { includeDrafts: true });
      if (!product) throw notFound("No such product");
      // The same tag the public read gives, so either can feed a PATCH's If-Match.
      c.header("ETag", await etagOf(JSON.stringify(product)));
      c.header("Cache-Control", "private, no-store");
      return c.json(product, 200);
    },
  )
  .openapi(
    createRoute({
      method: "patch",
      path: "/products/{id}",
      operationId: "updateProduct",
      tags: ["Catalog admin"],
      summary: "Change a product; listed variants are upserted by SKU",
      security,
      middleware: adminOnly,
      request: { params: IdParam, body: { required: true, content: json(ProductPatch) } },
      responses: {
        200: { description: "Updated", content: json(ProductDetail) },
        ...problemResponses(
          400,
          401,
          notAdmin,
          [404, "No such product"],
          [409, "SKU already in use by another product, or a concurrent edit won"],
          412,
          413,
          415,
          429,
          503,
        ),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const patch = c.req.valid("json");
      const product = await updateProduct(c.env, id, patch, { ifMatch: c.req.header("if-match") });
      await auditRequest(c, {
        action: "catalog.product_updated",
        target: `product:${id}`,
        details: { productId: id, fields: Object.keys(patch).sort() },
      });
      return c.json(product, 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/products/{id}",
      operationId: "archiveProduct",
      tags: ["Catalog admin"],
      summary: "Archive a product: gone from search, still readable by id for existing orders; its images are deleted",
      security,
      middleware: adminOnly,
      request: { params: IdParam },
      responses: {
        204: { description: "Archived" },
        ...problemResponses(400, 401, notAdmin, [404, "No such product"], 429, 503),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      await archiveProduct(c.env, id);
      await auditRequest(c, {
        action: "catalog.product_archived",
        target: `product:${id}`,
        details: { productId: id },
      });
      // Its images go with it (a retry of the DELETE finishes a removal that failed half way).
      await removeProductMedia(c.env, id);
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/categories",
      operationId: "createCategory",
      tags: ["Catalog admin"],
      summary: "Create a category",
      security,
      middleware: adminOnly,
      request: { body: { required: true, content: json(CategoryCreate) } },
      responses: {
        201: { description: "Created", content: json(Category) },
        ...problemResponses(
          [400, "Invalid input, or no such parent category"],
          401,
          notAdmin,
          [409, "Id taken"],
          413,
          415,
          429,
          503,
        ),
      },
    }),
    async (c) => {
      const category = await createCategory(c.env, c.req.valid("json"));
      await auditRequest(c, { action: "catalog.category_created", target: `category:${category.id}` });
      return c.json(category, 201);
    },
  );
