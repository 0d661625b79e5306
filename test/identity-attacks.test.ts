import { env } from "cloudflare:workers";
import { importJWK, SignJWT } from "jose";
import { describe, expect, it, vi } from "vitest";
import { base64UrlDecodeText, base64UrlEncodeText } from "../domain/encoding";
import { verifyAccessToken } from "../domain/identity/access-tokens";
import { call, expectProblem, PASSWORD, registerUser, signIn, uniqueEmail } from "./helpers";

const keys = JSON.parse(env.JWT_PRIVATE_KEYS) as { kid: string; privateJwk: Record<string, string> }[];

async function registeredUser() {
  return (await registerUser(uniqueEmail("attack"), PASSWORD, "Target")).user.id;
}

/** A token that would be valid but for whatever `tweak` changes. */
async function forge(
  userId: string,
  tweak: { kid?: string; keyIndex?: number; typ?: string; iss?: string; aud?: string; exp?: number; nbf?: number } = {},
) {
  const key = keys[tweak.keyIndex ?? 0]!;
  const privateKey = await importJWK({ ...key.privateJwk, alg: "ES256" }, "ES256");
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ roles: ["customer"] })
    .setProtectedHeader({ alg: "ES256", kid: tweak.kid ?? key.kid, typ: tweak.typ ?? "at+jwt" })
    .setIssuer(tweak.iss ?? env.JWT_ISSUER)
    .setAudience(tweak.aud ?? env.JWT_AUDIENCE)
    .setSubject(userId)
    .setJti(crypto.randomUUID())
    .setIssuedAt(now)
    .setNotBefore(tweak.nbf ?? now)
    .setExpirationTime(tweak.exp ?? now + 900)
    .sign(privateKey);
}

const me = (token: string) => call("/v1/users/me", { token });

describe("access token attacks → 401", () => {
  it("accepts a correctly forged-by-us token (the baseline the attacks below vary)", async () => {
    const id = await registeredUser();
    expect((await me(await forge(id))).status).toBe(200);
  });

  it("refuses alg none", async () => {
    const id = await registeredUser();
    const [, payload] = (await forge(id)).split(".");
    const header = base64UrlEncodeText(JSON.stringify({ alg: "none", typ: "at+jwt", kid: keys[0]!.kid }));
    for (const token of [`${header}.${payload}.`, `${header}.${payload}.AAAA`]) {
      const res = await me(token);
      expect(res.status).toBe(401);
      expect(res.headers.get("WWW-Authenticate")).toMatch(/^Bearer/);
    }
  });

  it("refuses HS256 signed with the public key (algorithm confusion)", async () => {
    const id = await registeredUser();
    const { d: _d, ...publicJwk } = keys[0]!.privateJwk;
    const jwks = await (await call("/.well-known/jwks.json")).text();
    for (const secretText of [JSON.stringify(publicJwk), jwks]) {
      const now = Math.floor(Date.now() / 1000);
      const token = await new SignJWT({ roles: ["admin"] })
        .setProtectedHeader({ alg: "HS256", kid: keys[0]!.kid, typ: "at+jwt" })
        .setIssuer(env.JWT_ISSUER)
        .setAudience(env.JWT_AUDIENCE)
        .setSubject(id)
        .setJti(crypto.randomUUID())
        .setIssuedAt(now)
        .setExpirationTime(now + 900)
        .sign(new TextEncoder().encode(secretText));
      expect((await me(token)).status).toBe(401);
    }
  });

  it("refuses expired and not-yet-valid tokens (beyond the 5 s clock tolerance)", async () => {
    const id = await registeredUser();
    const now = Math.floor(Date.now() / 1000);
    expect((await me(await forge(id, { exp: now - 30 }))).status).toBe(401);
    expect((await me(await forge(id, { nbf: now + 120 }))).status).toBe(401);
  });

  it("stops accepting a token once it expires, even after it was verified (and remembered) before", async () => {
    const id = await registeredUser();
    const now = Math.floor(Date.now() / 1000);
    const token = await forge(id, { exp: now + 60 });
    expect(await verifyAccessToken(env, token)).not.toBeNull();
    expect(await verifyAccessToken(env, token)).not.toBeNull();
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime((now + 120) * 1000);
      expect(await verifyAccessToken(env, token)).toBeNull();
    } finally {
      vi.useRealTimers();
    }
  });

  it("refuses wrong iss, aud and typ", async () => {
    const id = await registeredUser();
    expect((await me(await forge(id, { iss: "https://evil.example" }))).status).toBe(401);
    expect((await me(await forge(id, { aud: "another-api" }))).status).toBe(401);
    expect((await me(await forge(id, { typ: "JWT" }))).status).toBe(401);
  });

  it("refuses a tampered payload (roles escalated after signing)", async () => {
    const id = await registeredUser();
    const [header, payload, signature] = (await forge(id)).split(".");
    const claims = JSON.parse(base64UrlDecodeText(payload!));
    claims.roles = ["admin"];
    const tampered = `${header}.${base64UrlEncodeText(JSON.stringify(claims))}.${signature}`;
    expect((await me(tampered)).status).toBe(401);
    expect((await call(`/v1/admin/users/${id}`, { token: tampered })).status).toBe(401);
  });

  it("refuses an unknown kid, and a real key under another key's kid", async () => {
    const id = await registeredUser();
    expect((await me(await forge(id, { kid: "no-such-key" }))).status).toBe(401);
    expect((await me(await forge(id, { keyIndex: 1, kid: keys[0]!.kid }))).status).toBe(401);
  });

  it("rotation: the second key still verifies; once retired from the secret its tokens do not", async () => {
    const id = await registeredUser();
    const byPrevious = await forge(id, { keyIndex: 1 });
    expect((await me(byPrevious)).status).toBe(200);
    const retired = { ...env, JWT_PRIVATE_KEYS: JSON.stringify([keys[0]]) };
    expect(await verifyAccessToken(retired, byPrevious)).toBeNull();
    expect(await verifyAccessToken(retired, await forge(id))).not.toBeNull();
  });

  it("refuses revoked tokens and garbage Authorization headers", async () => {
    const { accessToken } = (await signIn()).tokens;
    await call("/v1/auth/logout", { method: "POST", token: accessToken });
    expect((await me(accessToken)).status).toBe(401);
    for (const header of [
      "Bearer",
      "Basic dXNlcjpwYXNz",
      `Bearer ${"a".repeat(5000)}`,
      "Bearer a.b.c",
      "Bearer !!!!!!!!!!!!!!!",
    ]) {
      expect((await call("/v1/users/me", { headers: { Authorization: header } })).status).toBe(401);
    }
  });
});

const userCount = async () => (await env.DB.prepare("select count(*) as n from users").first<{ n: number }>())!.n;

describe("bad input → 4xx problem+json, nothing written", () => {
  const register = (body: BodyInit, headers: Record<string, string> = { "Content-Type": "application/json" }) =>
    call("/v1/auth/register", { method: "POST", body, headers });

  it("malformed JSON, wrong types, unknown fields, missing fields", async () => {
    const before = await userCount();
    await expectProblem(await register('{"email": "a@b.co", "password": '), 400);
    const wrongTypes = await expectProblem(
      await register(JSON.stringify({ email: 42, password: ["x"], name: {} })),
      400,
    );
    expect([...new Set(wrongTypes.errors?.map((e) => e.path))].sort()).toEqual(["email", "name", "password"]);
    const unknown = await expectProblem(
      await register(
        JSON.stringify({ email: "x@example.com", password: "long enough pw", name: "X", roles: ["admin"] }),
      ),
      400,
    );
    expect(JSON.stringify(unknown.errors)).toContain("roles");
    await expectProblem(await register(JSON.stringify({ email: "x@example.com" })), 400);
    await expectProblem(await register("[]"), 400);
    await expectProblem(await register("null"), 400);
    await expectProblem(await call("/v1/auth/register", { method: "POST" }), 400);
    expect(await userCount()).toBe(before);
  });

  it("oversized bodies (413) and wrong content types (415)", async () => {
    const before = await userCount();
    const huge = JSON.stringify({ email: "big@example.com", password: "long enough pw", name: "x".repeat(70_000) });
    await expectProblem(await register(huge), 413);
    const body = JSON.stringify({ email: "ct@example.com", password: "long enough pw", name: "CT" });
    await expectProblem(await register(body, { "Content-Type": "text/plain" }), 415);
    await expectProblem(
      await register("email=a&password=b", { "Content-Type": "application/x-www-form-urlencoded" }),
      415,
    );
    expect(await userCount()).toBe(before);
  });

  it("huge strings within the body limit and unicode edge cases", async () => {
    const before = await userCount();
    const base = { email: "uni@example.com", password: "long enough pw", name: "Ok" };
    const bad = [
      { ...base, name: "n".repeat(10_000) },
      { ...base, password: "p".repeat(5_000) },
      { ...base, email: `${"e".repeat(300)}@example.com` },
      { ...base, name: "\ud800lone surrogate" },
      { ...base, password: "surrogate \udfff pw" },
      { ...base, name: "evil\u202Egnp.exe" },
      { ...base, name: "nul\u0000byte" },
      { ...base, name: "   " },
      { ...base, email: "用户@例子.测试" },
      { ...base, email: "not-an-email" },
      { ...base, password: "short" },
    ];
    for (const body of bad) await expectProblem(await register(JSON.stringify(body)), 400);
    expect(await userCount()).toBe(before);

    // Legitimate unicode is fine and stored NFC-normalized.
    const ok = await register(JSON.stringify({ ...base, name: "Zoe\u0308 👩🏽‍💻 李" }));
    expect(ok.status).toBe(201);
    expect((await ok.json<{ user: { name: string } }>()).user.name).toBe("Zoë 👩🏽‍💻 李");
  });

  it("full-width or decomposed password input logs in with its NFKC equivalent", async () => {
    const email = `nfkc${Date.now()}@example.com`;
    await register(JSON.stringify({ email, password: "ｐａｓｓｗｏｒｄ１２", name: "W" }));
    const res = await call("/v1/auth/login", { method: "POST", json: { email, password: "password12" } });
    expect(res.status).toBe(200);
  });

  it("PATCH /me refuses unknown fields, nested preferences and bad names, changing nothing", async () => {
    const email = `patch${Date.now()}@example.com`;
    await register(JSON.stringify({ email, password: "correct horse battery", name: "Before" }));
    const { accessToken } = await (
      await call("/v1/auth/login", { method: "POST", json: { email, password: "correct horse battery" } })
    ).json<{ accessToken: string }>();
    for (const json of [
      { name: "After", roles: ["admin"] },
      { email: "other@example.com" },
      { preferences: { nested: { deep: true } } },
      { preferences: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, i])) },
      { name: "" },
      { name: 7 },
    ]) {
      await expectProblem(await call("/v1/users/me", { method: "PATCH", token: accessToken, json }), 400);
    }
    const user = await (await call("/v1/users/me", { token: accessToken })).json<{ name: string; roles: string[] }>();
    expect(user).toMatchObject({ name: "Before", roles: ["customer"], email });
  });

  it("login, refresh, MFA verify and service-token validate their bodies too", async () => {
    await expectProblem(await call("/v1/auth/login", { method: "POST", json: { email: "a@b.co" } }), 400);
    await expectProblem(
      await call("/v1/auth/login", { method: "POST", json: { email: "a@b.co", password: "x", totp: "12345" } }),
      400,
    );
    await expectProblem(await call("/v1/auth/refresh", { method: "POST", json: { refreshToken: 123 } }), 400);
    await expectProblem(
      await call("/v1/auth/refresh", { method: "POST", json: { refreshToken: "x".repeat(600) } }),
      400,
    );
    await expectProblem(await call("/v1/auth/service-token", { method: "POST", json: { secret: "" } }), 400);
    await expectProblem(await call("/v1/auth/service-token", { method: "POST", json: { secret: "s", extra: 1 } }), 400);
  });
});
