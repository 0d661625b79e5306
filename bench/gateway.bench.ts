// Gateway throughput and latency through the whole local stack, on two ways of serving it:
//   direct        scripts/serve.ts — the `wrangler deploy --dry-run` bundle on Miniflare/workerd,
//                 rate-limit bindings served from memory (as in production)
//   direct, Miniflare's rate limiter   the same, with Miniflare's SQLite-backed limiter simulation
//   wrangler dev  the stock dev server (its proxy worker sits on the request path)
// Scenarios (50 connections unless noted): GET /health (gateway only, no I/O but the per-IP
// limiter), GET /health with 1 connection (per-request gateway overhead without queueing),
// GET /v1/users/me (ES256 JWT verify + revocation check + one D1 read), POST /v1/auth/login
// (login guard Durable Object + PBKDF2 100k + D1 writes). Plus one JWT verification in isolation,
// in workerd (same code as the gateway) and in Node 22 (same jose) for reference.
//
//   npm run bench -- gateway                       BENCH_SECONDS=5 BENCH_RUNS=3 (defaults)
//
// Every request carries one of 256 CF-Connecting-IP values, as traffic from many clients would:
// the per-IP limit (10k/min) stays in the path and is paid for, but 50 connections from one
// address would otherwise be throttled after two seconds. Ports 8792-8794.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, openSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import autocannon from "autocannon";
import { exportJWK, generateKeyPair, jwtVerify, SignJWT } from "jose";
import { convertV4MiniflareOptions, Miniflare } from "miniflare";
import { createApiClient, expectOk } from "../scripts/api-client.ts";
import { ensureDevVars, ROOT, waitUntilReady, wrangler, wranglerEnv } from "../scripts/local.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const PEER_ME_RPS = 6500; // Express + jsonwebtoken RS256 + pg, authenticated GET /me, 50 connections
const STATE = path.join(ROOT, ".local", "bench-gateway");
const USER = { email: "bench@edgepulse.test", password: "bench-password-123", name: "Bench" };

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const percentile = (sorted: number[], p: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]! : Number.NaN;

let ipCounter = 0;
const nextIp = () => {
  ipCounter = (ipCounter + 1) % 256;
  return `10.0.${ipCounter}.1`;
};

interface Sample {
  rps: number;
  p50: number;
  p95: number;
  p99: number;
  non2xx: number;
}

async function measure(
  base: string,
  scenario: {
    method: "GET" | "POST";
    path: string;
    token?: string;
    body?: unknown;
    connections: number;
    seconds?: number;
  },
): Promise<Sample> {
  const latencies: number[] = [];
  const headers: Record<string, string> = {};
  if (scenario.token) headers.authorization = `Bearer ${scenario.token}`;
  if (scenario.body) headers["content-type"] = "application/json";
  const options: autocannon.Options = {
    url: base + scenario.path,
    connections: scenario.connections,
    duration: scenario.seconds ?? SECONDS,
    requests: [
      {
        method: scenario.method,
        headers,
        body: scenario.body ? JSON.stringify(scenario.body) : undefined,
        setupRequest: (req) => ({ ...req, headers: { ...req.headers, "cf-connecting-ip": nextIp() } }),
      },
    ],
  };
  // The callback form returns the instance, whose "response" events give every latency (p95 too).
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(options, (error, res) => (error ? reject(error) : resolve(res)));
    instance.on("response", (_client, _status, _bytes, responseTime) => {
      latencies.push(responseTime);
    });
  });
  latencies.sort((a, b) => a - b);
  return {
    rps: result.requests.total / (scenario.seconds ?? SECONDS),
    p50: percentile(latencies, 0.5),
    p95: percentile(latencies, 0.95),
    p99: percentile(latencies, 0.99),
    non2xx: result.non2xx + result.errors + result.timeouts,
  };
}

async function scenarios(base: string) {
  const reg = await createApiClient(base).POST("/v1/auth/register", { body: USER });
  if (reg.response.status !== 201 && reg.response.status !== 409) {
    throw new Error(`register: ${reg.response.status} ${JSON.stringify(reg.error)}`);
  }
  const { accessToken } = await expectOk(
    "login",
    createApiClient(base, { ip: "10.9.9.9" }).POST("/v1/auth/login", {
      body: { email: USER.email, password: USER.password },
    }),
  );
  const list = [
    { name: "GET /health (1 conn)", method: "GET" as const, path: "/health", connections: 1 },
    { name: "GET /health", method: "GET" as const, path: "/health", connections: 50 },
    { name: "GET /v1/users/me", method: "GET" as const, path: "/v1/users/me", token: accessToken, connections: 50 },
    {
      name: "POST /v1/auth/login",
      method: "POST" as const,
      path: "/v1/auth/login",
      body: { email: USER.email, password: USER.password },
      connections: 50,
      // PBKDF2 at 100k iterations makes each login tens of ms of CPU on one workerd thread, so 50
      // concurrent logins queue for seconds; a longer window lets enough of them complete.
      seconds: Math.max(SECONDS, 15),
    },
  ];
  // Warm-up (JIT, key import, D1/DO first touch), not reported.
  for (const s of list) await measure(base, { ...s, connections: 4, seconds: 2 }).catch(() => undefined);
  const out: Record<string, Sample> = {};
  for (const s of list) {
    const samples: Sample[] = [];
    for (let r = 0; r < RUNS; r++) samples.push(await measure(base, s));
    out[s.name] = {
      rps: median(samples.map((x) => x.rps)),
      p50: median(samples.map((x) => x.p50)),
      p95: median(samples.map((x) => x.p95)),
      p99: median(samples.map((x) => x.p99)),
      non2xx: samples.reduce((a, x) => a + x.non2xx, 0),
    };
  }
  return out;
}

function stop(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once("exit", () => resolve());
    child.kill("SIGTERM");
    setTimeout(() => child.kill("SIGKILL"), 5000).unref();
  });
}

// --- a private, fresh local platform (never touches `npm start`'s data) --------------------------
ensureDevVars();
rmSync(STATE, { recursive: true, force: true });
mkdirSync(STATE, { recursive: true });
wrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", STATE], { quiet: true });
const logFile = openSync(path.join(STATE, "servers.log"), "a");

const direct = (port: number, rateLimits: "memory" | "miniflare") => () =>
  spawn(process.execPath, [path.join(ROOT, "scripts", "serve.ts")], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), PERSIST_TO: STATE, RATE_LIMITS: rateLimits },
    stdio: ["ignore", logFile, logFile],
  });
const DIRECT = "direct (serve.ts)";
const DIRECT_MF_LIMITS = "direct, Miniflare's rate limiter";
const DEV = "wrangler dev";
const servers: { name: string; port: number; start: () => ChildProcess }[] = [
  { name: DIRECT, port: 8792, start: direct(8792, "memory") },
  { name: DIRECT_MF_LIMITS, port: 8794, start: direct(8794, "miniflare") },
  {
    name: DEV,
    port: 8793,
    start: () =>
      // Output to the same log file as the direct server, so both pay the same for their logs.
      spawn(
        path.join(ROOT, "node_modules", ".bin", "wrangler"),
        ["dev", "--port", "8793", "--ip", "127.0.0.1", "--persist-to", STATE, "--show-interactive-dev-session=false"],
        { cwd: ROOT, env: wranglerEnv, stdio: ["ignore", logFile, logFile] },
      ),
  },
];

const results: Record<string, Record<string, Sample>> = {};
// BENCH_JWT_ONLY=1 measures only the JWT verification cost (quick).
for (const server of process.env.BENCH_JWT_ONLY ? [] : servers) {
  console.log(`\n--- ${server.name} on :${server.port} (${RUNS} runs x ${SECONDS}s per scenario)`);
  const child = server.start();
  try {
    await waitUntilReady(`http://127.0.0.1:${server.port}`, 120_000);
    results[server.name] = await scenarios(`http://127.0.0.1:${server.port}`);
    console.table(
      Object.fromEntries(
        Object.entries(results[server.name]!).map(([k, v]) => [
          k,
          {
            "req/s": Math.round(v.rps),
            "p50 ms": +v.p50.toFixed(1),
            "p95 ms": +v.p95.toFixed(1),
            "p99 ms": +v.p99.toFixed(1),
            "non-2xx": v.non2xx,
          },
        ]),
      ),
    );
  } finally {
    await stop(child);
  }
}

// --- one JWT verification, in isolation ----------------------------------------------------------
async function jwtInWorkerd(): Promise<{ fullUs: number; cachedUs: number }> {
  const outdir = path.join(STATE, "jwt-worker");
  const config = path.join(STATE, "jwt-worker.toml");
  writeFileSync(
    config,
    `name = "jwt-bench"\nmain = "${path.join(ROOT, "bench", "jwt-verify-worker.ts")}"\ncompatibility_date = "2026-11-01"\ncompatibility_flags = ["nodejs_compat"]\n`,
  );
  wrangler(["deploy", "--dry-run", "--outdir", outdir, "-c", config], { quiet: true });
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      workers: [
        {
          name: "jwt-bench",
          modules: true,
          scriptPath: path.join(outdir, "jwt-verify-worker.js"),
          compatibilityDate: "2026-11-01",
          compatibilityFlags: ["nodejs_compat"],
          bindings: {
            JWT_ISSUER: "https://edgepulse.local",
            JWT_AUDIENCE: "edgepulse-api",
            JWT_PRIVATE_KEYS: JSON.stringify([{ kid: "bench", privateJwk: await exportJWK(privateKey) }]),
          },
        },
      ],
    }),
  );
  try {
    const time = async (mode: string, n: number) => {
      const t = performance.now();
      const res = await mf.dispatchFetch(`http://bench/?mode=${mode}&n=${n}`);
      if (!res.ok) throw new Error(await res.text());
      return performance.now() - t;
    };
    const N = 1000;
    await time("issue-verify", N); // warm
    const full: number[] = [];
    const cached: number[] = [];
    for (let r = 0; r < 9; r++) {
      full.push(((await time("issue-verify", N)) - (await time("issue", N))) / N);
      cached.push(((await time("repeat", N)) - (await time("repeat", 0))) / N);
    }
    return { fullUs: median(full) * 1000, cachedUs: median(cached) * 1000 };
  } finally {
    await mf.dispose();
  }
}

async function jwtInNode(): Promise<number> {
  const { privateKey, publicKey } = await generateKeyPair("ES256");
  const token = await new SignJWT({ roles: ["customer"] })
    .setProtectedHeader({ alg: "ES256", kid: "k", typ: "at+jwt" })
    .setIssuer("i")
    .setAudience("a")
    .setSubject("s")
    .setJti("j")
    .setIssuedAt()
    .setExpirationTime("15m")
    .sign(privateKey);
  const opts = { algorithms: ["ES256"], issuer: "i", audience: "a", typ: "at+jwt" };
  for (let i = 0; i < 500; i++) await jwtVerify(token, publicKey, opts);
  const perVerify: number[] = [];
  for (let r = 0; r < 9; r++) {
    const t = performance.now();
    for (let i = 0; i < 2000; i++) await jwtVerify(token, publicKey, opts);
    perVerify.push((performance.now() - t) / 2000);
  }
  return median(perVerify) * 1000;
}

let workerdUs = { fullUs: Number.NaN, cachedUs: Number.NaN };
try {
  workerdUs = await jwtInWorkerd();
} catch (error) {
  console.error("JWT verify in workerd could not be measured:", error);
}
const nodeUs = await jwtInNode();

const summary = (name: string) => results[name]!;
console.log("\n=== summary (medians) ===");
if (process.env.BENCH_JWT_ONLY) {
  console.log(
    `JWT verify median: workerd ${workerdUs.fullUs.toFixed(1)} µs full, ${workerdUs.cachedUs.toFixed(1)} µs cached; Node ${nodeUs.toFixed(1)} µs`,
  );
  process.exit(0);
}
for (const scenario of Object.keys(summary(DIRECT))) {
  const cells = [DIRECT, DIRECT_MF_LIMITS, DEV].map((server) => {
    const v = summary(server)[scenario]!;
    return `${server}: ${Math.round(v.rps)} req/s p50 ${v.p50.toFixed(1)} p95 ${v.p95.toFixed(1)} p99 ${v.p99.toFixed(1)} ms`;
  });
  const ratio = summary(DIRECT)[scenario]!.rps / summary(DEV)[scenario]!.rps;
  console.log(`${scenario.padEnd(22)} ${cells.join(" | ")} | direct/dev ${ratio.toFixed(2)}x`);
}
const meRps = (server: string) => summary(server)["GET /v1/users/me"]!.rps;
console.log(
  `GET /v1/users/me vs peer (Express+jsonwebtoken+pg, ~${PEER_ME_RPS} req/s): ` +
    [DIRECT, DIRECT_MF_LIMITS, DEV].map((s) => `${s} ${(meRps(s) / PEER_ME_RPS).toFixed(2)}x`).join(", "),
);
console.log(
  `JWT verify (ES256, jose) median: workerd ${workerdUs.fullUs.toFixed(1)} µs (full check; ${workerdUs.cachedUs.toFixed(1)} µs ` +
    `for a token this isolate already verified), Node 22 ${nodeUs.toFixed(1)} µs (full check)`,
);
console.log(
  `gateway overhead p95 (GET /health, 1 connection, ${DIRECT}): ${summary(DIRECT)["GET /health (1 conn)"]!.p95.toFixed(1)} ms (target < 10 ms)`,
);
