import { createRoute, z } from "@hono/zod-openapi";
import { and, eq, isNull, lt, or } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import {
  LoginBody,
  RefreshBody,
  RegisterBody,
  ServiceToken,
  ServiceTokenBody,
  TokenPair,
  User,
} from "../../contracts/identity";
import { users } from "../../d1/schema/identity";
import { sha256Hex } from "../../domain/encoding";
import { issueAccessToken } from "../../domain/identity/access-tokens";
import { hashPassword, needsRehash, verifyAgainstDummy, verifyPassword } from "../../domain/identity/passwords";
import { revokeFamily, rotateRefreshToken, startFamily } from "../../domain/identity/refresh-tokens";
import { isolateRevocations, revoke } from "../../domain/identity/revocation";
import { acceptTotp } from "../../domain/identity/totp";
import { findUserByEmail, findUserById, nowIso, parseRoles } from "../../domain/identity/users";
import { authOf, requireAuth, setRevocationCheck } from "../middleware/auth";
import { clientIp, tooManyRequests } from "../middleware/rate-limit";
import { bearerSecurity, createRouter, problemResponses, publicAccess } from "../openapi";
import { conflict, ProblemError, unauthorized } from "../problem";

// Every authenticated request in this Worker consults the denylist (logout, reuse, erasure).
setRevocationCheck((env, auth) => isolateRevocations.isRevoked(env, auth));

const Registered = z
  .object({ user: User.pick({ id: true, email: true, name: true, roles: true }) })
  .openapi("Registered");
const LOGIN_POLICY = { name: "login", limit: 5, windowSeconds: 60 } as const;
const SERVICE_SUBJECT = "collector-host";

const json = <T>(schema: T) => ({ content: { "application/json": { schema } }, required: true });

/** Exact per account+IP attempt counting; the object name is a hash so it carries no email. */
async function beginAttempt(env: Env, scope: string, account: string, ip: string) {
  const guard = env.LOGIN_GUARD.getByName(await sha256Hex(`${scope}|${account}|${ip}`));
  const verdict = await guard.begin();
  if (!verdict.allowed) {
    throw tooManyRequests(
      LOGIN_POLICY,
      verdict.retryAfterSeconds,
      "Too many attempts for this account; wait and retry",
    );
  }
  return guard;
}

/** True when a (possibly drizzle-wrapped) D1 error is a UNIQUE constraint violation. */
function isUniqueViolation(error: unknown): boolean {
  for (let e: unknown = error; e instanceof Error; e = e.cause) {
    if (e.message.includes("UNIQUE constraint failed")) return true;
  }
  return false;
}

async function tokenPair(env: Env, user: { id: string; roles: string[] }, familyId: string, refreshToken: string) {
  const access = await issueAccessToken(env, { userId: user.id, roles: parseRoles(user.roles), familyId });
  return { accessToken: access.token, refreshToken, tokenType: "Bearer" as const, expiresIn: access.expiresIn };
}

/** Identity under /v1/auth: register, login (+TOTP), refresh rotation, logout, service tokens. */
export const auth = createRouter();

auth
  .openapi(
    createRoute({
      method: "post",
      path: "/register",
      operationId: "register",
      security: publicAccess,
      tags: ["Identity"],
      summary: "Create a customer account",
      request: { body: json(RegisterBody) },
      responses: {
        201: { description: "Created", content: { "application/json": { schema: Registered } } },
        ...problemResponses(400, [409, "An account with this email already exists"], 413, 415, 429),
      },
    }),
    async (c) => {
      const { email, password, name } = c.req.valid("json");
      const taken = () => conflict("An account with this email already exists", "email-taken");
      if (await findUserByEmail(c.env, email)) throw taken();
      const passwordHash = await hashPassword(password);
      const id = crypto.randomUUID();
      try {
        await drizzle(c.env.DB)
          .insert(users)
          .values({ id, email, name, roles: ["customer"], passwordHash });
      } catch (error) {
        // Two registrations racing for one email: the UNIQUE index decides, the loser gets 409.
        if (isUniqueViolation(error)) throw taken();
        throw error;
      }
      return c.json({ user: { id, email, name, roles: ["customer" as const] } }, 201);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/login",
      operationId: "login",
      security: publicAccess,
      tags: ["Identity"],
      summary: "Exchange email + password (+ TOTP when MFA is on) for a token pair",
      description:
        "Five attempts per minute per account and client address; a success clears the count. " +
        "With MFA on and no `totp`, answers 401 with type `.../mfa-required`.",
      request: { body: json(LoginBody) },
      responses: {
        200: { description: "Signed in", content: { "application/json": { schema: TokenPair } } },
        ...problemResponses(
          400,
          [401, "Wrong email or password; or a TOTP code is required (`mfa-required`) or wrong (`invalid-totp`)"],
          413,
          415,
          [429, "Too many attempts for this account from this address, or from this address overall"],
        ),
      },
    }),
    async (c) => {
      const { email, password, totp } = c.req.valid("json");
      const guard = await beginAttempt(c.env, "login", email, clientIp(c));
      const user = await findUserByEmail(c.env, email);
      const ok = user?.passwordHash
        ? await verifyPassword(password, user.passwordHash)
        : await verifyAgainstDummy(password);
      if (!user?.passwordHash || !ok) throw unauthorized("Wrong email or password");

      if (user.mfaSecret) {
        if (!totp) {
          throw new ProblemError(401, "mfa-required", "This account uses two-factor sign-in: send `totp` too", {
            headers: { "WWW-Authenticate": 'Bearer realm="edgepulse"' },
          });
        }
        const step = acceptTotp(user.mfaSecret, totp, user.mfaLastStep);
        // The conditional update makes a code single-use even across concurrent logins.
        const claimed =
          step !== null &&
          (
            await drizzle(c.env.DB)
              .update(users)
              .set({ mfaLastStep: step })
              .where(and(eq(users.id, user.id), or(isNull(users.mfaLastStep), lt(users.mfaLastStep, step))))
              .run()
          ).meta.changes === 1;
        if (!claimed) {
          throw new ProblemError(401, "invalid-totp", "The two-factor code is wrong or already used", {
            headers: { "WWW-Authenticate": 'Bearer realm="edgepulse"' },
          });
        }
      }

      await guard.succeed();
      if (needsRehash(user.passwordHash)) {
        const rehash = async () => {
          const passwordHash = await hashPassword(password);
          await drizzle(c.env.DB).update(users).set({ passwordHash, updatedAt: nowIso() }).where(eq(users.id, user.id));
        };
        c.executionCtx.waitUntil(rehash());
      }
      const { familyId, refreshToken } = await startFamily(c.env, user.id);
      return c.json(await tokenPair(c.env, user, familyId, refreshToken), 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/refresh",
      operationId: "refreshTokens",
      security: publicAccess,
      tags: ["Identity"],
      summary: "Rotate a refresh token: the old one is spent, reusing it revokes the whole family",
      request: { body: json(RefreshBody) },
      responses: {
        200: { description: "A new token pair", content: { "application/json": { schema: TokenPair } } },
        ...problemResponses(400, [401, "The refresh token is invalid, expired, spent or revoked"], 413, 415, 429),
      },
    }),
    async (c) => {
      const { refreshToken } = c.req.valid("json");
      const rotated = await rotateRefreshToken(c.env, refreshToken);
      const user = await findUserById(c.env, rotated.userId);
      if (!user) {
        await revokeFamily(c.env, rotated.familyId, "account-gone");
        throw unauthorized("The refresh token is invalid, expired or revoked");
      }
      return c.json(await tokenPair(c.env, user, rotated.familyId, rotated.refreshToken), 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/logout",
      operationId: "logout",
      tags: ["Identity"],
      summary: "Revoke this access token and its refresh family",
      security: bearerSecurity,
      middleware: [requireAuth()] as const,
      responses: { 204: { description: "Signed out" }, ...problemResponses(401, 413, 415, 429, 503) },
    }),
    async (c) => {
      const caller = authOf(c);
      // Keep the jti denied a little past its own expiry to cover clock tolerance at verify time.
      await revoke(c.env, [{ kind: "jti", subject: caller.jti, expiresAt: caller.tokenExpiresAt * 1000 + 60_000 }]);
      if (caller.familyId) await revokeFamily(c.env, caller.familyId, "logout");
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/service-token",
      operationId: "createServiceToken",
      security: publicAccess,
      tags: ["Identity"],
      summary: "Trade the shared service secret for a `service`-role access token (collector host)",
      request: { body: json(ServiceTokenBody) },
      responses: {
        200: { description: "A service token", content: { "application/json": { schema: ServiceToken } } },
        ...problemResponses(400, [401, "Wrong service secret"], 413, 415, 429),
      },
    }),
    async (c) => {
      const { secret } = c.req.valid("json");
      const guard = await beginAttempt(c.env, "service-token", SERVICE_SUBJECT, clientIp(c));
      const expected = c.env.SERVICE_TOKEN_SECRET ?? "";
      // Hash both sides so the comparison is constant-time regardless of the lengths involved.
      const [a, b] = await Promise.all([sha256Hex(secret), sha256Hex(expected)]);
      const match =
        expected.length > 0 && crypto.subtle.timingSafeEqual(new TextEncoder().encode(a), new TextEncoder().encode(b));
      if (!match) throw unauthorized("Wrong service secret");
      await guard.succeed();
      const access = await issueAccessToken(c.env, { userId: SERVICE_SUBJECT, roles: ["service"] });
      return c.json({ accessToken: access.token, tokenType: "Bearer" as const, expiresIn: access.expiresIn }, 200);
    },
  );
