// A throwaway local platform for the browser tests and the console benchmark: the Worker (the deploy
// bundle on Miniflare, scripts/serve.ts) on a free port with its own state directory, the demo
// accounts, one product with stock, and the collector host replaying the recorded exchange feeds
// into it, exactly as `npm start` runs them. Leaner than `npm start` (no 1,200-product catalog and
// its stock, which take minutes on a busy machine): only what the console needs to show.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { type Browser, chromium } from "playwright-core";
import { signLocalAccessToken } from "../../bench/private-platform.ts";
import { type ApiClient, createApiClient, expectOk } from "../../scripts/api-client.ts";
import { DEMO_ADMIN, DEMO_SHOPPER, ensureDevVars, ROOT, waitUntilReady, wranglerEnv } from "../../scripts/local.ts";

/** Debian's chromium (`.ci/run` installs it when missing), headless. */
export const CHROMIUM = {
  executablePath: process.env.CHROMIUM_PATH ?? "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu"],
};

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM.executablePath, args: CHROMIUM.args, headless: true });
}

/** What the console's market view exposes for tests and the benchmark (console/src/views/market.ts). */
export interface ConsoleMetrics {
  symbol: string | null;
  framesPainted: number;
  latencies: number[];
  lastSeq: number;
  gaps: number;
}

/** A product the stack sells (no weight: nothing to ship, so checkout needs no shipping option). */
export const E2E_SKU = "E2E-CONSOLE-1";
export const E2E_PRICE = 2500;

export interface Stack {
  baseUrl: string;
  /** A typed client, as `token`'s bearer. */
  api(token?: string): ApiClient;
  shopperToken: string;
  /** The server's log so far (for failure messages). */
  serverLog(): string;
  /** Stops the Worker (the API goes down; the collector host keeps retrying). */
  stopWorker(): Promise<void>;
  stop(): Promise<void>;
}

/** A TCP port nothing listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
    child.once("exit", () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

/** Runs wrangler without blocking the event loop (the browser launches meanwhile). */
async function wranglerAsync(args: string[]): Promise<void> {
  await promisify(execFile)(path.join(ROOT, "node_modules", ".bin", "wrangler"), args, {
    cwd: ROOT,
    env: wranglerEnv,
    maxBuffer: 64 * 1024 * 1024,
  });
}

/**
 * Applies d1/migrations to the stack's new D1 database with the bookkeeping `wrangler d1 migrations
 * apply` writes (its d1_migrations table and one row per file, which /ready checks), but in ONE
 * `wrangler d1 execute`: `migrations apply` starts the local runtime once per file (14 times, ~25 s
 * of CPU; minutes on the loaded 2-core CI machine), one execute starts it once. The statements are
 * wrangler's own (getCreateMigrationsTableQuery, buildMigrationQuery in wrangler-dist/cli.js).
 */
async function applyMigrations(state: string, dir: string): Promise<void> {
  const migrations = path.join(ROOT, "d1", "migrations");
  const sql = [
    "CREATE TABLE IF NOT EXISTS d1_migrations(id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT UNIQUE, applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL);",
    ...readdirSync(migrations)
      .filter((name) => name.endsWith(".sql"))
      .sort()
      .map(
        (name) =>
          `${readFileSync(path.join(migrations, name), "utf8")}\nINSERT INTO d1_migrations (name) values ('${name}');`,
      ),
  ].join("\n");
  const file = path.join(dir, "migrations.sql");
  writeFileSync(file, sql);
  await wranglerAsync(["d1", "execute", "DB", "--local", "--persist-to", state, "--file", file]);
}

/** Starts the stack; resolves once the API serves, the demo data is there and the collector host runs. */
export async function startStack(options: { collector?: boolean } = {}): Promise<Stack> {
  ensureDevVars();
  const dir = mkdtempSync(path.join(process.env.BENCH_STATE_DIR ?? tmpdir(), "edgepulse-e2e-"));
  const state = path.join(dir, "state");
  const [port, replayPort, opsPort] = [await freePort(), await freePort(), await freePort()];
  const baseUrl = `http://127.0.0.1:${port}`;
  // The deploy bundle (scripts/serve.ts buildBundle), built while the migrations run. Under the
  // checkout like serve's own (.local/serve-dist): workerd loads modules from below its root only.
  mkdirSync(path.join(ROOT, ".local"), { recursive: true });
  const bundleDir = mkdtempSync(path.join(ROOT, ".local", "e2e-bundle-"));
  const children: ChildProcess[] = [];
  const logFile = path.join(dir, "server.log");
  const log = openSync(logFile, "a");
  const stop = async () => {
    await Promise.all(children.map(stopChild));
    rmSync(dir, { recursive: true, force: true });
    rmSync(bundleDir, { recursive: true, force: true });
  };
  try {
    await Promise.all([applyMigrations(state, dir), wranglerAsync(["deploy", "--dry-run", "--outdir", bundleDir])]);
    const worker = spawn(process.execPath, [path.join(ROOT, "scripts", "serve.ts")], {
      cwd: ROOT,
      env: {
        ...process.env,
        PORT: String(port),
        PERSIST_TO: state,
        SERVE_BUNDLE: path.join(bundleDir, "index.js"),
        RATE_LIMITS: "memory",
        LOG_REQUESTS: "false",
      },
      stdio: ["ignore", log, log],
    });
    children.push(worker);
    // A Worker that fails to start exits: say so now rather than after the readiness deadline.
    const exited = new Promise<never>((_, reject) =>
      worker.once("exit", (code, signal) => reject(new Error(`the Worker exited (${signal ?? code})`))),
    );
    exited.catch(() => {});
    await Promise.race([waitUntilReady(baseUrl, 240_000), exited]);
    const api = (token?: string) => createApiClient(baseUrl, token ? { token } : {});

    // The demo admin, as `npm start` has it (the public API never makes admins, so a token signed
    // with the local key promotes the freshly registered account), and the demo shopper.
    const seeder = await signLocalAccessToken("e2e-seeder", ["admin"]);
    const admin = await expectOk("register admin", api().POST("/v1/auth/register", { body: DEMO_ADMIN }));
    await expectOk(
      "promote admin",
      api(seeder).PUT("/v1/admin/users/{id}/roles", {
        params: { path: { id: admin.user.id } },
        body: { roles: ["admin", "customer"] },
      }),
    );
    await expectOk("register shopper", api().POST("/v1/auth/register", { body: DEMO_SHOPPER }));
    const shopper = await expectOk(
      "shopper login",
      api().POST("/v1/auth/login", { body: { email: DEMO_SHOPPER.email, password: DEMO_SHOPPER.password } }),
    );
    await expectOk(
      "category",
      api(seeder).POST("/v1/admin/categories", { body: { id: "e2e", name: "Console tests", parentId: null } }),
    );
    await expectOk(
      "product",
      api(seeder).POST("/v1/admin/products", {
        body: {
          sku: E2E_SKU,
          name: "Console test widget",
          description: "Sold by the console's browser tests",
          category: "e2e",
          price: { amount: E2E_PRICE, currency: "USD" },
          status: "active",
          variants: [],
          // Nothing to ship: checkout needs no shipping option (shipping has its own tests).
          attributes: { digital: true },
        },
      }),
    );
    await expectOk(
      "stock",
      api(seeder).PUT("/v1/admin/inventory/{sku}", { params: { path: { sku: E2E_SKU } }, body: { onHand: 1000 } }),
    );

    if (options.collector !== false) {
      // The collector host replays the recorded exchange feeds into this Worker, as `npm start` does.
      const collector = spawn(
        process.execPath,
        [path.join(ROOT, "collector-host", "src", "main.ts"), "--local", "--edge", baseUrl],
        {
          cwd: ROOT,
          env: {
            ...process.env,
            EDGE_URL: baseUrl,
            REPLAY_PORT: String(replayPort),
            COLLECTOR_OPS_PORT: String(opsPort),
            LOG_LEVEL: "warn",
          },
          stdio: ["ignore", log, log],
        },
      );
      children.push(collector);
    }
    return {
      baseUrl,
      api,
      shopperToken: shopper.accessToken,
      serverLog: () => readFileSync(logFile, "utf8").slice(-5000),
      stopWorker: () => stopChild(worker),
      stop,
    };
  } catch (error) {
    const tail = (() => {
      try {
        return readFileSync(logFile, "utf8").slice(-3000);
      } catch {
        return "";
      }
    })();
    await stop();
    throw new Error(`the stack did not start: ${String(error)}\n${tail}`);
  }
}
