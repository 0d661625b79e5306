import { env, exports } from "cloudflare:workers";
import { issueAccessToken } from "../domain/identity/access-tokens";
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
