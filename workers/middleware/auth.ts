import type { MiddlewareHandler } from "hono";
import { verifyAccessToken } from "../../domain/identity/access-tokens";
import type { Scope } from "../../domain/identity/auth-context";
import type { AppEnv, AuthContext, Role } from "../env";
import { forbidden, unauthorized } from "../problem";

/**
 * Revocation check for a verified token (logout, family revocation, erased account).
 * The identity module installs the real check; until then nothing is revoked.
 */
export type RevocationCheck = (env: Env, auth: AuthContext) => Promise<boolean>;
let isRevoked: RevocationCheck = async () => false;
/** Installs the revocation check used by `requireAuth` (called once by the identity module). */
export function setRevocationCheck(check: RevocationCheck): void {
  isRevoked = check;
}

/**
 * 401 unless a valid, unrevoked `Authorization: Bearer` access token is present; sets `c.var.auth`.
 * A request `apiKeyAuth()` already authenticated by its API key passes as its key's owner.
 */
export const requireAuth = (): MiddlewareHandler<AppEnv> => async (c, next) => {
  // Already authenticated by `apiKeyAuth()` (X-API-Key), which also checked the route and scope.
  if (c.get("auth")?.apiKey) return next();
  const header = c.req.header("authorization");
  const match = header ? /^Bearer\s+([A-Za-z0-9_\-.]{10,4096})$/.exec(header.trim()) : null;
  if (!match) throw unauthorized();
  const auth = await verifyAccessToken(c.env, match[1]!);
  if (!auth || (await isRevoked(c.env, auth))) throw unauthorized("The access token is invalid, expired or revoked");
  c.set("auth", auth);
  await next();
};

/** 403 unless the authenticated caller has one of `roles`. Use after `requireAuth()`. */
export function requireRole(...roles: Role[]): MiddlewareHandler<AppEnv> {
  if (roles.length === 0) throw new Error("requireRole needs at least one role");
  return async (c, next) => {
    const auth = c.get("auth");
    if (!auth) throw unauthorized();
    // Belt and braces: an API key never carries admin or service (apiKeyAuth drops them).
    if (auth.apiKey && roles.every((role) => role !== "customer")) throw forbidden("API keys are not accepted here");
    if (!auth.roles.some((role) => roles.includes(role))) throw forbidden();
    await next();
  };
}

/**
 * 403 unless the authenticated caller's token was issued with `scope` (service tokens: the
 * collector host's publish and health-report routes). A role alone never grants a scope.
 */
export function requireScope(scope: Scope): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const auth = c.get("auth");
    if (!auth) throw unauthorized();
    if (!auth.scopes?.includes(scope)) throw forbidden();
    await next();
  };
}

/** The authenticated caller; only valid behind `requireAuth()`. */
export function authOf(c: { get(key: "auth"): AuthContext | undefined }): AuthContext {
  const auth = c.get("auth");
  if (!auth) throw unauthorized();
  return auth;
}
