import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { isStoreUnavailable } from "../domain/store-unavailable";
import { app } from "../workers/app";
import { asProblem } from "../workers/problem";
import { call, expectProblem, tokenFor } from "./helpers";

// Shaped like what workerd throws. The first two are the messages `npm start` produced while
// `wrangler d1 execute` held the SQLite file (the lock surfaces either way); Durable Object
// exceptions carry `retryable` / `overloaded` flags.
const d1Busy = () => new Error("D1_ERROR: database is locked: SQLITE_BUSY");
const d1CommitLost = () =>
  new Error("D1_ERROR: Failed to get session commit token: internal error; reference = km69upiiftvtn3ff0obdvkus");
const d1Overloaded = () => new Error("D1_ERROR: D1 DB is overloaded. Too many requests queued.");
const d1Reset = () => new Error("D1_ERROR: D1 DB storage operation exceeded timeout which caused object to be reset.");
const doOverloaded = () =>
  Object.assign(new Error("Durable Object is overloaded. Too many requests queued."), {
    retryable: true,
    overloaded: true,
  });
const doConnectionLost = () => Object.assign(new Error("Network connection lost."), { retryable: true });
// drizzle wraps the driver's error: the cause chain carries the D1 message.
const drizzleWrapped = () => new Error('Failed query: insert into "users" ... params: ...', { cause: d1Busy() });

describe("asProblem: a busy or unreachable store is a 503 with Retry-After, not a bug", () => {
  it.each([
    ["D1 SQLITE_BUSY", d1Busy],
    ["D1 lock breaking a session commit", d1CommitLost],
    ["D1 overloaded", d1Overloaded],
    ["D1 object reset", d1Reset],
    ["Durable Object overloaded", doOverloaded],
    ["Durable Object connection lost", doConnectionLost],
    ["drizzle-wrapped D1 lock", drizzleWrapped],
  ])("%s → 503 store-unavailable", (_label, make) => {
    const problem = asProblem(make());
    expect(problem?.status).toBe(503);
    expect(problem?.slug).toBe("store-unavailable");
    const retryAfter = Number(problem?.extra.headers?.["Retry-After"]);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(2);
  });

  it.each([
    ["a constraint violation", () => new Error("D1_ERROR: UNIQUE constraint failed: users.email: SQLITE_CONSTRAINT")],
    ["an SQL bug", () => new Error("D1_ERROR: no such column: nope: SQLITE_ERROR")],
    ["a type error", () => new TypeError("Cannot read properties of undefined (reading 'id')")],
    ["a DO error that is not retryable", () => Object.assign(new Error("boom"), { retryable: false })],
  ])("%s stays unexpected (logged, 500)", (_label, make) => {
    expect(isStoreUnavailable(make())).toBe(false);
    expect(asProblem(make())).toBeNull();
  });
});

/** `env.DB` whose statements matching `sql` (all by default) and batches fail like a locked D1. */
function lockedD1(make: () => Error = d1Busy, sql: RegExp = /./): D1Database {
  const fail = async () => {
    throw make();
  };
  const statement: object = new Proxy(
    {},
    { get: (_target, prop) => (prop === "then" ? undefined : prop === "bind" ? () => statement : fail) },
  );
  return new Proxy(env.DB, {
    get(target, prop) {
      if (prop === "prepare") return (query: string) => (sql.test(query) ? statement : target.prepare(query));
      if (prop === "batch" || prop === "exec") return fail;
      const value: unknown = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

/** Calls the app with a modified env, collecting what it logs. */
async function send(path: string, init: RequestInit, bindings: Partial<Env>) {
  const ctx = createExecutionContext();
  const res = await app.fetch(new Request(`http://edgepulse.test${path}`, init), { ...env, ...bindings }, ctx);
  await waitOnExecutionContext(ctx);
  return res;
}

describe("routes answer 503 + Retry-After when the store is busy", () => {
  afterEach(() => vi.restoreAllMocks());

  const logs = () => {
    const lines: { level: string; line: string }[] = [];
    for (const level of ["log", "warn", "error"] as const) {
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
        lines.push({ level, line: args.map(String).join(" ") });
      });
    }
    return lines;
  };

  const expectStoreUnavailable = async (res: Response, lines: { level: string; line: string }[]) => {
    const problem = await expectProblem(res, 503);
    expect(problem.type).toBe("https://edgepulse.dev/problems/store-unavailable");
    expect(Number(res.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);
    expect(lines.some(({ line }) => line.includes("unhandled error"))).toBe(false);
    expect(lines.some(({ level, line }) => level === "warn" && line.includes("store unavailable"))).toBe(true);
  };

  it("GET /v1/products while D1 is locked", async () => {
    const lines = logs();
    await expectStoreUnavailable(await send("/v1/products", {}, { DB: lockedD1() }), lines);
  });

  it("POST /v1/orders (behind the idempotency wrapper) while D1 is locked", async () => {
    const token = await tokenFor(`busy-${crypto.randomUUID()}`);
    const lines = logs();
    const res = await send(
      "/v1/orders",
      {
        method: "POST",
        headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json", "Idempotency-Key": "busy-1" },
        body: JSON.stringify({
          cartId: crypto.randomUUID(),
          payment: { method: "card", cardNumber: "4242424242424242" },
          shippingAddress: { name: "B", line1: "1 St", city: "Lisbon", postalCode: "1100-001", country: "PT" },
        }),
      },
      // The token's revocation check still reads D1; the idempotency key's write hits the lock.
      { DB: lockedD1(d1CommitLost, /idempotency_keys/) },
    );
    await expectStoreUnavailable(res, lines);
  });

  it("POST /v1/carts while the cart's Durable Object is overloaded", async () => {
    const token = await tokenFor(`busy-${crypto.randomUUID()}`);
    const overloadedStub = new Proxy(
      {},
      { get: (_t, prop) => (prop === "then" ? undefined : () => Promise.reject(doOverloaded())) },
    );
    const CART = new Proxy(env.CART, {
      get(target, prop) {
        if (prop === "getByName" || prop === "get") return () => overloadedStub;
        const value: unknown = Reflect.get(target, prop);
        return typeof value === "function" ? value.bind(target) : value;
      },
    });
    const lines = logs();
    const res = await send("/v1/carts", { method: "POST", headers: { Authorization: `Bearer ${token}` } }, { CART });
    await expectStoreUnavailable(res, lines);
  });
});

describe("/ready", () => {
  it("is 200 with every check ok, and 503 while a migration the code expects is not applied", async () => {
    const ready = await call("/ready");
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: "ready", checks: { d1: "ok", migrations: "ok" } });

    const last = await env.DB.prepare("SELECT id, name, applied_at FROM d1_migrations ORDER BY id DESC LIMIT 1").first<{
      id: number;
      name: string;
      applied_at: string;
    }>();
    expect(last).not.toBeNull();
    await env.DB.prepare("DELETE FROM d1_migrations WHERE id = ?").bind(last!.id).run();
    try {
      vi.spyOn(console, "error").mockImplementation(() => {});
      const behind = await call("/ready");
      expect(behind.status).toBe(503);
      expect(await behind.json()).toMatchObject({
        status: "unavailable",
        checks: { d1: "ok", migrations: "failed", durableObjects: "ok" },
      });
    } finally {
      vi.restoreAllMocks();
      await env.DB.prepare("INSERT INTO d1_migrations (id, name, applied_at) VALUES (?, ?, ?)")
        .bind(last!.id, last!.name, last!.applied_at)
        .run();
    }
    expect((await call("/ready")).status).toBe(200);
  });

  it("is 503 on a D1 that has no migrations at all", async () => {
    vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const fresh = new Proxy(env.DB, {
        get(target, prop) {
          // A fresh database: wrangler's migrations table does not exist yet.
          if (prop === "prepare")
            return (sql: string) => target.prepare(sql.replaceAll("d1_migrations", "d1_migrations_never_created"));
          const value: unknown = Reflect.get(target, prop);
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
      const res = await send("/ready", {}, { DB: fresh });
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ status: "unavailable", checks: { d1: "ok", migrations: "failed" } });
    } finally {
      vi.restoreAllMocks();
    }
  });
});
