// `npm run serve`: the built Worker bundle on Miniflare directly — the same workerd runtime and the
// same bindings, persisted state and secrets as `wrangler dev`, minus wrangler's proxy worker and
// inspector-based logging on the request path (see README "Performance / Gateway" for the
// difference). Usage: PORT=8787 PERSIST_TO=.wrangler/state node scripts/serve.ts
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { convertV4MiniflareOptions, Miniflare, type V4WorkerOptions } from "miniflare";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
import { ROOT, wrangler } from "./local.ts";

const PORT = Number(process.env.PORT ?? 8787);
const HOST = process.env.HOST ?? "127.0.0.1";
/** Same layout as `wrangler dev --persist-to`, so both servers (and `wrangler d1 ... --local`) share data. */
const PERSIST_TO = path.resolve(ROOT, process.env.PERSIST_TO ?? ".wrangler/state");
const OUT_DIR = path.join(ROOT, ".local", "serve-dist");
const INSPECTOR_PORT = process.env.INSPECTOR_PORT ? Number(process.env.INSPECTOR_PORT) : undefined;

/**
 * Miniflare simulates each rate-limit binding with a Durable Object that writes a SQLite row to
 * disk on every call — by far the largest cost of a request here (see README), and not how the
 * platform works: production counters live in memory next to the Worker. `RATE_LIMITS=memory`
 * (the default here) serves the same bindings from an in-memory limiter with Miniflare's exact
 * semantics (fixed windows aligned to the clock, per key); `RATE_LIMITS=miniflare` keeps
 * Miniflare's own simulation, as `wrangler dev` has it.
 */
type RateLimits = "memory" | "miniflare";
const RATE_LIMITS: RateLimits = (process.env.RATE_LIMITS ?? "memory") === "memory" ? "memory" : "miniflare";
const MEMORY_LIMITER = `
import { WorkerEntrypoint } from "cloudflare:workers";
const buckets = new Map();
function hit(key, limit, period) {
  const epoch = Math.floor(Date.now() / (period * 1000));
  const bucket = buckets.get(key);
  if (!bucket || bucket.epoch !== epoch) {
    if (buckets.size > 100000) buckets.clear();
    buckets.set(key, { epoch, count: 1 });
    return { success: true };
  }
  if (bucket.count >= limit) return { success: false };
  bucket.count++;
  return { success: true };
}
export class Limiter extends WorkerEntrypoint {
  limit({ key = "" } = {}) {
    const { name, limit, period } = this.ctx.props;
    return hit(name + ":" + key, limit, period);
  }
}
export default { fetch() { return new Response(null, { status: 404 }); } };
`;

/**
 * Miniflare serves a Worker with static assets through two JavaScript Workers of its own on every
 * request: an RPC proxy and the asset router, which then calls the Worker, even for the paths the
 * Worker runs first (`run_worker_first`). On Cloudflare that routing is the platform's, and those
 * paths reach the Worker directly. Measured here, the two hops cost ~0.5 ms of workerd CPU per
 * request, about half of what a request that reaches the Worker costs in all (README "Performance
 * › Checkout"). `ROUTING=static` (the default here) puts this Worker in front: it sends the paths
 * the Worker runs first straight to it, and everything else to the asset router as before, by the
 * router's own rules (`assets.run_worker_first` from wrangler.toml, as the router's
 * `static_routing`; asset-first exclusions win). `ROUTING=miniflare` keeps Miniflare's chain for
 * every request, as `wrangler dev` has it.
 */
type Routing = "static" | "miniflare";
const ROUTING: Routing = (process.env.ROUTING ?? "static") === "static" ? "static" : "miniflare";
/**
 * The served main module with static routing: the deploy bundle as it is (re-exported whole), plus
 * a named entrypoint for the front to call — Miniflare routes a binding without one through the
 * asset router. The bundle itself is not changed.
 */
const DIRECT_ENTRY = `
import { WorkerEntrypoint } from "cloudflare:workers";
import worker from "./index.js";
export * from "./index.js";
export default worker;
export class RunWorkerFirst extends WorkerEntrypoint {
  fetch(request) {
    return worker.fetch(request, this.env, this.ctx);
  }
}
`;
/**
 * A WebSocket upgrade answered by a Worker with `no_web_socket_compression`: on Cloudflare no
 * compression is agreed with the client. Miniflare's entry Worker (compression on, by its own
 * compatibility date) would agree to the client's permessage-deflate offer again on the Worker's
 * behalf, and compress every frame on its way out. An extension name the runtime does not know,
 * set on the 101, is taken as the agreement: none (workerd then drops the header, so the client
 * sees no extension). The documented opt-out, an empty header, is ignored by this workerd
 * (checked: deflate was still agreed).
 */
const NO_WEBSOCKET_EXTENSION = "x-edgepulse-none";
const STATIC_ROUTER = `
let rules;
export default {
  async fetch(request, env) {
    rules ??= { assetFirst: env.ASSET_FIRST.map((r) => new RegExp(r)), workerFirst: env.WORKER_FIRST.map((r) => new RegExp(r)) };
    const { pathname } = new URL(request.url);
    const direct = !rules.assetFirst.some((rule) => rule.test(pathname)) && rules.workerFirst.some((rule) => rule.test(pathname));
    const response = await (direct ? env.WORKER : env.ASSETS_ROUTER).fetch(request);
    if (response.webSocket === null || !env.NO_WEBSOCKET_COMPRESSION) return response;
    const headers = new Headers(response.headers);
    headers.set("Sec-WebSocket-Extensions", "${NO_WEBSOCKET_EXTENSION}");
    return new Response(null, { status: 101, statusText: response.statusText, headers, webSocket: response.webSocket });
  },
};
`;

/** A routing rule as the asset router reads it: "*" is any run of characters, the whole path must match. */
export function globRegExpSource(rule: string): string {
  return `^${rule
    .split("*")
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
    .join(".*")}$`;
}

/** Parses .dev.vars (local secrets) the way wrangler does: KEY=value, optional single quotes. */
function readDevVars(): Record<string, string> {
  const file = path.join(ROOT, ".dev.vars");
  if (!existsSync(file)) return {};
  const vars: Record<string, string> = {};
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (match) vars[match[1]!] = match[2]!.replace(/^'(.*)'$/, "$1").replace(/^"(.*)"$/, "$1");
  }
  return vars;
}

// Log lines are batched and written once per event-loop turn, so a burst of requests costs one
// write syscall instead of one per line, and the runtime never waits on the terminal.
let pending: string[] = [];
function writeLog(line: string): void {
  if (pending.length === 0) setImmediate(flushLogs);
  pending.push(line);
}
function flushLogs(): void {
  const lines = pending;
  pending = [];
  process.stdout.write(`${lines.join("\n")}\n`);
}

/** Builds the deployable bundle (`wrangler deploy --dry-run`, no account needed) into `outDir`. */
export function buildBundle(outDir: string = OUT_DIR): string {
  wrangler(["deploy", "--dry-run", "--outdir", outDir], { quiet: true });
  return path.join(outDir, "index.js");
}

/** How to serve the bundle; every field defaults to this script's environment variables. */
export interface ServeOptions {
  port?: number;
  host?: string;
  /** The state directory, or `null` for state that lives in Miniflare's temp dir and dies with it. */
  persistTo?: string | null;
  rateLimits?: RateLimits;
  /** Whether the paths the Worker runs first skip Miniflare's asset router (ROUTING, see above). */
  routing?: Routing;
  /** Where the bundle is built. */
  outDir?: string;
  /** A bundle `buildBundle` already made, served as is (SERVE_BUNDLE): its caller built it in parallel with other work. */
  bundle?: string;
  /** Exposes workerd's V8 inspector on this port (Chrome DevTools protocol); INSPECTOR_PORT. */
  inspectorPort?: number;
  /** Receives the Worker's log lines; defaults to batched stdout. */
  log?: (line: string) => void;
  /** More Workers beside edgepulse (benchmarks: a driver bound to edgepulse's Durable Objects). */
  extraWorkers?: V4WorkerOptions[];
}

/** A running server: its origin, a loopback-free `fetch` into it, and how to stop it. */
export interface Served {
  url: string;
  dispatchFetch: Miniflare["dispatchFetch"];
  /** A Durable Object namespace of the Worker, for benchmarks that call an object's RPC directly. */
  getDurableObjectNamespace: Miniflare["getDurableObjectNamespace"];
  dispose: () => Promise<void>;
}

/** Builds the deployable bundle and serves it; resolves once the server accepts requests. */
export async function serve(options: ServeOptions = {}): Promise<Served> {
  const rateLimitMode = options.rateLimits ?? RATE_LIMITS;
  const persistTo = options.persistTo === undefined ? PERSIST_TO : options.persistTo;
  const log = options.log ?? writeLog;
  const prebuilt = options.bundle ?? process.env.SERVE_BUNDLE;
  const bundlePath = prebuilt ? path.resolve(prebuilt) : buildBundle(options.outDir);
  const routing = options.routing ?? ROUTING;
  // modulesRules only matter for unbundled sources; the dry-run output is one ES module.
  const { modulesRules: _rules, ...workerOptions } = unstable_getMiniflareWorkerOptions(
    path.join(ROOT, "wrangler.toml"),
  ).workerOptions;
  // wrangler types these loosely (the options of another Miniflare version), so name what is used.
  const {
    ratelimits: rawRateLimits,
    serviceBindings: rawServiceBindings,
    bindings: rawBindings,
    ...rest
  } = workerOptions as Record<string, unknown>;
  const ratelimits = (rawRateLimits ?? {}) as V4WorkerOptions["ratelimits"] & object;
  const serviceBindings = (rawServiceBindings ?? {}) as NonNullable<V4WorkerOptions["serviceBindings"]>;
  const bindings = (rawBindings ?? {}) as NonNullable<V4WorkerOptions["bindings"]>;
  const limiterBindings: NonNullable<V4WorkerOptions["serviceBindings"]> =
    rateLimitMode === "memory"
      ? Object.fromEntries(
          Object.entries(ratelimits).map(([name, cfg]) => [
            name,
            {
              name: "memory-rate-limits",
              entrypoint: "Limiter",
              props: { name, limit: cfg.simple.limit, period: cfg.simple.period ?? 60 },
            },
          ]),
        )
      : {};
  // The Worker's static routing, as the asset router has it (wrangler derives it from run_worker_first).
  const staticRouting = (
    rest.assets as { routerConfig?: { static_routing?: { user_worker?: string[]; asset_worker?: string[] } } }
  )?.routerConfig?.static_routing;
  const workerFirst = routing === "static" ? (staticRouting?.user_worker ?? []) : [];
  const routeDirectly = workerFirst.length > 0;
  // The main module beside the bundle, importing it by its file name.
  const modules = routeDirectly
    ? {
        modulesRoot: path.dirname(bundlePath),
        modules: [
          {
            type: "ESModule" as const,
            path: path.join(path.dirname(bundlePath), "direct-entry.js"),
            contents: DIRECT_ENTRY.replaceAll("./index.js", `./${path.basename(bundlePath)}`),
          },
          { type: "ESModule" as const, path: bundlePath },
        ],
      }
    : { modules: true, scriptPath: bundlePath };
  const edge = {
    ...rest,
    name: "edgepulse",
    ...modules,
    // MARKET_RELAYS from the environment sizes the market fan-out (the fan-out bench raises it).
    bindings: {
      ...bindings,
      ...readDevVars(),
      ...(process.env.MARKET_RELAYS ? { MARKET_RELAYS: process.env.MARKET_RELAYS } : {}),
    },
    ratelimits: rateLimitMode === "memory" ? undefined : ratelimits,
    serviceBindings: { ...serviceBindings, ...limiterBindings },
  } as V4WorkerOptions;
  const front: V4WorkerOptions | undefined = routeDirectly
    ? {
        name: "edgepulse-routing",
        modules: true,
        script: STATIC_ROUTER,
        compatibilityDate: "2026-11-01",
        bindings: {
          WORKER_FIRST: workerFirst.map(globRegExpSource),
          ASSET_FIRST: (staticRouting?.asset_worker ?? []).map(globRegExpSource),
          NO_WEBSOCKET_COMPRESSION: ((rest.compatibilityFlags ?? []) as string[]).includes("no_web_socket_compression"),
        },
        // A named entrypoint goes straight to the Worker (Miniflare sends a plain binding to a
        // Worker with assets through its asset router).
        serviceBindings: { WORKER: { name: "edgepulse", entrypoint: "RunWorkerFirst" }, ASSETS_ROUTER: "edgepulse" },
      }
    : undefined;
  const memoryLimiter: V4WorkerOptions = {
    name: "memory-rate-limits",
    modules: true,
    script: MEMORY_LIMITER,
    compatibilityDate: "2026-11-01",
  };
  // wrangler still speaks Miniflare's v4 option shape; Miniflare 5 converts it.
  const mf = new Miniflare(
    convertV4MiniflareOptions({
      host: options.host ?? HOST,
      port: options.port ?? PORT,
      rootPath: ROOT,
      resourcePersistencePath: persistTo === null ? undefined : path.join(persistTo, "v3"),
      logRequests: false,
      // V8 inspector of workerd (CPU profiles: bench/cpu-profile.ts); off unless asked for.
      ...((options.inspectorPort ?? INSPECTOR_PORT) ? { inspectorPort: options.inspectorPort ?? INSPECTOR_PORT } : {}),
      handleStructuredLogs: ({ level, message }) => log(level === "error" ? `[error] ${message}` : message),
      // The first Worker receives the requests that name no other (Miniflare's fallback).
      workers: [
        ...(front ? [front] : []),
        edge,
        ...(rateLimitMode === "memory" ? [memoryLimiter] : []),
        ...(options.extraWorkers ?? []),
      ],
    }),
  );
  const url = await mf.ready;
  return {
    url: url.origin,
    dispatchFetch: mf.dispatchFetch.bind(mf),
    getDurableObjectNamespace: (bindingName, workerName = "edgepulse") =>
      mf.getDurableObjectNamespace(bindingName, workerName),
    dispose: () => mf.dispose(),
  };
}

if (import.meta.main) {
  const { url, dispose } = await serve();
  console.log(
    `[serve] edgepulse on ${url} (bundle on Miniflare, rate limits: ${RATE_LIMITS}, routing: ${ROUTING}, state in ${path.relative(ROOT, PERSIST_TO)})`,
  );
  const stop = async () => {
    await dispose();
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}
