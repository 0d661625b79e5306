import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { AuditPage } from "../contracts/audit";
import type { FraudRules } from "../contracts/fraud";
import type { OwnedOrder } from "../contracts/order";
import { insertSku, stock } from "./commerce-fixtures";
import { call, expectProblem, tokenFor } from "./helpers";
import {
  accepted,
  cartWith,
  isFinal,
  newShopper,
  passSagaDeadline,
  placeOrder,
  type Shopper,
  waitForOrder,
} from "./order-fixtures";

const OFF = { enabled: false, maxOrders: 1000, windowMinutes: 60 };
const NO_RULES: FraudRules = {
  customerVelocity: OFF,
  ipVelocity: OFF,
  cardVelocity: OFF,
  newAccountAmount: { enabled: false, accountAgeHours: 24, maxAmount: 1_000_000 },
  countryMismatch: { enabled: false },
  reviewHoldMinutes: 10,
};

async function adminToken() {
  return tokenFor(`fraud-admin-${crypto.randomUUID()}`, ["admin"]);
}

/** Stores `rules` (every other rule off) through the admin API; the test files share one D1. */
async function useRules(admin: string, rules: Partial<FraudRules>) {
  const res = await call("/v1/admin/fraud-rules", { method: "PUT", token: admin, json: { ...NO_RULES, ...rules } });
  expect(res.status, await res.clone().text()).toBe(200);
}

let cards = 0;
/** A Luhn-valid card number no other test used (the simulated provider approves it). */
function freshCard(): string {
  const body = `4${String(Date.now() % 1e9).padStart(9, "0")}${String(cards++).padStart(5, "0")}`;
  let sum = 0;
  for (let i = 0; i < body.length; i++) {
    let d = Number(body[body.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return `${body}${(10 - (sum % 10)) % 10}`;
}

let skus = 0;
async function stockedSku(amount = 1000, onHand = 20): Promise<string> {
  const sku = `FRAUD-${skus++}-${crypto.randomUUID().slice(0, 6)}`;
  await insertSku(sku, { amount });
  await stock(sku, onHand);
  return sku;
}

/** Places one order of `quantity` × `sku` and waits until the saga stops moving: final, or held in review. */
async function checkout(
  shopper: Shopper,
  sku: string,
  opts: { card?: string; headers?: Record<string, string>; quantity?: number } = {},
): Promise<OwnedOrder> {
  const cartId = await cartWith(shopper, [{ sku, quantity: opts.quantity ?? 1 }]);
  const res = await placeOrder(shopper, cartId, opts.card ?? freshCard(), opts.headers ?? {});
  expect(res.status, await res.clone().text()).toBe(202);
  const { id } = await accepted(res);
  return waitForOrder(id, (o) => isFinal(o) || o.status === "review");
}

async function auditActions(admin: string, orderId: string): Promise<string[]> {
  const res = await call("/v1/admin/audit?limit=200", { token: admin });
  const page = AuditPage.parse(await res.json());
  return page.items
    .filter((e) => e.details.orderId === orderId)
    .map((e) => e.action)
    .reverse();
}

const shopperNamed = (tag: string) => newShopper(undefined, `${tag}-${crypto.randomUUID()}@example.test`);

describe("fraud rules before payment", () => {
  it("each rule holds exactly the orders it is about", async () => {
    const admin = await adminToken();
    const sku = await stockedSku(1000, 100);

    // Customer velocity: the third order of one customer within the window is held.
    await useRules(admin, { customerVelocity: { enabled: true, maxOrders: 2, windowMinutes: 60 } });
    const busy = await shopperNamed("busy");
    const busyOrders = [];
    for (let i = 0; i < 3; i++) busyOrders.push(await checkout(busy, sku));
    expect(busyOrders.map((o) => o.status)).toEqual(["confirmed", "confirmed", "review"]);
    expect((await checkout(await shopperNamed("calm"), sku)).status).toBe("confirmed");

    // Address velocity: the second order from one address is held, another address is not.
    await useRules(admin, { ipVelocity: { enabled: true, maxOrders: 1, windowMinutes: 60 } });
    const ip = { "CF-Connecting-IP": "203.0.113.77" };
    expect((await checkout(await shopperNamed("ip-a"), sku, { headers: ip })).status).toBe("confirmed");
    expect((await checkout(await shopperNamed("ip-b"), sku, { headers: ip })).status).toBe("review");
    const elsewhere = { "CF-Connecting-IP": "203.0.113.78" };
    expect((await checkout(await shopperNamed("ip-c"), sku, { headers: elsewhere })).status).toBe("confirmed");

    // Card velocity: one card across two accounts is held the second time; another card is not.
    await useRules(admin, { cardVelocity: { enabled: true, maxOrders: 1, windowMinutes: 60 } });
    const shared = freshCard();
    expect((await checkout(await shopperNamed("card-a"), sku, { card: shared })).status).toBe("confirmed");
    expect((await checkout(await shopperNamed("card-b"), sku, { card: shared })).status).toBe("review");
    expect((await checkout(await shopperNamed("card-c"), sku)).status).toBe("confirmed");

    // New account + amount: only a young account above the threshold is held.
    await useRules(admin, { newAccountAmount: { enabled: true, accountAgeHours: 24, maxAmount: 1500 } });
    const young = await shopperNamed("young");
    expect((await checkout(young, sku, { quantity: 2 })).status).toBe("review");
    expect((await checkout(young, sku, { quantity: 1 })).status).toBe("confirmed");
    const old = await shopperNamed("old");
    await env.DB.prepare("UPDATE users SET created_at = ? WHERE id = ?")
      .bind(new Date(Date.now() - 3 * 86_400_000).toISOString(), old.userId)
      .run();
    expect((await checkout(old, sku, { quantity: 2 })).status).toBe("confirmed");

    // Country: shipping (GB) elsewhere than the request's country is held; same country or unknown is not.
    await useRules(admin, { countryMismatch: { enabled: true } });
    const abroad = await checkout(await shopperNamed("abroad"), sku, { headers: { "X-Simulated-Country": "US" } });
    expect(abroad.status).toBe("review");
    expect((await checkout(await shopperNamed("home"), sku, { headers: { "X-Simulated-Country": "GB" } })).status).toBe(
      "confirmed",
    );
    expect((await checkout(await shopperNamed("unknown"), sku)).status).toBe("confirmed");

    // Every decision is in the audit log, with the rule that held the order.
    expect(await auditActions(admin, abroad.id)).toEqual(["fraud.held_for_review"]);
    const page = AuditPage.parse(await (await call("/v1/admin/audit?limit=200", { token: admin })).json());
    const held = page.items.find((e) => e.details.orderId === abroad.id)!;
    expect(held.details.hits).toEqual([{ rule: "country_mismatch", detail: "ships to GB, ordered from US" }]);
    expect(await auditActions(admin, busyOrders[0]!.id)).toEqual(["fraud.cleared"]);

    // With every rule off the saga does not wait for the step at all.
    await useRules(admin, {});
    expect((await checkout(busy, sku)).status).toBe("confirmed");
  });

  it("approve continues the saga; reject releases the stock, moves no money and tells the customer", async () => {
    const admin = await adminToken();
    await useRules(admin, { countryMismatch: { enabled: true } });
    const sku = await stockedSku(1200, 10);
    const abroad = { "X-Simulated-Country": "FR" };
    const approvedShopper = await shopperNamed("approve");
    const rejectedShopper = await shopperNamed("reject");
    const toApprove = await checkout(approvedShopper, sku, { headers: abroad, quantity: 2 });
    const toReject = await checkout(rejectedShopper, sku, { headers: abroad, quantity: 3 });
    expect([toApprove.status, toReject.status]).toEqual(["review", "review"]);
    // Held orders keep their stock and have moved no money.
    expect(await env.INVENTORY.getByName(sku).level()).toMatchObject({ reserved: 5, sold: 0, available: 5 });
    expect(toApprove.payment).toMatchObject({ status: "pending", captured: 0 });

    // The customer sees the hold; only admins decide.
    const mine = await call(`/v1/orders/${toApprove.id}`, { token: approvedShopper.token });
    expect(((await mine.json()) as { status: string }).status).toBe("review");
    await expectProblem(
      await call(`/v1/admin/orders/${toApprove.id}/review`, {
        method: "POST",
        token: approvedShopper.token,
        json: { decision: "approve" },
      }),
      403,
    );

    const approve = await call(`/v1/admin/orders/${toApprove.id}/review`, {
      method: "POST",
      token: admin,
      json: { decision: "approve" },
    });
    expect(approve.status).toBe(200);
    const reject = await call(`/v1/admin/orders/${toReject.id}/review`, {
      method: "POST",
      token: admin,
      json: { decision: "reject" },
    });
    expect(reject.status).toBe(200);

    const approved = await waitForOrder(toApprove.id, isFinal);
    expect(approved.status).toBe("confirmed");
    expect(approved.history.map((h) => h.status)).toEqual(["pending", "review", "reserved", "paid", "confirmed"]);
    expect(approved.payment).toMatchObject({ status: "captured", captured: 2400 });
    const rejected = await waitForOrder(toReject.id, isFinal);
    expect(rejected).toMatchObject({ status: "cancelled", reason: "fraud_rejected", payment: { captured: 0 } });

    // Stock: the approved units sold, the rejected ones back on the shelf.
    const deadline = Date.now() + 10_000;
    let level = await env.INVENTORY.getByName(sku).level();
    while (level.reserved !== 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      level = await env.INVENTORY.getByName(sku).level();
    }
    expect(level).toMatchObject({ onHand: 10, reserved: 0, sold: 2, available: 8 });
    // Money: the approved order was charged once; the rejected one never touched the provider.
    const ledger = await env.DB.prepare("SELECT order_id, kind FROM payment_ledger WHERE order_id IN (?, ?)")
      .bind(toApprove.id, toReject.id)
      .all<{ order_id: string; kind: string }>();
    expect(
      ledger.results
        .filter((r) => r.order_id === toApprove.id)
        .map((r) => r.kind)
        .sort(),
    ).toEqual(["authorization", "capture"]);
    expect(ledger.results.filter((r) => r.order_id === toReject.id)).toEqual([]);
    // The customer of the rejected order is told.
    let mail: { kind: string } | null = null;
    while (!mail && Date.now() < deadline) {
      mail = await env.DB.prepare("SELECT kind FROM notifications WHERE order_id = ? AND kind = 'order_cancelled'")
        .bind(toReject.id)
        .first<{ kind: string }>();
      if (!mail) await new Promise((r) => setTimeout(r, 50));
    }
    expect(mail).not.toBeNull();

    expect(await auditActions(admin, toApprove.id)).toEqual(["fraud.held_for_review", "fraud.review_approved"]);
    expect(await auditActions(admin, toReject.id)).toEqual(["fraud.held_for_review", "fraud.review_rejected"]);
    // A decision on an order that is not held: 409; the same decision again: ok; unknown order: 404.
    const again = await call(`/v1/admin/orders/${toReject.id}/review`, {
      method: "POST",
      token: admin,
      json: { decision: "approve" },
    });
    await expectProblem(again, 409);
    await expectProblem(
      await call("/v1/admin/orders/ord_000000000000000000000000/review", {
        method: "POST",
        token: admin,
        json: { decision: "approve" },
      }),
      404,
    );
    await useRules(admin, {});
  });

  it("a hold nobody decides on ends at its deadline: cancelled review_expired, stock released, audited", async () => {
    const admin = await adminToken();
    await useRules(admin, { countryMismatch: { enabled: true } });
    const sku = await stockedSku(900, 4);
    const held = await checkout(await shopperNamed("expiry"), sku, { headers: { "X-Simulated-Country": "DE" } });
    expect(held.status).toBe("review");
    // The deadline passes (moved, not waited for), then the alarm fires.
    await passSagaDeadline(held.id);
    const expired = await waitForOrder(held.id, isFinal);
    expect(expired).toMatchObject({ status: "cancelled", reason: "review_expired" });
    const deadline = Date.now() + 10_000;
    let level = await env.INVENTORY.getByName(sku).level();
    let actions = await auditActions(admin, held.id);
    while ((level.reserved !== 0 || actions.length < 2) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      level = await env.INVENTORY.getByName(sku).level();
      actions = await auditActions(admin, held.id);
    }
    expect(level).toMatchObject({ reserved: 0, sold: 0, available: 4 });
    expect(actions).toEqual(["fraud.held_for_review", "fraud.review_expired"]);
    await useRules(admin, {});
  });
});
