// Demo orders: the demo shopper gets one confirmed order and one whose card is declined, both
// placed through the public API so the whole saga (queue consumers, ledger, emails, read model)
// has run once locally. Idempotent: skipped when the shopper already has orders, and each order
// carries a fixed Idempotency-Key, so a restart mid-seed replays instead of ordering twice.
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
  const login = await ctx.api("/v1/auth/login", {
    json: { email: DEMO_SHOPPER.email, password: DEMO_SHOPPER.password },
  });
  if (!login.ok) throw new Error(`demo shopper login failed: HTTP ${login.status}`);
  const { accessToken: token } = (await login.json()) as { accessToken: string };

  const existing = (await (await ctx.api("/v1/orders?limit=1", { token })).json()) as { items: unknown[] };
  if (existing.items.length > 0) {
    ctx.log("orders: the demo shopper has orders already");
    return;
  }
  const products = (await (await ctx.api("/v1/products?inStock=true&limit=2")).json()) as { items: { sku: string }[] };
  if (products.items.length === 0) {
    ctx.log("orders: no SKU in stock, no demo orders");
    return;
  }
  for (const [i, demo] of DEMO_ORDERS.entries()) {
    const sku = products.items[i % products.items.length]!.sku;
    const cart = (await (await ctx.api("/v1/carts", { method: "POST", token })).json()) as { id: string };
    const added = await ctx.api(`/v1/carts/${cart.id}/items`, { token, json: { sku, quantity: 1 } });
    if (!added.ok) throw new Error(`demo cart: HTTP ${added.status} ${await added.text()}`);
    const placed = await ctx.api("/v1/orders", {
      token,
      headers: { "Idempotency-Key": demo.key },
      json: { cartId: cart.id, payment: { method: "card", cardNumber: demo.card }, shippingAddress: SHIPPING },
    });
    if (placed.status !== 202) throw new Error(`demo order: HTTP ${placed.status} ${await placed.text()}`);
    const { id } = (await placed.json()) as { id: string };
    ctx.log(`orders: placed ${id} (${demo.key.replace("seed-demo-order-", "")} card)`);
  }
}
