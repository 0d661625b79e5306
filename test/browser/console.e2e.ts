// The operator console in a real browser (Debian's headless chromium driven by playwright-core)
// against a locally started stack: the Worker on Miniflare and the collector host replaying the
// recorded exchange feeds. One stack and one browser for the whole file; every wait is a poll with
// a generous deadline, never a fixed sleep.
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectOk } from "../../scripts/api-client.ts";
import { DEMO_ADMIN } from "../../scripts/local.ts";
import { type ConsoleMetrics, E2E_SKU, launchChromium, type Stack, startStack } from "./stack.ts";

const REFUND_OUTAGE_CARD = "4000000000005126";

let stack: Stack;
let browser: Browser;
let context: BrowserContext;
let page: Page;

beforeAll(async () => {
  [stack, browser] = await Promise.all([startStack(), launchChromium()]);
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  page = await context.newPage();
}, 300_000);

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

/** Places an order for the shopper through the API; returns its id. */
async function checkout(card = "4242424242424242"): Promise<string> {
  const api = stack.api(stack.shopperToken);
  const cart = await expectOk("cart", api.POST("/v1/carts"));
  await expectOk(
    "add item",
    api.POST("/v1/carts/{id}/items", { params: { path: { id: cart.id } }, body: { sku: E2E_SKU, quantity: 1 } }),
  );
  const order = await expectOk(
    "order",
    api.POST("/v1/orders", {
      body: {
        cartId: cart.id,
        payment: { method: "card", cardNumber: card },
        shippingAddress: { name: "Ada", line1: "1 Main St", city: "Lisbon", postalCode: "1100", country: "PT" },
      },
    }),
  );
  return order.id;
}

async function orderStatus(id: string): Promise<string | undefined> {
  const { data } = await stack.api(stack.shopperToken).GET("/v1/orders/{id}", { params: { path: { id } } });
  return data?.status;
}

const metrics = () =>
  page.evaluate(() => {
    const m = (globalThis as unknown as { edgepulseConsole: ConsoleMetrics }).edgepulseConsole;
    return { ...m, latencies: m.latencies.length };
  });

describe("operator console (/console) in headless chromium", () => {
  it("signs in as the demo admin and shows the XMR-USD book updating live from the replayed feed", async () => {
    await page.goto(`${stack.baseUrl}/console`);
    await page.getByLabel("Email").fill(DEMO_ADMIN.email);
    await page.getByLabel("Password").fill(DEMO_ADMIN.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Live market" }).waitFor();
    expect(await page.getByRole("navigation", { name: "Console views" }).textContent()).toContain("Sagas");

    // The collector host needs a moment to connect and publish its first snapshot after startup.
    await expect.poll(() => page.locator("#symbol").inputValue(), { timeout: 60_000 }).toBe("XMR-USD");
    await expect.poll(async () => (await metrics()).lastSeq, { timeout: 60_000 }).toBeGreaterThanOrEqual(0);
    await page.locator('article[data-exchange="kraken"] table.ladder tbody tr td.bid').first().waitFor();
    await expect
      .poll(() => page.locator('article[data-exchange="kraken"] td.bid').first().textContent(), { timeout: 30_000 })
      .toMatch(/^\d+(\.\d+)?$/);
    expect(await page.getByTestId("bbo-bid").textContent()).toMatch(/^\d+(\.\d+)?$/);

    // Live: the book moves on by new frames (deltas with consecutive seq) within 10 s.
    const before = await metrics();
    await expect.poll(async () => (await metrics()).lastSeq, { timeout: 10_000 }).toBeGreaterThan(before.lastSeq);
    // Painting is coalesced into animation frames: the paint that shows the new seq comes just after it.
    await expect
      .poll(async () => (await metrics()).framesPainted, { timeout: 10_000 })
      .toBeGreaterThan(before.framesPainted);
    expect((await metrics()).gaps).toBe(0);
    await expect
      .poll(() => page.locator('article[data-exchange="kraken"] .freshness').getAttribute("data-fresh"))
      .toBe("true");

    // Chromium offers permessage-deflate on every WebSocket; the edge agrees to none (wrangler.toml's
    // no_web_socket_compression), so a relay never compresses a frame once per subscriber.
    const agreed = await page.evaluate(
      async (url) => {
        const socket = new WebSocket(url);
        await new Promise((resolve, reject) => {
          socket.onopen = resolve;
          socket.onerror = reject;
        });
        socket.close();
        return socket.extensions;
      },
      `${stack.baseUrl.replace(/^http/, "ws")}/v1/market/XMR-USD/ws`,
    );
    expect(agreed).toBe("");
  });

  it("shows a checkout made through the API in the sales analytics and the saga monitor", async () => {
    const orderId = await checkout();
    await expect.poll(() => orderStatus(orderId), { timeout: 30_000 }).toBe("confirmed");

    await page.getByRole("link", { name: "Sales" }).click();
    await page.getByRole("heading", { name: "Sales analytics" }).waitFor();
    // The rollups are fed by the saga queue; the view refreshes every 10 s.
    await expect.poll(() => page.getByTestId("kpi-orders").textContent(), { timeout: 30_000 }).toBe("1");
    expect(await page.getByTestId("kpi-revenue").textContent()).toBe("25.00 USD");
    expect(await page.getByTestId("kpi-payment-success").textContent()).toBe("100.0 %");
    expect(await page.getByRole("table", { name: "Best sellers by revenue" }).textContent()).toContain(E2E_SKU);

    await page.getByRole("link", { name: "Sagas" }).click();
    await page.getByRole("heading", { name: "Saga monitor" }).waitFor();
    await expect.poll(() => page.locator('[data-status="confirmed"]').textContent(), { timeout: 15_000 }).toBe("1");
    await page.getByLabel("Order", { exact: true }).fill(orderId);
    await page.getByRole("button", { name: "Show history" }).click();
    const history = page.getByRole("table", { name: "Status history" });
    await history.waitFor();
    expect(await history.textContent()).toMatch(/pending.*reserved.*paid.*confirmed/s);
    expect(await page.getByRole("table", { name: "Saga messages" }).textContent()).toContain("order.confirmed");
  });

  it("retries a dead-lettered saga: the refund that ran out of deliveries goes through", async () => {
    const orderId = await checkout(REFUND_OUTAGE_CARD);
    await expect.poll(() => orderStatus(orderId), { timeout: 30_000 }).toBe("confirmed");
    const { data: tokens } = await stack
      .api()
      .POST("/v1/auth/login", { body: { email: DEMO_ADMIN.email, password: DEMO_ADMIN.password } });
    await expectOk(
      "refund",
      stack.api(tokens!.accessToken).POST("/v1/admin/orders/{id}/refund", { params: { path: { id: orderId } } }),
    );

    await page.getByRole("link", { name: "Sagas" }).click();
    await page.getByLabel("Show", { exact: true }).selectOption("dead-lettered");
    // 4 failed deliveries with 1 + 2 + 4 s backoff, then the dead-letter queue; the list polls every 5 s.
    const retry = page.locator(`button.retry[data-order="${orderId}"]`);
    await retry.waitFor({ timeout: 60_000 });
    expect(await page.getByRole("table", { name: "dead-lettered sagas" }).textContent()).toContain("payment.refund");
    await retry.click();
    await expect
      .poll(() => page.getByRole("status").filter({ hasText: orderId }).textContent(), { timeout: 15_000 })
      .toContain("Redelivered order.refund_requested");
    await expect.poll(() => orderStatus(orderId), { timeout: 30_000 }).toBe("refunded");
    await expect.poll(() => retry.count(), { timeout: 15_000 }).toBe(0);
  });

  it("lists the collector host with a Fence button; fencing the only publisher asks again and, declined, fences nothing", async () => {
    await page.goto(`${stack.baseUrl}/console#/collectors`);
    const row = page.locator("table.collector-hosts tbody tr").first();
    // Wait until the edge knows this host leads the symbols (its first report and publish sockets).
    await expect.poll(() => row.locator("td").nth(2).textContent(), { timeout: 60_000 }).toMatch(/^\d+: /);
    const dialogs: string[] = [];
    const answer = (dialog: import("playwright-core").Dialog) => {
      dialogs.push(dialog.message());
      void (dialogs.length === 1 ? dialog.accept() : dialog.dismiss());
    };
    page.on("dialog", answer);
    try {
      await row.getByRole("button", { name: "Fence" }).click();
      // One host, no standby: the edge refuses (409) and the console asks before forcing; declined.
      await expect
        .poll(() => page.getByRole("status").filter({ hasText: "Fencing" }).textContent(), { timeout: 15_000 })
        .toContain("only publisher");
      expect(dialogs).toHaveLength(2);
      expect(dialogs[1]).toContain("Fence anyway?");
    } finally {
      page.off("dialog", answer);
    }
    // Nothing was fenced: the host still publishes (the report keeps arriving, the book keeps moving).
    const seq = async () =>
      (await expectOk("book", stack.api().GET("/v1/market/{symbol}/book", { params: { path: { symbol: "XMR-USD" } } })))
        .seq;
    const before = await seq();
    await expect.poll(seq, { timeout: 30_000 }).toBeGreaterThan(before);
  });

  it("has labelled controls and main views reachable by keyboard", async () => {
    for (const view of ["market", "collectors", "sales", "sagas"]) {
      await page.goto(`${stack.baseUrl}/console#/${view}`);
      await page.locator("main h2").waitFor();
      const unlabelled = await page.locator("input, select, button, meter").evaluateAll((els) =>
        els
          .filter((el) => {
            const labelled =
              (el as unknown as { labels?: { length: number } }).labels?.length || el.getAttribute("aria-label");
            return !labelled && !(el.textContent ?? "").trim();
          })
          .map((el) => el.outerHTML.slice(0, 80)),
      );
      expect(unlabelled, view).toEqual([]);
      expect(await page.locator("table:not(:has(caption)):not([aria-label])").count(), view).toBe(0);
    }
    // From the top of the page, Tab reaches the navigation; Enter on a link opens that view.
    await page.goto(`${stack.baseUrl}/console#/market`);
    await page.locator("main h2").waitFor();
    const reached: string[] = [];
    for (let i = 0; i < 10 && !reached.includes("Sagas"); i++) {
      await page.keyboard.press("Tab");
      reached.push(
        await page.evaluate(
          () =>
            (
              globalThis as unknown as { document: { activeElement: { textContent: string | null } | null } }
            ).document.activeElement?.textContent?.trim() ?? "",
        ),
      );
    }
    expect(reached).toEqual(expect.arrayContaining(["Market", "Collectors", "Sales", "Sagas"]));
    await page.keyboard.press("Enter");
    await page.getByRole("heading", { name: "Saga monitor" }).waitFor();
    expect(page.url()).toMatch(/#\/sagas$/);
    // The view's controls follow in tab order; a select works from the keyboard.
    await page.locator("#saga-state").focus();
    await page.keyboard.press("ArrowDown");
    await expect.poll(() => page.locator("#saga-state").inputValue()).toBe("stuck");
    await page.getByRole("heading", { name: "Collector health" }).count();
  });

  it("signs out: back to the sign-in form, and the session's token no longer works", async () => {
    const token = await page.evaluate(() => {
      const storage = (globalThis as unknown as { sessionStorage: { getItem(key: string): string | null } })
        .sessionStorage;
      return (JSON.parse(storage.getItem("edgepulse.console.session") ?? "{}") as { accessToken?: string }).accessToken;
    });
    expect(token).toBeTruthy();
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Operator sign-in" }).waitFor();
    await page.reload();
    await page.getByRole("heading", { name: "Operator sign-in" }).waitFor();
    await expect
      .poll(async () => (await stack.api(token).GET("/v1/admin/alerts", { params: { query: {} } })).response.status)
      .toBe(401);
  });

  it("says clearly that the API is down instead of going blank", async () => {
    await page.getByLabel("Email").fill(DEMO_ADMIN.email);
    await page.getByLabel("Password").fill(DEMO_ADMIN.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("heading", { name: "Live market" }).waitFor();
    await page.goto(`${stack.baseUrl}/console#/sagas`);
    await page.getByRole("heading", { name: "Saga monitor" }).waitFor();
    await stack.stopWorker();
    const banner = page.locator("#api-status");
    await banner.waitFor({ state: "visible", timeout: 30_000 });
    expect(await banner.textContent()).toContain("The edgepulse API is not answering");
    expect(await banner.getAttribute("role")).toBe("alert");
    // What was on screen stays there, marked as possibly stale: not a blank page.
    expect(await page.getByRole("heading", { name: "Saga monitor" }).isVisible()).toBe(true);
  });
});
