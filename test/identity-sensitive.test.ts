import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { MfaActivated, MfaEnrolment, RecoveryCodes, TokenPair, User } from "../contracts/identity";
import { requestPasswordReset } from "../domain/identity/password-reset";
import { SESSION_MAX_AGE_MS } from "../domain/identity/refresh-tokens";
import { currentTotp } from "../domain/identity/totp";
import { call, expectProblem, login, signIn, tokenFor } from "./helpers";

// Issue 9, findings 4 and 14. Each case plays the attacker first: someone holding only a stolen
// access token (or an old refresh token, or a copy of the users table) must get nowhere.

const DAY = 24 * 60 * 60 * 1000;
const me = (token: string) => call("/v1/users/me", { token });
const refresh = (refreshToken: string) => call("/v1/auth/refresh", { method: "POST", json: { refreshToken } });
const userRow = (id: string) =>
  env.DB.prepare("select * from users where id = ?").bind(id).first<Record<string, string | number | null>>();

/** A signed-in user with MFA on: its TOTP secret, recovery codes and the time step already spent. */
async function signInWithMfa() {
  const user = await signIn();
  const token = user.tokens.accessToken;
  const enrol = await call("/v1/users/me/mfa", { method: "POST", token, json: { password: user.password } });
  expect(enrol.status).toBe(200);
  const { secret } = MfaEnrolment.parse(await enrol.json());
  const verify = await call("/v1/users/me/mfa/verify", { method: "POST", token, json: { code: currentTotp(secret) } });
  expect(verify.status).toBe(200);
  const { recoveryCodes } = MfaActivated.parse(await verify.json());
  // Activation spent the current step; later proofs use the next one (accepted within ±1 step).
  let step = 0;
  const nextTotp = () => currentTotp(secret, Date.now() + ++step * 30_000);
  return { ...user, token, secret, recoveryCodes, nextTotp };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("a stolen access token alone cannot take over or destroy the account", () => {
  it("cannot enrol MFA: no body is 400, a wrong password 403 wrong-password, and nothing is stored", async () => {
    const { id, password, tokens } = await signIn();
    await expectProblem(await call("/v1/users/me/mfa", { method: "POST", token: tokens.accessToken }), 400);
    const wrong = await call("/v1/users/me/mfa", {
      method: "POST",
      token: tokens.accessToken,
      json: { password: `${password}!` },
    });
    expect((await expectProblem(wrong, 403)).type).toMatch(/\/wrong-password$/);
    expect((await userRow(id))?.mfa_pending_secret).toBeNull();
  });

  it("cannot erase the account without the password, nor without the TOTP code once MFA is on", async () => {
    const plain = await signIn();
    await expectProblem(await call("/v1/users/me", { method: "DELETE", token: plain.tokens.accessToken }), 400);
    const guessed = await call("/v1/users/me", {
      method: "DELETE",
      token: plain.tokens.accessToken,
      json: { password: "hunter22hunter22" },
    });
    expect((await expectProblem(guessed, 403)).type).toMatch(/\/wrong-password$/);
    expect((await me(plain.tokens.accessToken)).status).toBe(200);
    expect((await userRow(plain.id))?.erased_at).toBeNull();

    // Password phished too, but MFA is on: still refused without a code.
    const guarded = await signInWithMfa();
    const noCode = await call("/v1/users/me", {
      method: "DELETE",
      token: guarded.token,
      json: { password: guarded.password },
    });
    expect((await expectProblem(noCode, 403)).type).toMatch(/\/mfa-required$/);
    const badCode = await call("/v1/users/me", {
      method: "DELETE",
      token: guarded.token,
      json: { password: guarded.password, totp: currentTotp(guarded.secret) === "000000" ? "111111" : "000000" },
    });
    expect((await expectProblem(badCode, 403)).type).toMatch(/\/invalid-totp$/);
    expect((await userRow(guarded.id))?.erased_at).toBeNull();

    const erased = await call("/v1/users/me", {
      method: "DELETE",
      token: guarded.token,
      json: { password: guarded.password, totp: guarded.nextTotp() },
    });
    expect(erased.status).toBe(204);
    expect(await userRow(guarded.id)).toMatchObject({ mfa_secret: null, email: null });
    const codes = await env.DB.prepare("select count(*) as n from mfa_recovery_codes where user_id = ?")
      .bind(guarded.id)
      .first<{ n: number }>();
    expect(codes?.n).toBe(0);
  });

  it("cannot turn MFA off without password and a second factor; the owner can, with a recovery code", async () => {
    const user = await signInWithMfa();
    const tokenOnly = await call("/v1/users/me/mfa", { method: "DELETE", token: user.token });
    await expectProblem(tokenOnly, 400);
    const passwordOnly = await call("/v1/users/me/mfa", {
      method: "DELETE",
      token: user.token,
      json: { password: user.password },
    });
    expect((await expectProblem(passwordOnly, 403)).type).toMatch(/\/mfa-required$/);
    expect(User.parse(await (await me(user.token)).json()).mfaEnabled).toBe(true);
    expect((await login(user.email, user.password)).status).toBe(401);

    const off = await call("/v1/users/me/mfa", {
      method: "DELETE",
      token: user.token,
      json: { password: user.password, recoveryCode: user.recoveryCodes[0]!.toUpperCase() },
    });
    expect(off.status).toBe(200);
    expect(await off.json()).toEqual({ mfaEnabled: false });
    expect(await userRow(user.id)).toMatchObject({ mfa_secret: null, mfa_pending_secret: null });
    expect((await login(user.email, user.password)).status).toBe(200);
    await expectProblem(
      await call("/v1/users/me/mfa", { method: "DELETE", token: user.token, json: { password: user.password } }),
      409,
    );
  });

  it("cannot change the password without the current one; a change ends every other session", async () => {
    const { email, password, tokens } = await signIn();
    const other = TokenPair.parse(await (await login(email, password)).json());
    const newPassword = "a completely new passphrase";
    const stolen = await call("/v1/users/me/password", {
      method: "POST",
      token: other.accessToken,
      json: { currentPassword: "not the password", newPassword },
    });
    expect((await expectProblem(stolen, 403)).type).toMatch(/\/wrong-password$/);
    expect((await login(email, password)).status).toBe(200);
    expect((await login(email, newPassword)).status).toBe(401);

    const changed = await call("/v1/users/me/password", {
      method: "POST",
      token: tokens.accessToken,
      json: { currentPassword: password, newPassword },
    });
    expect(changed.status).toBe(204);
    // The calling session stays; the other one (and its refresh family) is gone.
    expect((await me(tokens.accessToken)).status).toBe(200);
    expect((await refresh(tokens.refreshToken)).status).toBe(200);
    expect((await me(other.accessToken)).status).toBe(401);
    expect((await refresh(other.refreshToken)).status).toBe(401);
    expect((await login(email, password)).status).toBe(401);
    expect((await login(email, newPassword)).status).toBe(200);
  });

  it("counts wrong step-up passwords against the account, so a stolen token is no password oracle", async () => {
    const { password, tokens } = await signIn();
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const res = await call("/v1/users/me/mfa", {
        method: "POST",
        token: tokens.accessToken,
        json: { password: `guess-${i}-${password}` },
      });
      statuses.push(res.status);
      await res.body?.cancel();
    }
    expect(statuses).toContain(429);
    expect(statuses.filter((s) => s === 403).length).toBeLessThanOrEqual(10);
  });
});

describe("MFA recovery codes", () => {
  it("are ten, stored hashed, each replaces a TOTP code at login once, and regenerating needs password + TOTP", async () => {
    const user = await signInWithMfa();
    expect(user.recoveryCodes).toHaveLength(10);
    expect(new Set(user.recoveryCodes).size).toBe(10);
    const stored = await env.DB.prepare("select code_hash from mfa_recovery_codes where user_id = ?")
      .bind(user.id)
      .all<{ code_hash: string }>();
    expect(stored.results).toHaveLength(10);
    const dump = JSON.stringify(stored.results);
    for (const code of user.recoveryCodes) expect(dump).not.toContain(code.replaceAll("-", "").slice(0, 8));

    const [first, second] = user.recoveryCodes as [string, string];
    expect((await login(user.email, user.password, { extra: { recoveryCode: first } })).status).toBe(200);
    const replay = await login(user.email, user.password, { extra: { recoveryCode: first } });
    expect((await expectProblem(replay, 401)).type).toMatch(/\/invalid-totp$/);

    const tokenOnly = await call("/v1/users/me/mfa/recovery-codes", {
      method: "POST",
      token: user.token,
      json: { password: user.password },
    });
    expect((await expectProblem(tokenOnly, 403)).type).toMatch(/\/mfa-required$/);
    const regenerated = await call("/v1/users/me/mfa/recovery-codes", {
      method: "POST",
      token: user.token,
      json: { password: user.password, totp: user.nextTotp() },
    });
    expect(regenerated.status).toBe(200);
    const { recoveryCodes } = RecoveryCodes.parse(await regenerated.json());
    expect(recoveryCodes).toHaveLength(10);
    // Unused old codes stop working; the new ones work.
    expect((await login(user.email, user.password, { extra: { recoveryCode: second } })).status).toBe(401);
    expect((await login(user.email, user.password, { extra: { recoveryCode: recoveryCodes[0] } })).status).toBe(200);
  });
});

describe("password reset by email", () => {
  const resetEmails = (userId: string) =>
    env.DB.prepare("select body from notifications where user_id = ? and kind = 'password_reset' order by created_at")
      .bind(userId)
      .all<{ body: string }>()
      .then((r) => r.results.map((row) => /Reset token[^:]*: (\S+)/.exec(row.body)?.[1]));
  const requestReset = (email: string) => call("/v1/auth/password-reset", { method: "POST", json: { email } });
  const confirm = (token: string, newPassword: string) =>
    call("/v1/auth/password-reset/confirm", { method: "POST", json: { token, newPassword } });

  it("answers 202 alike for unknown and known addresses, mails a token stored only hashed", async () => {
    const unknown = await requestReset(`nobody-${crypto.randomUUID()}@example.com`);
    expect(unknown.status).toBe(202);
    expect(await unknown.text()).toBe("");
    const { email, id } = await signIn();
    const known = await requestReset(email);
    expect(known.status).toBe(202);
    expect(await known.text()).toBe("");
    await expect.poll(async () => (await resetEmails(id)).length).toBe(1);
    const [token] = await resetEmails(id);
    expect(token).toMatch(/^[\w-]{43}$/);
    const rows = await env.DB.prepare("select * from password_reset_tokens where user_id = ?").bind(id).all();
    expect(rows.results).toHaveLength(1);
    expect(JSON.stringify(rows.results)).not.toContain(token);
    // A second request within the minute sends nothing more (no inbox flooding). Called directly,
    // so the check waits for the work the route defers until after its answer.
    expect((await requestReset(email)).status).toBe(202);
    await requestPasswordReset(env, email);
    expect(await resetEmails(id)).toHaveLength(1);
  });

  it("sets the new password, ends every session, and the token works only once", async () => {
    const { email, id, password, tokens } = await signIn();
    expect((await requestReset(email)).status).toBe(202);
    await expect.poll(async () => (await resetEmails(id)).length).toBe(1);
    const [token] = (await resetEmails(id)) as [string];

    const newPassword = "reset to something new";
    expect((await confirm(token, newPassword)).status).toBe(204);
    expect((await me(tokens.accessToken)).status).toBe(401);
    expect((await refresh(tokens.refreshToken)).status).toBe(401);
    expect((await login(email, password)).status).toBe(401);
    const fresh = await login(email, newPassword);
    expect(fresh.status).toBe(200);
    // Signing in again right after the reset works: only the old sessions were revoked.
    expect((await me(TokenPair.parse(await fresh.json()).accessToken)).status).toBe(200);

    const replay = await confirm(token, "the attacker's password");
    expect((await expectProblem(replay, 400)).type).toMatch(/\/invalid-reset-token$/);
    expect((await login(email, newPassword)).status).toBe(200);
  });

  it("refuses a token after 30 minutes", async () => {
    const { email, id, password } = await signIn();
    expect((await requestReset(email)).status).toBe(202);
    await expect.poll(async () => (await resetEmails(id)).length).toBe(1);
    const [token] = (await resetEmails(id)) as [string];
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() + 31 * 60 * 1000 });
    expect((await expectProblem(await confirm(token, "too late for this one"), 400)).type).toMatch(
      /\/invalid-reset-token$/,
    );
    vi.useRealTimers();
    expect((await login(email, password)).status).toBe(200);
  });
});

describe("sessions", () => {
  it("log out everywhere revokes every refresh family and access token of the user, not the next login", async () => {
    const { email, password, tokens } = await signIn();
    const other = TokenPair.parse(await (await login(email, password)).json());
    const res = await call("/v1/auth/logout-all", { method: "POST", token: tokens.accessToken });
    expect(res.status).toBe(204);
    for (const pair of [tokens, other]) {
      expect((await me(pair.accessToken)).status).toBe(401);
      expect((await refresh(pair.refreshToken)).status).toBe(401);
    }
    const again = TokenPair.parse(await (await login(email, password)).json());
    expect((await me(again.accessToken)).status).toBe(200);
  });

  it("refresh families end 30 days after login however often they rotate", async () => {
    const { tokens } = await signIn();
    const start = Date.now();
    let refreshToken = tokens.refreshToken;
    // Rotating every 6 days keeps each token inside its 7-day idle limit...
    for (const day of [6, 12, 18, 24, 29]) {
      vi.useFakeTimers({ toFake: ["Date"], now: start + day * DAY });
      const res = await refresh(refreshToken);
      expect(res.status, `day ${day}`).toBe(200);
      refreshToken = TokenPair.parse(await res.json()).refreshToken;
    }
    // ...but not past the session's absolute lifetime.
    vi.setSystemTime(start + SESSION_MAX_AGE_MS + 60_000);
    await expectProblem(await refresh(refreshToken), 401);
  });
});

describe("TOTP secrets at rest (finding 14)", () => {
  it("D1 holds the pending and the active secret only sealed (AES-GCM), never the base32 secret", async () => {
    const user = await signIn();
    const enrol = await call("/v1/users/me/mfa", {
      method: "POST",
      token: user.tokens.accessToken,
      json: { password: user.password },
    });
    const { secret } = MfaEnrolment.parse(await enrol.json());
    const pending = String((await userRow(user.id))?.mfa_pending_secret);
    expect(pending).toMatch(/^aesgcm\$[0-9a-f]{8}\$/);
    expect(pending).not.toContain(secret);
    const verify = await call("/v1/users/me/mfa/verify", {
      method: "POST",
      token: user.tokens.accessToken,
      json: { code: currentTotp(secret) },
    });
    expect(verify.status).toBe(200);
    const row = await userRow(user.id);
    expect(String(row?.mfa_secret)).toMatch(/^aesgcm\$[0-9a-f]{8}\$/);
    expect(JSON.stringify(row)).not.toContain(secret);
  });

  it("a secret stored in plaintext before encryption still works and is sealed on its next use", async () => {
    const { id, email, password } = await signIn();
    const secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    await env.DB.prepare("update users set mfa_secret = ? where id = ?").bind(secret, id).run();
    expect((await login(email, password, { extra: { totp: currentTotp(secret) } })).status).toBe(200);
    const sealed = String((await userRow(id))?.mfa_secret);
    expect(sealed).toMatch(/^aesgcm\$/);
    expect(sealed).not.toContain(secret);
    expect((await login(email, password, { extra: { totp: currentTotp(secret, Date.now() + 30_000) } })).status).toBe(
      200,
    );
  });
});

describe("role change (finding 14)", () => {
  it("refuses the account's old access and refresh tokens; the next login carries the new roles", async () => {
    const { email, password, id, tokens } = await signIn();
    const admin = await tokenFor("roles-admin", ["admin"]);
    await expectProblem(
      await call(`/v1/admin/users/${id}/roles`, {
        method: "PUT",
        token: tokens.accessToken,
        json: { roles: ["admin"] },
      }),
      403,
    );
    const changed = await call(`/v1/admin/users/${id}/roles`, {
      method: "PUT",
      token: admin,
      json: { roles: ["customer", "admin"] },
    });
    expect(changed.status).toBe(200);
    expect(User.parse(await changed.json()).roles).toEqual(["customer", "admin"]);
    expect((await me(tokens.accessToken)).status).toBe(401);
    expect((await refresh(tokens.refreshToken)).status).toBe(401);

    const promoted = TokenPair.parse(await (await login(email, password)).json());
    expect((await call(`/v1/admin/users/${id}`, { token: promoted.accessToken })).status).toBe(200);
    await expectProblem(
      await call("/v1/admin/users/nobody/roles", { method: "PUT", token: admin, json: { roles: ["customer"] } }),
      404,
    );
    await expectProblem(
      await call(`/v1/admin/users/${id}/roles`, { method: "PUT", token: admin, json: { roles: ["service"] } }),
      400,
    );
  });
});
