// What trust costs on the hot paths, each against a baseline measured in the same run:
//
//   1. API-key authentication: GET /v1/orders?limit=1 with `X-API-Key` vs the same request with a
//      bearer token (both end in the same read-model query), plus GET /health (no auth, no I/O);
//      the three are interleaved request by request, so all see the same machine load.
//   2. The fraud step on checkout: POST /v1/orders → `confirmed` with every fraud rule on (with
//      thresholds nothing reaches, so every order is screened and cleared: three velocity objects,
//      the account read, the audit append, the screening result) vs every rule off (the saga does
//      not wait for the step at all). Rounds alternate off/on so drift in machine load hits both.
//
//   npm run bench -- trust          (or: node_modules/.bin/node bench/trust.bench.ts)
//   BENCH_PORT (8870), BENCH_RUNS (3 auth rounds), BENCH_REQUESTS (1,000 per auth round),
//   BENCH_CHECKOUTS (30 per fraud round), BENCH_FRAUD_ROUNDS (8, alternating off/on), BENCH_CONCURRENCY (10), BENCH_STATE_DIR (tmpfs: /dev/shm).
//
// Its own server (scripts/serve.ts on a throwaway state directory, rate limits in memory). Keys have
// their own budget (120 a minute), so the key side spreads its requests over 40 owners' keys, and
// the bearer side over the same 40 owners' tokens. The last line is `BENCH_RESULT {json}`.

import { randomUUID } from "node:crypto";
import { writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import path from "node:path";
import { type ApiClient, expectOk } from "../scripts/api-client.ts";
import { waitUntilReady, wrangler } from "../scripts/local.ts";
import {
  checkOut,
  insertBenchSkus,
  signLocalAccessToken,
  startPrivatePlatform,
  stockAndShipTo,
} from "./private-platform.ts";
import { median, quantile } from "./stats.ts";

const PORT = Number(process.env.BENCH_PORT ?? 8870);
const BASE = `http://127.0.0.1:${PORT}`;
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 1000);
const CHECKOUTS = Number(process.env.BENCH_CHECKOUTS ?? 30);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 10);
const OWNERS = 40;
/** Fraud rounds, alternating off/on (more, shorter rounds average out the shared VM's load swings). */
const FRAUD_ROUNDS = Number(process.env.BENCH_FRAUD_ROUNDS ?? 8);
const SKUS = Array.from({ length: 10 }, (_, n) => `BENCH-TR-${n}`);
const SHIPPING = { name: "Bench Shopper", line1: "1 Load St", city: "Testville", postalCode: "00000", country: "US" };

const platform = startPrivatePlatform("trust", PORT);
insertBenchSkus(platform, SKUS);
const ownerIds = Array.from({ length: OWNERS }, (_, n) => `bench-key-owner-${n}`);
// Key owners need an account row (a key acts as its owner, read with the key).
const usersSql = path.join(platform.dir, "bench-users.sql");
writeFileSync(
  usersSql,
  ownerIds
    .map(
      (id) =>
        `INSERT OR IGNORE INTO users (id, email, name, roles) VALUES ('${id}', '${id}@bench.test', 'Bench', '["customer"]');`,
    )
    .join("\n"),
);
wrangler(["d1", "execute", "DB", "--local", "--persist-to", platform.state, "--file", usersSql], { quiet: true });

const pct = (xs: number[], p: number) => quantile(xs, p / 100);
const ms = (x: number) => `${x.toFixed(1)} ms`;

/** `total` calls of `request(i)` with CONCURRENCY in flight; per-call latencies in ms. */
async function timed(total: number, request: (i: number) => Promise<unknown>): Promise<number[]> {
  const times: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < total) {
        const i = next++;
        const t = performance.now();
        await request(i);
        times.push(performance.now() - t);
      }
    }),
  );
  return times;
}

const FRAUD_OFF = {
  customerVelocity: { enabled: false, maxOrders: 10_000, windowMinutes: 60 },
  ipVelocity: { enabled: false, maxOrders: 10_000, windowMinutes: 60 },
  cardVelocity: { enabled: false, maxOrders: 10_000, windowMinutes: 60 },
  newAccountAmount: { enabled: false, accountAgeHours: 1, maxAmount: 100_000_000 },
  countryMismatch: { enabled: false },
  reviewHoldMinutes: 10,
};
const FRAUD_ON = {
  customerVelocity: { ...FRAUD_OFF.customerVelocity, enabled: true },
  ipVelocity: { ...FRAUD_OFF.ipVelocity, enabled: true },
  cardVelocity: { ...FRAUD_OFF.cardVelocity, enabled: true },
  newAccountAmount: { ...FRAUD_OFF.newAccountAmount, enabled: true },
  countryMismatch: { enabled: true },
  reviewHoldMinutes: 10,
};

/** The flat US rate every bench order ships with (physical goods need a shipping option). */
let shippingOptionId = "";
let shopperSeq = 0;
/** A new shopper with a one-line cart (not timed). */
async function prepareCheckout(): Promise<{ api: ApiClient; cartId: string }> {
  const n = ++shopperSeq;
  const api = platform.api({
    token: await signLocalAccessToken(`bench-shopper-${randomUUID()}`, ["customer"]),
    ip: `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`,
  });
  const cart = await expectOk("create cart", api.POST("/v1/carts"));
  await expectOk(
    "add item",
    api.POST("/v1/carts/{id}/items", {
      params: { path: { id: cart.id } },
      body: { sku: SKUS[n % SKUS.length]!, quantity: 1 },
    }),
  );
  return { api, cartId: cart.id };
}

/** POST → `confirmed` (the server's history time), as bench/checkout.bench.ts measures it. */
async function checkoutMs(p: { api: ApiClient; cartId: string }): Promise<number> {
  const { order, sentAt: startWall } = await checkOut(
    p.api,
    {
      cartId: p.cartId,
      payment: { method: "card", cardNumber: "4242424242424242" },
      shippingAddress: SHIPPING,
      shippingOptionId,
    },
    ["confirmed", "cancelled", "review", "refunded"],
  );
  if (order.status !== "confirmed")
    throw new Error(`bench order ended ${order.status}: the fraud thresholds must let every order through`);
  return Date.parse(order.history.at(-1)!.at) - startWall;
}

try {
  await waitUntilReady(BASE, 120_000);
  const admin = platform.api({ token: await signLocalAccessToken("bench-admin", ["admin"]), ip: "10.255.255.1" });
  shippingOptionId = await stockAndShipTo(admin, SKUS, SHIPPING.country);

  // --- 1. key authentication vs bearer tokens -----------------------------------------------------
  const owners = await Promise.all(
    ownerIds.map(async (id, n) => {
      const bearer = platform.api({ token: await signLocalAccessToken(id, ["customer"]), ip: `10.1.0.${n}` });
      const created = await expectOk(
        "create key",
        bearer.POST("/v1/users/me/api-keys", { body: { name: "bench", scopes: ["orders:read"] } }),
      );
      return { bearer, keyed: platform.api({ ip: `10.2.0.${n}` }), key: created.key };
    }),
  );
  const anonymous = platform.api();
  const viaBearer = (i: number) =>
    expectOk("orders (bearer)", owners[i % OWNERS]!.bearer.GET("/v1/orders", { params: { query: { limit: 1 } } }));
  const viaKey = (i: number) => {
    const owner = owners[i % OWNERS]!;
    return expectOk(
      "orders (key)",
      owner.keyed.GET("/v1/orders", { params: { query: { limit: 1 } }, headers: { "X-API-Key": owner.key } }),
    );
  };
  const health = (i: number) => anonymous.GET("/health", { headers: { "CF-Connecting-IP": `10.3.0.${i % 250}` } });
  // Warm-up: isolates, JIT, each key's and token's first (uncached) check.
  await timed(OWNERS * 2, viaBearer);
  await timed(OWNERS * 2, viaKey);

  const auth = { health: [] as number[][], bearer: [] as number[][], key: [] as number[][] };
  const loadBefore = loadavg()[0]!;
  for (let run = 0; run < RUNS; run++) {
    // The three kinds interleaved request by request, so each sees the same machine load (this VM
    // is shared: load swings between rounds are bigger than the differences measured).
    const times = { health: [] as number[], bearer: [] as number[], key: [] as number[] };
    const kinds = ["health", "bearer", "key"] as const;
    await timed(REQUESTS * 3, async (i) => {
      const kind = kinds[i % 3]!;
      const t = performance.now();
      await (kind === "health" ? health(i) : kind === "key" ? viaKey(i) : viaBearer(i));
      times[kind].push(performance.now() - t);
    });
    for (const kind of kinds) auth[kind].push(times[kind]);
  }

  console.log(
    `API-key auth (GET /v1/orders?limit=1): bearer p99 per run ${auth.bearer.map((r) => Math.round(pct(r, 99))).join(", ")} ms; ` +
      `key p99 per run ${auth.key.map((r) => Math.round(pct(r, 99))).join(", ")} ms`,
  );

  // --- 2. the fraud step on checkout ---------------------------------------------------------------
  await expectOk("rules off", admin.PUT("/v1/admin/fraud-rules", { body: FRAUD_OFF }));
  await Promise.all(Array.from({ length: 10 }, async () => checkoutMs(await prepareCheckout()))); // warm-up
  const fraud = { off: [] as number[][], on: [] as number[][] };
  for (let run = 0; run < FRAUD_ROUNDS; run++) {
    const mode = run % 2 === 0 ? "off" : "on";
    await expectOk(`rules ${mode}`, admin.PUT("/v1/admin/fraud-rules", { body: mode === "on" ? FRAUD_ON : FRAUD_OFF }));
    // Isolates re-read the rules at most once a second.
    await new Promise((r) => setTimeout(r, 1100));
    const prepared: Awaited<ReturnType<typeof prepareCheckout>>[] = [];
    for (let i = 0; i < CHECKOUTS; i += 20)
      prepared.push(...(await Promise.all(Array.from({ length: Math.min(20, CHECKOUTS - i) }, prepareCheckout))));
    fraud[mode].push(await timed(CHECKOUTS, (i) => checkoutMs(prepared[i]!)));
  }
  const loadAfter = loadavg()[0]!;

  const summary = (runs: number[][]) => ({
    p50: median(runs.map((r) => median(r))),
    p99: median(runs.map((r) => pct(r, 99))),
    p99PerRun: runs.map((r) => Math.round(pct(r, 99))),
  });
  const result = {
    concurrency: CONCURRENCY,
    load: [loadBefore, loadAfter],
    auth: { health: summary(auth.health), bearer: summary(auth.bearer), key: summary(auth.key) },
    fraud: { off: summary(fraud.off), on: summary(fraud.on) },
  };
  console.log(
    `\nload average ${loadBefore.toFixed(1)} → ${loadAfter.toFixed(1)}; ${CONCURRENCY} concurrent clients; medians of ${RUNS} runs`,
  );
  console.log("\nAPI-key authentication (GET /v1/orders?limit=1, %d requests per run)", REQUESTS);
  for (const [name, s] of Object.entries(result.auth)) {
    console.log(
      `  ${name.padEnd(8)} p50 ${ms(s.p50).padStart(9)}  p99 ${ms(s.p99).padStart(9)}  (p99 per run: ${s.p99PerRun.join(", ")})`,
    );
  }
  console.log(
    `  key ÷ bearer: p50 ×${(result.auth.key.p50 / result.auth.bearer.p50).toFixed(2)}, p99 ×${(result.auth.key.p99 / result.auth.bearer.p99).toFixed(2)}`,
  );
  console.log("\nFraud step on checkout (POST → confirmed, %d checkouts per run)", CHECKOUTS);
  for (const [name, s] of Object.entries(result.fraud)) {
    console.log(
      `  rules ${name.padEnd(4)} p50 ${ms(s.p50).padStart(9)}  p99 ${ms(s.p99).padStart(9)}  (p99 per run: ${s.p99PerRun.join(", ")})`,
    );
  }
  console.log(
    `  on ÷ off: p50 ×${(result.fraud.on.p50 / result.fraud.off.p50).toFixed(2)}, p99 ×${(result.fraud.on.p99 / result.fraud.off.p99).toFixed(2)}`,
  );
  console.log(`BENCH_RESULT ${JSON.stringify(result)}`);
  process.exit(0);
} catch (error) {
  console.error(error);
  process.exit(1);
}
