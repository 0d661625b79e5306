import { createRoute, z } from "@hono/zod-openapi";
import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import {
  LoginBody,
  PasswordResetConfirmBody,
  PasswordResetRequestBody,
  RefreshBody,
  RegisterBody,
  ServiceToken,
  ServiceTokenBody,
  TokenPair,
  User,
  VerifyEmailBody,
} from "../../contracts/identity";
import { users } from "../../d1/schema/identity";
import { userRef } from "../../domain/audit/log";
import { sha256Hex } from "../../domain/encoding";
import { issueAccessToken, issueCollectorToken } from "../../domain/identity/access-tokens";
import { claimTotp } from "../../domain/identity/mfa";
import { confirmPasswordReset, requestPasswordReset } from "../../domain/identity/password-reset";
import { hashPassword, needsRehash, verifyAgainstDummy, verifyPassword } from "../../domain/identity/passwords";
import { consumeRecoveryCode } from "../../domain/identity/recovery-codes";
import { revokeFamily, revokeSessions, rotateRefreshToken, startFamily } from "../../domain/identity/refresh-tokens";
import { register, verifyEmail } from "../../domain/identity/registration";
import { isolateRevocations, revoke } from "../../domain/identity/revocation";
import {
  type AddressPolicy,
  accountGuardName,
  addressGuardName,
  LOGIN_ADDRESS_POLICY,
  SERVICE_TOKEN_POLICY,
  SIGNUP_POLICY,
  subjectKey,
} from "../../domain/identity/throttling";
import { findUserByEmail, findUserById, nowIso, parseRoles } from "../../domain/identity/users";
import type { AccountGuardVerdict } from "../../durable-objects/account-guard";
import { auditRequest } from "../audit";
import { authOf, requireAuth, setRevocationCheck } from "../middleware/auth";
import { clientIp, tooManyRequests } from "../middleware/rate-limit";
import { bearerSecurity, createRouter, problemResponses, publicAccess } from "../openapi";
import { ProblemError, unauthorized } from "../problem";

// Every authenticated request in this Worker consults the denylist (logout, reuse, erasure).
setRevocationCheck((env, auth) => isolateRevocations.isRevoked(env, auth));

const Registered = z
  .object({ user: User.pick({ id: true, email: true, name: true, roles: true }) })
  .openapi("Registered");
const SERVICE_SUBJECT = "collector-host";

const json = <T>(schema: T) => ({ content: { "application/json": { schema } }, required: true });

/**
 * Exact counting of one client address group's attempts in `scope` (LoginGuardObject): per
 * subject and in total. Object name and subject key are hashes, so they carry no address or email.
 * Returns the guard and the subject key to clear on success.
 */
async function beginAddressAttempt(
  env: Env,
  scope: string,
  policy: AddressPolicy,
  subject: string,
  ip: string,
  refusal = "Too many attempts for this account from this address; wait and retry",
) {
  const guard = env.LOGIN_GUARD.getByName(await addressGuardName(scope, ip));
  const key = await subjectKey(scope, subject);
  const verdict = await guard.begin(policy, key);
  if (!verdict.allowed) {
    const detail = verdict.rule === "subject" ? refusal : "Too many attempts from this address; wait and retry";
    throw tooManyRequests(
      { name: policy.name, limit: verdict.limit, windowSeconds: verdict.windowSeconds },
      verdict.retryAfterSeconds,
      detail,
    );
  }
  return { guard, key };
}

/** 429 for an account whose backoff delay is still running (from whichever address). */
function accountBackoff(verdict: AccountGuardVerdict): ProblemError {
  const { policy } = verdict;
  return tooManyRequests(
    { name: policy.name, limit: policy.free, windowSeconds: policy.capMs / 1000 },
    verdict.retryAfterSeconds,
    "Too many failed attempts at this account; wait and retry",
  );
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
      description:
        "Answers 201 with the same body shape whether or not the email already has an account, so " +
        "the answer does not reveal which addresses are registered: a new address gets the account " +
        "and a verification email (`POST /v1/auth/verify-email`); an address that already has an " +
        "account gets a notice email instead, and nothing is created (the returned id names nothing). " +
        "Ten registrations an hour per client address (IPv6 by /64).",
      request: { body: json(RegisterBody) },
      responses: {
        201: {
          description: "Accepted: the account was created, or the address's owner was mailed",
          content: { "application/json": { schema: Registered } },
        },
        ...problemResponses(400, 413, 415, [429, "Too many registrations from this address"]),
      },
    }),
    async (c) => {
      const body = c.req.valid("json");
      // Counted whatever the email, so the limit says nothing about which addresses exist.
      await beginAddressAttempt(
        c.env,
        "signup",
        SIGNUP_POLICY,
        "",
        clientIp(c),
        "Too many registrations from this address; wait and retry",
      );
      const user = await register(c.env, body);
      return c.json({ user }, 201);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/verify-email",
      operationId: "verifyEmail",
      security: publicAccess,
      tags: ["Identity"],
      summary: "Confirm an account's email address with the token mailed at registration",
      description: "The token works once, for 24 hours.",
      request: { body: json(VerifyEmailBody) },
      responses: {
        204: { description: "The address is verified" },
        ...problemResponses([400, "Invalid body, or the token is invalid, expired or already used"], 413, 415, 429),
      },
    }),
    async (c) => {
      await verifyEmail(c.env, c.req.valid("json").token);
      return c.body(null, 204);
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
        "Throttled without locking anyone out: five attempts per minute per account and client " +
        "address (IPv6 grouped by /64), thirty failures per 15 minutes per address across all " +
        "accounts, and per account from any address, after ten failed passwords (five wrong TOTP " +
        "codes) each further attempt waits a delay doubling from 30 s to at most 15 minutes. " +
        "Refusals are 429 with `Retry-After`; a success clears the counts. " +
        "With MFA on and no `totp`, answers 401 with type `.../mfa-required`.",
      request: { body: json(LoginBody) },
      responses: {
        200: { description: "Signed in", content: { "application/json": { schema: TokenPair } } },
        ...problemResponses(
          400,
          [401, "Wrong email or password; or a TOTP code is required (`mfa-required`) or wrong (`invalid-totp`)"],
          413,
          415,
          [
            429,
            "Too many attempts for this account from this address, from this address overall, or at this account (backoff)",
          ],
        ),
      },
    }),
    async (c) => {
      const { email, password, totp, recoveryCode } = c.req.valid("json");
      const address = await beginAddressAttempt(c.env, "login", LOGIN_ADDRESS_POLICY, email, clientIp(c));
      const user = await findUserByEmail(c.env, email);
      // Only an existing account gets a guard object (unknown emails leave nothing behind). The
      // guard round trip runs beside the PBKDF2 work, so a miss still takes as long as a hit.
      const accountGuard = user ? c.env.ACCOUNT_GUARD.getByName(await accountGuardName(user.id)) : undefined;
      const [verdict, ok] = await Promise.all([
        accountGuard?.beginPassword(),
        user?.passwordHash ? verifyPassword(password, user.passwordHash) : verifyAgainstDummy(password),
      ]);
      if (verdict && !verdict.allowed) throw accountBackoff(verdict);
      if (!user?.passwordHash || !ok) {
        // An unknown email is no one's personal data to keep: no target then.
        await auditRequest(c, {
          action: "auth.login_failed",
          actor: "anonymous",
          target: user ? userRef(user.id) : null,
          details: { reason: "password", knownAccount: Boolean(user) },
        });
        throw unauthorized("Wrong email or password");
      }

      if (user.mfaSecret) {
        if (!totp && !recoveryCode) {
          throw new ProblemError(401, "mfa-required", "This account uses two-factor sign-in: send `totp` too", {
            headers: { "WWW-Authenticate": 'Bearer realm="edgepulse"' },
          });
        }
        // Wrong codes are counted per account whatever address they come from.
        const totpVerdict = await accountGuard?.beginTotp();
        if (totpVerdict && !totpVerdict.allowed) throw accountBackoff(totpVerdict);
        // Each code and each recovery code works once, even across concurrent logins.
        const claimed = totp
          ? await claimTotp(c.env, user, totp)
          : await consumeRecoveryCode(c.env, user.id, recoveryCode!);
        if (!claimed) {
          await auditRequest(c, {
            action: "auth.login_failed",
            actor: "anonymous",
            target: userRef(user.id),
            details: { reason: totp ? "totp" : "recovery-code", knownAccount: true },
          });
          throw new ProblemError(401, "invalid-totp", "The two-factor code is wrong or already used", {
            headers: { "WWW-Authenticate": 'Bearer realm="edgepulse"' },
          });
        }
      }

      await Promise.all([address.guard.succeed(address.key), accountGuard?.succeed()]);
      if (needsRehash(user.passwordHash)) {
        const rehash = async () => {
          const passwordHash = await hashPassword(password);
          await drizzle(c.env.DB).update(users).set({ passwordHash, updatedAt: nowIso() }).where(eq(users.id, user.id));
        };
        c.executionCtx.waitUntil(rehash());
      }
      const { familyId, refreshToken } = await startFamily(c.env, user.id);
      await auditRequest(c, {
        action: "auth.login_succeeded",
        actor: userRef(user.id),
        target: userRef(user.id),
        details: { mfa: Boolean(user.mfaSecret) },
      });
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
      path: "/logout-all",
      operationId: "logoutAll",
      tags: ["Identity"],
      summary: "Sign out everywhere: every refresh family of the account and its access tokens are revoked",
      description: "Including the calling session. Signing in again afterwards works at once.",
      security: bearerSecurity,
      middleware: [requireAuth()] as const,
      responses: { 204: { description: "Every session ended" }, ...problemResponses(401, 413, 415, 429, 503) },
    }),
    async (c) => {
      const caller = authOf(c);
      await revoke(c.env, [{ kind: "jti", subject: caller.jti, expiresAt: caller.tokenExpiresAt * 1000 + 60_000 }]);
      await revokeSessions(c.env, caller.userId, "logout-all");
      return c.body(null, 204);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/password-reset",
      operationId: "requestPasswordReset",
      security: publicAccess,
      tags: ["Identity"],
      summary: "Email a password-reset token to the account's address, if there is such an account",
      description:
        "Always 202, whether or not the address has an account, and in the same time (the email is " +
        "sent after the answer), so the route reveals no accounts. The token works once, for 30 " +
        "minutes; a new request supersedes the previous one, at most one email a minute per account.",
      request: { body: json(PasswordResetRequestBody) },
      responses: { 202: { description: "Accepted" }, ...problemResponses(400, 413, 415, 429) },
    }),
    async (c) => {
      const { email } = c.req.valid("json");
      c.executionCtx.waitUntil(
        requestPasswordReset(c.env, email).catch((error: unknown) =>
          console.error(JSON.stringify({ level: "error", msg: "password reset email failed", error: String(error) })),
        ),
      );
      return c.body(null, 202);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/password-reset/confirm",
      operationId: "confirmPasswordReset",
      security: publicAccess,
      tags: ["Identity"],
      summary: "Set a new password with the emailed token; every session of the account ends",
      request: { body: json(PasswordResetConfirmBody) },
      responses: {
        204: { description: "Password set; every refresh family and its access tokens revoked" },
        ...problemResponses(
          [400, "Invalid input, or the token is invalid, expired or already used (`invalid-reset-token`)"],
          413,
          415,
          429,
        ),
      },
    }),
    async (c) => {
      const { token, newPassword } = c.req.valid("json");
      const { userId } = await confirmPasswordReset(c.env, token, newPassword);
      await auditRequest(c, { action: "auth.password_reset", actor: "anonymous", target: userRef(userId) });
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
      summary: "Trade the shared service secret for a collector host's access token",
      description:
        "The token has the `service` role and only the scopes `market:publish` (the ingest socket) and " +
        "`collectors:report` (PUT /v1/market/collectors); it cannot reach stock, carts or orders. Its subject " +
        "is the `collectorId` (default `collector-host`): the edge keeps one publish socket per collector " +
        "identity and closes it when the token expires or is revoked.",
      request: { body: json(ServiceTokenBody) },
      responses: {
        200: { description: "A service token", content: { "application/json": { schema: ServiceToken } } },
        ...problemResponses(400, [401, "Wrong service secret"], 413, 415, 429),
      },
    }),
    async (c) => {
      const { secret, collectorId } = c.req.valid("json");
      const guard = await beginAddressAttempt(
        c.env,
        "service-token",
        SERVICE_TOKEN_POLICY,
        SERVICE_SUBJECT,
        clientIp(c),
      );
      const expected = c.env.SERVICE_TOKEN_SECRET ?? "";
      // Hash both sides so the comparison is constant-time regardless of the lengths involved.
      const [a, b] = await Promise.all([sha256Hex(secret), sha256Hex(expected)]);
      const match =
        expected.length > 0 && crypto.subtle.timingSafeEqual(new TextEncoder().encode(a), new TextEncoder().encode(b));
      if (!match) throw unauthorized("Wrong service secret");
      await guard.guard.succeed(guard.key);
      const access = await issueCollectorToken(c.env, collectorId ?? SERVICE_SUBJECT);
      return c.json({ accessToken: access.token, tokenType: "Bearer" as const, expiresIn: access.expiresIn }, 200);
    },
  );
