import { costLimitRule } from "@escape.tech/graphql-armor-cost-limit";
import { maxDepthRule } from "@escape.tech/graphql-armor-max-depth";
import { createRoute, z } from "@hono/zod-openapi";
import { GraphQLError, specifiedRules, type ValidationContext } from "graphql";
import { createHandler } from "graphql-http/lib/use/fetch";
import type { MiddlewareHandler } from "hono";
import { DomainError } from "../../domain/errors";
import type { AuthContext } from "../../domain/identity/auth-context";
import { isStoreUnavailable } from "../../domain/store-unavailable";
import type { AppEnv } from "../env";
import { createLoaders } from "../graphql/loaders";
import { type GraphqlContext, schema } from "../graphql/schema";
import { requireAuth } from "../middleware/auth";
import { createRouter, problemResponses, publicAccess } from "../openapi";

export const GRAPHQL_PATH = "/v1/graphql";

/**
 * Query limits. Depth 8 fits the deepest useful query (me → orders → items → product →
 * recommendations → rating → average is 7); cost is GraphQL Armor's estimate (2 per object field,
 * 1 per scalar, ×1.5 per level), enough for a product page with reviews and recommendations and a
 * page of 50 products, far below the aliased or nested bombs it exists to refuse.
 */
export const GRAPHQL_MAX_DEPTH = 8;
export const GRAPHQL_MAX_COST = 5000;

/** GraphQL error codes of the domain's refusals, so a client can branch on `extensions.code`. */
const CODES: Partial<Record<DomainError["code"], string>> = {
  invalid: "BAD_USER_INPUT",
  unauthenticated: "UNAUTHENTICATED",
  forbidden: "FORBIDDEN",
  "not-found": "NOT_FOUND",
  conflict: "CONFLICT",
  "precondition-failed": "PRECONDITION_FAILED",
  unavailable: "SERVICE_UNAVAILABLE",
};

/**
 * Errors in GraphQL's shape and never with a stack: a domain refusal keeps its message and gets a
 * code; a busy store says to retry; anything else is logged here and answers "Unexpected error".
 */
function maskError(error: unknown): Error {
  // Syntax, validation and limit errors, and GraphQL errors the resolvers raised on purpose.
  if (error instanceof GraphQLError && (!error.originalError || error.originalError instanceof GraphQLError)) {
    return error;
  }
  const original = error instanceof GraphQLError ? error.originalError : error;
  const path = error instanceof GraphQLError ? error.path : undefined;
  if (original instanceof DomainError) {
    return new GraphQLError(original.message, { path, extensions: { code: CODES[original.code] ?? "BAD_REQUEST" } });
  }
  if (isStoreUnavailable(original)) {
    return new GraphQLError("The data store is busy; retry shortly", {
      path,
      extensions: { code: "SERVICE_UNAVAILABLE", retryAfterSeconds: 1 },
    });
  }
  console.error(
    JSON.stringify({
      level: "error",
      msg: "graphql resolver failed",
      path: path?.join("."),
      error: original instanceof Error ? `${original.name}: ${original.message}` : String(original),
      stack: original instanceof Error ? original.stack : undefined,
    }),
  );
  return new GraphQLError("Unexpected error", { path, extensions: { code: "INTERNAL_SERVER_ERROR" } });
}

/**
 * GraphQL Armor's rules throw by default (their envelop plugins catch it); as plain validation
 * rules they must report the refusal instead, so it reaches the client as a validation error.
 */
const reportRejection = {
  propagateOnRejection: false,
  onReject: [(context: ValidationContext | null, error: GraphQLError) => context?.reportError(error)],
};

/** What a request brings to the operation: the bindings and the caller (if any). */
interface RequestScope {
  env: Env;
  auth?: AuthContext;
}
// The handler is built once per isolate; each request's scope travels with its Request object.
const scopes = new WeakMap<Request, RequestScope>();

/**
 * graphql-http: the GraphQL Foundation's reference server for the GraphQL-over-HTTP spec, zero
 * dependencies and Fetch-native, so it runs on Workers as is. (graphql-yoga was tried first: its
 * @whatwg-node/fetch typings pull the DOM lib into the Worker's type-check, and its bundle is
 * several times larger for features this endpoint does not use.) Depth and cost are GraphQL
 * Armor's validation rules; every operation gets fresh DataLoaders.
 */
const handle = createHandler<GraphqlContext>({
  schema,
  validationRules: [
    ...specifiedRules,
    maxDepthRule({ n: GRAPHQL_MAX_DEPTH, exposeLimits: true, ...reportRejection }),
    costLimitRule({ maxCost: GRAPHQL_MAX_COST, exposeLimits: true, ...reportRejection }),
  ],
  context: (req) => {
    const scope = scopes.get(req.raw);
    if (!scope) throw new Error("GraphQL request without its scope");
    return { ...scope, loaders: createLoaders(scope.env, scope.auth?.userId ?? null) };
  },
  formatError: maskError,
});

/**
 * Runs one GraphQL request against the schema with `env` and `auth`. Errors of the operation
 * (syntax, validation, limits, resolvers) answer 200 with `errors` in GraphQL's shape, as the
 * GraphQL-over-HTTP spec has it for `application/json`; HTTP-level refusals are problem+json.
 */
export async function executeGraphql(
  request: { query: string; operationName?: string | null; variables?: Record<string, unknown> | null },
  env: Env,
  auth?: AuthContext,
): Promise<Response> {
  const raw = new Request(`https://graphql.internal${GRAPHQL_PATH}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Accept: "application/json" },
    body: JSON.stringify(request),
  });
  scopes.set(raw, { env, auth });
  return handle(raw);
}

/** A bearer token is optional here (public fields need none); if one is sent it must be valid. */
const optionalAuth = (): MiddlewareHandler<AppEnv> => async (c, next) => {
  if (c.get("auth") || c.req.header("authorization") === undefined) return next();
  return requireAuth()(c, next);
};

const GraphqlRequest = z
  .object({
    query: z.string().min(1).max(20_000).openapi({ description: "The GraphQL document (one operation)" }),
    operationName: z.string().max(200).nullable().optional(),
    variables: z.record(z.string(), z.unknown()).nullable().optional(),
  })
  .openapi("GraphqlRequest");

const GraphqlResponse = z
  .object({
    data: z.record(z.string(), z.unknown()).nullable().optional(),
    errors: z
      .array(
        z.object({
          message: z.string(),
          path: z.array(z.union([z.string(), z.number()])).optional(),
          extensions: z.record(z.string(), z.unknown()).optional(),
        }),
      )
      .optional(),
  })
  .openapi("GraphqlResponse");

/** POST /v1/graphql. */
export const graphql = createRouter().openapi(
  createRoute({
    method: "post",
    path: "/",
    operationId: "graphql",
    tags: ["GraphQL"],
    summary: "GraphQL: products, product (reviews, rating, recommendations, media), me (orders), market book and BBO",
    description:
      "Public fields need no credentials; `me` needs an `Authorization: Bearer` token or an `X-API-Key` (its orders: the " +
      "customer role, or a key with `orders:read`); a token that is sent must be valid (401). " +
      `Queries are limited to depth ${GRAPHQL_MAX_DEPTH} and cost ${GRAPHQL_MAX_COST}; errors of the operation answer 200 ` +
      "with `errors` (`extensions.code`), never a stack trace. The schema is introspectable.",
    // Public: no credentials needed (the description says which fields want a token or key).
    security: publicAccess,
    middleware: [optionalAuth()] as const,
    request: { body: { required: true, content: { "application/json": { schema: GraphqlRequest } } } },
    responses: {
      200: {
        description: "The result: `data`, and `errors` for what failed",
        content: { "application/json": { schema: GraphqlResponse } },
      },
      ...problemResponses([400, "Not a GraphQL request body"], 401, 413, 415, 429, 503),
    },
  }),
  async (c) => {
    const response = await executeGraphql(c.req.valid("json"), c.env, c.get("auth"));
    return response as never;
  },
);
