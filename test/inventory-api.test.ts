import { beforeAll, describe, expect, it } from "vitest";
import { InventoryLevel } from "../contracts/inventory-events";
import { insertSku } from "./commerce-fixtures";
import { call, collectorToken, expectProblem, tokenFor } from "./helpers";

let admin: string;
let service: string;
let customer: string;

beforeAll(async () => {
  [admin, service, customer] = await Promise.all([
    tokenFor("admin-1", ["admin"]),
    tokenFor("svc-1", ["service"]),
    tokenFor("cust-1", ["customer"]),
  ]);
  await Promise.all(["INV-A", "INV-B", "INV-C", "INV-HOT"].map((sku) => insertSku(sku)));
});

const put = (sku: string, json: unknown, token = admin) =>
  call(`/v1/admin/inventory/${sku}`, { method: "PUT", token, json });
// Operations reserve as admins; the service role (the collector host) has no business with stock.
const reserve = (sku: string, json: unknown, token = admin) =>
  call(`/v1/admin/inventory/${sku}/reservations`, { method: "POST", token, json });
const level = async (sku: string) => InventoryLevel.parse(await (await call(`/v1/inventory/${sku}`)).json());

describe("inventory API", () => {
  it("sets stock (admin only) and reports {sku, onHand, reserved, available}", async () => {
    expect(await level("INV-A")).toMatchObject({ sku: "INV-A", onHand: 0, reserved: 0, available: 0 });
    const res = await put("INV-A", { onHand: 25 });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ sku: "INV-A", onHand: 25, reserved: 0, available: 25, sold: 0 });
    expect(await level("INV-A")).toMatchObject({ onHand: 25, reserved: 0, available: 25 });

    await expectProblem(await put("INV-A", { onHand: 1 }, customer), 403);
    await expectProblem(await put("INV-A", { onHand: 1 }, service), 403);
    await expectProblem(await call("/v1/admin/inventory/INV-A", { method: "PUT", json: { onHand: 1 } }), 401);
    expect((await level("INV-A")).onHand).toBe(25);
  });

  it("answers 404 for SKUs missing from the catalog and 400 for bad input, changing nothing", async () => {
    await expectProblem(await call("/v1/inventory/NOT-IN-CATALOG"), 404);
    await expectProblem(await put("NOT-IN-CATALOG", { onHand: 5 }), 404);
    await put("INV-B", { onHand: 7 });
    for (const body of [{ onHand: -1 }, { onHand: 1.5 }, { onHand: "9" }, {}, { onHand: 3, extra: true }]) {
      const problem = await expectProblem(await put("INV-B", body), 400);
      expect(problem.errors?.length).toBeGreaterThan(0);
    }
    await expectProblem(await call("/v1/inventory/bad%20sku"), 400);
    expect(await level("INV-B")).toMatchObject({ onHand: 7, available: 7 });
  });

  it("refuses (409) to set onHand below reserved + sold", async () => {
    await put("INV-C", { onHand: 10 });
    expect((await reserve("INV-C", { orderId: "o-1", quantity: 4 })).status).toBe(200);
    expect((await reserve("INV-C", { orderId: "o-2", quantity: 3 })).status).toBe(200);
    const commit = await call("/v1/admin/inventory/INV-C/reservations/o-2/commit", { method: "POST", token: admin });
    expect(commit.status).toBe(200);
    const problem = await expectProblem(await put("INV-C", { onHand: 6 }), 409);
    expect(problem.type).toMatch(/stock-conflict$/);
    expect(await level("INV-C")).toMatchObject({ onHand: 10, reserved: 4, available: 3 });
    expect((await put("INV-C", { onHand: 7 })).status).toBe(200);
    expect(await level("INV-C")).toMatchObject({ onHand: 7, reserved: 4, available: 0 });
  });

  it("reserves through the API without overselling, idempotently by orderId", async () => {
    await put("INV-HOT", { onHand: 20 });
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, n) => reserve("INV-HOT", { orderId: `hot-${n % 40}`, quantity: 1 })),
    );
    // 40 distinct order ids (20 of them sent twice) on 20 units: exactly 20 order ids hold stock.
    const okIds = new Set<string>();
    for (const [n, res] of results.entries()) {
      expect([200, 409]).toContain(res.status);
      if (res.status === 200) okIds.add(`hot-${n % 40}`);
    }
    expect(okIds.size).toBe(20);
    expect(await level("INV-HOT")).toMatchObject({ onHand: 20, reserved: 20, available: 0 });
    const out = await expectProblem(await reserve("INV-HOT", { orderId: "late", quantity: 1 }), 409);
    expect(out.type).toMatch(/out-of-stock$/);

    const [first] = [...okIds];
    const release = await call(`/v1/admin/inventory/INV-HOT/reservations/${first}`, {
      method: "DELETE",
      token: admin,
    });
    expect(await release.json()).toEqual({ released: true });
    expect((await level("INV-HOT")).available).toBe(1);
    await expectProblem(
      await call(`/v1/admin/inventory/INV-HOT/reservations/${first}/commit`, { method: "POST", token: admin }),
      409,
    );
    await expectProblem(await reserve("INV-HOT", { orderId: "x", quantity: 1 }, customer), 403);
    await expectProblem(await reserve("INV-HOT", { orderId: "x", quantity: 0 }), 400);
    expect((await level("INV-HOT")).available).toBe(1);
  });

  it("refuses (403) to let a service token reserve, release or commit stock, changing nothing", async () => {
    await insertSku("INV-SVC");
    await put("INV-SVC", { onHand: 5 });
    expect((await reserve("INV-SVC", { orderId: "held", quantity: 2 })).status).toBe(200);
    // The collector host's real token (scoped) and a bare service-role token alike.
    for (const token of [await collectorToken(), service]) {
      await expectProblem(await reserve("INV-SVC", { orderId: "svc", quantity: 3 }, token), 403);
      await expectProblem(
        await call("/v1/admin/inventory/INV-SVC/reservations/held", { method: "DELETE", token }),
        403,
      );
      await expectProblem(
        await call("/v1/admin/inventory/INV-SVC/reservations/held/commit", { method: "POST", token }),
        403,
      );
    }
    expect(await level("INV-SVC")).toMatchObject({ onHand: 5, reserved: 2, available: 3, sold: 0 });
  });

  it("stocks many SKUs in one batch, and only unstocked ones when asked", async () => {
    await Promise.all(["BATCH-1", "BATCH-2", "BATCH-3"].map((sku) => insertSku(sku)));
    await put("BATCH-1", { onHand: 2 });
    let res = await call("/v1/admin/inventory", {
      method: "PUT",
      token: admin,
      json: {
        items: [
          { sku: "BATCH-1", onHand: 50 },
          { sku: "BATCH-2", onHand: 60 },
        ],
        onlyIfUnstocked: true,
      },
    });
    expect(res.status).toBe(200);
    const body = await res.json<{ items: unknown[]; conflicts: unknown[] }>();
    expect(
      InventoryLevel.array()
        .parse(body.items)
        .map((l) => [l.sku, l.onHand]),
    ).toEqual([
      ["BATCH-1", 2],
      ["BATCH-2", 60],
    ]);
    expect(body.conflicts).toEqual([]);

    // One unknown SKU: 404 and nothing changes.
    res = await call("/v1/admin/inventory", {
      method: "PUT",
      token: admin,
      json: {
        items: [
          { sku: "BATCH-3", onHand: 9 },
          { sku: "NOPE", onHand: 9 },
        ],
      },
    });
    await expectProblem(res, 404);
    expect((await level("BATCH-3")).onHand).toBe(0);
    const dup = await call("/v1/admin/inventory", {
      method: "PUT",
      token: admin,
      json: {
        items: [
          { sku: "BATCH-3", onHand: 1 },
          { sku: "BATCH-3", onHand: 2 },
        ],
      },
    });
    await expectProblem(dup, 400);
  });

  it("lists its routes in the OpenAPI document", async () => {
    const doc = await (await call("/v1/openapi.json")).json<{ paths: Record<string, unknown> }>();
    expect(Object.keys(doc.paths)).toEqual(
      expect.arrayContaining([
        "/v1/carts",
        "/v1/carts/{id}/items",
        "/v1/inventory/{sku}",
        "/v1/admin/inventory/{sku}",
        "/v1/admin/inventory/{sku}/reservations",
      ]),
    );
  });
});
