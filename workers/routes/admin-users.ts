import { createRoute, z } from "@hono/zod-openapi";
import { problems, User } from "../../contracts/identity";
import { findUserById, toPublicUser } from "../../domain/identity/users";
import { requireAuth, requireRole } from "../middleware/auth";
import { createRouter } from "../openapi";
import { notFound } from "../problem";

/** Admin-only account lookup under /v1/admin/users (support tooling; proves RBAC end to end). */
export const adminUsers = createRouter();
adminUsers.use("/*", requireAuth(), requireRole("admin"));

adminUsers.openapi(
  createRoute({
    method: "get",
    path: "/{id}",
    tags: ["Admin"],
    summary: "Any account by id (admin only)",
    security: [{ bearerAuth: [] }],
    request: { params: z.strictObject({ id: z.string().min(1).max(64) }) },
    responses: {
      200: { description: "The user", content: { "application/json": { schema: User } } },
      ...problems(400, 401, 403, 404, 429),
    },
  }),
  async (c) => {
    const user = await findUserById(c.env, c.req.valid("param").id);
    if (!user) throw notFound("No such user");
    return c.json(toPublicUser(user), 200);
  },
);
