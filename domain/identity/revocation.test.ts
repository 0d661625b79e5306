import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import type { AuthContext } from "./auth-context";
import { RevocationList, revoke } from "./revocation";

const auth = (over: Partial<AuthContext> = {}): AuthContext => ({
  userId: crypto.randomUUID(),
  roles: ["customer"],
  jti: crypto.randomUUID(),
  familyId: crypto.randomUUID(),
  tokenExpiresAt: Math.floor(Date.now() / 1000) + 900,
  ...over,
});

describe("revocation denylist", () => {
  it("reaches another isolate within its staleness bound, not later", async () => {
    // A second RevocationList stands in for another isolate: it only learns through D1.
    const other = new RevocationList(300);
    const caller = auth();
    expect(await other.isRevoked(env, caller)).toBe(false);
    const revokedAt = Date.now();
    await revoke(env, [{ kind: "jti", subject: caller.jti, expiresAt: Date.now() + 60_000 }]);
    // Within the bound the other isolate may still serve its cached copy...
    if (Date.now() - revokedAt < 250) expect(await other.isRevoked(env, caller)).toBe(false);
    // ...but once the bound has passed it must have re-read D1.
    await scheduler.wait(310);
    expect(await other.isRevoked(env, caller)).toBe(true);
  });

  it("denies by token id, by refresh family and by user, each only for its own subject", async () => {
    const fresh = () => new RevocationList(0);
    const a = auth();
    const b = auth();
    await revoke(env, [{ kind: "family", subject: a.familyId!, expiresAt: Date.now() + 60_000 }]);
    expect(await fresh().isRevoked(env, a)).toBe(true);
    expect(await fresh().isRevoked(env, auth({ familyId: a.familyId }))).toBe(true);
    expect(await fresh().isRevoked(env, b)).toBe(false);
    await revoke(env, [{ kind: "user", subject: b.userId, expiresAt: Date.now() + 60_000 }]);
    expect(await fresh().isRevoked(env, auth({ userId: b.userId }))).toBe(true);
    // Service tokens have no family: only jti and user apply.
    expect(await fresh().isRevoked(env, auth({ familyId: undefined }))).toBe(false);
  });

  it("a refresh still out never holds another request: each request that finds the list due reads for itself", async () => {
    const list = new RevocationList(1000);
    // A read that never settles: what another request's I/O looks like once that request has ended.
    const stuck = {
      prepare: () => ({ bind: () => ({ all: () => new Promise<never>(() => {}) }) }),
    } as unknown as D1Database;
    void list.isRevoked({ DB: stuck }, auth());
    const caller = auth();
    await revoke(env, [{ kind: "jti", subject: caller.jti, expiresAt: Date.now() + 60_000 }]);
    const answer = await Promise.race([list.isRevoked(env, caller), scheduler.wait(5000).then(() => "held")]);
    expect(answer).toBe(true);
  });

  it("forgets expired rows, in memory and in D1", async () => {
    const caller = auth();
    await revoke(env, [{ kind: "jti", subject: caller.jti, expiresAt: Date.now() - 120_000 }]);
    expect(await new RevocationList(0).isRevoked(env, caller)).toBe(false);
    // The next write prunes rows that can no longer deny anything.
    await revoke(env, [{ kind: "jti", subject: crypto.randomUUID(), expiresAt: Date.now() + 60_000 }]);
    const left = await env.DB.prepare("select count(*) as n from revocations where subject = ?")
      .bind(caller.jti)
      .first<{ n: number }>();
    expect(left?.n).toBe(0);
  });
});
