import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { TokenPair } from "../contracts/identity";
import { Problem } from "../contracts/problem";
import { currentTotp } from "../domain/identity/totp";
import { app } from "../workers/app";
import { call, login, registerUser, signIn, tokenFor, uniqueEmail } from "./helpers";

const countRows = async (sql: string, ...args: unknown[]) =>
  (await env.DB.prepare(sql)
    .bind(...args)
    .first<{ n: number }>())!.n;

describe("register", () => {
  // Issue 9, finding 7: a known email used to get 409, which told anyone which addresses have
  // accounts. It now gets the same 201 and body shape as a new one, and its owner gets an email.
  it("creates a customer with a normalized email; the same address in any case gets the same answer and creates nothing", async () => {
    const res = await call("/v1/auth/register", {
      method: "POST",
      json: { email: "  Mixed.Case@Example.COM ", password: "correct horse battery", name: "  Ada  " },
    });
    expect(res.status).toBe(201);
    const { user } = await res.json<{ user: { id: string; email: string; name: string; roles: string[] } }>();
    expect(user).toMatchObject({ email: "mixed.case@example.com", name: "Ada", roles: ["customer"] });
    expect(user.id).toBeTruthy();

    const again = await call("/v1/auth/register", {
      method: "POST",
      json: { email: "MIXED.CASE@example.com", password: "another password", name: "Eve" },
    });
    expect(again.status).toBe(201);
    expect(again.headers.get("Content-Type")).toBe(res.headers.get("Content-Type"));
    const echoed = (await again.json<{ user: typeof user }>()).user;
    expect(Object.keys(echoed).sort()).toEqual(Object.keys(user).sort());
    expect(echoed).toMatchObject({ email: "mixed.case@example.com", name: "Eve", roles: ["customer"] });
    expect(echoed.id).not.toBe(user.id);
    expect(await countRows("select count(*) as n from users where email = ?", "mixed.case@example.com")).toBe(1);
    expect(await countRows("select count(*) as n from users where id = ?", echoed.id)).toBe(0);
  });

  it("lets exactly one of several concurrent registrations of one email create the account; all get 201", async () => {
    const email = uniqueEmail();
    const results = await Promise.all(
      Array.from({ length: 4 }, (_, i) =>
        call("/v1/auth/register", {
          method: "POST",
          json: { email, password: "correct horse battery", name: `R${i}` },
        }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual([201, 201, 201, 201]);
    expect(await countRows("select count(*) as n from users where email = ?", email)).toBe(1);
  });

  it("stores a salted PBKDF2 hash with its parameters, never the password", async () => {
    const a = await registerUser(uniqueEmail(), "same password here");
    const b = await registerUser(uniqueEmail(), "same password here");
    const rows = await env.DB.prepare("select password_hash as h from users where id in (?, ?)")
      .bind(a.user.id, b.user.id)
      .all<{ h: string }>();
    const [h1, h2] = rows.results.map((r) => r.h);
    expect(h1).toMatch(/^pbkdf2-sha256\$100000\$[\w-]{22}\$[\w-]{43}$/);
    expect(h1).not.toBe(h2);
    expect(h1).not.toContain("same password");
  });
});

describe("login", () => {
  it("returns a Bearer pair whose access token works on /v1/users/me", async () => {
    const { email, tokens } = await signIn();
    expect(tokens.tokenType).toBe("Bearer");
    expect(tokens.expiresIn).toBe(900);
    expect(tokens.refreshToken).toMatch(/^[\w-]{43}$/);
    const me = await call("/v1/users/me", { token: tokens.accessToken });
    expect(me.status).toBe(200);
    const body = await me.json<Record<string, unknown>>();
    expect(body).toMatchObject({ email, name: "Test User", roles: ["customer"], mfaEnabled: false });
    expect(typeof body.createdAt).toBe("string");
    expect(body).not.toHaveProperty("passwordHash");
  });

  it("accepts the email in any case and refuses a wrong password or unknown account alike with 401", async () => {
    const { email, password } = await registerUser();
    expect((await login(email.toUpperCase(), password)).status).toBe(200);
    const wrong = await login(email, "not the password");
    const unknown = await login(`nobody-${email}`, password);
    for (const res of [wrong, unknown]) {
      expect(res.status).toBe(401);
      expect(res.headers.get("WWW-Authenticate")).toMatch(/^Bearer/);
      expect(Problem.parse(await res.json()).detail).toBe("Wrong email or password");
    }
  });

  it("answers 401 without a token on /me, and with WWW-Authenticate", async () => {
    const res = await call("/v1/users/me");
    expect(res.status).toBe(401);
    expect(res.headers.get("WWW-Authenticate")).toMatch(/^Bearer/);
  });
});

describe("refresh", () => {
  it("rotates: the new pair works, the old refresh token is spent, and replaying it revokes the family", async () => {
    const { tokens } = await signIn();
    const first = await call("/v1/auth/refresh", { method: "POST", json: { refreshToken: tokens.refreshToken } });
    expect(first.status).toBe(200);
    const rotated = TokenPair.parse(await first.json());
    expect(rotated.refreshToken).not.toBe(tokens.refreshToken);
    expect((await call("/v1/users/me", { token: rotated.accessToken })).status).toBe(200);

    // The stored form is a hash: the raw token is nowhere in D1.
    expect(await countRows("select count(*) as n from refresh_tokens where token_hash = ?", rotated.refreshToken)).toBe(
      0,
    );

    const replay = await call("/v1/auth/refresh", { method: "POST", json: { refreshToken: tokens.refreshToken } });
    expect(replay.status).toBe(401);
    // Reuse revoked the family: the newest refresh token and the access tokens from it are dead too.
    const next = await call("/v1/auth/refresh", { method: "POST", json: { refreshToken: rotated.refreshToken } });
    expect(next.status).toBe(401);
    expect((await call("/v1/users/me", { token: rotated.accessToken })).status).toBe(401);
    expect((await call("/v1/users/me", { token: tokens.accessToken })).status).toBe(401);
  });

  it("refuses unknown and expired refresh tokens", async () => {
    expect((await call("/v1/auth/refresh", { method: "POST", json: { refreshToken: "x".repeat(43) } })).status).toBe(
      401,
    );
    const { id, tokens } = await signIn();
    await env.DB.prepare("update refresh_tokens set expires_at = ? where user_id = ?")
      .bind(Date.now() - 1, id)
      .run();
    expect(
      (await call("/v1/auth/refresh", { method: "POST", json: { refreshToken: tokens.refreshToken } })).status,
    ).toBe(401);
  });

  it("lets one session's reuse leave another login's family alone", async () => {
    const { email, password, tokens } = await signIn();
    const other = TokenPair.parse(await (await login(email, password)).json());
    await call("/v1/auth/refresh", { method: "POST", json: { refreshToken: tokens.refreshToken } });
    await call("/v1/auth/refresh", { method: "POST", json: { refreshToken: tokens.refreshToken } });
    expect((await call("/v1/users/me", { token: other.accessToken })).status).toBe(200);
    expect(
      (await call("/v1/auth/refresh", { method: "POST", json: { refreshToken: other.refreshToken } })).status,
    ).toBe(200);
  });
});

describe("logout", () => {
  it("answers 204 and stops the access token and its refresh family at once", async () => {
    const { tokens } = await signIn();
    const res = await call("/v1/auth/logout", { method: "POST", token: tokens.accessToken });
    expect(res.status).toBe(204);
    expect(await res.text()).toBe("");
    expect((await call("/v1/users/me", { token: tokens.accessToken })).status).toBe(401);
    expect(
      (await call("/v1/auth/refresh", { method: "POST", json: { refreshToken: tokens.refreshToken } })).status,
    ).toBe(401);
    expect((await call("/v1/auth/logout", { method: "POST", token: tokens.accessToken })).status).toBe(401);
  });
});

describe("profile", () => {
  it("PATCH /me updates name and preferences and returns the user", async () => {
    const { tokens } = await signIn();
    const res = await call("/v1/users/me", {
      method: "PATCH",
      token: tokens.accessToken,
      json: { name: "Grace Hopper", preferences: { currency: "EUR", newsletter: true } },
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      name: "Grace Hopper",
      preferences: { currency: "EUR", newsletter: true },
    });
    const me = await (await call("/v1/users/me", { token: tokens.accessToken })).json();
    expect(me).toMatchObject({ name: "Grace Hopper", preferences: { currency: "EUR", newsletter: true } });
  });

  it("DELETE /me erases personal data, revokes every session and frees the email", async () => {
    const { email, password, id, tokens } = await signIn();
    const second = TokenPair.parse(await (await login(email, password)).json());
    const res = await call("/v1/users/me", { method: "DELETE", token: tokens.accessToken, json: { password } });
    expect(res.status).toBe(204);

    const row = await env.DB.prepare("select * from users where id = ?").bind(id).first<Record<string, unknown>>();
    expect(row).toMatchObject({ email: null, name: "", password_hash: null, mfa_secret: null, preferences: "{}" });
    expect(row?.erased_at).toBeTruthy();
    expect(await countRows("select count(*) as n from refresh_tokens where user_id = ?", id)).toBe(0);
    expect(JSON.stringify(row)).not.toContain(email);

    for (const token of [tokens.accessToken, second.accessToken]) {
      expect((await call("/v1/users/me", { token })).status).toBe(401);
    }
    expect(
      (await call("/v1/auth/refresh", { method: "POST", json: { refreshToken: second.refreshToken } })).status,
    ).toBe(401);
    expect((await login(email, password)).status).toBe(401);
    // The address is free again.
    const again = await registerUser(email, "a brand new password");
    expect(again.user.id).not.toBe(id);
  });
});

describe("TOTP MFA", () => {
  it("enrols, activates with a current code, then requires a fresh code at login", async () => {
    const { email, password, tokens } = await signIn();
    const enrol = await call("/v1/users/me/mfa", { method: "POST", token: tokens.accessToken, json: { password } });
    expect(enrol.status).toBe(200);
    const { secret, otpauthUrl } = await enrol.json<{ secret: string; otpauthUrl: string }>();
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(otpauthUrl).toContain(`otpauth://totp/edgepulse:${encodeURIComponent(email)}`);
    expect(otpauthUrl).toContain(`secret=${secret}`);

    // Still off until verified: login needs no code.
    expect((await login(email, password)).status).toBe(200);

    const wrongCode = currentTotp(secret) === "000000" ? "111111" : "000000";
    const bad = await call("/v1/users/me/mfa/verify", {
      method: "POST",
      token: tokens.accessToken,
      json: { code: wrongCode },
    });
    expect(bad.status).toBe(400);
    const verify = await call("/v1/users/me/mfa/verify", {
      method: "POST",
      token: tokens.accessToken,
      json: { code: currentTotp(secret) },
    });
    expect(verify.status).toBe(200);
    expect(await verify.json()).toEqual({ mfaEnabled: true, recoveryCodes: expect.any(Array) });
    expect(
      (await call("/v1/users/me/mfa", { method: "POST", token: tokens.accessToken, json: { password } })).status,
    ).toBe(409);

    const noCode = await login(email, password);
    expect(noCode.status).toBe(401);
    expect(Problem.parse(await noCode.json()).type).toMatch(/mfa-required$/);
    // The code used for activation was consumed: replaying it fails.
    expect((await login(email, password, { extra: { totp: currentTotp(secret) } })).status).toBe(401);
    // A code from the next time step is accepted once (±1 step window), then not again.
    const next = currentTotp(secret, Date.now() + 30_000);
    expect((await login(email, password, { extra: { totp: next } })).status).toBe(200);
    expect((await login(email, password, { extra: { totp: next } })).status).toBe(401);
  });

  it("refuses verify before enrolment with 409", async () => {
    const { tokens } = await signIn();
    const res = await call("/v1/users/me/mfa/verify", {
      method: "POST",
      token: tokens.accessToken,
      json: { code: "123456" },
    });
    expect(res.status).toBe(409);
  });
});

describe("service token, JWKS, RBAC, docs", () => {
  it("trades the service secret for a service-role token and refuses a wrong one", async () => {
    const bad = await call("/v1/auth/service-token", { method: "POST", json: { secret: "test-service-secreT" } });
    expect(bad.status).toBe(401);
    const res = await call("/v1/auth/service-token", { method: "POST", json: { secret: "test-service-secret" } });
    expect(res.status).toBe(200);
    const { accessToken } = await res.json<{ accessToken: string }>();
    const payload = JSON.parse(atob(accessToken.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/")));
    expect(payload).toMatchObject({ sub: "collector-host", roles: ["service"] });
  });

  it("refuses every service secret when none is configured", async () => {
    const ctx = createExecutionContext();
    const res = await app.fetch(
      new Request("http://edgepulse.test/v1/auth/service-token", {
        method: "POST",
        headers: { "Content-Type": "application/json", "CF-Connecting-IP": "192.0.2.77" },
        body: JSON.stringify({ secret: "anything" }),
      }),
      { ...env, SERVICE_TOKEN_SECRET: "" },
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(401);
  });

  it("publishes both verifying public keys with kid and no private parts", async () => {
    const res = await call("/.well-known/jwks.json");
    expect(res.status).toBe(200);
    expect(res.headers.get("Cache-Control")).toBe("public, max-age=300");
    const { keys } = await res.json<{ keys: Record<string, string>[] }>();
    expect(keys.map((k) => k.kid)).toEqual(["test-current", "test-previous"]);
    for (const key of keys) {
      expect(key).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256", use: "sig" });
      expect(key).not.toHaveProperty("d");
    }
  });

  it("admin routes answer 403 to customers, 401 to anonymous callers, and serve admins", async () => {
    const { id, tokens } = await signIn();
    expect((await call(`/v1/admin/users/${id}`)).status).toBe(401);
    const denied = await call(`/v1/admin/users/${id}`, { token: tokens.accessToken });
    expect(denied.status).toBe(403);
    expect(denied.headers.get("Content-Type")).toBe("application/problem+json");
    const admin = await tokenFor("admin-1", ["admin"]);
    const ok = await call(`/v1/admin/users/${id}`, { token: admin });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ id });
    expect((await call("/v1/admin/users/nope", { token: admin })).status).toBe(404);
  });

  it("serves /docs listing the identity routes without any external asset, and documents them in OpenAPI", async () => {
    const res = await call("/docs");
    expect(res.status).toBe(200);
    const html = await res.text();
    for (const path of [
      "/v1/auth/login",
      "/v1/auth/register",
      "/v1/users/me",
      "/v1/users/me/mfa/verify",
      "/.well-known/jwks.json",
    ]) {
      expect(html).toContain(`<code>${path}</code>`);
    }
    const doc = await (await call("/v1/openapi.json")).json<{
      paths: Record<string, object>;
      components: { securitySchemes: object };
    }>();
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining(["/v1/auth/refresh", "/v1/auth/logout", "/v1/auth/service-token", "/v1/admin/users/{id}"]),
    );
    expect(doc.components.securitySchemes).toHaveProperty("bearerAuth");
  });
});
