import {
  createExecutionContext,
  runDurableObjectAlarm,
  runInDurableObject,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { app } from "../workers/app";
import { call, PASSWORD, login as postLogin, registerUser, uniqueEmail } from "./helpers";

// Miniflare simulates the ratelimit binding for real (fixed windows aligned to the clock, counted
// in a Durable Object), so these tests exercise the same code path as production.

/** Runs `fn` again if it straddled a window boundary of the clock-aligned platform limiter. */
async function withinOneWindow(periodSeconds: number, fn: () => Promise<void>) {
  for (let attempt = 0; ; attempt++) {
    const window = Math.floor(Date.now() / 1000 / periodSeconds);
    try {
      await fn();
      return;
    } catch (error) {
      if (attempt > 0 || Math.floor(Date.now() / 1000 / periodSeconds) === window) throw error;
    }
  }
}

const ip = (n: number) => `198.51.100.${n}`;

async function registered() {
  return (await registerUser(uniqueEmail("rl"), PASSWORD, "R")).email;
}

const login = (email: string, password: string, from: string) => postLogin(email, password, { ip: from });

describe("login brute-force guard (exact, per account+IP)", () => {
  it("allows 5 attempts a minute, then 429 with Retry-After and RateLimit headers, even for the right password", async () => {
    const email = await registered();
    for (let i = 0; i < 5; i++) expect((await login(email, "wrong password", ip(1))).status).toBe(401);
    const blocked = await login(email, "correct horse battery", ip(1));
    expect(blocked.status).toBe(429);
    expect(blocked.headers.get("Content-Type")).toBe("application/problem+json");
    const retryAfter = Number(blocked.headers.get("Retry-After"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(blocked.headers.get("RateLimit-Policy")).toBe('"login";q=5;w=60');
    expect(blocked.headers.get("RateLimit")).toBe(`"login";r=0;t=${retryAfter}`);
    // Another address is a different counter; so is another account from the same address.
    expect((await login(email, "correct horse battery", ip(2))).status).toBe(200);
    expect((await login(await registered(), "correct horse battery", ip(1))).status).toBe(200);
  });

  it("counts parallel guesses exactly: 12 at once get 5 tries and 7 refusals", async () => {
    const email = await registered();
    const results = await Promise.all(Array.from({ length: 12 }, () => login(email, "wrong password", ip(3))));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses.filter((s) => s === 401)).toHaveLength(5);
    expect(statuses.filter((s) => s === 429)).toHaveLength(7);
  });

  it("clears the count on success, and guards unknown accounts the same way", async () => {
    const email = await registered();
    for (let i = 0; i < 4; i++) await login(email, "wrong password", ip(4));
    expect((await login(email, "correct horse battery", ip(4))).status).toBe(200);
    for (let i = 0; i < 5; i++) expect((await login(email, "wrong password", ip(4))).status).toBe(401);
    expect((await login(email, "wrong password", ip(4))).status).toBe(429);

    const ghost = `ghost${Date.now()}@example.com`;
    for (let i = 0; i < 5; i++) expect((await login(ghost, "whatever pw", ip(4))).status).toBe(401);
    expect((await login(ghost, "whatever pw", ip(4))).status).toBe(429);
  });

  it("forgets attempts once they leave the window, via its idempotent cleanup alarm", async () => {
    const guard = env.LOGIN_GUARD.getByName(`alarm-test-${Date.now()}`);
    for (let i = 0; i < 5; i++) expect((await guard.begin()).allowed).toBe(true);
    expect((await guard.begin()).allowed).toBe(false);
    // Age the attempts past the window instead of waiting a minute.
    await runInDurableObject(guard, (_obj, state) => {
      state.storage.sql.exec("update attempts set at = at - 61000");
    });
    expect(await runDurableObjectAlarm(guard)).toBe(true);
    expect(await runDurableObjectAlarm(guard)).toBe(false);
    // Issue 9, finding 8: an emptied guard keeps no rows, and no tables either (deleteAll).
    const tables = await runInDurableObject(guard, (_obj, state) =>
      state.storage.sql.exec<{ n: number }>("select count(*) as n from sqlite_master where type = 'table'").one(),
    );
    expect(tables.n).toBe(0);
    const verdict = await guard.begin();
    expect(verdict).toMatchObject({ allowed: true, remaining: 4, limit: 5 });
  });

  it("guards the service-token secret the same way", async () => {
    const attempt = () =>
      call("/v1/auth/service-token", {
        method: "POST",
        json: { secret: "guess" },
        headers: { "CF-Connecting-IP": ip(5) },
      });
    for (let i = 0; i < 5; i++) expect((await attempt()).status).toBe(401);
    expect((await attempt()).status).toBe(429);
  });
});

describe("platform rate-limit bindings", () => {
  it("per-user write limit: 100 writes a minute, then 429 on writes only, for that user only", async () => {
    const email = await registered();
    const { accessToken } = await (await login(email, "correct horse battery", ip(6))).json<{ accessToken: string }>();
    const { id } = await (await call("/v1/users/me", { token: accessToken })).json<{ id: string }>();
    await withinOneWindow(60, async () => {
      // Spend 99 of the user's 100 writes directly on the binding; the 100th goes through the API.
      await Promise.all(Array.from({ length: 99 }, () => env.USER_WRITE_RATE_LIMITER.limit({ key: `user:${id}` })));
      expect((await call("/v1/users/me", { method: "PATCH", token: accessToken, json: { name: "Last" } })).status).toBe(
        200,
      );
      const limited = await call("/v1/users/me", { method: "PATCH", token: accessToken, json: { name: "Over" } });
      expect(limited.status).toBe(429);
      expect(limited.headers.get("RateLimit-Policy")).toBe('"per-user-write";q=100;w=60');
      expect(Number(limited.headers.get("Retry-After"))).toBeGreaterThan(0);
    });
    // Reads are not write-limited, and the rejected write changed nothing.
    const me = await call("/v1/users/me", { token: accessToken });
    expect(me.status).toBe(200);
    expect((await me.json<{ name: string }>()).name).toBe("Last");
  });

  it("per-IP limit on every route: the binding is asked per client address, and a refusal is a 429", async () => {
    // 10,000 real calls to the simulated binding take about a minute here, so the binding's own
    // counting is exercised by the per-user test above; this one pins how the gateway uses it.
    const asked: string[] = [];
    const limiter: RateLimit = {
      limit: async ({ key }) => {
        asked.push(key);
        return { success: key !== `ip:${ip(200)}` };
      },
    };
    const send = async (path: string, from: string) => {
      const ctx = createExecutionContext();
      const res = await app.fetch(
        new Request(`http://edgepulse.test${path}`, { headers: { "CF-Connecting-IP": from } }),
        { ...env, IP_RATE_LIMITER: limiter },
        ctx,
      );
      await waitOnExecutionContext(ctx);
      return res;
    };
    for (const path of ["/health", "/v1/openapi.json", "/v1/users/me", "/.well-known/jwks.json", "/nope"]) {
      const limited = await send(path, ip(200));
      expect(limited.status).toBe(429);
      expect(limited.headers.get("Content-Type")).toBe("application/problem+json");
      expect(limited.headers.get("RateLimit-Policy")).toBe('"per-ip";q=10000;w=60');
      const retryAfter = Number(limited.headers.get("Retry-After"));
      expect(retryAfter).toBeGreaterThan(0);
      expect(retryAfter).toBeLessThanOrEqual(60);
      expect(limited.headers.get("X-Request-Id")).toBeTruthy();
    }
    expect((await send("/health", ip(201))).status).toBe(200);
    expect(asked).toEqual([...Array(5).fill(`ip:${ip(200)}`), `ip:${ip(201)}`]);
  });
});

describe("request logs", () => {
  it("never contain passwords, tokens or emails, across the whole identity flow", async () => {
    const lines: string[] = [];
    const spies = (["log", "info", "warn", "error", "debug"] as const).map((level) =>
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
        lines.push(args.map(String).join(" "));
      }),
    );
    const logging = { ...env, LOG_REQUESTS: "true" };
    const send = async (path: string, init: RequestInit & { json?: unknown; token?: string } = {}) => {
      const headers = new Headers(init.headers);
      if (init.token) headers.set("Authorization", `Bearer ${init.token}`);
      if (init.json !== undefined) headers.set("Content-Type", "application/json");
      const ctx = createExecutionContext();
      const res = await app.fetch(
        new Request(`http://edgepulse.test${path}`, {
          method: init.method,
          headers,
          body: init.json === undefined ? undefined : JSON.stringify(init.json),
        }),
        logging,
        ctx,
      );
      await waitOnExecutionContext(ctx);
      return res;
    };
    try {
      const email = `logs${Date.now()}@example.com`;
      const password = "secret-password-never-logged";
      await send("/v1/auth/register", { method: "POST", json: { email, password, name: "L" } });
      await send("/v1/auth/login", { method: "POST", json: { email, password: "wrong-password-never-logged" } });
      const pair = await (await send("/v1/auth/login", { method: "POST", json: { email, password } })).json<{
        accessToken: string;
        refreshToken: string;
      }>();
      const next = await (
        await send("/v1/auth/refresh", { method: "POST", json: { refreshToken: pair.refreshToken } })
      ).json<{ accessToken: string; refreshToken: string }>();
      await send("/v1/users/me", { token: next.accessToken });
      await send("/v1/auth/service-token", { method: "POST", json: { secret: env.SERVICE_TOKEN_SECRET } });
      await send("/v1/auth/logout", { method: "POST", token: next.accessToken });
      await send("/v1/users/me", { method: "DELETE", token: next.accessToken });

      const all = lines.join("\n");
      expect(lines.filter((l) => l.includes('"msg":"request"')).length).toBeGreaterThanOrEqual(8);
      for (const secret of [
        password,
        "wrong-password-never-logged",
        email,
        pair.accessToken,
        pair.refreshToken,
        next.accessToken,
        next.refreshToken,
        env.SERVICE_TOKEN_SECRET,
      ]) {
        expect(all).not.toContain(secret);
      }
    } finally {
      for (const spy of spies) spy.mockRestore();
    }
  });
});
