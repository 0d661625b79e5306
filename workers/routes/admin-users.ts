import { createRoute, z } from "@hono/zod-openapi";
import { User } from "../../contracts/identity";
import { findUserById, toPublicUser } from "../../domain/identity/users";
import { requireAuth, requireRole } from "../middleware/auth";
import { bearerSecurity, createRouter, problemResponses } from "../openapi";
import { notFound } from "../problem";

/** Admin-only account lookup under /v1/admin/users (support tooling; proves RBAC end to end). */
export const adminUsers = createRouter();
adminUsers.use("/*", requireAuth(), requireRole("admin"));

adminUsers.openapi(
  createRoute({
    method: "get",
    path: "/{id}",
    operationId: "getUserById",
    tags: ["Admin"],
    summary: "Any account by id (admin only)",
    security: bearerSecurity,
    request: { params: z.strictObject({ id: z.string().min(1).max(64) }) },
    responses: {
      200: { description: "The user", content: { "application/json": { schema: User } } },
      ...problemResponses(400, 401, [403, "Not an admin"], [404, "No such user"], 429, 503),
    },
  }),
  async (c) => {
    const user = await findUserById(c.env, c.req.valid("param").id);
    if (!user) throw notFound("No such user");
    return c.json(toPublicUser(user), 200);
  },
);
