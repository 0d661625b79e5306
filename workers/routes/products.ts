import { createRoute } from "@hono/zod-openapi";
import { IdParam, ProductDetail, ProductList, ProductQuery, RecommendationList } from "../../contracts/catalog";
import { searchProducts } from "../../domain/catalog/search";
import { getProduct } from "../../domain/catalog/store";
import { recommendationsFor } from "../../domain/recommendations/bought-together";
import { cachedJson } from "../edge-cache";
import { createRouter, problemResponses, publicAccess, untyped } from "../openapi";
import { notFound } from "../problem";

const cachingHeaders = {
  ETag: { description: "Strong validator; send it back as If-None-Match", schema: { type: "string" as const } },
  "Cache-Control": {
    description: "public for anonymous reads, private otherwise",
    schema: { type: "string" as const },
  },
};

/** Public catalog reads: search/browse and product detail, cached at the edge. */
export const products = createRouter()
  .openapi(
    createRoute({
      method: "get",
      path: "/",
      operationId: "listProducts",
      security: publicAccess,
      tags: ["Catalog"],
      summary: "Search and browse products (full-text, filters, sorts, facets, cursor pagination)",
      request: { query: ProductQuery },
      responses: {
        200: {
          description: "One page",
          headers: cachingHeaders,
          content: { "application/json": { schema: ProductList } },
        },
        304: { description: "Not modified (If-None-Match)" },
        ...problemResponses([400, "Invalid filter, sort, limit or cursor; or no such category"], 429),
      },
    }),
    async (c) => {
      const query = c.req.valid("query");
      return untyped(await cachedJson(c, query, () => searchProducts(c.env, query)));
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/{id}",
      operationId: "getProduct",
      security: publicAccess,
      tags: ["Catalog"],
      summary: "One product with its variants",
      request: { params: IdParam },
      responses: {
        200: {
          description: "The product",
          headers: cachingHeaders,
          content: { "application/json": { schema: ProductDetail } },
        },
        304: { description: "Not modified (If-None-Match)" },
        ...problemResponses([400, "Not a product id"], [404, "No such product (drafts are not visible)"], 429),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      return untyped(
        await cachedJson(c, { id }, async () => {
          const product = await getProduct(c.env, id);
          if (!product) throw notFound("No such product");
          return product;
        }),
      );
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/{id}/recommendations",
      operationId: "getProductRecommendations",
      security: publicAccess,
      tags: ["Catalog"],
      summary: "Products bought together with this one, then its category's best sellers (in stock, active)",
      request: { params: IdParam },
      responses: {
        200: {
          description: "Up to 8 products, best first",
          headers: cachingHeaders,
          content: { "application/json": { schema: RecommendationList } },
        },
        304: { description: "Not modified (If-None-Match)" },
        ...problemResponses([400, "Not a product id"], [404, "No such product"], 429),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      return untyped(await cachedJson(c, { id }, () => recommendationsFor(c.env, id)));
    },
  );
