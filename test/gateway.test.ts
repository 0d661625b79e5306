import { describe, expect, it } from "vitest";
import { call, expectProblem } from "./helpers";

describe("gateway", () => {
  it("answers /health without I/O and /ready after probing D1 and Durable Objects", async () => {
    const health = await call("/health");
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok" });

    const ready = await call("/ready");
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({
      status: "ready",
      checks: { d1: "ok", migrations: "ok", durableObjects: "ok", payments: "ok", alerts: "ok" },
    });
  });

  it("echoes a sane X-Request-Id, replaces an unsafe one, and continues a W3C trace", async () => {
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const echoed = await call("/health", {
      headers: { "X-Request-Id": "client-req-123", traceparent: `00-${traceId}-00f067aa0ba902b7-01` },
    });
    expect(echoed.headers.get("X-Request-Id")).toBe("client-req-123");
    expect(echoed.headers.get("traceparent")).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
    expect(echoed.headers.get("traceparent")).not.toContain("00f067aa0ba902b7");

    const replaced = await call("/health", { headers: { "X-Request-Id": "bad id\twith spaces" } });
    expect(replaced.headers.get("X-Request-Id")).toMatch(/^[0-9a-f-]{36}$/);

    const fresh = await call("/health", { headers: { traceparent: "garbage" } });
    expect(fresh.headers.get("traceparent")).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
  });

  it("answers unknown routes with problem+json 404 carrying the request id", async () => {
    const res = await call("/v1/nope");
    expect(res.headers.get("X-Request-Id")).toBeTruthy();
    const body = await expectProblem(res, 404);
    expect(body).toMatchObject({ status: 404, title: "Not Found", instance: "/v1/nope" });
  });

  it("sets secure headers and publishes an OpenAPI 3.1 document", async () => {
    const res = await call("/v1/openapi.json");
    expect(res.status).toBe(200);
    expect(res.headers.get("X-Content-Type-Options")).toBe("nosniff");
    const doc = await res.json<{ openapi: string; paths: Record<string, unknown> }>();
    expect(doc.openapi).toBe("3.1.0");
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(["/health", "/ready"]));
  });
});
