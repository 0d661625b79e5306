// `npm start`: the whole platform locally — migrations, demo data, Worker, collector host.
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import path from "node:path";
import {
  BASE_URL,
  createSeedContext,
  ensureDevVars,
  PORT,
  ROOT,
  spawnWrangler,
  waitUntilReady,
  wrangler,
} from "./local.ts";

const children: ChildProcess[] = [];
const stopAll = () => {
  for (const child of children) child.kill("SIGTERM");
};
process.on("SIGINT", () => {
  stopAll();
  process.exit(0);
});
process.on("SIGTERM", () => {
  stopAll();
  process.exit(0);
});

ensureDevVars();
console.log("[start] applying D1 migrations (local)");
wrangler(["d1", "migrations", "apply", "DB", "--local"], { quiet: true });

// Default: the built bundle on Miniflare directly (scripts/serve.ts: same runtime, bindings and
// .wrangler/state, without wrangler's proxy worker; see README Performance). `LOCAL_SERVER=wrangler`
// uses `wrangler dev` instead.
const useWranglerDev = process.env.LOCAL_SERVER === "wrangler";
console.log(`[start] starting the Worker on ${BASE_URL} (${useWranglerDev ? "wrangler dev" : "scripts/serve.ts"})`);
const worker = useWranglerDev
  ? spawnWrangler(
      ["dev", "--port", String(PORT), "--ip", "127.0.0.1", "--show-interactive-dev-session=false"],
      "worker",
    )
  : spawn(process.execPath, [path.join(ROOT, "scripts", "serve.ts")], {
      cwd: ROOT,
      env: { ...process.env, PORT: String(PORT) },
      stdio: ["ignore", "inherit", "inherit"],
    });
children.push(worker);
worker.on("exit", (code) => {
  console.error(`[start] the Worker exited (${code}); stopping`);
  stopAll();
  process.exit(code ?? 1);
});
await waitUntilReady(BASE_URL, 120_000);

// Demo data: every module in scripts/seed/, in file-name order. Each is idempotent.
const seedDir = path.join(ROOT, "scripts", "seed");
const ctx = createSeedContext(BASE_URL);
for (const file of readdirSync(seedDir)
  .filter((f) => f.endsWith(".ts"))
  .sort()) {
  const started = Date.now();
  const mod = (await import(path.join(seedDir, file))) as { default: (c: typeof ctx) => Promise<void> };
  await mod.default(ctx);
  console.log(`[start] seed ${file} done in ${Date.now() - started} ms`);
}

// Market data: the collector host replays the recorded exchange feeds (../shared/fixtures) through
// the production adapters and pushes to the MarketFeed objects, exactly as it would in production.
console.log("[start] starting the collector host against the replayed exchange feeds");
const collector = spawn(process.execPath, [path.join(ROOT, "collector-host", "src", "main.ts"), "--local"], {
  cwd: ROOT,
  env: { ...process.env, EDGE_URL: BASE_URL, LOG_LEVEL: process.env.LOG_LEVEL ?? "warn" },
  stdio: ["ignore", "inherit", "inherit"],
});
children.push(collector);
collector.on("exit", (code) => console.error(`[start] the collector host exited (${code}); the API keeps running`));

console.log(`
edgepulse is running (local mode, no network needed)

  API            ${BASE_URL}/v1
  API docs       ${BASE_URL}/docs
  OpenAPI        ${BASE_URL}/v1/openapi.json
  Health         ${BASE_URL}/health   ${BASE_URL}/ready
  Demo admin     admin@edgepulse.test / edgepulse-admin-local
  Demo shopper   shopper@edgepulse.test / edgepulse-shopper-local
  Market data    ${BASE_URL}/v1/market/symbols   ${BASE_URL}/v1/market/collectors
  Live book      npm run watch -- XMR-USD   (WebSocket ${BASE_URL.replace("http", "ws")}/v1/market/XMR-USD/ws)
  Collector ops  http://127.0.0.1:8831/metrics   /health   /ready   (replay server on :8830)

Ctrl-C stops everything; data persists in .wrangler/state (npm run reset wipes it).
`);
