import { listDurableObjectIds, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { accountGuardName, addressGroup, addressGuardName } from "../domain/identity/throttling";
import { currentTotp, newTotpSecret } from "../domain/identity/totp";
import { expectProblem, login, PASSWORD, registerUser, uniqueEmail } from "./helpers";

// Issue 9, finding 2 (throttling beyond account+IP) and finding 8 (no guard objects for unknown
// accounts, emptied guards delete their storage). Time never passes for real here: the tests age
// a guard's stored timestamps instead, as the clock would.

const WRONG = "not the password";
let networks = 0;
/** An IPv4 address no other test in this file used. */
const freshIpv4 = () => `198.51.100.${networks++}`;

async function accountGuardOf(userId: string) {
  return env.ACCOUNT_GUARD.getByName(await accountGuardName(userId));
}

/** Moves every counted attempt of an account `ms` into the past. */
async function ageAccount(userId: string, ms: number) {
  await runInDurableObject(await accountGuardOf(userId), (_obj, state) => {
    state.storage.sql.exec("update failures set last_at = last_at - ?", ms);
  });
}

const tableCount = (state: DurableObjectState) =>
  state.storage.sql.exec<{ n: number }>("select count(*) as n from sqlite_master where type = 'table'").one().n;

describe("groups client addresses as one client controls them", () => {
  it("IPv4 by address, IPv6 by /64 (however written), IPv4-mapped IPv6 as its IPv4 address", () => {
    expect(addressGroup("192.0.2.1")).toBe("192.0.2.1");
    expect(addressGroup("2001:db8:1:2::1")).toBe("2001:db8:1:2::/64");
    expect(addressGroup("2001:0DB8:0001:0002:ffff:ffff:ffff:fffe")).toBe("2001:db8:1:2::/64");
    expect(addressGroup("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(addressGroup("2001:db8:1:3::1")).not.toBe(addressGroup("2001:db8:1:2::1"));
    expect(addressGroup("::ffff:192.0.2.1")).toBe("192.0.2.1");
    expect(addressGroup("64:ff9b::192.0.2.1")).toBe("64:ff9b:0:0::/64");
  });
});

describe("password spraying: many accounts from one address", () => {
  it("refuses the 31st failed login from one IPv4 address in 15 minutes, whatever the account", async () => {
    const from = freshIpv4();
    for (let i = 0; i < 30; i++) expect((await login(uniqueEmail("spray"), WRONG, { ip: from })).status).toBe(401);
    // Even a real account with its right password: the address is refused, not the account.
    const { email } = await registerUser();
    const refused = await login(email, PASSWORD, { ip: from });
    await expectProblem(refused, 429);
    expect(refused.headers.get("RateLimit-Policy")).toBe('"login";q=30;w=900');
    const retryAfter = Number(refused.headers.get("Retry-After"));
    expect(retryAfter).toBeGreaterThan(800);
    expect(retryAfter).toBeLessThanOrEqual(900);
    // Another address is not affected.
    expect((await login(email, PASSWORD, { ip: freshIpv4() })).status).toBe(200);
  }, 30_000);

  it("counts every address of one IPv6 /64 together, and another /64 apart", async () => {
    for (let i = 1; i <= 30; i++) {
      expect((await login(uniqueEmail("spray6"), WRONG, { ip: `2001:db8:aa:1::${i.toString(16)}` })).status).toBe(401);
    }
    await expectProblem(await login(uniqueEmail("spray6"), WRONG, { ip: "2001:db8:aa:1:dead:beef:0:1" }), 429);
    expect((await login(uniqueEmail("spray6"), WRONG, { ip: "2001:db8:aa:2::1" })).status).toBe(401);
  }, 30_000);

  it("does not count successful logins toward the address's 30", async () => {
    const from = freshIpv4();
    const { email } = await registerUser();
    for (let i = 0; i < 29; i++) expect((await login(uniqueEmail("spray"), WRONG, { ip: from })).status).toBe(401);
    for (let i = 0; i < 3; i++) expect((await login(email, PASSWORD, { ip: from })).status).toBe(200);
    expect((await login(uniqueEmail("spray"), WRONG, { ip: from })).status).toBe(401);
    await expectProblem(await login(uniqueEmail("spray"), WRONG, { ip: from }), 429);
  }, 30_000);
});

describe("targeted guessing: one account from many addresses", () => {
  it("slows the account after 10 failures from anywhere, and lets the owner in once the delay passes", async () => {
    const { email, user } = await registerUser();
    for (let i = 0; i < 10; i++) expect((await login(email, WRONG, { ip: freshIpv4() })).status).toBe(401);

    // An 11th try from a new address waits 30 s, even with the right password.
    const slowed = await login(email, PASSWORD, { ip: freshIpv4() });
    await expectProblem(slowed, 429);
    expect(slowed.headers.get("RateLimit-Policy")).toBe('"login-account";q=10;w=900');
    expect(Number(slowed.headers.get("Retry-After"))).toBeGreaterThan(25);
    expect(Number(slowed.headers.get("Retry-After"))).toBeLessThanOrEqual(30);

    // After 30 s one more guess goes through; the next must then wait twice as long.
    await ageAccount(user.id, 31_000);
    expect((await login(email, WRONG, { ip: freshIpv4() })).status).toBe(401);
    const doubled = await login(email, WRONG, { ip: freshIpv4() });
    await expectProblem(doubled, 429);
    expect(Number(doubled.headers.get("Retry-After"))).toBeGreaterThan(55);
    expect(Number(doubled.headers.get("Retry-After"))).toBeLessThanOrEqual(60);

    // The owner gets in once that delay has passed, and the success clears the account's counts.
    await ageAccount(user.id, 61_000);
    expect((await login(email, PASSWORD, { ip: freshIpv4() })).status).toBe(200);
    expect(await runInDurableObject(await accountGuardOf(user.id), (_obj, state) => tableCount(state))).toBe(0);
    expect((await login(email, WRONG, { ip: freshIpv4() })).status).toBe(401);
  }, 30_000);

  it("caps the delay at 15 minutes however many failures there were", async () => {
    const { email, user } = await registerUser();
    expect((await login(email, WRONG, { ip: freshIpv4() })).status).toBe(401);
    await runInDurableObject(await accountGuardOf(user.id), (_obj, state) => {
      state.storage.sql.exec("update failures set count = 500");
    });
    const capped = await login(email, PASSWORD, { ip: freshIpv4() });
    await expectProblem(capped, 429);
    expect(Number(capped.headers.get("Retry-After"))).toBeGreaterThan(890);
    expect(Number(capped.headers.get("Retry-After"))).toBeLessThanOrEqual(900);
    await ageAccount(user.id, 15 * 60_000 + 1_000);
    expect((await login(email, PASSWORD, { ip: freshIpv4() })).status).toBe(200);
  });

  it("many addresses of one /64 are one client: the 6th guess in a minute is refused there, not elsewhere", async () => {
    const { email } = await registerUser();
    for (let i = 1; i <= 5; i++) expect((await login(email, WRONG, { ip: `2001:db8:bb:1::${i}` })).status).toBe(401);
    const refused = await login(email, PASSWORD, { ip: "2001:db8:bb:1:1234:5678:9abc:def0" });
    await expectProblem(refused, 429);
    expect(refused.headers.get("RateLimit-Policy")).toBe('"login";q=5;w=60');
    expect((await login(email, PASSWORD, { ip: "2001:db8:bb:2::1" })).status).toBe(200);
  });

  it("parallel guesses from many addresses cannot slip past the backoff", async () => {
    const { email } = await registerUser();
    for (let i = 0; i < 9; i++) expect((await login(email, WRONG, { ip: freshIpv4() })).status).toBe(401);
    // The 10th failure is still free; every other guess in the burst must wait behind it.
    const burst = await Promise.all(Array.from({ length: 8 }, () => login(email, WRONG, { ip: freshIpv4() })));
    expect(burst.map((r) => r.status).sort()).toEqual([401, 429, 429, 429, 429, 429, 429, 429]);
  }, 30_000);
});

describe("TOTP guessing: one account's codes from many addresses", () => {
  it("allows 5 wrong codes from anywhere, then waits; the owner's code works once the delay passes", async () => {
    const { email, user } = await registerUser();
    const secret = newTotpSecret();
    await env.DB.prepare("update users set mfa_secret = ? where id = ?").bind(secret, user.id).run();
    const code = currentTotp(secret);
    const wrong = code === "000000" ? "111111" : "000000";

    for (let i = 0; i < 5; i++) {
      const res = await login(email, PASSWORD, { ip: freshIpv4(), extra: { totp: wrong } });
      expect((await expectProblem(res, 401)).type).toMatch(/invalid-totp$/);
    }
    const slowed = await login(email, PASSWORD, { ip: freshIpv4(), extra: { totp: code } });
    await expectProblem(slowed, 429);
    expect(slowed.headers.get("RateLimit-Policy")).toBe('"totp-account";q=5;w=900');
    expect(Number(slowed.headers.get("Retry-After"))).toBeLessThanOrEqual(30);

    await ageAccount(user.id, 31_000);
    expect((await login(email, PASSWORD, { ip: freshIpv4(), extra: { totp: code } })).status).toBe(200);
  });
});

describe("guard storage (finding 8)", () => {
  it("creates no account guard for unknown emails, one for a known account's failure", async () => {
    const before = (await listDurableObjectIds(env.ACCOUNT_GUARD)).length;
    for (let i = 0; i < 5; i++)
      expect((await login(uniqueEmail("ghost"), WRONG, { ip: freshIpv4() })).status).toBe(401);
    expect(await listDurableObjectIds(env.ACCOUNT_GUARD)).toHaveLength(before);

    const { email, user } = await registerUser();
    expect((await login(email, WRONG, { ip: freshIpv4() })).status).toBe(401);
    const ids = (await listDurableObjectIds(env.ACCOUNT_GUARD)).map((id) => id.toString());
    expect(ids).toHaveLength(before + 1);
    expect(ids).toContain(env.ACCOUNT_GUARD.idFromName(await accountGuardName(user.id)).toString());
  }, 30_000);

  it("an address guard deletes all its storage once its window is empty", async () => {
    const from = freshIpv4();
    expect((await login(uniqueEmail("ghost"), WRONG, { ip: from })).status).toBe(401);
    const guard = env.LOGIN_GUARD.getByName(await addressGuardName("login", from));
    await runInDurableObject(guard, (_obj, state) => {
      expect(tableCount(state)).toBeGreaterThan(0);
      state.storage.sql.exec("update attempts set at = at - ?", 15 * 60_000 + 1_000);
    });
    expect(await runDurableObjectAlarm(guard)).toBe(true);
    expect(await runInDurableObject(guard, (_obj, state) => tableCount(state))).toBe(0);
    // And it counts again from scratch.
    expect((await login(uniqueEmail("ghost"), WRONG, { ip: from })).status).toBe(401);
  });

  it("an account guard forgets a day after the last failure and deletes its storage", async () => {
    const { email, user } = await registerUser();
    expect((await login(email, WRONG, { ip: freshIpv4() })).status).toBe(401);
    const guard = await accountGuardOf(user.id);
    // Not yet: the alarm re-arms while the last failure is recent.
    expect(await runDurableObjectAlarm(guard)).toBe(true);
    expect(await runInDurableObject(guard, (_obj, state) => tableCount(state))).toBeGreaterThan(0);
    await ageAccount(user.id, 24 * 60 * 60_000 + 1_000);
    expect(await runDurableObjectAlarm(guard)).toBe(true);
    expect(await runInDurableObject(guard, (_obj, state) => tableCount(state))).toBe(0);
  });
});
