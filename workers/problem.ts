import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { ZodError } from "zod";
import type { Problem, ProblemFieldError } from "../contracts/problem";
import { DomainError, type DomainErrorCode } from "../domain/errors";
import {
  isStoreUnavailable,
  STORE_RETRY_AFTER_SECONDS,
  STORE_UNAVAILABLE,
  STORE_UNAVAILABLE_DETAIL,
} from "../domain/store-unavailable";

export type { ProblemFieldError };

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  409: "Conflict",
  412: "Precondition Failed",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  416: "Range Not Satisfiable",
  422: "Unprocessable Content",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/**
 * A domain error that becomes a problem+json response in `app.onError`. Throw it from any handler,
 * middleware or service function; `slug` names the problem type.
 */
export class ProblemError extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly slug: string,
    detail?: string,
    readonly extra: { errors?: ProblemFieldError[]; headers?: Record<string, string> } = {},
  ) {
    super(detail ?? TITLES[status] ?? "Error");
  }
}

export const badRequest = (detail: string, errors?: ProblemFieldError[]) =>
  new ProblemError(400, "bad-request", detail, { errors });
export const unauthorized = (detail = "Missing or invalid credentials") =>
  new ProblemError(401, "unauthorized", detail, { headers: { "WWW-Authenticate": 'Bearer realm="edgepulse"' } });
export const forbidden = (detail = "This action is not allowed for your role") =>
  new ProblemError(403, "forbidden", detail);
export const notFound = (detail = "No such resource") => new ProblemError(404, "not-found", detail);
export const conflict = (detail: string, slug = "conflict") => new ProblemError(409, slug, detail);

/** How each kind of domain refusal answers over HTTP: its status, and its problem type when no narrower one is given. */
const DOMAIN_STATUS: Record<DomainErrorCode, { status: ContentfulStatusCode; slug: string }> = {
  invalid: { status: 400, slug: "bad-request" },
  unauthenticated: { status: 401, slug: "unauthorized" },
  forbidden: { status: 403, slug: "forbidden" },
  "not-found": { status: 404, slug: "not-found" },
  conflict: { status: 409, slug: "conflict" },
  "precondition-failed": { status: 412, slug: "precondition-failed" },
  unprocessable: { status: 422, slug: "unprocessable" },
  unavailable: { status: 503, slug: "unavailable" },
};

/**
 * The problem an error answers with, or null for an unexpected error (a bug: logged, then 500).
 * Domain refusals become the status their code maps to; 401 carries its challenge and 503 its
 * `Retry-After`, so a client knows what to do next. A busy or unreachable store (SQLITE_BUSY,
 * an overloaded or reset Durable Object) is not a bug either: 503 `store-unavailable`, retry.
 */
export function asProblem(error: unknown): ProblemError | null {
  if (error instanceof ProblemError) return error;
  if (!(error instanceof DomainError)) {
    if (!isStoreUnavailable(error)) return null;
    return new ProblemError(503, STORE_UNAVAILABLE, STORE_UNAVAILABLE_DETAIL, {
      headers: { "Retry-After": String(STORE_RETRY_AFTER_SECONDS) },
    });
  }
  const { status, slug } = DOMAIN_STATUS[error.code];
  const headers: Record<string, string> = {};
  if (error.code === "unauthenticated") headers["WWW-Authenticate"] = 'Bearer realm="edgepulse"';
  if (error.code === "unavailable") headers["Retry-After"] = String(error.retryAfterSeconds ?? 1);
  return new ProblemError(status, error.kind ?? slug, error.message, { errors: error.fields, headers });
}

/** Flattens a zod error into `errors: [{path, message}]` (paths like `items.0.sku`). */
export function zodFieldErrors(error: ZodError): ProblemFieldError[] {
  return error.issues.map((issue) => ({
    path: issue.path.map(String).join(".") || "(root)",
    message: issue.message,
  }));
}

/** Builds the problem+json response; `instance` is the request path so logs and bodies line up. */
export function problemResponse(
  c: Context,
  status: ContentfulStatusCode,
  slug: string,
  detail?: string,
  extra: { errors?: ProblemFieldError[]; headers?: Record<string, string> } = {},
): Response {
  const body: Problem = {
    type: `https://edgepulse.dev/problems/${slug}`,
    title: TITLES[status] ?? "Error",
    status,
    detail,
    instance: new URL(c.req.url).pathname,
  };
  if (extra.errors) body.errors = extra.errors;
  const headers = new Headers(extra.headers);
  headers.set("Content-Type", "application/problem+json");
  return new Response(JSON.stringify(body), { status, headers });
}
