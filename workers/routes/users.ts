import { createRoute } from "@hono/zod-openapi";
import { and, eq, isNull } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import {
  ChangePasswordBody,
  MfaActivated,
  MfaEnrolment,
  MfaStatus,
  MfaVerifyBody,
  ReauthBody,
  ReauthOrRecoveryBody,
  RecoveryCodes,
  UpdateMeBody,
  User,
} from "../../contracts/identity";
import { users } from "../../d1/schema/identity";
import { eraseUserFromAudit, userRef } from "../../domain/audit/log";
import { revokeAllApiKeys } from "../../domain/identity/api-keys";
import {
  type AttemptGuard,
  activateMfa,
  confirmIdentity,
  disableMfa,
  startMfaEnrolment,
} from "../../domain/identity/mfa";
import { deleteResetTokens } from "../../domain/identity/password-reset";
import { hashPassword } from "../../domain/identity/passwords";
import { deleteRecoveryCodes, replaceRecoveryCodes } from "../../domain/identity/recovery-codes";
import { revokeSessions, revokeUserSessions } from "../../domain/identity/refresh-tokens";
import { revoke } from "../../domain/identity/revocation";
import { accountGuardName } from "../../domain/identity/throttling";
import { findUserById, nowIso, toPublicUser } from "../../domain/identity/users";
import { eraseCustomerCommerceData } from "../../domain/orders/account-erasure";
import type { AccountGuardVerdict } from "../../durable-objects/account-guard";
import { orderShardOf } from "../../durable-objects/order-shard";
import { auditRequest } from "../audit";
import { authOf, requireAuth } from "../middleware/auth";
import { tooManyRequests, userWriteRateLimit } from "../middleware/rate-limit";
import { createRouter, problemResponses, bearerSecurity as security } from "../openapi";
import { conflict, unauthorized } from "../problem";

const json = <T>(schema: T) => ({ content: { "application/json": { schema } }, required: true });

/** The caller's live account; a valid token for an account that no longer exists is a bad credential. */
async function me(env: Env, userId: string) {
  const user = await findUserById(env, userId);
  if (!user) throw unauthorized("The account behind this token no longer exists");
  return user;
}

/**
 * Step-up checks count against the account's sign-in backoff (ACCOUNT_GUARD): wrong passwords and
 * codes sent here slow login and further checks alike, and a success clears the count.
 */
async function accountAttempts(env: Env, userId: string): Promise<AttemptGuard> {
  const guard = env.ACCOUNT_GUARD.getByName(await accountGuardName(userId));
  const refuseIfBackingOff = (verdict: AccountGuardVerdict) => {
    if (verdict.allowed) return;
    const { policy } = verdict;
    throw tooManyRequests(
      { name: policy.name, limit: policy.free, windowSeconds: policy.capMs / 1000 },
      verdict.retryAfterSeconds,
      "Too many failed attempts at this account; wait and retry",
    );
  };
  return {
    beforePassword: async () => refuseIfBackingOff(await guard.beginPassword()),
    beforeSecondFactor: async () => refuseIfBackingOff(await guard.beginTotp()),
    succeeded: () => guard.succeed(),
  };
}

const STEP_UP =
  "Needs the current `password` and, with MFA on, a current `totp` code: a bearer token alone is " +
  "not enough. Refusals are 403 with type `wrong-password`, `mfa-required` or `invalid-totp`.";
const STEP_UP_403 = [403, "The password, TOTP code or recovery code is missing or wrong"] as const;
const STEP_UP_429 = [429, "Too many requests, or too many failed attempts at this account (backoff)"] as const;

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
      description: `${STEP_UP} An unused \`recoveryCode\` may stand in for the TOTP code.`,
      security,
      request: { body: json(ReauthOrRecoveryBody) },
      responses: {
        204: { description: "Erased" },
        ...problemResponses(400, 401, STEP_UP_403, 413, 415, STEP_UP_429, 503),
      },
    }),
    async (c) => {
      const caller = authOf(c);
      const user = await me(c.env, caller.userId);
      await confirmIdentity(c.env, user, c.req.valid("json"), {
        allowRecoveryCode: true,
        guard: await accountAttempts(c.env, user.id),
      });
      // Commerce data first: if it fails the account still exists and the client can retry;
      // erasing the account first would leave its orders' addresses unreachable.
      await eraseCustomerCommerceData(c.env, caller.userId, (orderId) =>
        orderShardOf(c.env, orderId).erasePersonalData(orderId, caller.userId),
      );
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
      await Promise.all([deleteRecoveryCodes(c.env, caller.userId), deleteResetTokens(c.env, caller.userId)]);
      await revokeUserSessions(c.env, caller.userId, "account-erased");
      await revokeAllApiKeys(c.env, caller.userId);
      // Recorded, then blanked with every other entry about the account: the chain keeps the fact.
      await auditRequest(c, { action: "account.erased", target: userRef(caller.userId) });
      await eraseUserFromAudit(c.env, caller.userId);
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
      description: `${STEP_UP} The secret is stored encrypted (AES-GCM).`,
      security,
      request: { body: json(ReauthBody) },
      responses: {
        200: { description: "Secret and otpauth URL", content: { "application/json": { schema: MfaEnrolment } } },
        ...problemResponses(
          400,
          401,
          STEP_UP_403,
          [409, "Two-factor sign-in is already on"],
          413,
          415,
          STEP_UP_429,
          503,
        ),
      },
    }),
    async (c) => {
      const user = await me(c.env, authOf(c).userId);
      if (user.mfaSecret) throw conflict("Two-factor sign-in is already on", "mfa-already-enabled");
      await confirmIdentity(c.env, user, c.req.valid("json"), {
        allowRecoveryCode: false,
        guard: await accountAttempts(c.env, user.id),
      });
      return c.json(await startMfaEnrolment(c.env, user), 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/me/mfa/verify",
      operationId: "verifyMfa",
      tags: ["Identity"],
      summary: "Activate TOTP with a current code from the enrolled authenticator",
      description:
        "Answers with ten single-use recovery codes, shown only this once (stored hashed): each can " +
        "replace a TOTP code at login (`recoveryCode`) or to turn MFA off.",
      security,
      request: { body: json(MfaVerifyBody) },
      responses: {
        200: {
          description: "MFA is on; the recovery codes",
          content: { "application/json": { schema: MfaActivated } },
        },
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
      const recoveryCodes = await activateMfa(c.env, user, code);
      await auditRequest(c, { action: "mfa.enabled", target: userRef(user.id) });
      return c.json({ mfaEnabled: true, recoveryCodes }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/me/mfa",
      operationId: "disableMfa",
      tags: ["Identity"],
      summary: "Turn two-factor sign-in off (the secret and every recovery code are dropped)",
      description: `${STEP_UP} An unused \`recoveryCode\` may stand in for the TOTP code (lost authenticator).`,
      security,
      request: { body: json(ReauthOrRecoveryBody) },
      responses: {
        200: { description: "MFA is off", content: { "application/json": { schema: MfaStatus } } },
        ...problemResponses(400, 401, STEP_UP_403, [409, "Two-factor sign-in is not on"], 413, 415, STEP_UP_429, 503),
      },
    }),
    async (c) => {
      const user = await me(c.env, authOf(c).userId);
      if (!user.mfaSecret) throw conflict("Two-factor sign-in is not on", "mfa-not-enabled");
      await confirmIdentity(c.env, user, c.req.valid("json"), {
        allowRecoveryCode: true,
        guard: await accountAttempts(c.env, user.id),
      });
      await disableMfa(c.env, user.id);
      await auditRequest(c, { action: "mfa.disabled", target: userRef(authOf(c).userId) });
      return c.json({ mfaEnabled: false }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/me/mfa/recovery-codes",
      operationId: "regenerateRecoveryCodes",
      tags: ["Identity"],
      summary: "Replace every MFA recovery code with ten new ones (shown once)",
      description: `${STEP_UP} Earlier codes stop working.`,
      security,
      request: { body: json(ReauthBody) },
      responses: {
        200: { description: "The new recovery codes", content: { "application/json": { schema: RecoveryCodes } } },
        ...problemResponses(400, 401, STEP_UP_403, [409, "Two-factor sign-in is not on"], 413, 415, STEP_UP_429, 503),
      },
    }),
    async (c) => {
      const user = await me(c.env, authOf(c).userId);
      if (!user.mfaSecret) throw conflict("Two-factor sign-in is not on", "mfa-not-enabled");
      await confirmIdentity(c.env, user, c.req.valid("json"), {
        allowRecoveryCode: false,
        guard: await accountAttempts(c.env, user.id),
      });
      const recoveryCodes = await replaceRecoveryCodes(c.env, user.id);
      await auditRequest(c, { action: "mfa.recovery_codes_regenerated", target: userRef(user.id) });
      return c.json({ recoveryCodes }, 200);
    },
  )
  .openapi(
    createRoute({
      method: "post",
      path: "/me/password",
      operationId: "changePassword",
      tags: ["Identity"],
      summary: "Change the password; every other session of the account ends",
      description:
        "Needs `currentPassword` and, with MFA on, a current `totp` (or an unused `recoveryCode`). " +
        "Every refresh family of the account except the one this access token belongs to is " +
        "revoked, with the access tokens issued from them; the calling session stays signed in. " +
        "Refusals are 403 with type `wrong-password`, `mfa-required` or `invalid-totp`.",
      security,
      request: { body: json(ChangePasswordBody) },
      responses: {
        204: { description: "Changed; other sessions are signed out" },
        ...problemResponses(400, 401, STEP_UP_403, 413, 415, STEP_UP_429, 503),
      },
    }),
    async (c) => {
      const caller = authOf(c);
      const user = await me(c.env, caller.userId);
      const { currentPassword, newPassword, totp, recoveryCode } = c.req.valid("json");
      await confirmIdentity(
        c.env,
        user,
        { password: currentPassword, totp, recoveryCode },
        { allowRecoveryCode: true, guard: await accountAttempts(c.env, user.id) },
      );
      const passwordHash = await hashPassword(newPassword);
      await drizzle(c.env.DB)
        .update(users)
        .set({ passwordHash, updatedAt: nowIso() })
        .where(and(eq(users.id, user.id), isNull(users.erasedAt)));
      await revokeSessions(c.env, user.id, "password-changed", caller.familyId);
      await auditRequest(c, { action: "auth.password_changed", target: userRef(user.id) });
      return c.body(null, 204);
    },
  );
