// Worker-thread entry: one exchange per thread. Owns the exchange socket and the adapter, and
// writes validated ticks into the exchange's SPSC ring. A crash or hang here is contained: the
// supervisor restarts the thread; the ring and stats buffers survive it.
import { parentPort, workerData } from "node:worker_threads";
import pino from "pino";
import type { ExchangeConfig } from "../config.ts";
import { ExchangeConnection } from "../exchanges/connection.ts";
import { createAdapterFactory } from "../exchanges/registry.ts";
import { RingSink } from "../ring/ring-sink.ts";
import { RingProducer } from "../ring/spsc-ring.ts";
import { RECORD_SIZE } from "../ring/tick-record.ts";
import { ExchangeStats } from "./exchange-stats.ts";

export interface ExchangeThreadData {
  config: ExchangeConfig;
  ring: SharedArrayBuffer;
  stats: SharedArrayBuffer;
  logLevel: string;
  faultInjection: boolean;
}

const data = workerData as ExchangeThreadData;
const log = pino({ level: data.logLevel, base: { exchange: data.config.exchange, thread: "exchange" } });
const stats = new ExchangeStats(data.stats);
const sink = new RingSink(new RingProducer(data.ring, RECORD_SIZE));
const connection = new ExchangeConnection(
  createAdapterFactory(data.config),
  { symbols: data.config.symbols, sink, stats, log },
  { silentMs: data.config.silentMs, pingMs: data.config.pingMs, maxFrameBytes: data.config.maxFrameBytes },
);
connection.start();
// The supervisor's hang detector watches this counter: it only moves while the event loop runs.
setInterval(() => stats.inc("heartbeat"), 100);
parentPort?.postMessage({ type: "ready", timeOrigin: performance.timeOrigin });

parentPort?.on("message", (msg: { type: string; ms?: number }) => {
  if (msg.type === "stop") {
    connection.stop();
    process.exit(0);
  }
  if (!data.faultInjection) return;
  if (msg.type === "crash") {
    setImmediate(() => {
      throw new Error("injected crash");
    });
  } else if (msg.type === "hang") {
    const until = Date.now() + (msg.ms ?? 60_000);
    while (Date.now() < until) {
      // Deliberately blocks the event loop.
    }
  }
});
