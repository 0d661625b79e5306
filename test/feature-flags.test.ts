import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { EvaluatedFlags, Flag } from "../contracts/flags";
import { evaluateFlag, isFeatureEnabled, type KillSwitch, rolloutBucket } from "../domain/flags";
import { adminClient } from "./catalog-fixtures";
import { insertSku, stock } from "./commerce-fixtures";
import { call, expectProblem, tokenFor } from "./helpers";
import { cartWith, newShopper, placeOrder } from "./order-fixtures";

const admin = () => tokenFor(`flags-admin-${crypto.randomUUID()}`, ["admin"]);

async function setFlag(token: string, name: KillSwitch | string, body: { enabled: boolean; rolloutPercent?: number }) {
  const res = await call(`/v1/admin/flags/${name}`, { method: "PUT", token, json: body });
  expect(res.status, await res.clone().text()).toBe(200);
  return Flag.parse(await res.json());
}

async function expectDisabled(res: Response, label: string) {
  const problem = await expectProblem(res, 503, label);
  expect(problem.type, label).toBe("https://edgepulse.dev/problems/feature-disabled");
  expect(Number(res.headers.get("Retry-After")), label).toBeGreaterThan(0);
}

afterEach(() => vi.restoreAllMocks());

describe("feature flags", () => {
  it("a switched-off feature answers 503 wherever it is used while everything else keeps working", async () => {
    const token = await admin();
    const catalog = await adminClient();
    await catalog.category("electronics", "Electronics");
    const product = await catalog.product({ name: "Flagged kettle" });
    await insertSku("FLAG-SKU", { amount: 700 });
    await stock("FLAG-SKU", 10);
    const shopper = await newShopper(undefined, `flags-${crypto.randomUUID()}@example.test`);
    const cartId = await cartWith(shopper, [{ sku: "FLAG-SKU", quantity: 1 }]);

    for (const name of ["search", "order-intake", "market-subscriptions", "recommendations"]) {
      await setFlag(token, name, { enabled: false });
    }
    const evaluated = EvaluatedFlags.parse(await (await call("/v1/flags", { token: shopper.token })).json());
    expect(evaluated.flags).toMatchObject({
      search: false,
      "order-intake": false,
      "market-subscriptions": false,
      recommendations: false,
    });

    await expectDisabled(await call("/v1/products?q=kettle"), "search");
    await expectDisabled(await placeOrder(shopper, cartId), "order intake");
    await expectDisabled(
      await call("/v1/market/BTC-USD/ws", { headers: { Upgrade: "websocket" } }),
      "market subscriptions",
    );
    await expectDisabled(await call(`/v1/products/${product.id}/recommendations`), "recommendations");

    // Everything else is untouched: browse, product pages, carts, order history, market REST.
    expect((await call("/v1/products?limit=5")).status).toBe(200);
    expect((await call(`/v1/products/${product.id}`)).status).toBe(200);
    expect((await call("/v1/carts", { method: "POST", token: shopper.token })).status).toBe(201);
    expect((await call("/v1/orders", { token: shopper.token })).status).toBe(200);
    expect((await call("/v1/market/symbols")).status).toBe(200);
    // The refused checkout changed nothing: no order, the cart is still open for a later one.
    expect((await env.DB.prepare("SELECT count(*) AS n FROM orders_view").first<{ n: number }>())?.n).toBe(0);

    for (const name of ["search", "order-intake", "market-subscriptions", "recommendations"]) {
      await setFlag(token, name, { enabled: true });
    }
    expect((await call("/v1/products?q=kettle")).status).toBe(200);
    expect((await call(`/v1/products/${product.id}/recommendations`)).status).toBe(200);
    expect((await placeOrder(shopper, cartId)).status).toBe(202);
  });

  it("rollout is stable per user, monotonic and close to the requested share over 10k users", () => {
    const users = Array.from({ length: 10_000 }, (_, i) => `user-${i}`);
    const flag = (rolloutPercent: number) => ({
      name: "new-checkout",
      enabled: true,
      rolloutPercent,
      version: 1,
      updatedAt: null,
    });
    // One hash per user; the shares below are what evaluateFlag's `bucket < percent * 100` gives.
    const buckets = users.map((u) => rolloutBucket("new-checkout", u));
    for (const percent of [1, 10, 30, 50, 90]) {
      const share = buckets.filter((b) => b < percent * 100).length / users.length;
      // Binomial sd at 10k users is at most 0.5 %: allow 3 sd.
      expect(Math.abs(share - percent / 100), `${percent} %`).toBeLessThan(0.015);
    }
    const at30 = users.filter((u) => evaluateFlag(flag(30), u));
    expect(at30.length).toBe(buckets.filter((b) => b < 3000).length);
    // Same answer every time (and on every isolate: it is a pure function of flag and user).
    expect(users.filter((u) => evaluateFlag(flag(30), u))).toEqual(at30);
    // Raising the share only adds users: nobody flips off when a rollout grows.
    expect(at30.every((u) => evaluateFlag(flag(50), u))).toBe(true);
    // A disabled flag is off for everyone, whatever the share; 0 % and anonymous partial rollouts are off.
    expect(users.some((u) => evaluateFlag({ ...flag(100), enabled: false }, u))).toBe(false);
    expect(users.some((u) => evaluateFlag(flag(0), u))).toBe(false);
    expect(evaluateFlag(flag(99), null)).toBe(false);
    expect(evaluateFlag(flag(100), null)).toBe(true);
  });

  it("per-user rollout over the API matches the evaluation; another isolate's change shows within a second", async () => {
    const token = await admin();
    await setFlag(token, "beta-dashboard", { enabled: true, rolloutPercent: 50 });
    const ids = Array.from({ length: 20 }, (_, i) => `rollout-user-${i}`);
    const seen = await Promise.all(
      ids.map(async (id) => {
        const res = await call("/v1/flags", { token: await tokenFor(id) });
        return EvaluatedFlags.parse(await res.json()).flags["beta-dashboard"];
      }),
    );
    const stored = Flag.parse(await (await call("/v1/admin/flags/beta-dashboard", { token })).json());
    expect(seen).toEqual(ids.map((id) => evaluateFlag(stored, id)));
    expect(seen.some(Boolean) && !seen.every(Boolean)).toBe(true);

    // Another isolate switched search off (only D1 changed, version raised). This isolate keeps
    // its copy for at most a second, then re-reads because the version moved.
    expect(await isFeatureEnabled(env, "search", null)).toBe(true);
    await env.DB.prepare(
      `INSERT INTO feature_flags (name, enabled, rollout_percent, version, updated_at)
       VALUES ('search', 0, 100, (SELECT coalesce(max(version), 0) + 1 FROM feature_flags), ?)
       ON CONFLICT (name) DO UPDATE SET enabled = 0, version = excluded.version`,
    )
      .bind(new Date().toISOString())
      .run();
    const now = Date.now();
    vi.spyOn(Date, "now").mockReturnValue(now + 1000);
    expect(await isFeatureEnabled(env, "search", null)).toBe(false);
    vi.restoreAllMocks();
    await setFlag(token, "search", { enabled: true });

    await expectProblem(await call("/v1/admin/flags/never-set", { token }), 404);
    await expectProblem(await call("/v1/admin/flags/search", { method: "PUT", token, json: { enabled: "yes" } }), 400);
    await expectProblem(await call("/v1/admin/flags/search", { token: await tokenFor("u-plain") }), 403);
  });
});
