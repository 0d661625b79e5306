// The collector host: supervises one worker thread per exchange, publishes their books to the
// edge, serves /health, /ready and /metrics, and reports its health to the edge.
//
//   npm run collector -- [--config file.json] [--replay http://127.0.0.1:8830] [--edge http://127.0.0.1:8787]
//   npm run collector -- --local      (replay server + host against the local Worker, one process)
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { parseArgs } from "node:util";
import { z } from "zod";
import { type HostConfig, loadConfig } from "./config.ts";
import type { Logger } from "./exchanges/types.ts";
import { healthReport } from "./health.ts";
import { createLogger } from "./logger.ts";
import { HostMetrics } from "./metrics.ts";
import { EdgeLink } from "./publisher/edge-link.ts";
import { type LinkFactory, Publisher } from "./publisher/publisher.ts";
import { ServiceToken } from "./publisher/service-token.ts";
import { Supervisor } from "./threads/supervisor.ts";

export interface CollectorHost {
  readonly config: HostConfig;
  readonly supervisor: Supervisor;
  readonly publisher: Publisher;
  readonly metrics: HostMetrics;
  /** Base URL of the ops server (/health, /ready, /metrics). */
  readonly opsUrl: string;
  /** True when every exchange is live and every publish socket is open. */
  ready(): boolean;
  stop(): Promise<void>;
}

/** A link that drops everything: used when the edge is disabled (collect and monitor only). */
const offlineLink = () => ({ open: false, writable: false, send: () => false, start() {}, stop() {} });

/** Starts the host. `links` replaces the edge sockets (tests). */
export async function startCollectorHost(
  config: HostConfig,
  opts: { log?: Logger; links?: LinkFactory } = {},
): Promise<CollectorHost> {
  const log = opts.log ?? createLogger(config.logLevel);
  const supervisor = new Supervisor(config, log);
  const metrics = new HostMetrics(() => supervisor.exchanges.values());
  const token = new ServiceToken({
    edgeUrl: config.edge.url,
    secret: config.edge.serviceSecret,
    token: config.edge.token,
    collectorId: config.host,
  });
  const links: LinkFactory =
    opts.links ??
    (config.edge.enabled
      ? (symbol, handlers) =>
          new EdgeLink({
            edgeUrl: config.edge.url,
            symbol,
            token,
            log,
            compress: config.edge.compress,
            encoding: config.edge.encoding,
            ...handlers,
          })
      : offlineLink);
  const publisher = new Publisher({
    sources: [...supervisor.exchanges.values()].map((ex) => ({
      exchange: ex.config.exchange,
      symbols: ex.config.symbols,
      consumer: ex.consumer,
      clockOffset: () => ex.clockOffset,
    })),
    intervalMs: config.pushIntervalMs,
    publishDepth: config.publishDepth,
    encoding: config.edge.encoding,
    links,
    log,
    hooks: {
      onBatch(symbol, bytes, lagMs) {
        metrics.batches.inc({ symbol });
        metrics.bytesPushed.inc({ symbol }, bytes);
        metrics.pushLag.observe(lagMs / 1000);
      },
      onDrain(exchange, records) {
        metrics.recordsDrained.inc({ exchange }, records);
      },
    },
  });
  supervisor.on("down", (exchange, reason) => publisher.exchangeDown(exchange, reason));

  const ready = () =>
    [...supervisor.exchanges.values()].every((ex) => ex.stats.status() === "live") &&
    (!config.edge.enabled || opts.links !== undefined || publisher.symbolNames.every((s) => publisher.linkOf(s)?.open));

  const server: Server = createServer((req, res) => {
    const url = req.url ?? "/";
    if (url === "/health") {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(
        JSON.stringify({
          status: "ok",
          ...healthReport(config.host, supervisor.exchanges.values(), metrics),
          roles: publisher.roles(),
        }),
      );
    } else if (url === "/ready") {
      const ok = ready();
      res.writeHead(ok ? 200 : 503, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ ready: ok }));
    } else if (url === "/metrics") {
      metrics.registry.metrics().then(
        (text) => {
          res.writeHead(200, { "Content-Type": metrics.registry.contentType });
          res.end(text);
        },
        (error: unknown) => {
          res.writeHead(500);
          res.end(String(error));
        },
      );
    } else {
      res.writeHead(404, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ error: "not found" }));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.ops.port, config.ops.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  let reporting = false;
  const reporter = setInterval(async () => {
    if (!config.edge.enabled || opts.links || reporting) return;
    reporting = true;
    try {
      const res = await fetch(`${config.edge.url.replace(/\/$/, "")}/v1/market/collectors`, {
        method: "PUT",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${await token.get()}` },
        body: JSON.stringify(healthReport(config.host, supervisor.exchanges.values(), metrics)),
        signal: AbortSignal.timeout(5_000),
      });
      if (res.status === 401) token.invalidate();
      if (!res.ok) log.warn({ status: res.status }, "health report rejected by the edge");
    } catch (error) {
      log.warn({ error: String(error) }, "health report failed");
    } finally {
      reporting = false;
    }
  }, config.healthIntervalMs);

  supervisor.start();
  publisher.start();
  log.info(
    { ops: `http://${config.ops.host}:${port}`, exchanges: [...supervisor.exchanges.keys()] },
    "collector host started",
  );

  return {
    config,
    supervisor,
    publisher,
    metrics,
    opsUrl: `http://${config.ops.host}:${port}`,
    ready,
    async stop() {
      clearInterval(reporter);
      publisher.stop();
      await supervisor.stop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function cli(): Promise<void> {
  const { values } = parseArgs({
    options: {
      config: { type: "string" },
      replay: { type: "string" },
      edge: { type: "string" },
      "ops-port": { type: "string" },
      local: { type: "boolean", default: false },
    },
  });
  if (values.local) {
    const { startLocalMarketData } = await import("./local.ts");
    const local = await startLocalMarketData({
      ...(values.edge ? { edgeUrl: values.edge } : {}),
      ...(values["ops-port"] ? { opsPort: Number(values["ops-port"]) } : {}),
    });
    const stop = () => void local.stop().then(() => process.exit(0));
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    return;
  }
  const env = { ...process.env };
  if (values.replay) env.COLLECTOR_REPLAY_URL = values.replay;
  if (values.edge) env.EDGE_URL = values.edge;
  if (values["ops-port"]) env.COLLECTOR_OPS_PORT = values["ops-port"];
  const host = await startCollectorHost(loadConfig(env, values.config ?? env.COLLECTOR_CONFIG));
  const shutdown = () => {
    void host.stop().then(() => process.exit(0));
  };
  process.once("SIGINT", shutdown);
  process.once("SIGTERM", shutdown);
}

if (import.meta.main) {
  cli().catch((error: unknown) => {
    // A refused configuration (plain-text EDGE_URL, short secret, ...) reads as one line per problem.
    console.error(
      error instanceof z.ZodError ? `collector host: invalid configuration\n${z.prettifyError(error)}` : error,
    );
    process.exit(1);
  });
}
