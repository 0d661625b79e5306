import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { ApiKeyList, CreatedApiKey } from "../contracts/api-keys";
import { OrderList } from "../contracts/order";
import { orderShardOf } from "../durable-objects/order-shard";
import { call, expectProblem, signIn, tokenFor } from "./helpers";

type Scope = "catalog:read" | "orders:read" | "market:read";

async function createKey(token: string, scopes: Scope[], name = "integration") {
  const res = await call("/v1/users/me/api-keys", { method: "POST", token, json: { name, scopes } });
  expect(res.status, await res.clone().text()).toBe(201);
  expect(res.headers.get("Cache-Control")).toBe("no-store");
  return CreatedApiKey.parse(await res.json());
}

const withKey = (key: string, path: string, init: RequestInit = {}) =>
  call(path, { ...init, headers: { ...(init.headers as Record<string, string>), "X-API-Key": key } });

/** An order owned by `userId`, placed straight on its shard (the key tests only read orders). */
async function orderOf(userId: string): Promise<string> {
  const orderId = `ord_${crypto.randomUUID().replaceAll("-", "").slice(0, 24)}`;
  await orderShardOf(env, orderId).place({
    orderId,
    userId,
    items: [],
    total: { amount: 100, currency: "USD" },
    paymentToken: "tok_sim_success_4242",
    shippingAddress: {},
    correlationId: orderId,
  });
  return orderId;
}

afterEach(() => vi.restoreAllMocks());

describe("API keys", () => {
  it("is shown once, stored only as a hash, listed without secrets and with lastUsedAt", async () => {
    const owner = await signIn();
    const created = await createKey(owner.tokens.accessToken, ["orders:read"]);
    expect(created.key).toMatch(/^epk_[A-Za-z0-9_-]{43}$/);
    const stored = await env.DB.prepare("SELECT * FROM api_keys WHERE id = ?")
      .bind(created.id)
      .first<Record<string, unknown>>();
    expect(JSON.stringify(stored)).not.toContain(created.key);

    const listKeys = async () => {
      const listed = await call("/v1/users/me/api-keys", { token: owner.tokens.accessToken });
      expect(await listed.clone().text()).not.toContain(created.key);
      return ApiKeyList.parse(await listed.json()).items;
    };
    expect((await listKeys())[0]).toMatchObject({ id: created.id, scopes: ["orders:read"], lastUsedAt: null });
    expect((await withKey(created.key, "/v1/orders")).status).toBe(200);
    // lastUsedAt is written after the answer (waitUntil): poll for it with a generous deadline.
    const deadline = Date.now() + 10_000;
    let items = await listKeys();
    while (items[0]!.lastUsedAt === null && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      items = await listKeys();
    }
    expect(items).toHaveLength(1);
    expect(items[0]).toMatchObject({ id: created.id, revokedAt: null });
    expect(items[0]!.lastUsedAt).not.toBeNull();
  });

  it("never does more than its scopes or its owner: no escalation, no admin route, no key management", async () => {
    const admin = await signIn();
    await env.DB.prepare(`UPDATE users SET roles = '["admin","customer"]' WHERE id = ?`).bind(admin.id).run();
    const adminToken = await tokenFor(admin.id, ["admin", "customer"]);
    const { key } = await createKey(adminToken, ["catalog:read", "orders:read", "market:read"]);

    // Admin routes never accept a key, even an admin's key with every scope.
    for (const path of [
      "/v1/admin/audit",
      "/v1/admin/users/" + admin.id,
      "/v1/admin/flags/search",
      "/v1/admin/fraud-rules",
    ]) {
      await expectProblem(await withKey(key, path), 403, path);
    }
    await expectProblem(await withKey(key, "/v1/admin/inventory/SKU-1", { method: "PUT", body: "{}" }), 403);
    // Keys cannot mint, list or revoke keys (a leaked key cannot widen itself).
    await expectProblem(
      await withKey(key, "/v1/users/me/api-keys", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name: "wider", scopes: ["orders:read"] }),
      }),
      403,
    );
    await expectProblem(await withKey(key, "/v1/users/me/api-keys"), 403);
    // Read-only: no writes at all, not even the owner's own cart.
    await expectProblem(await withKey(key, "/v1/carts", { method: "POST" }), 403);
    await expectProblem(await withKey(key, "/v1/users/me"), 403);

    const shopper = await signIn();
    const { key: ordersOnly } = await createKey(shopper.tokens.accessToken, ["orders:read"]);
    const scope = await expectProblem(await withKey(ordersOnly, "/v1/products?limit=1"), 403);
    expect(scope.type).toContain("api-key-scope");
    await expectProblem(await withKey(ordersOnly, "/v1/market/symbols"), 403);
    expect((await withKey(ordersOnly, "/v1/orders")).status).toBe(200);
    // A scope the contract does not know is refused at creation.
    await expectProblem(
      await call("/v1/users/me/api-keys", {
        method: "POST",
        token: shopper.tokens.accessToken,
        json: { name: "x", scopes: ["orders:write"] },
      }),
      400,
    );
    // Both credentials at once is ambiguous.
    await expectProblem(
      await call("/v1/orders", { token: shopper.tokens.accessToken, headers: { "X-API-Key": ordersOnly } }),
      400,
    );
  });

  it("sees only its owner's orders: another user's order is 404", async () => {
    const alice = await signIn();
    const bob = await signIn();
    const { key: aliceKey } = await createKey(alice.tokens.accessToken, ["orders:read"]);
    const { key: bobKey } = await createKey(bob.tokens.accessToken, ["orders:read"]);
    const bobsOrder = await orderOf(bob.id);
    await expectProblem(await withKey(aliceKey, `/v1/orders/${bobsOrder}`), 404);
    expect((await withKey(bobKey, `/v1/orders/${bobsOrder}`)).status).toBe(200);
    const list = OrderList.parse(await (await withKey(aliceKey, "/v1/orders")).json());
    expect(list.items.map((o) => o.id)).not.toContain(bobsOrder);
  });

  it("stops working within a second of its revocation, on every isolate", async () => {
    const owner = await signIn();
    const revokedHere = await createKey(owner.tokens.accessToken, ["orders:read"]);
    expect((await withKey(revokedHere.key, "/v1/orders")).status).toBe(200);
    const del = await call(`/v1/users/me/api-keys/${revokedHere.id}`, {
      method: "DELETE",
      token: owner.tokens.accessToken,
    });
    expect(del.status).toBe(204);
    // The isolate that revoked it refuses it at once.
    await expectProblem(await withKey(revokedHere.key, "/v1/orders"), 401);

    // Another isolate revoked this one (only D1 changes here); this isolate's cached copy must
    // not outlive a second: one second later (clock moved, no sleeping) it is refused.
    const revokedElsewhere = await createKey(owner.tokens.accessToken, ["orders:read"]);
    expect((await withKey(revokedElsewhere.key, "/v1/orders")).status).toBe(200);
    await env.DB.prepare("UPDATE api_keys SET revoked_at = ? WHERE id = ?")
      .bind(new Date().toISOString(), revokedElsewhere.id)
      .run();
    const now = Date.now();
    vi.spyOn(Date, "now").mockReturnValue(now + 1000);
    await expectProblem(await withKey(revokedElsewhere.key, "/v1/orders"), 401);
    vi.restoreAllMocks();

    const { items } = ApiKeyList.parse(
      await (await call("/v1/users/me/api-keys", { token: owner.tokens.accessToken })).json(),
    );
    expect(items.find((k) => k.id === revokedHere.id)?.revokedAt).not.toBeNull();
    // Revoking someone else's key: 404, and theirs keeps working.
    const other = await signIn();
    const theirs = await createKey(other.tokens.accessToken, ["orders:read"]);
    await expectProblem(
      await call(`/v1/users/me/api-keys/${theirs.id}`, { method: "DELETE", token: owner.tokens.accessToken }),
      404,
    );
    expect((await withKey(theirs.key, "/v1/orders")).status).toBe(200);
  });

  it("has its own rate-limit budget: 429 with Retry-After for the key, its owner and other keys unaffected", async () => {
    const owner = await signIn();
    const { key } = await createKey(owner.tokens.accessToken, ["orders:read"]);
    const { key: sibling } = await createKey(owner.tokens.accessToken, ["orders:read"]);
    // The limiter counts in clock-aligned 60 s windows, so a run may straddle one boundary: twice
    // the budget plus one request is sure to exhaust one window.
    let refused: Response | null = null;
    for (let i = 0; i < 241 && !refused; i++) {
      const res = await withKey(key, "/v1/orders?limit=1");
      if (res.status === 429) refused = res;
      else expect(res.status).toBe(200);
    }
    expect(refused).not.toBeNull();
    const problem = await expectProblem(refused!, 429);
    expect(problem.type).toContain("rate-limited");
    expect(Number(refused!.headers.get("Retry-After"))).toBeGreaterThan(0);
    expect((await withKey(sibling, "/v1/orders?limit=1")).status).toBe(200);
    expect((await call("/v1/orders?limit=1", { token: owner.tokens.accessToken })).status).toBe(200);
  });

  it("never appears in a log line or in any answer after its creation", async () => {
    const lines: string[] = [];
    for (const level of ["log", "info", "warn", "error"] as const) {
      vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
        lines.push(args.map(String).join(" "));
      });
    }
    const logging = env as { LOG_REQUESTS: string };
    const before = logging.LOG_REQUESTS;
    logging.LOG_REQUESTS = "true";
    try {
      const owner = await signIn();
      const { key, id } = await createKey(owner.tokens.accessToken, ["catalog:read"]);
      const bodies = await Promise.all(
        [
          withKey(key, "/v1/products?limit=1"),
          withKey(key, "/v1/orders"),
          withKey(key, "/v1/admin/audit"),
          withKey(`${key}x`, "/v1/products?limit=1"),
          call("/v1/users/me/api-keys", { token: owner.tokens.accessToken }),
        ].map(async (p) => {
          const res = await p;
          return `${[...res.headers].join(" ")} ${await res.text()}`;
        }),
      );
      await call(`/v1/users/me/api-keys/${id}`, { method: "DELETE", token: owner.tokens.accessToken });
      await withKey(key, "/v1/products?limit=1");
      for (const body of bodies) expect(body).not.toContain(key.slice(4));
      expect(lines.some((l) => l.includes('"msg":"request"'))).toBe(true);
      for (const line of lines) expect(line).not.toContain(key.slice(4));
    } finally {
      logging.LOG_REQUESTS = before;
    }
  });
});
