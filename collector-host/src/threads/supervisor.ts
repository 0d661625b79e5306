import { EventEmitter } from "node:events";
import { Worker } from "node:worker_threads";
import type { Exchange } from "../../../contracts/market.ts";
import type { ExchangeConfig, HostConfig } from "../config.ts";
import type { Logger } from "../exchanges/types.ts";
import { createRingBuffer, RingConsumer } from "../ring/spsc-ring.ts";
import { RECORD_SIZE } from "../ring/tick-record.ts";
import { ExchangeStats } from "./exchange-stats.ts";
import type { ExchangeThreadData } from "./exchange-thread.ts";

/** One supervised exchange: its thread, ring and stats (the buffers outlive any one thread). */
export interface SupervisedExchange {
  readonly config: ExchangeConfig;
  readonly ring: SharedArrayBuffer;
  readonly consumer: RingConsumer;
  readonly stats: ExchangeStats;
  worker: Worker | undefined;
  /** worker performance.timeOrigin − main performance.timeOrigin, for cross-thread latency. */
  clockOffset: number;
  attempt: number;
  startedAt: number;
  lastHeartbeat: number;
  lastHeartbeatAt: number;
  restartTimer: NodeJS.Timeout | undefined;
  /** The thread has loaded and said "ready"; hang detection only applies from then on. */
  booted: boolean;
}

/** A thread that has not finished loading its modules after this long is considered stuck. */
const BOOT_TIMEOUT_MS = 20_000;

/**
 * Runs one worker thread per enabled exchange. A thread that exits, throws, or stops ticking its
 * heartbeat for `hangMs` is terminated and restarted with exponential backoff; the others are
 * untouched. Emits `down` (exchange, reason) so the publisher withdraws that exchange's books.
 */
export class Supervisor extends EventEmitter<{ down: [Exchange, string]; up: [Exchange] }> {
  readonly exchanges = new Map<Exchange, SupervisedExchange>();
  private readonly config: HostConfig;
  private readonly log: Logger;
  private watchdog: NodeJS.Timeout | undefined;
  private stopping = false;

  constructor(config: HostConfig, log: Logger) {
    super();
    this.config = config;
    this.log = log;
    for (const ex of config.exchanges) {
      if (!ex.enabled) continue;
      const ring = createRingBuffer(config.ringCapacity, RECORD_SIZE);
      this.exchanges.set(ex.exchange, {
        config: ex,
        ring,
        consumer: new RingConsumer(ring, RECORD_SIZE),
        stats: new ExchangeStats(),
        worker: undefined,
        clockOffset: 0,
        attempt: 0,
        startedAt: 0,
        lastHeartbeat: -1,
        lastHeartbeatAt: 0,
        restartTimer: undefined,
        booted: false,
      });
    }
  }

  start(): void {
    this.stopping = false;
    for (const ex of this.exchanges.values()) this.spawn(ex);
    this.watchdog = setInterval(() => this.checkHangs(), Math.max(50, Math.min(1000, this.config.hangMs / 4)));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.watchdog);
    await Promise.all(
      [...this.exchanges.values()].map(async (ex) => {
        clearTimeout(ex.restartTimer);
        const w = ex.worker;
        ex.worker = undefined;
        if (w) await w.terminate();
      }),
    );
  }

  /** Tests only (config.faultInjection): crash or hang an exchange's thread. */
  inject(exchange: Exchange, fault: "crash" | "hang", ms?: number): void {
    this.exchanges.get(exchange)?.worker?.postMessage({ type: fault, ms });
  }

  /** Terminates a thread as if it had died (the restart path runs). */
  async kill(exchange: Exchange): Promise<void> {
    await this.exchanges.get(exchange)?.worker?.terminate();
  }

  private spawn(ex: SupervisedExchange): void {
    const data: ExchangeThreadData = {
      config: ex.config,
      ring: ex.ring,
      stats: ex.stats.buffer,
      logLevel: this.config.logLevel,
      faultInjection: this.config.faultInjection,
    };
    const worker = new Worker(new URL("./exchange-thread.ts", import.meta.url), { workerData: data });
    ex.worker = worker;
    ex.startedAt = Date.now();
    ex.lastHeartbeat = -1;
    ex.lastHeartbeatAt = Date.now();
    ex.booted = false;
    worker.on("message", (msg: { type?: string; timeOrigin?: number }) => {
      if (msg.type === "ready" && typeof msg.timeOrigin === "number") {
        ex.clockOffset = msg.timeOrigin - performance.timeOrigin;
        ex.booted = true;
        ex.lastHeartbeatAt = Date.now();
        this.emit("up", ex.config.exchange);
      }
    });
    worker.on("error", (error) => {
      this.log.error({ exchange: ex.config.exchange, error: String(error) }, "exchange thread crashed");
    });
    worker.on("exit", (code) => {
      if (ex.worker !== worker) return;
      ex.worker = undefined;
      if (this.stopping) return;
      this.restart(ex, `thread exited (code ${code})`);
    });
  }

  private restart(ex: SupervisedExchange, reason: string): void {
    ex.stats.setStatus("down");
    ex.stats.set("connected", 0);
    ex.stats.set("validBooks", 0);
    ex.stats.inc("restarts");
    this.emit("down", ex.config.exchange, reason);
    // A thread that ran for a while earns a fresh backoff; a crash loop backs off exponentially.
    if (Date.now() - ex.startedAt > 30_000) ex.attempt = 0;
    const base = this.config.restartBaseMs * 2 ** Math.min(ex.attempt++, 16);
    const delay = Math.min(this.config.restartMaxMs, base) * (0.75 + Math.random() * 0.5);
    this.log.warn({ exchange: ex.config.exchange, reason, delayMs: Math.round(delay) }, "restarting exchange thread");
    ex.restartTimer = setTimeout(() => {
      if (!this.stopping) this.spawn(ex);
    }, delay);
  }

  private checkHangs(): void {
    const now = Date.now();
    for (const ex of this.exchanges.values()) {
      if (!ex.worker) continue;
      const beat = ex.stats.get("heartbeat");
      if (beat !== ex.lastHeartbeat) {
        ex.lastHeartbeat = beat;
        ex.lastHeartbeatAt = now;
        continue;
      }
      // Loading a thread (module graph, TLS) can take a while on a busy machine: not a hang.
      const limit = ex.booted ? this.config.hangMs : Math.max(this.config.hangMs, BOOT_TIMEOUT_MS);
      if (now - ex.lastHeartbeatAt > limit) {
        this.log.error({ exchange: ex.config.exchange, stalledMs: now - ex.lastHeartbeatAt }, "exchange thread hung");
        ex.lastHeartbeatAt = now;
        // terminate() interrupts even a busy loop; the exit handler restarts it.
        void ex.worker.terminate();
      }
    }
  }
}
