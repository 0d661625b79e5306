import { env, exports } from "cloudflare:workers";
import { expect, vi } from "vitest";
import { TokenPair } from "../contracts/identity";
import { Problem } from "../contracts/problem";
import { issueAccessToken, issueCollectorToken } from "../domain/identity/access-tokens";
import type { Role } from "../workers/env";

/** Calls the Worker through its real fetch handler (all middleware included). */
export function call(path: string, init: RequestInit & { token?: string; json?: unknown } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.token) headers.set("Authorization", `Bearer ${init.token}`);
  let body = init.body;
  if (init.json !== undefined) {
    headers.set("Content-Type", "application/json");
    body = JSON.stringify(init.json);
  }
  return exports.default.fetch(new Request(`http://edgepulse.test${path}`, { ...init, headers, body }));
}

/**
 * A signed access token for a synthetic user, for tests of routes other than identity itself
 * (identity tests go through register/login).
 */
export async function tokenFor(userId: string, roles: Role[] = ["customer"]): Promise<string> {
  return (await issueAccessToken(env, { userId, roles })).token;
}

/** A collector host's service token, as POST /v1/auth/service-token issues it (`market:publish`, `collectors:report`). */
export async function collectorToken(collectorId = "collector-host", ttlSeconds?: number): Promise<string> {
  return (await issueCollectorToken(env, collectorId, ttlSeconds)).token;
}

/**
 * Asserts that `res` is a problem+json answer with `status` (header, HTTP status and body agree)
 * and returns the body, parsed with the Problem contract. `label` names the case in a failure.
 */
export async function expectProblem(res: Response, status: number, label?: string): Promise<Problem> {
  expect(res.status, label).toBe(status);
  expect(res.headers.get("Content-Type"), label).toBe("application/problem+json");
  const body = Problem.parse(await res.json());
  expect(body.status, label).toBe(status);
  return body;
}

/** The password test users register with. */
export const PASSWORD = "correct horse battery";

let emails = 0;
/** An email address no other test used (test files share one D1 per file, not per test). */
export const uniqueEmail = (prefix = "user") => `${prefix}${Date.now()}-${emails++}@example.com`;

let signupNetworks = 0;
/**
 * A client address in a /64 no other registration in this file used: registration is limited per
 * address (10 an hour), and most tests register more users than that.
 */
export const freshSignupIp = () => `2001:db8:5:${(signupNetworks++).toString(16)}::1`;

/**
 * Registers a user through POST /v1/auth/register (asserts 201) from `ip` (by default an address no
 * other registration used); returns the credentials and the new user.
 */
export async function registerUser(
  email = uniqueEmail(),
  password = PASSWORD,
  name = "Test User",
  ip = freshSignupIp(),
) {
  const res = await call("/v1/auth/register", {
    method: "POST",
    json: { email, password, name },
    headers: { "CF-Connecting-IP": ip },
  });
  expect(res.status, await res.clone().text()).toBe(201);
  const { user } = await res.json<{ user: { id: string; email: string; name: string; roles: string[] } }>();
  return { email, password, name, user };
}

/** POST /v1/auth/login; `extra` adds body fields (`totp`), `ip` is the client address the edge sees. */
export function login(
  email: string,
  password: string,
  opts: { extra?: Record<string, unknown>; ip?: string } = {},
): Promise<Response> {
  return call("/v1/auth/login", {
    method: "POST",
    json: { email, password, ...opts.extra },
    ...(opts.ip ? { headers: { "CF-Connecting-IP": opts.ip } } : {}),
  });
}

/** A freshly registered user, signed in: its credentials, id and token pair. */
export async function signIn() {
  const { email, password, user } = await registerUser();
  const res = await login(email, password);
  expect(res.status).toBe(200);
  return { email, password, id: user.id, tokens: TokenPair.parse(await res.json()) };
}

/** env.DB, counting the statements prepared whose SQL matches `pattern` (tests that bound D1 round trips). */
export function countingDb(pattern: RegExp): { DB: D1Database; count: () => number } {
  let count = 0;
  const DB = new Proxy(env.DB, {
    get(target, prop) {
      if (prop === "prepare")
        return (query: string) => {
          if (pattern.test(query)) count++;
          return target.prepare(query);
        };
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { DB, count: () => count };
}

/**
 * Moves this isolate's clock `ms` ahead (every cached copy older than that is due). Undo with
 * `vi.restoreAllMocks()`.
 */
export function later(ms: number): void {
  const now = Date.now() + ms;
  vi.spyOn(Date, "now").mockReturnValue(now);
}
