// Demo orders: the demo shopper gets one confirmed order and one whose card is declined, both
// placed through the public API so the whole saga (queue consumers, ledger, emails, read model)
// has run once locally. Idempotent: skipped when the shopper already has orders, and each order
// carries a fixed Idempotency-Key, so a restart mid-seed replays instead of ordering twice.
import { expectOk } from "../api-client.ts";
import { DEMO_SHOPPER, type SeedContext } from "../local.ts";

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

export default async function seedOrders(ctx: SeedContext): Promise<void> {
  const { email, password } = DEMO_SHOPPER;
  const { accessToken } = await expectOk(
    "demo shopper login",
    ctx.api().POST("/v1/auth/login", { body: { email, password } }),
  );
  const shopper = ctx.api(accessToken);

  const existing = await expectOk("demo orders", shopper.GET("/v1/orders", { params: { query: { limit: 1 } } }));
  if (existing.items.length > 0) {
    ctx.log("orders: the demo shopper has orders already");
    return;
  }
  const products = await expectOk(
    "products in stock",
    ctx.api().GET("/v1/products", { params: { query: { inStock: true, limit: 2 } } }),
  );
  if (products.items.length === 0) {
    ctx.log("orders: no SKU in stock, no demo orders");
    return;
  }
  for (const [i, demo] of DEMO_ORDERS.entries()) {
    const sku = products.items[i % products.items.length]!.sku;
    const cart = await expectOk("demo cart", shopper.POST("/v1/carts"));
    await expectOk(
      "demo cart item",
      shopper.POST("/v1/carts/{id}/items", { params: { path: { id: cart.id } }, body: { sku, quantity: 1 } }),
    );
    const placed = await shopper.POST("/v1/orders", {
      params: { header: { "idempotency-key": demo.key } },
      body: { cartId: cart.id, payment: { method: "card", cardNumber: demo.card }, shippingAddress: SHIPPING },
    });
    if (placed.response.status !== 202 || !placed.data) {
      throw new Error(`demo order: HTTP ${placed.response.status} ${JSON.stringify(placed.error)}`);
    }
    const { id } = placed.data;
    ctx.log(`orders: placed ${id} (${demo.key.replace("seed-demo-order-", "")} card)`);
  }
}
