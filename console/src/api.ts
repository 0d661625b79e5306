// The console's API client: openapi-fetch over the types generated from the Worker's own OpenAPI
// document (contracts/api-types.ts), so a route whose shape changes breaks the console's type-check
// like it breaks the scripts'. Same origin: the console is served by the Worker it talks to.
import createClient from "openapi-fetch";
import type { components, paths } from "../../contracts/api-types.ts";

export type Schema<Name extends keyof components["schemas"]> = components["schemas"][Name];

/** The API did not answer at all (down, restarting, network gone): the console says so and retries. */
export class ApiUnreachable extends Error {
  override name = "ApiUnreachable";
}

/** The API answered with a problem+json error. */
export class ApiProblem extends Error {
  override name = "ApiProblem";
  constructor(
    readonly status: number,
    readonly type: string,
    detail: string,
  ) {
    super(detail);
  }
}

const SESSION_KEY = "edgepulse.console.session";

interface Session {
  email: string;
  accessToken: string;
  refreshToken: string;
}

/** Listeners the app installs: sign-out (show the login form) and reachability (the banner). */
export const events = {
  onSignedOut: (_reason: string) => {},
  onReachability: (_reachable: boolean, _error?: string) => {},
};

let session: Session | null = (() => {
  try {
    return JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? "null") as Session | null;
  } catch {
    return null;
  }
})();

export const client = createClient<paths>({ baseUrl: location.origin });
client.use({
  onRequest({ request }) {
    if (session && !request.headers.has("Authorization")) {
      request.headers.set("Authorization", `Bearer ${session.accessToken}`);
    }
    return request;
  },
});

function store(next: Session | null): void {
  session = next;
  if (next) sessionStorage.setItem(SESSION_KEY, JSON.stringify(next));
  else sessionStorage.removeItem(SESSION_KEY);
}

export const signedInAs = (): string | null => session?.email ?? null;
export const accessToken = (): string | null => session?.accessToken ?? null;

async function problemOf(error: unknown, response: Response): Promise<ApiProblem> {
  const body = (error ?? {}) as { type?: string; detail?: string; title?: string };
  return new ApiProblem(response.status, body.type ?? "", body.detail ?? body.title ?? `HTTP ${response.status}`);
}

type Result<T> = { data?: T; error?: unknown; response: Response };

/**
 * Runs one API call: a network failure becomes ApiUnreachable (and the banner), a 401 refreshes
 * the session once and repeats the call, any other error becomes an ApiProblem.
 */
export async function call<T>(request: () => Promise<Result<T>>): Promise<T> {
  let result: Result<T>;
  try {
    result = await request();
  } catch (error) {
    events.onReachability(false, String(error));
    throw new ApiUnreachable("The API is not answering");
  }
  events.onReachability(result.response.status < 500 || result.response.status === 503, undefined);
  if (result.response.status === 401 && session && (await refresh())) return call(request);
  if (result.response.status === 401 && session) {
    store(null);
    events.onSignedOut("Your session has ended; sign in again.");
  }
  if (!result.response.ok) throw await problemOf(result.error, result.response);
  return result.data as T;
}

let refreshing: Promise<boolean> | null = null;
/** Trades the refresh token for a new pair (once at a time); false when the session is over. */
function refresh(): Promise<boolean> {
  refreshing ??= (async () => {
    const current = session;
    if (!current) return false;
    const { data, response } = await client
      .POST("/v1/auth/refresh", { body: { refreshToken: current.refreshToken }, headers: { Authorization: "" } })
      .catch(() => ({ data: undefined, response: new Response(null, { status: 599 }) }));
    if (!response.ok || !data) return false;
    store({ email: current.email, accessToken: data.accessToken, refreshToken: data.refreshToken });
    return true;
  })().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

/** The signed-in admin's roles, read from the access token (the server checks them again on every call). */
function rolesOf(token: string): string[] {
  try {
    const payload = JSON.parse(atob(token.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/"))) as {
      roles?: string[];
    };
    return payload.roles ?? [];
  } catch {
    return [];
  }
}

/** Signs in; `mfa-required` problems mean the form must ask for a TOTP code. Refuses non-admins. */
export async function login(email: string, password: string, totp?: string): Promise<void> {
  const tokens = await call(() =>
    client.POST("/v1/auth/login", { body: { email, password, ...(totp ? { totp } : {}) } }),
  );
  if (!rolesOf(tokens.accessToken).includes("admin")) {
    throw new ApiProblem(403, "not-an-admin", "This account is not an operator (admin role required).");
  }
  store({ email, accessToken: tokens.accessToken, refreshToken: tokens.refreshToken });
}

/** Signs out: revokes the session on the server (best effort), forgets it here. */
export async function logout(): Promise<void> {
  const token = session?.accessToken;
  store(null);
  if (token) {
    await client.POST("/v1/auth/logout", { headers: { Authorization: `Bearer ${token}` } }).catch(() => undefined);
  }
}
