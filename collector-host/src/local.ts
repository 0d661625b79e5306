// Local mode: the replay server (recorded fixtures, looping) and the collector host against the
// local Worker, in one process. Used by `npm run collector -- --local` and by `npm start`.
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { HostConfig, replayExchanges } from "./config.ts";
import type { Logger } from "./exchanges/types.ts";
import { type CollectorHost, startCollectorHost } from "./main.ts";
import { type ReplayServer, startReplayServer } from "./replay/replay-server.ts";

export interface LocalMarketDataOptions {
  /** The local Worker (default EDGE_URL or http://127.0.0.1:8787). */
  edgeUrl?: string;
  /** Service secret (default SERVICE_TOKEN_SECRET, else the repo's .dev.vars). */
  serviceSecret?: string;
  replayPort?: number;
  opsPort?: number;
  /** Replay pace: 1 = recorded pace (default), 10 = ten times faster. */
  speed?: number;
  log?: Logger;
}

/** Reads one variable from the repo's `.dev.vars` (where `npm start` keeps local secrets). */
export function devVar(name: string, root = path.resolve(import.meta.dirname, "../..")): string | undefined {
  const file = path.join(root, ".dev.vars");
  if (!existsSync(file)) return undefined;
  for (const line of readFileSync(file, "utf8").split("\n")) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m?.[1] === name) return m[2]!.replace(/^'(.*)'$/, "$1");
  }
  return undefined;
}

/** Starts replay + host; `stop()` shuts both down. */
export async function startLocalMarketData(opts: LocalMarketDataOptions = {}): Promise<{
  replay: ReplayServer;
  host: CollectorHost;
  stop(): Promise<void>;
}> {
  const replay = await startReplayServer({
    port: opts.replayPort ?? Number(process.env.REPLAY_PORT ?? 8830),
    speed: opts.speed ?? Number(process.env.REPLAY_SPEED ?? 1),
    loop: true,
  });
  const serviceSecret = opts.serviceSecret ?? process.env.SERVICE_TOKEN_SECRET ?? devVar("SERVICE_TOKEN_SECRET");
  const host = await startCollectorHost(
    HostConfig.parse({
      host: `local-${process.pid}`,
      exchanges: replayExchanges(replay.url),
      edge: { url: opts.edgeUrl ?? process.env.EDGE_URL ?? "http://127.0.0.1:8787", serviceSecret },
      ops: { port: opts.opsPort ?? Number(process.env.COLLECTOR_OPS_PORT ?? 8831) },
      logLevel: process.env.LOG_LEVEL ?? "info",
    }),
    opts.log ? { log: opts.log } : {},
  );
  return {
    replay,
    host,
    async stop() {
      await host.stop();
      await replay.close();
    },
  };
}
