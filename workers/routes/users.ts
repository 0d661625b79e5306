import { createRoute } from "@hono/zod-openapi";
import { and, eq, isNotNull, isNull } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { MfaEnrolment, MfaStatus, MfaVerifyBody, UpdateMeBody, User } from "../../contracts/identity";
import { users } from "../../d1/schema/identity";
import { eraseCustomerCommerceData } from "../../domain/orders/account-erasure";
import { revokeUserSessions } from "../../domain/identity/refresh-tokens";
import { revoke } from "../../domain/identity/revocation";
import { acceptTotp, newTotpSecret, otpauthUrl } from "../../domain/identity/totp";
import { findUserById, nowIso, toPublicUser } from "../../domain/identity/users";
import { authOf, requireAuth } from "../middleware/auth";
import { userWriteRateLimit } from "../middleware/rate-limit";
import { createRouter, problemResponses, bearerSecurity as security } from "../openapi";
import { badRequest, conflict, unauthorized } from "../problem";

const json = <T>(schema: T) => ({ content: { "application/json": { schema } }, required: true });

/** The caller's live account; a valid token for an account that no longer exists is a bad credential. */
async function me(env: Env, userId: string) {
  const user = await findUserById(env, userId);
  if (!user) throw unauthorized("The account behind this token no longer exists");
  return user;
}

/** The signed-in user's own account under /v1/users: profile, MFA, GDPR erasure. */
export const usersRouter = createRouter();
// Every route here is the caller's own account.
usersRouter.use("*", requireAuth(), userWriteRateLimit());

usersRouter
  .openapi(
    createRoute({
      method: "get",
      path: "/me",
      operationId: "getMe",
      tags: ["Identity"],
      summary: "The signed-in user",
      security,
      responses: {
        200: { description: "The user", content: { "application/json": { schema: User } } },
        ...problemResponses(401, 429, 503),
      },
    }),
    async (c) => c.json(toPublicUser(await me(c.env, authOf(c).userId)), 200),
  )
  .openapi(
    createRoute({
      method: "patch",
      path: "/me",
      operationId: "updateMe",
      tags: ["Identity"],
      summary: "Update name and/or preferences (preferences are replaced as a whole)",
      security,
      request: { body: json(UpdateMeBody) },
      responses: {
        200: { description: "The updated user", content: { "application/json": { schema: User } } },
        ...problemResponses(400, 401, 413, 415, 429, 503),
      },
    }),
    async (c) => {
      const { userId } = authOf(c);
      const patch = c.req.valid("json");
      await me(c.env, userId);
      const updated = await drizzle(c.env.DB)
        .update(users)
        .set({ ...patch, updatedAt: nowIso() })
        .where(and(eq(users.id, userId), isNull(users.erasedAt)))
        .returning()
        .get();
      if (!updated) throw unauthorized("The account behind this token no longer exists");
      return c.json(toPublicUser(updated), 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/me",
      operationId: "eraseMe",
      tags: ["Identity"],
      summary: "Erase the account (GDPR): personal data removed, every session revoked, email reusable",
      security,
      responses: { 204: { description: "Erased" }, ...problemResponses(401, 429, 503) },
    }),
    async (c) => {
      const caller = authOf(c);
      await me(c.env, caller.userId);
      // Commerce data first: if it fails the account still exists and the client can retry;
      // erasing the account first would leave its orders' addresses unreachable.
      await eraseCustomerCommerceData(c.env, caller.userId);
      // The row stays as a tombstone (ids in orders and ledgers must still resolve) but holds no
      // personal data: email NULL frees the address, hashes and secrets are gone.
      await drizzle(c.env.DB)
        .update(users)
        .set({
          email: null,
          name: "",
          passwordHash: null,
          preferences: {},
          mfaSecret: null,
          mfaPendingSecret: null,
          mfaLastStep: null,
          updatedAt: nowIso(),
          erasedAt: nowIso(),
        })
        .where(eq(users.id, caller.userId));
      await revokeUserSessions(c.env, caller.userId, "account-erased");
      await revoke(c.env, [{ kind: "jti", subject: caller.jti, expiresAt: caller.tokenExpiresAt * 1000 + 60_000 }]);
      console.log(JSON.stringify({ level: "info", msg: "account erased", userId: caller.userId }));
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/me/mfa",
      operationId: "startMfaEnrolment",
      tags: ["Identity"],
      summary: "Start TOTP enrolment: a new secret to scan; MFA turns on after /me/mfa/verify",
      security,
      responses: {
        200: { description: "Secret and otpauth URL", content: { "application/json": { schema: MfaEnrolment } } },
        ...problemResponses(401, [409, "Two-factor sign-in is already on"], 413, 415, 429, 503),
      },
    }),
    async (c) => {
      const user = await me(c.env, authOf(c).userId);
      if (user.mfaSecret) throw conflict("Two-factor sign-in is already on", "mfa-already-enabled");
      const secret = newTotpSecret();
      await drizzle(c.env.DB)
        .update(users)
        .set({ mfaPendingSecret: secret, updatedAt: nowIso() })
        .where(eq(users.id, user.id));
      return c.json({ secret, otpauthUrl: otpauthUrl(secret, user.email ?? user.id) }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/me/mfa/verify",
      operationId: "verifyMfa",
      tags: ["Identity"],
      summary: "Activate TOTP with a current code from the enrolled authenticator",
      security,
      request: { body: json(MfaVerifyBody) },
      responses: {
        200: { description: "MFA is on", content: { "application/json": { schema: MfaStatus } } },
        ...problemResponses(
          [400, "Invalid input, or the code does not match"],
          401,
          [409, "Two-factor sign-in is already on, or enrolment was not started"],
          413,
          415,
          429,
          503,
        ),
      },
    }),
    async (c) => {
      const { code } = c.req.valid("json");
      const user = await me(c.env, authOf(c).userId);
      if (user.mfaSecret) throw conflict("Two-factor sign-in is already on", "mfa-already-enabled");
      if (!user.mfaPendingSecret) throw conflict("Start enrolment first (POST /v1/users/me/mfa)", "mfa-not-enrolled");
      const step = acceptTotp(user.mfaPendingSecret, code, null);
      if (step === null)
        throw badRequest("The code does not match", [{ path: "code", message: "Wrong or expired code" }]);
      const activated = await drizzle(c.env.DB)
        .update(users)
        .set({ mfaSecret: user.mfaPendingSecret, mfaPendingSecret: null, mfaLastStep: step, updatedAt: nowIso() })
        .where(and(eq(users.id, user.id), isNotNull(users.mfaPendingSecret), isNull(users.mfaSecret)))
        .run();
      if (activated.meta.changes !== 1) throw conflict("Two-factor sign-in is already on", "mfa-already-enabled");
      return c.json({ mfaEnabled: true }, 200);
    },
  );
