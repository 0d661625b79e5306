import { createRoute, z } from "@hono/zod-openapi";
import { Category } from "../../contracts/catalog";
import { listCategories } from "../../domain/catalog/store";
import { cachedJson } from "../edge-cache";
import { createRouter, problemResponses, publicAccess, untyped } from "../openapi";

/** The category tree, flat with parent ids (parents listed before their children). */
export const categories = createRouter().openapi(
  createRoute({
    method: "get",
    path: "/",
    operationId: "listCategories",
    security: publicAccess,
    tags: ["Catalog"],
    summary: "All categories",
    responses: {
      200: {
        description: "The tree, flat",
        content: { "application/json": { schema: z.object({ items: z.array(Category) }) } },
      },
      304: { description: "Not modified (If-None-Match)" },
      ...problemResponses(429),
    },
  }),
  async (c) => untyped(await cachedJson(c, {}, async () => ({ items: await listCategories(c.env) }))),
);
