import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { AuditPage, AuditVerification } from "../contracts/audit";
import { audit, userRef } from "../domain/audit/log";
import { adminClient } from "./catalog-fixtures";
import { insertSku, stock } from "./commerce-fixtures";
import { call, expectProblem, login, PASSWORD, registerUser, signIn, tokenFor } from "./helpers";
import { accepted, cartWith, isFinal, newShopper, placeOrder, waitForOrder } from "./order-fixtures";

async function adminToken(): Promise<string> {
  return tokenFor(`admin-${crypto.randomUUID()}`, ["admin"]);
}

async function verify(token: string) {
  const res = await call("/v1/admin/audit/verify", { token });
  expect(res.status).toBe(200);
  return AuditVerification.parse(await res.json());
}

/** Every entry, oldest first, read through the paged API. */
async function allEntries(token: string, action?: string) {
  const entries: AuditPage["items"] = [];
  let cursor: string | null = null;
  do {
    const query = new URLSearchParams({ limit: "37", ...(cursor ? { cursor } : {}), ...(action ? { action } : {}) });
    const res = await call(`/v1/admin/audit?${query}`, { token });
    expect(res.status).toBe(200);
    const page = AuditPage.parse(await res.json());
    entries.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return entries.reverse();
}

describe("audit log", () => {
  it("concurrent writers produce one gap-free chain, paged and verified through the API", async () => {
    const admin = await adminToken();
    const direct = Array.from({ length: 60 }, (_, i) =>
      audit(env, { action: "test.concurrent", actor: "system", target: `thing:${i}`, details: { i } }),
    );
    const viaApi = Array.from({ length: 10 }, (_, i) =>
      call(`/v1/admin/flags/test-flag-${i}`, { method: "PUT", token: admin, json: { enabled: i % 2 === 0 } }),
    );
    const [written, responses] = await Promise.all([Promise.all(direct), Promise.all(viaApi)]);
    for (const res of responses) expect(res.status).toBe(200);
    expect(new Set(written.map((w) => w.seq)).size).toBe(60);

    const entries = await allEntries(admin);
    expect(entries.map((e) => e.seq)).toEqual(entries.map((_, i) => i + 1));
    for (let i = 1; i < entries.length; i++) expect(entries[i]!.prevHash).toBe(entries[i - 1]!.hash);
    expect(entries.filter((e) => e.action === "test.concurrent")).toHaveLength(60);
    const flagChanges = entries.filter((e) => e.action === "flag.updated");
    expect(flagChanges).toHaveLength(10);
    expect(flagChanges[0]).toMatchObject({
      actor: expect.stringMatching(/^user:admin-/),
      requestId: expect.any(String),
    });

    const result = await verify(admin);
    expect(result).toMatchObject({ ok: true, entries: entries.length, head: { seq: entries.length } });
    expect(result.head.hash).toBe(entries.at(-1)!.hash);

    // A redelivered event with the same dedupe key appends once.
    const once = await audit(env, { action: "test.once", actor: "system", target: null, dedupeKey: "k-1" });
    expect(await audit(env, { action: "test.once", actor: "system", target: null, dedupeKey: "k-1" })).toEqual(once);
  });

  it("verify names the first broken link when a D1 row is tampered with, and no route can change an entry", async () => {
    const admin = await adminToken();
    for (let i = 0; i < 8; i++)
      await audit(env, { action: "test.tamper", actor: "system", target: `t:${i}`, details: { amount: i } });
    expect((await verify(admin)).ok).toBe(true);

    // No route writes or deletes entries.
    for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
      const res = await call("/v1/admin/audit/3", { method, token: admin, json: {} });
      expect([404, 405], method).toContain(res.status);
    }

    // Test files share one D1: the rows tampered with below are put back at the end.
    const pristine = (
      await env.DB.prepare("SELECT * FROM audit_log WHERE seq IN (3, 5, 6)").all<Record<string, unknown>>()
    ).results;
    const original = pristine.find((r) => r.seq === 5) as { details: string };
    await env.DB.prepare(`UPDATE audit_log SET details = '{"amount":500}' WHERE seq = 5`).run();
    expect(await verify(admin)).toMatchObject({ ok: false, brokenAt: { seq: 5 } });
    await env.DB.prepare("UPDATE audit_log SET details = ? WHERE seq = 5").bind(original!.details).run();
    expect((await verify(admin)).ok).toBe(true);

    // Personal fields are chained through their keyed digests: changing one is caught too.
    await env.DB.prepare("UPDATE audit_log SET actor = 'user:someone-else' WHERE seq = 3").run();
    expect(await verify(admin)).toMatchObject({ ok: false, brokenAt: { seq: 3, reason: "actor was altered" } });
    await env.DB.prepare("UPDATE audit_log SET actor = 'system' WHERE seq = 3").run();

    // Rewriting a row together with its hash breaks the next link; deleting one leaves a gap.
    await env.DB.prepare("UPDATE audit_log SET hash = ? WHERE seq = 6").bind("f".repeat(64)).run();
    expect(await verify(admin)).toMatchObject({ ok: false, brokenAt: { seq: 6 } });
    await env.DB.prepare("DELETE FROM audit_log WHERE seq = 6").run();
    expect(await verify(admin)).toMatchObject({ ok: false, brokenAt: { seq: 6, reason: "entry 6 is missing" } });

    for (const row of pristine) {
      const columns = Object.keys(row);
      await env.DB.prepare(
        `INSERT OR REPLACE INTO audit_log (${columns.join(", ")}) VALUES (${columns.map(() => "?").join(", ")})`,
      )
        .bind(...columns.map((c) => row[c]))
        .run();
    }
    expect((await verify(admin)).ok).toBe(true);
  });

  it("records sign-in failures and successes, and erasure blanks the user's personal data with the chain intact", async () => {
    const admin = await adminToken();
    const { email, user } = await registerUser();
    expect((await login(email, "wrong password!", { ip: "198.51.100.7" })).status).toBe(401);
    const ok = await login(email, PASSWORD, { ip: "198.51.100.7" });
    expect(ok.status).toBe(200);
    const { accessToken } = await ok.json<{ accessToken: string }>();
    expect((await login("nobody@example.test", "whatever pass")).status).toBe(401);

    const before = await allEntries(admin);
    const mine = before.filter((e) => e.actor === userRef(user.id) || e.target === userRef(user.id));
    expect(mine.map((e) => e.action)).toEqual(["auth.login_failed", "auth.login_succeeded"]);
    expect(mine[0]).toMatchObject({ actor: "anonymous", ip: "198.51.100.7", details: { reason: "password" } });
    // An unknown email leaves no personal data behind.
    const unknown = before.filter((e) => e.action === "auth.login_failed" && e.target === null);
    expect(unknown).toHaveLength(1);
    expect(JSON.stringify(unknown)).not.toContain("nobody@example.test");

    const erase = await call("/v1/users/me", { method: "DELETE", token: accessToken, json: { password: PASSWORD } });
    expect(erase.status).toBe(204);
    const after = await allEntries(admin);
    expect(JSON.stringify(after)).not.toContain(user.id);
    const erased = after.filter((e) => e.erased);
    expect(erased.map((e) => e.action)).toEqual(["auth.login_failed", "auth.login_succeeded", "account.erased"]);
    expect(erased[0]).toMatchObject({ target: null, ip: "198.51.100.7" });
    expect(erased[1]).toMatchObject({ actor: null, target: null, ip: null });
    // Same hashes as before the erasure, and the whole chain still verifies.
    for (const entry of before) expect(after.find((e) => e.seq === entry.seq)?.hash).toBe(entry.hash);
    expect(await verify(admin)).toMatchObject({ ok: true, entries: after.length });

    // Only admins read the log.
    await expectProblem(await call("/v1/admin/audit", { token: await tokenFor("u-customer") }), 403);
  });

  it("records every listed admin and security event with its actor, target and request id", async () => {
    const admin = await adminToken();
    const before = (await allEntries(admin)).length;
    const user = await signIn();
    const expectOk = async (res: Response | Promise<Response>, status = 200) => {
      const r = await res;
      expect(r.status, await r.clone().text()).toBe(status);
      return r;
    };
    await expectOk(
      call("/v1/users/me/password", {
        method: "POST",
        token: user.tokens.accessToken,
        json: { currentPassword: PASSWORD, newPassword: "an even better passphrase" },
      }),
      204,
    );
    const key = await (
      await expectOk(
        call("/v1/users/me/api-keys", {
          method: "POST",
          token: user.tokens.accessToken,
          json: { name: "k", scopes: ["catalog:read"] },
        }),
        201,
      )
    ).json<{ id: string }>();
    await expectOk(call(`/v1/users/me/api-keys/${key.id}`, { method: "DELETE", token: user.tokens.accessToken }), 204);
    await expectOk(
      call(`/v1/admin/users/${user.id}/roles`, { method: "PUT", token: admin, json: { roles: ["customer"] } }),
    );
    const catalog = await adminClient();
    await catalog.category("audit-cat", "Audit");
    const product = await catalog.product({ category: "audit-cat" });
    await expectOk(call(`/v1/admin/inventory/${product.sku}`, { method: "PUT", token: admin, json: { onHand: 5 } }));
    await expectOk(call("/v1/admin/flags/search", { method: "PUT", token: admin, json: { enabled: true } }));

    await insertSku("AUDIT-REFUND", { amount: 800 });
    await stock("AUDIT-REFUND", 3);
    const shopper = await newShopper(undefined, `audit-${crypto.randomUUID()}@example.test`);
    const { id: orderId } = await accepted(
      await placeOrder(shopper, await cartWith(shopper, [{ sku: "AUDIT-REFUND", quantity: 1 }])),
    );
    expect((await waitForOrder(orderId, isFinal)).status).toBe("confirmed");
    await expectOk(
      call(`/v1/admin/orders/${orderId}/refund`, { method: "POST", token: admin, json: { amount: 300 } }),
      202,
    );

    const entries = (await allEntries(admin)).slice(before);
    const byAction = new Map(entries.map((e) => [e.action, e]));
    for (const action of [
      "auth.login_succeeded",
      "auth.password_changed",
      "api_key.created",
      "api_key.revoked",
      "user.roles_changed",
      "catalog.category_created",
      "catalog.product_created",
      "inventory.stock_set",
      "flag.updated",
      "order.refund_requested",
    ]) {
      const entry = byAction.get(action);
      expect(entry, action).toBeDefined();
      expect(entry!.actor, action).toMatch(/^(user:|anonymous)/);
      expect(entry!.requestId, action).toEqual(expect.any(String));
    }
    expect(byAction.get("user.roles_changed")).toMatchObject({
      target: userRef(user.id),
      details: { roles: ["customer"] },
    });
    expect(byAction.get("order.refund_requested")).toMatchObject({
      target: `order:${orderId}`,
      details: { amount: 300 },
    });
    expect((await verify(admin)).ok).toBe(true);
  });
});
