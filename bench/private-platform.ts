// What the HTTP benchmarks share: a throwaway local platform on a private port, and access tokens
// signed exactly as the Worker signs them (so setting up thousands of shoppers skips login's
// deliberately slow PBKDF2, which is not what those benchmarks measure).
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { importJWK, type JWK, SignJWT } from "jose";
import { type ApiClient, type ApiSchema, createApiClient, expectOk } from "../scripts/api-client.ts";
import { devVar, ensureDevVars, ROOT, wrangler } from "../scripts/local.ts";

export interface PrivatePlatform {
  baseUrl: string;
  /** The state directory (D1, Durable Objects), for benchmarks that load data with wrangler. */
  state: string;
  dir: string;
  /** The checkout of the repository being served (this one unless `root` was given). */
  root: string;
  /** The server process, for benchmarks that account its CPU time. */
  serverPid: number | undefined;
  /** CPU time (ms) the server has used so far: serve.ts and its workerd children (Linux /proc). */
  serverCpuMs(): number;
  /**
   * Waits until the server has finished the work a benchmark's preparation left behind (the carts'
   * events still being consumed, for one): under 10 % of a core for half a second, at most 10 s.
   * A timed run then measures what it runs, and its CPU per order counts only what that costs.
   */
  untilIdle(): Promise<void>;
  /** A typed client for this platform (see scripts/api-client.ts), as `token`'s bearer from address `ip`. */
  api(options?: { token?: string; ip?: string }): ApiClient;
  /** Stops the server and removes its state (also done on process exit). */
  stop(): void;
}

/**
 * Starts scripts/serve.ts (the deploy bundle on Miniflare, rate limits in memory) on `port` with
 * a fresh state directory that has the D1 migrations applied; removed again when the process exits.
 * `root` serves another checkout of the repository instead of this one (bench/compare.ts: the
 * code before a change, from a git worktree), with that checkout's own migrations and bundle.
 * BENCH_STATE_DIR=/dev/shm puts that state on tmpfs, which takes this disk's fsync latency (what a
 * local durable write mostly waits for) out of the figures.
 */
export function startPrivatePlatform(name: string, port: number, options: { root?: string } = {}): PrivatePlatform {
  ensureDevVars();
  const root = options.root ?? ROOT;
  const dir = mkdtempSync(path.join(process.env.BENCH_STATE_DIR ?? tmpdir(), `edgepulse-bench-${name}-`));
  const state = path.join(dir, "state");
  wrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", state], { quiet: true, root });
  const logFile = openSync(path.join(dir, "server.log"), "a");
  const worker = spawn(process.execPath, [path.join(root, "scripts", "serve.ts")], {
    cwd: root,
    env: { ...process.env, PORT: String(port), PERSIST_TO: state, RATE_LIMITS: "memory" },
    stdio: ["ignore", logFile, logFile],
  });
  const stop = () => {
    worker.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
  };
  process.on("exit", stop);
  process.on("SIGINT", () => process.exit(130));
  const baseUrl = `http://127.0.0.1:${port}`;
  return {
    baseUrl,
    state,
    dir,
    root,
    serverPid: worker.pid,
    serverCpuMs: () => processTreeCpuMs(worker.pid),
    untilIdle: () => untilIdle(() => processTreeCpuMs(worker.pid)),
    api: (options) => createApiClient(baseUrl, options),
    stop,
  };
}

/** CPU time (ms) used so far by process `root` and its descendants (Linux /proc). */
function processTreeCpuMs(root: number | undefined): number {
  const ticksPerMs = 100 / 1000; // USER_HZ is 100 on Linux
  const stat = (pid: number) => {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      return { ppid: Number(fields[1]), cpu: Number(fields[11]) + Number(fields[12]) };
    } catch {
      return null;
    }
  };
  const all = readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .map((d) => ({ pid: Number(d), s: stat(Number(d)) }));
  const tree = new Set<number | undefined>([root]);
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of all) {
      if (p.s && tree.has(p.s.ppid) && !tree.has(p.pid)) {
        tree.add(p.pid);
        grew = true;
      }
    }
  }
  return all.filter((p) => tree.has(p.pid)).reduce((sum, p) => sum + (p.s?.cpu ?? 0), 0) / ticksPerMs;
}

/** Resolves once `cpuMs` grows by under 10 % of a core over two samples in a row (at most 10 s). */
async function untilIdle(cpuMs: () => number): Promise<void> {
  const sampleMs = 250;
  const deadline = Date.now() + 10_000;
  let quiet = 0;
  while (quiet < 2 && Date.now() < deadline) {
    const before = cpuMs();
    await new Promise((resolve) => setTimeout(resolve, sampleMs));
    quiet = cpuMs() - before < sampleMs * 0.1 ? quiet + 1 : 0;
  }
}

let signer: Promise<{ kid: string; key: Awaited<ReturnType<typeof importJWK>>; issuer: string; audience: string }>;

/** An access token signed like the Worker's own (local key from .dev.vars, issuer, audience, typ). */
export async function signLocalAccessToken(subject: string, roles: string[]): Promise<string> {
  signer ??= (async () => {
    const keys = JSON.parse(devVar("JWT_PRIVATE_KEYS") ?? "[]") as { kid: string; privateJwk: JWK }[];
    if (!keys[0]) throw new Error("no JWT_PRIVATE_KEYS in .dev.vars");
    const toml = readFileSync(path.join(ROOT, "wrangler.toml"), "utf8");
    return {
      kid: keys[0].kid,
      key: await importJWK(keys[0].privateJwk, "ES256"),
      issuer: /^JWT_ISSUER = "([^"]+)"/m.exec(toml)?.[1] ?? "",
      audience: /^JWT_AUDIENCE = "([^"]+)"/m.exec(toml)?.[1] ?? "",
    };
  })();
  const { kid, key, issuer, audience } = await signer;
  return new SignJWT({ roles })
    .setProtectedHeader({ alg: "ES256", kid, typ: "at+jwt" })
    .setIssuer(issuer)
    .setAudience(audience)
    .setSubject(subject)
    .setJti(randomUUID())
    .setIssuedAt()
    .setNotBefore("0s")
    .setExpirationTime("15m")
    .sign(key);
}

/** Puts minimal catalog rows (one product and variant per SKU, USD 10.00) into the platform's D1. */
export function insertBenchSkus(platform: PrivatePlatform, skus: string[]): void {
  const sqlFile = path.join(platform.dir, "bench-skus.sql");
  writeFileSync(
    sqlFile,
    [
      "INSERT OR IGNORE INTO categories (id, name) VALUES ('bench', 'Bench');",
      ...skus.flatMap((sku) => [
        `INSERT OR IGNORE INTO products (id, sku, name, category_id, price_amount) VALUES ('p-${sku}', '${sku}', '${sku}', 'bench', 1000);`,
        `INSERT OR IGNORE INTO product_variants (sku, product_id, name, price_amount) VALUES ('${sku}', 'p-${sku}', '${sku}', 1000);`,
      ]),
    ].join("\n"),
  );
  wrangler(["d1", "execute", "DB", "--local", "--persist-to", platform.state, "--file", sqlFile], {
    quiet: true,
    root: platform.root,
  });
}

/**
 * Stocks the bench SKUs generously and opens one flat shipping rate (5.00 USD) to `country`: what a
 * checkout bench needs before its shoppers can place physical orders. Answers the rate's id, the
 * `shippingOptionId` every checkout sends.
 */
export async function stockAndShipTo(admin: ApiClient, skus: string[], country: string): Promise<string> {
  await expectOk(
    "stock",
    admin.PUT("/v1/admin/inventory", { body: { items: skus.map((sku) => ({ sku, onHand: 1_000_000 })) } }),
  );
  const zone = await expectOk(
    "shipping zone",
    admin.POST("/v1/admin/shipping/zones", { body: { name: "Bench", countries: [country] } }),
  );
  const rate = await expectOk(
    "shipping rate",
    admin.POST("/v1/admin/shipping/rates", {
      body: {
        zoneId: zone.id,
        carrier: "BenchPost",
        service: "Standard",
        currency: "USD",
        kind: "flat",
        amount: 500,
        estimatedDays: 3,
        active: true,
      },
    }),
  );
  return rate.id;
}

/** How long one long poll of GET /v1/orders/{id} may wait (Prefer: wait=N, the server's maximum). */
const LONG_POLL_S = 20;
/** Polling interval against a server without the order long poll (older code in bench:compare). */
const POLL_MS = 500;

/**
 * Follows an order until its status is one of `outcomes` and returns it, as a shopper's page
 * waiting for the result would: the long poll `?until=<outcomes>` with `Prefer: wait`, one
 * request. A server without `until` (bench:compare serving older code) ignores it and answers
 * each change (the ETag goes back in If-None-Match), one request per saga step; one without the
 * long poll answers at once with no Preference-Applied, and then it is polled every POLL_MS.
 */
export async function followOrder(
  api: ApiClient,
  id: string,
  outcomes: readonly ApiSchema<"Order">["status"][],
): Promise<ApiSchema<"Order">> {
  let etag: string | undefined;
  for (;;) {
    const { data: order, response } = await api.GET("/v1/orders/{id}", {
      params: {
        path: { id },
        query: { until: outcomes.join(",") },
        header: { "if-none-match": etag, prefer: `wait=${LONG_POLL_S}` },
      },
    });
    if (response.status !== 304) {
      if (!response.ok || !order) throw new Error(`get order ${id}: HTTP ${response.status}`);
      if (outcomes.includes(order.status)) return order;
      etag = response.headers.get("ETag") ?? undefined;
    }
    if (!response.headers.has("Preference-Applied")) await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** What a shopper sends to check out (POST /v1/orders). */
export type PlaceOrderBody = ApiSchema<"PlaceOrder">;

/**
 * Checks out and returns the order once its status is one of `outcomes`, as a checkout page would:
 * POST /v1/orders with `Prefer: wait`, one request when the server answers 200 with the ended
 * checkout. A 202 (still under way after the wait, or a server in bench:compare that predates the
 * preference and ignores it) is followed with `followOrder`. Also answers when the POST was sent,
 * by this machine's clock, which is the server's: figures end at a history entry's time.
 */
export async function checkOut(
  api: ApiClient,
  body: PlaceOrderBody,
  outcomes: readonly ApiSchema<"Order">["status"][],
): Promise<{ order: ApiSchema<"Order">; sentAt: number }> {
  const sentAt = Date.now();
  const { data, response } = await api.POST("/v1/orders", {
    params: { header: { prefer: `wait=${LONG_POLL_S}` } },
    body,
  });
  if (!response.ok || !data) throw new Error(`place order: HTTP ${response.status}`);
  if (response.status === 200 && "history" in data && outcomes.includes(data.status)) return { order: data, sentAt };
  return { order: await followOrder(api, data.id, outcomes), sentAt };
}
