// `npm start`: the whole platform locally — migrations, demo data, Worker, collector host.
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import {
  BASE_URL,
  createPrestartContext,
  createSeedContext,
  devVar,
  ensureDevVars,
  PERSIST_TO,
  PORT,
  ROOT,
  type SeedModule,
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

const startedAt = Date.now();
ensureDevVars();
console.log("[start] applying D1 migrations (local)");
wrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", PERSIST_TO], { quiet: true });

// Demo data: every module in scripts/seed/, in file-name order; each is idempotent. Bulk SQL
// (`beforeStart`) runs now, while no Worker has the D1 file open: wrangler writing it behind a
// serving Worker made the Worker's own writes fail (SQLITE_BUSY, answered 500/503). Everything
// after the Worker starts goes through its API.
const seedDir = path.join(ROOT, "scripts", "seed");
const seeds: [string, SeedModule][] = [];
for (const file of readdirSync(seedDir)
  .filter((f) => f.endsWith(".ts"))
  .sort()) {
  seeds.push([file, (await import(path.join(seedDir, file))) as SeedModule]);
}
const pre = createPrestartContext();
for (const [file, seed] of seeds) {
  if (!seed.beforeStart) continue;
  const started = Date.now();
  await seed.beforeStart(pre);
  console.log(`[start] seed ${file} (SQL before the Worker starts) done in ${Date.now() - started} ms`);
}

// Default: the built bundle on Miniflare directly (scripts/serve.ts: same runtime, bindings and
// .wrangler/state, without wrangler's proxy worker; see README Performance). `LOCAL_SERVER=wrangler`
// uses `wrangler dev` instead.
const useWranglerDev = process.env.LOCAL_SERVER === "wrangler";
console.log(`[start] starting the Worker on ${BASE_URL} (${useWranglerDev ? "wrangler dev" : "scripts/serve.ts"})`);
const worker = useWranglerDev
  ? spawnWrangler(
      [
        "dev",
        "--port",
        String(PORT),
        "--ip",
        "127.0.0.1",
        "--persist-to",
        PERSIST_TO,
        "--show-interactive-dev-session=false",
      ],
      "worker",
    )
  : spawn(process.execPath, [path.join(ROOT, "scripts", "serve.ts")], {
      cwd: ROOT,
      env: { ...process.env, PORT: String(PORT), PERSIST_TO },
      stdio: ["ignore", "inherit", "inherit"],
    });
children.push(worker);
worker.on("exit", (code) => {
  console.error(`[start] the Worker exited (${code}); stopping`);
  stopAll();
  process.exit(code ?? 1);
});
await waitUntilReady(BASE_URL, 120_000);

// The Worker answers /ready once D1 (migrated), Durable Objects and payments serve; the platform
// is advertised (this banner, the collector) only once the API-level seeds are done too.
const ctx = createSeedContext(BASE_URL);
for (const [file, seed] of seeds) {
  const started = Date.now();
  await seed.default(ctx);
  console.log(`[start] seed ${file} done in ${Date.now() - started} ms`);
}

// Market data: the collector host replays the recorded exchange feeds (../shared/fixtures) through
// the production adapters and pushes to the MarketFeed objects, exactly as it would in production.
// `--replicas N` (N ≥ 2) runs N hosts on one replay server, each its own process and collector
// identity: the edge follows one per symbol and keeps the others as hot standbys, so killing a
// host (`kill <pid>`, printed below) keeps every book live (README "Market data", redundant collectors).
const replicas = Math.max(
  1,
  Number(parseArgs({ options: { replicas: { type: "string" } }, strict: false }).values.replicas ?? 1),
);
const collectorEnv = { ...process.env, EDGE_URL: BASE_URL, LOG_LEVEL: process.env.LOG_LEVEL ?? "warn" };
// The same variables the single-host `--local` mode reads, so a second stack on private ports
// (PORT, REPLAY_PORT, COLLECTOR_OPS_PORT) runs beside the default one: host i serves ops on base + i.
const replayPort = Number(process.env.REPLAY_PORT ?? 8830);
const opsBasePort = Number(process.env.COLLECTOR_OPS_PORT ?? 8831);
const collectors: { id: string; pid: number | undefined; ops: number }[] = [];
if (replicas === 1) {
  console.log("[start] starting the collector host against the replayed exchange feeds");
  const collector = spawn(process.execPath, [path.join(ROOT, "collector-host", "src", "main.ts"), "--local"], {
    cwd: ROOT,
    env: collectorEnv,
    stdio: ["ignore", "inherit", "inherit"],
  });
  children.push(collector);
  collector.on("exit", (code) => console.error(`[start] the collector host exited (${code}); the API keeps running`));
} else {
  console.log(`[start] starting the replay server and ${replicas} collector hosts (redundant collectors)`);
  const replay = spawn(process.execPath, [path.join(ROOT, "collector-host", "src", "replay", "replay-server.ts")], {
    cwd: ROOT,
    env: process.env,
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(replay);
  await new Promise<void>((resolve) => replay.stdout!.once("data", () => resolve()));
  for (let i = 0; i < replicas; i++) {
    const id = `local-${String.fromCharCode(97 + i)}`;
    const ops = opsBasePort + i;
    const host = spawn(
      process.execPath,
      [
        path.join(ROOT, "collector-host", "src", "main.ts"),
        "--replay",
        `http://127.0.0.1:${replayPort}`,
        "--ops-port",
        String(ops),
      ],
      {
        cwd: ROOT,
        env: { ...collectorEnv, COLLECTOR_ID: id, SERVICE_TOKEN_SECRET: devVar("SERVICE_TOKEN_SECRET") },
        stdio: ["ignore", "inherit", "inherit"],
      },
    );
    children.push(host);
    collectors.push({ id, pid: host.pid, ops });
    host.on("exit", (code, signal) =>
      console.error(`[start] collector host ${id} exited (${signal ?? code}); the other hosts keep the books live`),
    );
  }
}

console.log(`
edgepulse is running (local mode, no network needed; ready ${((Date.now() - startedAt) / 1000).toFixed(1)} s after start)

  API            ${BASE_URL}/v1
  Console        ${BASE_URL}/console   (operator console: sign in as the demo admin)
  API docs       ${BASE_URL}/docs
  OpenAPI        ${BASE_URL}/v1/openapi.json
  Health         ${BASE_URL}/health   ${BASE_URL}/ready
  Demo admin     admin@edgepulse.test / edgepulse-admin-local
  Demo shopper   shopper@edgepulse.test / edgepulse-shopper-local
  Market data    ${BASE_URL}/v1/market/symbols   ${BASE_URL}/v1/market/collectors
  Live book      npm run watch -- XMR-USD   (WebSocket ${BASE_URL.replace("http", "ws")}/v1/market/XMR-USD/ws)
  Collector ops  http://127.0.0.1:${opsBasePort}/metrics   /health   /ready   (replay server on :${replayPort})${collectors
    .map(
      (c) =>
        `\n  Collector ${c.id}  pid ${c.pid}, ops :${c.ops} (kill it: the standby takes over; GET /v1/market/collectors)`,
    )
    .join("")}

Ctrl-C stops everything; data persists in ${path.relative(ROOT, PERSIST_TO)} (npm run reset wipes it).
`);
