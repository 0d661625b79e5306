import { createRoute, z } from "@hono/zod-openapi";
import { and, eq, isNull } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { SetRolesBody, User } from "../../contracts/identity";
import { users } from "../../d1/schema/identity";
import { userRef } from "../../domain/audit/log";
import { revokeSessions } from "../../domain/identity/refresh-tokens";
import { findUserById, nowIso, toPublicUser } from "../../domain/identity/users";
import { auditRequest } from "../audit";
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

adminUsers.openapi(
  createRoute({
    method: "put",
    path: "/{id}/roles",
    operationId: "setUserRoles",
    tags: ["Admin"],
    summary: "Replace an account's roles (admin only); the account's live sessions end",
    description:
      "Tokens carry roles, so every refresh family of the account and the access tokens issued " +
      "from them are revoked: a demoted admin's token stops working within a second, and the " +
      "next login carries the new roles.",
    security: bearerSecurity,
    request: {
      params: z.strictObject({ id: z.string().min(1).max(64) }),
      body: { content: { "application/json": { schema: SetRolesBody } }, required: true },
    },
    responses: {
      200: { description: "The user with its new roles", content: { "application/json": { schema: User } } },
      ...problemResponses(400, 401, [403, "Not an admin"], [404, "No such user"], 413, 415, 429, 503),
    },
  }),
  async (c) => {
    const { id } = c.req.valid("param");
    const { roles } = c.req.valid("json");
    const updated = await drizzle(c.env.DB)
      .update(users)
      .set({ roles, updatedAt: nowIso() })
      .where(and(eq(users.id, id), isNull(users.erasedAt)))
      .returning()
      .get();
    if (!updated) throw notFound("No such user");
    await revokeSessions(c.env, id, "roles-changed");
    await auditRequest(c, { action: "user.roles_changed", target: userRef(id), details: { roles } });
    console.log(JSON.stringify({ level: "info", msg: "roles changed", userId: id, roles }));
    return c.json(toPublicUser(updated), 200);
  },
);
