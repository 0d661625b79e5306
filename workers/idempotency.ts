import type { Context } from "hono";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { sha256Hex } from "../domain/encoding";
import type { AppEnv } from "./env";
import { asProblem, badRequest, ProblemError, type ProblemFieldError } from "./problem";

/** Records are kept this long; a replay after that is a new request. */
const RETENTION_MS = 24 * 3600 * 1000;

/** The validated `Idempotency-Key` header (1–255 visible ASCII characters), or undefined. */
export function idempotencyKeyOf(c: Context<AppEnv>): string | undefined {
  const key = c.req.header("idempotency-key");
  if (key === undefined) return undefined;
  if (!/^[\x21-\x7e]{1,255}$/.test(key)) {
    throw badRequest("Idempotency-Key must be 1-255 visible ASCII characters", [
      { path: "header.Idempotency-Key", message: "1-255 visible ASCII characters" },
    ]);
  }
  return key;
}

interface StoredResponse<T = unknown> {
  status: number;
  body: T;
  headers?: Record<string, string>;
}

/**
 * Runs `handler` at most once per (scope, key), API.md's Idempotency-Key semantics:
 * same key + same body → the first response again; same key + another body → 422; a replay while
 * the first request is still running → 409. The claim is one atomic INSERT in D1, so concurrent
 * duplicates cannot both get through. Client errors (4xx) are stored like successes (a replay
 * gets the same answer), except 429; an unexpected failure or a 429 releases the key so the client
 * can retry.
 */
export async function withIdempotency<T>(
  c: Context<AppEnv>,
  scope: string,
  key: string | undefined,
  fingerprint: unknown,
  handler: () => Promise<StoredResponse<T>>,
): Promise<{ body: T; headers: Record<string, string> }> {
  if (key === undefined) return respond(await handler());
  const db = c.env.DB;
  const requestHash = await sha256Hex(JSON.stringify(fingerprint));
  const cutoff = new Date(Date.now() - RETENTION_MS).toISOString();
  await db
    .prepare("DELETE FROM idempotency_keys WHERE scope = ? AND key = ? AND created_at < ?")
    .bind(scope, key, cutoff)
    .run();
  const claimed = await db
    .prepare(
      `INSERT INTO idempotency_keys (scope, key, request_hash, state) VALUES (?, ?, ?, 'in_progress')
       ON CONFLICT (scope, key) DO NOTHING RETURNING key`,
    )
    .bind(scope, key, requestHash)
    .first();
  if (!claimed) {
    const existing = await db
      .prepare(
        "SELECT request_hash, state, response_status, response_body FROM idempotency_keys WHERE scope = ? AND key = ?",
      )
      .bind(scope, key)
      .first<{ request_hash: string; state: string; response_status: number | null; response_body: string | null }>();
    if (!existing)
      throw new ProblemError(
        409,
        "idempotency-in-progress",
        "A request with this Idempotency-Key is being processed; retry shortly",
      );
    if (existing.request_hash !== requestHash) {
      throw new ProblemError(
        422,
        "idempotency-key-reused",
        "This Idempotency-Key was used with a different request body",
      );
    }
    if (existing.state !== "done" || existing.response_status === null) {
      throw new ProblemError(
        409,
        "idempotency-in-progress",
        "A request with this Idempotency-Key is still being processed",
      );
    }
    const stored = JSON.parse(existing.response_body ?? "null") as StoredResponse<T>;
    return respond(stored, true);
  }
  let result: StoredResponse<T>;
  try {
    result = await handler();
  } catch (error) {
    const problem = asProblem(error);
    // A 429 says "not now": the key's answer is whatever a later try gets, so it is not stored.
    if (problem && problem.status < 500 && problem.status !== 429) {
      await store(db, scope, key, {
        status: problem.status,
        body: { slug: problem.slug, detail: problem.message, errors: problem.extra.errors },
      });
      throw problem;
    }
    await db.prepare("DELETE FROM idempotency_keys WHERE scope = ? AND key = ?").bind(scope, key).run();
    throw error;
  }
  await store(db, scope, key, result);
  return respond(result);
}

async function store(db: D1Database, scope: string, key: string, result: StoredResponse): Promise<void> {
  await db
    .prepare(
      "UPDATE idempotency_keys SET state = 'done', response_status = ?, response_body = ? WHERE scope = ? AND key = ?",
    )
    .bind(result.status, JSON.stringify(result), scope, key)
    .run();
}

/** The stored success (status is the route's documented one), or the stored problem rethrown. */
function respond<T>(stored: StoredResponse<T>, replayed = false): { body: T; headers: Record<string, string> } {
  const headers: Record<string, string> = { ...stored.headers };
  if (replayed) headers["Idempotent-Replayed"] = "true";
  const status = stored.status as ContentfulStatusCode;
  if (status >= 400) {
    const problem = stored.body as { slug: string; detail: string; errors?: ProblemFieldError[] };
    throw new ProblemError(status, problem.slug, problem.detail, { errors: problem.errors, headers });
  }
  return { body: stored.body, headers };
}
