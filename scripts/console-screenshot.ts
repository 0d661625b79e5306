// Takes the README's screenshot of the operator console: a throwaway local stack (the browser
// tests' one: Worker, demo accounts, collector host replaying the recorded feeds), a few orders so
// the saga and sales views have something to show, then headless chromium on the live market view.
// Usage: node scripts/console-screenshot.ts [out.png] (default docs/console-market.png).
import path from "node:path";
import { E2E_SKU, launchChromium, startStack } from "../test/browser/stack.ts";
import { expectOk } from "./api-client.ts";
import { DEMO_ADMIN, ROOT } from "./local.ts";

const out = path.resolve(process.argv[2] ?? path.join(ROOT, "docs", "console-market.png"));
const stack = await startStack();
const browser = await launchChromium();
try {
  const shopper = stack.api(stack.shopperToken);
  for (const card of ["4242424242424242", "4242424242424242", "4000000000000002"]) {
    const cart = await expectOk("cart", shopper.POST("/v1/carts"));
    await expectOk(
      "item",
      shopper.POST("/v1/carts/{id}/items", { params: { path: { id: cart.id } }, body: { sku: E2E_SKU, quantity: 2 } }),
    );
    await expectOk(
      "order",
      shopper.POST("/v1/orders", {
        body: {
          cartId: cart.id,
          payment: { method: "card", cardNumber: card },
          shippingAddress: { name: "Ada", line1: "1 Main St", city: "Lisbon", postalCode: "1100", country: "PT" },
        },
      }),
    );
  }
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await page.goto(`${stack.baseUrl}/console`);
  await page.getByLabel("Email").fill(DEMO_ADMIN.email);
  await page.getByLabel("Password").fill(DEMO_ADMIN.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator('article[data-exchange="kraken"] td.bid').first().waitFor({ timeout: 120_000 });
  // Let a few seconds of deltas and trades arrive, so the charts show a moving book.
  await page.waitForFunction(
    () =>
      (globalThis as unknown as { edgepulseConsole: { framesPainted: number } }).edgepulseConsole.framesPainted > 50,
    undefined,
    { timeout: 60_000 },
  );
  await page.screenshot({ path: out, fullPage: false });
  console.log(`[screenshot] ${path.relative(ROOT, out)}`);
} finally {
  await browser.close();
  await stack.stop();
}
