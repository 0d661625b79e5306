import { env } from "cloudflare:workers";
import { expect, it } from "vitest";
import type { InventoryChanged } from "../contracts/inventory-events";
import { insertSku } from "../test/commerce-fixtures";
import { deliverSagaBatch as deliver } from "../test/order-fixtures";

function changed(sku: string, revision: number, available: number): InventoryChanged {
  return {
    id: crypto.randomUUID(),
    type: "inventory.changed",
    version: 1,
    sku,
    onHand: 100,
    reserved: 100 - available,
    available,
    sold: 0,
    revision,
    cause: "reserved",
    occurredAt: new Date().toISOString(),
  };
}

const available = async (sku: string) =>
  (
    await env.DB.prepare("SELECT available FROM product_variants WHERE sku = ?")
      .bind(sku)
      .first<{ available: number }>()
  )?.available;

it("inventory events project into the catalog; duplicates and older revisions change nothing", async () => {
  await insertSku("PROJ-1");
  const newest = changed("PROJ-1", 7, 40);
  expect((await deliver([newest])).explicitAcks).toEqual(["m0"]);
  expect(await available("PROJ-1")).toBe(40);
  // An older event and a duplicate of the newest, delivered afterwards.
  await deliver([changed("PROJ-1", 3, 90), newest, changed("PROJ-1", 6, 55)]);
  expect(await available("PROJ-1")).toBe(40);
  await deliver([changed("PROJ-1", 8, 39)]);
  expect(await available("PROJ-1")).toBe(39);
});
