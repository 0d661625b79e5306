// Demo orders: the demo shopper gets one confirmed order, one whose card is declined and one that
// used WELCOME10 and was shipped and delivered by the admin, all placed through the public API so
// the whole saga (queue consumers, carrier, ledger, emails, read model) has run once locally.
// Idempotent: the first two are skipped when the shopper already has orders, the delivered one when
// a delivered order exists; the first two carry fixed Idempotency-Keys, so a restart mid-seed
// replays them instead of ordering twice (the delivered one is keyed by its cart).
import { expectOk } from "../api-client.ts";
import { DEMO_SHOPPER, type SeedContext } from "../local.ts";
import { DEMO_PROMOTIONS } from "./35-fulfilment.ts";

const SHIPPING = {
  name: "Demo Shopper",
  line1: "1 Edge Street",
  city: "Lisbon",
  postalCode: "1100-001",
  country: "PT",
};
const DEMO_ORDERS = [
  { key: "seed-demo-order-confirmed", card: "4242424242424242" },
  { key: "seed-demo-order-declined", card: "4000000000000002" },
];
/** Shipped and delivered by the admin once confirmed, so the demo shopper can review what they bought. */
const DELIVERED_ORDER = { key: "seed-demo-order-delivered", card: "4242424242424242", perCart: true };
/** How long the seed waits for the saga to confirm the order it then ships. */
const CONFIRM_TIMEOUT_MS = 60_000;

export default async function seedOrders(ctx: SeedContext): Promise<void> {
  const { email, password } = DEMO_SHOPPER;
  const { accessToken } = await expectOk(
    "demo shopper login",
    ctx.api().POST("/v1/auth/login", { body: { email, password } }),
  );
  const shopper = ctx.api(accessToken);

  const existing = await expectOk("demo orders", shopper.GET("/v1/orders", { params: { query: { limit: 100 } } }));
  const products = await expectOk(
    "products in stock",
    ctx.api().GET("/v1/products", { params: { query: { inStock: true, limit: 3 } } }),
  );
  if (products.items.length === 0) {
    ctx.log("orders: no SKU in stock, no demo orders");
    return;
  }
  /** One cart of one SKU, checked out with the cheapest shipping option to the demo address. */
  const place = async (demo: { key: string; card: string; perCart?: boolean }, sku: string, code?: string) => {
    const cart = await expectOk("demo cart", shopper.POST("/v1/carts"));
    const path = { params: { path: { id: cart.id } } };
    await expectOk("demo cart item", shopper.POST("/v1/carts/{id}/items", { ...path, body: { sku, quantity: 1 } }));
    // A code this shopper already used (a restart after an earlier attempt) is 422: order without it.
    if (code) await shopper.POST("/v1/carts/{id}/promotion", { ...path, body: { code } });
    const options = await expectOk(
      "shipping options",
      shopper.GET("/v1/carts/{id}/shipping-options", {
        params: { ...path.params, query: { country: SHIPPING.country } },
      }),
    );
    const placed = await shopper.POST("/v1/orders", {
      params: { header: { "idempotency-key": demo.perCart ? `${demo.key}-${cart.id}` : demo.key } },
      body: {
        cartId: cart.id,
        payment: { method: "card", cardNumber: demo.card },
        shippingAddress: SHIPPING,
        ...(options.items[0] ? { shippingOptionId: options.items[0].id } : {}),
      },
    });
    if (placed.response.status !== 202 || !placed.data) {
      throw new Error(`demo order: HTTP ${placed.response.status} ${JSON.stringify(placed.error)}`);
    }
    ctx.log(`orders: placed ${placed.data.id} (${demo.key.replace("seed-demo-order-", "")})`);
    return placed.data.id;
  };

  if (existing.items.length === 0) {
    for (const [i, demo] of DEMO_ORDERS.entries()) await place(demo, products.items[i % products.items.length]!.sku);
  }
  if (existing.items.some((o) => o.status === "delivered")) {
    ctx.log("orders: the demo shopper has a delivered order already");
    return;
  }
  const id = await place(DELIVERED_ORDER, products.items[2 % products.items.length]!.sku, DEMO_PROMOTIONS[0].code);
  const deadline = Date.now() + CONFIRM_TIMEOUT_MS;
  for (;;) {
    const order = await expectOk("demo order", shopper.GET("/v1/orders/{id}", { params: { path: { id } } }));
    if (order.status === "confirmed") break;
    if (order.status !== "pending" && order.status !== "reserved" && order.status !== "paid") {
      throw new Error(`demo order ${id} ended ${order.status}, not confirmed`);
    }
    if (Date.now() > deadline) throw new Error(`demo order ${id} not confirmed within ${CONFIRM_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const admin = ctx.api(await ctx.adminToken());
  const order = { params: { path: { id } } };
  await expectOk("demo ship", admin.POST("/v1/admin/orders/{id}/ship", order));
  await expectOk("demo deliver", admin.POST("/v1/admin/orders/{id}/deliver", order));
  ctx.log(`orders: ${id} shipped and delivered`);
}
