// Fulfilment, promotions and tax on the checkout path, and promotion redemptions on one hot code.
//
//   npm run bench -- fulfilment        (or: node_modules/.bin/node bench/fulfilment.bench.ts)
//   BENCH_RUNS (3), BENCH_CHECKOUTS per scenario and run (200), BENCH_REDEMPTIONS (5,000),
//   BENCH_PORT (8850), BENCH_STATE_DIR as for the other HTTP benches.
//
// Part 1, checkout with vs without: 50 concurrent shoppers, each with its own token, address and
// one-line cart prepared before the clock starts; the clock runs from POST /v1/orders to the
// `confirmed` entry of the order's history (server clock = this machine's clock), as in
// bench/checkout.bench.ts. "Without" is a digital SKU: no shipping option, no carrier step, no
// code, no tax (destination US, rate 0). "With" is a physical 1 kg SKU shipped DHL Express
// (weight-based rate) to Portugal (23 % tax on goods and shipping) with a 10 % promotion code
// applied to the cart, so the order is priced, redeemed, taxed and booked with the carrier before
// it is confirmed. The two scenarios alternate within each run, so both see the same machine.
// Each also reports the server's CPU per order (serve.ts and workerd, from /proc, the consumers'
// tail included), measured from an idle server as in bench/checkout.bench.ts.
//
// Part 2, redemptions alone: PromotionObject.redeem for new order ids on one code, 50 calls in
// flight, made by a driver Worker inside workerd over Durable Object RPC, as checkout makes them
// (there is no HTTP route that only redeems). Baseline in the same run, same driver: the object's
// read-only `view()`. Then an exactness check: 3,000 concurrent redemptions against a code with
// maxRedemptions 1,000 must grant exactly 1,000. BENCH_PARTS=checkout|redemptions runs one part.

import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import path from "node:path";
import { type ApiClient, expectOk } from "../scripts/api-client.ts";
import { waitUntilReady, wrangler } from "../scripts/local.ts";
import { serve } from "../scripts/serve.ts";
import { checkOut, insertBenchSkus, signLocalAccessToken, startPrivatePlatform } from "./private-platform.ts";
import { median, quantile } from "./stats.ts";

const PORT = Number(process.env.BENCH_PORT ?? 8850);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const CHECKOUTS = Number(process.env.BENCH_CHECKOUTS ?? 200);
const REDEMPTIONS = Number(process.env.BENCH_REDEMPTIONS ?? 5000);
const CONCURRENCY = 50;
const PHYSICAL = "BENCH-FUL-BOX";
const DIGITAL = "BENCH-FUL-EBOOK";
const US = { name: "Bench", line1: "1 Load St", city: "Testville", postalCode: "10001", country: "US" };
const PT = { name: "Bench", line1: "Rua 1", city: "Lisboa", postalCode: "1100-001", country: "PT" };

/** The p-th percentile (0-100), nearest rank. */
const pct = (xs: number[], p: number) => quantile(xs, p / 100);

// --- part 1: checkout with and without shipping, promotion and tax -------------------------------
const PARTS = (process.env.BENCH_PARTS ?? "checkout,redemptions").split(",");
let checkoutResult: Record<string, unknown> = {};
if (PARTS.includes("checkout")) checkoutResult = await checkoutPart();

async function checkoutPart(): Promise<Record<string, unknown>> {
  const platform = startPrivatePlatform("fulfilment", PORT);
  insertBenchSkus(platform, [PHYSICAL, DIGITAL]);
  const attributes = path.join(platform.dir, "bench-attributes.sql");
  writeFileSync(
    attributes,
    [
      `UPDATE product_variants SET attributes = '{"digital":true}' WHERE sku = '${DIGITAL}';`,
      `UPDATE product_variants SET attributes = '{"shippingWeightGrams":1000}' WHERE sku = '${PHYSICAL}';`,
    ].join("\n"),
  );
  wrangler(["d1", "execute", "DB", "--local", "--persist-to", platform.state, "--file", attributes], { quiet: true });

  interface Shopper {
    api: ApiClient;
    cartId: string;
    withEverything: boolean;
  }
  let seq = 0;
  let expressId = "";
  let code = "";

  async function prepare(withEverything: boolean): Promise<Shopper> {
    const n = ++seq;
    const ip = `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;
    const api = platform.api({ token: await signLocalAccessToken(`bench-ful-${randomUUID()}`, ["customer"]), ip });
    const cart = await expectOk("cart", api.POST("/v1/carts"));
    const id = { params: { path: { id: cart.id } } };
    const sku = withEverything ? PHYSICAL : DIGITAL;
    await expectOk("item", api.POST("/v1/carts/{id}/items", { ...id, body: { sku, quantity: 1 } }));
    if (withEverything) await expectOk("code", api.POST("/v1/carts/{id}/promotion", { ...id, body: { code } }));
    return { api, cartId: cart.id, withEverything };
  }

  async function checkout(s: Shopper): Promise<{ ms: number; total: number }> {
    const { order, sentAt: startWall } = await checkOut(
      s.api,
      {
        cartId: s.cartId,
        payment: { method: "card", cardNumber: "4242424242424242" },
        shippingAddress: s.withEverything ? PT : US,
        ...(s.withEverything ? { shippingOptionId: expressId } : {}),
      },
      ["confirmed", "cancelled", "refunded", "needs_attention"],
    );
    if (order.status !== "confirmed") throw new Error(`order ${order.id} ended ${order.status}`);
    if (order.payment.captured !== order.total.amount) throw new Error(`order ${order.id} captured ≠ total`);
    return { ms: Date.parse(order.history.at(-1)!.at) - startWall, total: order.total.amount };
  }

  async function scenario(withEverything: boolean) {
    const shoppers: Shopper[] = [];
    for (let i = 0; i < CHECKOUTS; i += 25)
      shoppers.push(
        ...(await Promise.all(Array.from({ length: Math.min(25, CHECKOUTS - i) }, () => prepare(withEverything)))),
      );
    const ms: number[] = [];
    const totals = new Set<number>();
    let next = 0;
    await platform.untilIdle();
    const cpuBefore = platform.serverCpuMs();
    const started = performance.now();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < shoppers.length) {
          const r = await checkout(shoppers[next++]!);
          ms.push(r.ms);
          totals.add(r.total);
        }
      }),
    );
    const rate = ms.length / ((performance.now() - started) / 1000);
    // The consumers' tail (projections, notifications) counts too: it is part of what an order costs.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const cpu = (platform.serverCpuMs() - cpuBefore) / ms.length;
    return { p50: pct(ms, 50), p99: pct(ms, 99), rate, cpu, totals };
  }

  const results: { plain: Awaited<ReturnType<typeof scenario>>[]; full: Awaited<ReturnType<typeof scenario>>[] } = {
    plain: [],
    full: [],
  };
  try {
    await waitUntilReady(platform.baseUrl, 120_000);
    const admin = platform.api({ token: await signLocalAccessToken("bench-admin", ["admin"]), ip: "10.255.255.1" });
    await expectOk(
      "stock",
      admin.PUT("/v1/admin/inventory", {
        body: { items: [PHYSICAL, DIGITAL].map((sku) => ({ sku, onHand: 1_000_000 })) },
      }),
    );
    const zone = await expectOk(
      "zone",
      admin.POST("/v1/admin/shipping/zones", { body: { name: "Bench", countries: ["PT", "US"] } }),
    );
    expressId = (
      await expectOk(
        "rate",
        admin.POST("/v1/admin/shipping/rates", {
          body: {
            zoneId: zone.id,
            carrier: "DHL",
            service: "Express",
            currency: "USD",
            kind: "weight",
            amount: 900,
            perKg: 250,
            estimatedDays: 1,
            active: true,
          },
        }),
      )
    ).id;
    await expectOk(
      "tax",
      admin.PUT("/v1/admin/tax-rates/{country}", {
        params: { path: { country: "PT" } },
        body: { rateBps: 2300, shippingTaxable: true },
      }),
    );
    code = (
      await expectOk(
        "promotion",
        admin.POST("/v1/admin/promotions", { body: { code: "BENCH10", kind: "percent", value: 10 } }),
      )
    ).code;

    // Warm-up: object instantiation, JIT, the consumers' first batches.
    const warm = await Promise.all([prepare(false), prepare(true)]);
    await Promise.all(warm.map(checkout));

    const loadBefore = loadavg()[0]!;
    console.log(
      `\n${new Date().toISOString()}; ${CHECKOUTS} checkouts × ${RUNS} runs per scenario at ${CONCURRENCY} shoppers; load average ${loadBefore.toFixed(2)}; state in ${platform.dir}\n`,
    );
    for (let r = 0; r < RUNS; r++) {
      // Alternate which goes first, so neither always meets a fresher machine.
      for (const withEverything of r % 2 === 0 ? [false, true] : [true, false]) {
        const out = await scenario(withEverything);
        (withEverything ? results.full : results.plain).push(out);
        console.log(
          `run ${r + 1} ${withEverything ? "with shipping + code + tax" : "plain (digital)          "}: p50 ${out.p50} ms, p99 ${out.p99} ms, ${out.rate.toFixed(1)} orders/s, server CPU ${out.cpu.toFixed(1)} ms per order, totals ${[...out.totals].join("/")}`,
        );
      }
    }
  } finally {
    platform.stop();
  }

  const summary = (xs: typeof results.plain) => ({
    p50: median(xs.map((x) => x.p50)),
    p99: median(xs.map((x) => x.p99)),
    rate: median(xs.map((x) => x.rate)),
    cpu: median(xs.map((x) => x.cpu)),
  });
  const plain = summary(results.plain);
  const full = summary(results.full);
  const ratio = full.p99 / plain.p99;
  console.log(
    `\ncheckout, medians of ${RUNS}: plain p50 ${plain.p50} / p99 ${plain.p99} ms, ${plain.rate.toFixed(1)} orders/s, ${plain.cpu.toFixed(1)} CPU-ms/order; ` +
      `with shipping + code + tax p50 ${full.p50} / p99 ${full.p99} ms, ${full.rate.toFixed(1)} orders/s, ${full.cpu.toFixed(1)} CPU-ms/order; ` +
      `p99 ratio ×${ratio.toFixed(2)} (target ≤ ×1.10: ${ratio <= 1.1 ? "met" : "NOT met"}); ` +
      `with everything: CPU ≤ 10 ms per order ${full.cpu <= 10 ? "met" : "NOT met"}, ≥ 60 orders/s ${full.rate >= 60 ? "met" : "NOT met"}, p99 < 1 s ${full.p99 < 1000 ? "met" : "NOT met"}`,
  );
  return { plain, full, ratio };
}

// --- part 2: redemptions on one hot code ----------------------------------------------------------
if (!PARTS.includes("redemptions")) {
  console.log(`BENCH_RESULT ${JSON.stringify({ loadAfter: loadavg()[0], ...checkoutResult })}`);
  process.exit(0);
}
// A driver Worker beside edgepulse, bound to its PromotionObject class, makes the calls from inside
// workerd exactly as checkout does (Worker → object RPC); this process only starts each batch.
const DRIVER = `
export default {
  async fetch(request, env) {
    const { code, op, n, concurrency, prefix, define } = await request.json();
    const stub = env.PROMOTION.get(env.PROMOTION.idFromName(code));
    if (define) await stub.define(define);
    let next = 0;
    let granted = 0;
    await Promise.all(Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        if (op === "view") { await stub.view(); continue; }
        const verdict = await stub.redeem(prefix + i, "u-" + prefix + i, { subtotal: 5000, currency: "USD", now: Date.now() });
        if (verdict.ok) granted++;
      }
    }));
    return Response.json({ granted, redemptions: (await stub.view()).redemptions });
  },
};`;
const served = await serve({
  port: PORT + 1,
  persistTo: path.join(process.env.BENCH_STATE_DIR ?? tmpdir(), `edgepulse-bench-promo-${randomUUID()}`),
  log: () => {},
  extraWorkers: [
    {
      name: "promotion-driver",
      modules: true,
      script: DRIVER,
      compatibilityDate: "2026-11-01",
      durableObjects: { PROMOTION: { className: "PromotionObject", scriptName: "edgepulse" } },
    },
  ],
});
try {
  const drive = async (body: Record<string, unknown>) => {
    const started = performance.now();
    const res = await served.dispatchFetch("http://driver/", {
      method: "POST",
      body: JSON.stringify({ concurrency: CONCURRENCY, ...body }),
      headers: { "MF-Route-Override": "promotion-driver" },
    });
    const out = (await res.json()) as { granted: number; redemptions: number };
    return { ...out, perSecond: Number(body.n) / ((performance.now() - started) / 1000) };
  };
  await drive({
    code: "HOT",
    op: "redeem",
    n: 500,
    prefix: "warm-",
    define: { code: "HOT", kind: "percent", value: 10 },
  });
  const rates: number[] = [];
  const baselines: number[] = [];
  let redemptions = 0;
  for (let r = 0; r < RUNS; r++) {
    baselines.push((await drive({ code: "HOT", op: "view", n: REDEMPTIONS })).perSecond);
    const run = await drive({ code: "HOT", op: "redeem", n: REDEMPTIONS, prefix: `r${r}-` });
    rates.push(run.perSecond);
    redemptions = run.redemptions;
  }
  if (redemptions !== 500 + RUNS * REDEMPTIONS)
    throw new Error(`redemptions ${redemptions}, expected ${500 + RUNS * REDEMPTIONS}`);
  const limited = await drive({
    code: "LIMITED",
    op: "redeem",
    n: 3000,
    prefix: "l-",
    define: { code: "LIMITED", kind: "percent", value: 10, maxRedemptions: 1000 },
  });
  const rate = median(rates);
  const base = median(baselines);
  console.log(
    `redemptions on one hot code, ${CONCURRENCY} in flight from a Worker, medians of ${RUNS} × ${REDEMPTIONS}: ${rate.toFixed(0)}/s ` +
      `(per run ${rates.map((x) => x.toFixed(0)).join(", ")}); read-only view() baseline ${base.toFixed(0)}/s; ratio ×${(rate / base).toFixed(2)}; ` +
      `target ≥ 1,000/s: ${rate >= 1000 ? "met" : "NOT met"}. maxRedemptions 1,000 under 3,000 concurrent: ${limited.granted} granted, count ${limited.redemptions}`,
  );
  console.log(
    `BENCH_RESULT ${JSON.stringify({ loadAfter: loadavg()[0], ...checkoutResult, redemptions: { rate, base, granted: limited.granted } })}`,
  );
} finally {
  await served.dispose();
}
process.exit(0);
