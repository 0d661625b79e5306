// The typed API client every script, seed and bench calls the Worker through: openapi-fetch over the
// `paths` that openapi-typescript generates from the document the Worker serves
// (contracts/api-types.ts, `npm run openapi`). A route whose request or response shape changes
// changes those types, so a caller that no longer fits fails `tsc -p collector-host`.
import createClient, { type Client } from "openapi-fetch";
import type { components, paths } from "../contracts/api-types.ts";

/** A client bound to one base URL (and optionally one access token and client address). */
export type ApiClient = Client<paths>;

/** A schema of the document by name, e.g. `ApiSchema<"Order">`. */
export type ApiSchema<Name extends keyof components["schemas"]> = components["schemas"][Name];

/** Creates a client for `baseUrl`; `token` is sent as a bearer token, `ip` as `CF-Connecting-IP`. */
export function createApiClient(baseUrl: string, options: { token?: string; ip?: string } = {}): ApiClient {
  const headers: Record<string, string> = {};
  if (options.token) headers.Authorization = `Bearer ${options.token}`;
  // Local servers take the client address from this header, as Cloudflare's edge sets it; load
  // generators vary it so the per-IP limit applies per simulated client, not to one 127.0.0.1.
  if (options.ip) headers["CF-Connecting-IP"] = options.ip;
  return createClient<paths>({ baseUrl, headers });
}

/** Returns a call's parsed success body; throws with the status and the problem document otherwise. */
export async function expectOk<Data, Problem>(
  what: string,
  call: Promise<{ data?: Data; error?: Problem; response: Response }>,
): Promise<Data> {
  const { data, error, response } = await call;
  if (!response.ok) {
    throw new Error(`${what}: HTTP ${response.status} ${typeof error === "string" ? error : JSON.stringify(error)}`);
  }
  return data as Data;
}
