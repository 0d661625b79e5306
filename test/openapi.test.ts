import { beforeAll, describe, expect, it } from "vitest";
import { app } from "../workers/app";
import { call, tokenFor } from "./helpers";

// The document and the routes must not disagree: every routed path is documented (and the other
// way round), and what a route actually answers — with no token, and with a customer's — is a
// status its operation declares, with `security` saying truthfully whether a token is needed.

const METHODS = ["get", "put", "post", "patch", "delete"] as const;
/** Served by the app but not part of the API it describes. */
const UNDOCUMENTED = new Set([
  "GET /docs",
  "GET /docs/*",
  "GET /v1/openapi.json",
  // The operator console: an HTML page and its static assets, not API.
  "GET /console",
  "GET /console/index.html",
  "GET /console/*",
]);

interface Operation {
  operationId?: string;
  tags?: string[];
  security?: Record<string, string[]>[];
  responses: Record<string, { content?: Record<string, { schema?: { $ref?: string } }> }>;
}
interface Document {
  paths: Record<string, Partial<Record<(typeof METHODS)[number], Operation>>>;
  components: { securitySchemes?: Record<string, { type: string; scheme?: string }> };
}

let doc: Document;
let operations: { key: string; method: string; path: string; op: Operation }[];

beforeAll(async () => {
  const res = await call("/v1/openapi.json");
  expect(res.status).toBe(200);
  doc = await res.json<Document>();
  operations = Object.entries(doc.paths).flatMap(([path, item]) =>
    METHODS.flatMap((method) => {
      const op = item[method];
      return op ? [{ key: `${method.toUpperCase()} ${path}`, method, path, op }] : [];
    }),
  );
});

/** A concrete URL for a documented path: every parameter gets a value no store will know. */
const concrete = (path: string) => path.replaceAll(/\{[^}]+\}/g, "x");
const needsToken = (op: Operation) => op.security?.some((s) => "bearerAuth" in s) ?? false;

describe("OpenAPI document", () => {
  it("documents exactly the routes the app serves", () => {
    const routed = new Set(
      app.routes
        .filter((r) => r.method !== "ALL")
        .map((r) => `${r.method} ${r.path.replaceAll(/:([^/]+)/g, "{$1}")}`)
        .filter((key) => !UNDOCUMENTED.has(key)),
    );
    expect(new Set(operations.map((o) => o.key))).toEqual(routed);
  });

  it("gives every operation a unique camelCase operationId, a tag and a 4xx", () => {
    const ids = operations.map((o) => o.op.operationId);
    expect(new Set(ids).size).toBe(operations.length);
    for (const { key, op } of operations) {
      expect(op.operationId, key).toMatch(/^[a-z][A-Za-z0-9]+$/);
      expect(op.tags?.length, key).toBeGreaterThan(0);
      expect(
        Object.keys(op.responses).some((s) => /^4\d\d$/.test(s)),
        key,
      ).toBe(true);
    }
  });

  it("declares the statuses every route's middleware can answer, as problem+json", () => {
    for (const { key, method, op } of operations) {
      // The per-address limit runs in front of every route; the body guard in front of every write.
      expect(Object.keys(op.responses), key).toContain("429");
      if (["put", "post", "patch"].includes(method))
        expect(Object.keys(op.responses), key).toEqual(expect.arrayContaining(["413", "415"]));
      if (needsToken(op)) expect(Object.keys(op.responses), key).toEqual(expect.arrayContaining(["401", "503"]));
      for (const [status, response] of Object.entries(op.responses)) {
        if (!/^[45]\d\d$/.test(status) || key === "GET /ready") continue;
        expect(Object.keys(response.content ?? {}), `${key} ${status}`).toEqual(["application/problem+json"]);
        expect(response.content?.["application/problem+json"]?.schema?.$ref, `${key} ${status}`).toBe(
          "#/components/schemas/Problem",
        );
      }
    }
  });

  it("defines the bearer scheme once and every operation states its security", () => {
    expect(doc.components.securitySchemes).toEqual({
      bearerAuth: expect.objectContaining({ type: "http", scheme: "bearer", bearerFormat: "JWT" }),
    });
    for (const { key, op } of operations) {
      expect(op.security, key).toBeDefined();
      for (const requirement of op.security ?? []) expect(requirement, key).toEqual({ bearerAuth: [] });
    }
  });

  it("declares bearerAuth exactly on the operations that refuse a request without a token", async () => {
    for (const { key, method, path, op } of operations) {
      const res = await call(concrete(path), { method: method.toUpperCase() });
      expect(res.status === 401, `${key} answered ${res.status}`).toBe(needsToken(op));
      expect(Object.keys(op.responses), `${key} answered ${res.status} anonymously`).toContain(String(res.status));
    }
  });

  it("declares what each route answers a signed-in customer", async () => {
    for (const { key, method, path, op } of operations) {
      // A fresh token each time: one of these operations is logout, which revokes the token it is called with.
      const token = await tokenFor(`openapi-probe-${crypto.randomUUID()}`);
      const res = await call(concrete(path), { method: method.toUpperCase(), token });
      expect(res.status, key).toBeLessThan(500);
      expect(Object.keys(op.responses), `${key} answered ${res.status} to a customer`).toContain(String(res.status));
    }
  });
});
