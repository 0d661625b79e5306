import { OpenAPIHono } from "@hono/zod-openapi";
import { Problem } from "../contracts/problem";
import type { AppEnv } from "./env";
import { badRequest, zodFieldErrors } from "./problem";

/**
 * A sub-app whose request validation failures become 400 problem+json with `errors: [{path,
 * message}]`. Every resource module builds its router with this so validation looks the same
 * everywhere, and the same zod schemas feed `/v1/openapi.json`.
 */
export function createRouter(): OpenAPIHono<AppEnv> {
  return new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) throw badRequest("The request is not valid", zodFieldErrors(result.error));
    },
  });
}

/** The security scheme every token-protected operation names; registered once, in app.ts. */
export const BEARER_AUTH_SCHEME = {
  type: "http",
  scheme: "bearer",
  bearerFormat: "JWT",
  description:
    "An access token from `POST /v1/auth/login` (or `/v1/auth/service-token`): `Authorization: Bearer <token>`",
} as const;

/** `security` of an operation behind `requireAuth()`: a bearer access token. */
export const bearerSecurity = [{ bearerAuth: [] }];
/** `security` of a public operation: none needed, said explicitly so it reads as decided, not forgotten. */
export const publicAccess: { [scheme: string]: string[] }[] = [];

/** Every error body is RFC 9457 problem details under this media type. */
export const PROBLEM_MEDIA_TYPE = "application/problem+json";

/** The statuses our middleware and handlers answer with problem+json. */
export type ProblemStatus = 400 | 401 | 403 | 404 | 409 | 412 | 413 | 415 | 416 | 422 | 429 | 503;

const stringHeader = (description: string) => ({ description, schema: { type: "string" as const } });
const retryAfter = stringHeader("Seconds until a retry may succeed");

const DEFAULTS: Record<
  ProblemStatus,
  { description: string; headers?: Record<string, ReturnType<typeof stringHeader>> }
> = {
  400: { description: "Invalid input: `errors` lists each field at fault" },
  401: {
    description: "No access token, or one that is invalid, expired or revoked",
    headers: { "WWW-Authenticate": stringHeader('`Bearer realm="edgepulse"`') },
  },
  403: { description: "The token's role may not do this" },
  404: { description: "No such resource" },
  409: { description: "Conflicts with the resource's current state" },
  412: { description: "`If-Match` does not name the current ETag" },
  413: { description: "The request body is larger than the limit (64 KiB by default)" },
  415: { description: "The request body is not `application/json`" },
  416: {
    description: "The Range lies outside the content (`Content-Range: bytes */<size>` gives its size)",
    headers: { "Content-Range": stringHeader("`bytes */<size>`") },
  },
  422: { description: "The `Idempotency-Key` was already used with a different body" },
  429: {
    description: "Rate limited: per address on every route, per user on writes, per account on sign-in",
    headers: {
      "Retry-After": retryAfter,
      RateLimit: stringHeader("draft-ietf-httpapi-ratelimit-headers: remaining quota and reset"),
      "RateLimit-Policy": stringHeader("draft-ietf-httpapi-ratelimit-headers: the limit that was hit"),
    },
  },
  503: {
    description: "A store the request depends on cannot answer (e.g. the token revocation list); retry",
    headers: { "Retry-After": retryAfter },
  },
};

type ProblemResponse = {
  description: string;
  headers?: Record<string, ReturnType<typeof stringHeader>>;
  content: { [PROBLEM_MEDIA_TYPE]: { schema: typeof Problem } };
};

/**
 * The `responses` entries for the problem+json errors an operation can answer with, each with the
 * one Problem schema and the headers that status carries (401's challenge, 429's and 503's
 * Retry-After). Pass a status for its usual description, or `[status, description]` to say more:
 * `problemResponses(400, 401, [404, "No such product"], 429)`.
 */
export function problemResponses<const S extends ProblemStatus>(
  ...entries: (S | readonly [S, string])[]
): { [K in S]: ProblemResponse } {
  const responses: Partial<Record<ProblemStatus, ProblemResponse>> = {};
  for (const entry of entries) {
    const [status, description] = typeof entry === "number" ? [entry, undefined] : entry;
    const defaults = DEFAULTS[status];
    responses[status] = {
      description: description ?? defaults.description,
      ...(defaults.headers ? { headers: defaults.headers } : {}),
      content: { [PROBLEM_MEDIA_TYPE]: { schema: Problem } },
    };
  }
  return responses as { [K in S]: ProblemResponse };
}

/**
 * Routes that answer with ready-made Responses (cached bytes, 304s, a body already serialised for
 * its ETag) pass them through this: zod-openapi's typed-response inference cannot see them; the
 * route's schemas still document what the body is.
 */
export const untyped = (response: Response) => response as never;
