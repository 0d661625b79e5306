import { Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Exchange } from "../../contracts/market.ts";
import { STATUS_CODES } from "./threads/exchange-stats.ts";
import type { SupervisedExchange } from "./threads/supervisor.ts";

/** Prometheus metrics for the host; exchange gauges read the threads' shared stats at scrape time. */
export class HostMetrics {
  readonly registry = new Registry();
  readonly batches: Counter<"symbol">;
  readonly bytesPushed: Counter<"symbol">;
  readonly pushLag: Histogram;
  readonly recordsDrained: Counter<"exchange">;
  private readonly rates = new Map<Exchange, { at: number; messages: number; rate: number }>();

  constructor(exchanges: () => Iterable<SupervisedExchange>) {
    const r = this.registry;
    const list = () => [...exchanges()];
    const gauge = (name: string, help: string, read: (ex: SupervisedExchange) => number) =>
      new Gauge({
        name,
        help,
        labelNames: ["exchange"],
        registers: [r],
        collect() {
          for (const ex of list()) this.set({ exchange: ex.config.exchange }, read(ex));
        },
      });
    new Gauge({
      name: "collector_exchange_status",
      help: "1 for the exchange's current status (connecting, syncing, live, degraded, down)",
      labelNames: ["exchange", "status"],
      registers: [r],
      collect() {
        for (const ex of list()) {
          const current = ex.stats.status();
          for (const s of STATUS_CODES) this.set({ exchange: ex.config.exchange, status: s }, s === current ? 1 : 0);
        }
      },
    });
    gauge("collector_messages_total", "Exchange messages received", (ex) => ex.stats.get("messages"));
    gauge("collector_messages_per_second", "Exchange messages per second (since the previous scrape)", (ex) =>
      this.rate(ex),
    );
    gauge("collector_last_message_age_seconds", "Seconds since the exchange's last message", (ex) => {
      const at = ex.stats.get("lastMessageAt");
      return at > 0 ? (Date.now() - at) / 1000 : -1;
    });
    gauge("collector_reconnects_total", "Exchange socket reconnects", (ex) => ex.stats.get("reconnects"));
    gauge("collector_checksum_failures_total", "Book checksum mismatches", (ex) => ex.stats.get("checksumFailures"));
    gauge("collector_checksums_verified_total", "Book checksums verified", (ex) => ex.stats.get("checksumsVerified"));
    gauge("collector_resyncs_total", "Book resyncs (checksum, gap, malformed)", (ex) => ex.stats.get("resyncs"));
    gauge("collector_sequence_gaps_total", "Sequence gaps detected", (ex) => ex.stats.get("gaps"));
    gauge("collector_malformed_messages_total", "Frames that could not be used", (ex) => ex.stats.get("malformed"));
    gauge("collector_oversized_frames_total", "Exchange frames over maxFrameBytes (socket closed, reconnected)", (ex) =>
      ex.stats.get("oversizedFrames"),
    );
    gauge("collector_thread_restarts_total", "Exchange thread restarts (crash or hang)", (ex) =>
      ex.stats.get("restarts"),
    );
    gauge("collector_valid_books", "Books currently valid and published", (ex) => ex.stats.get("validBooks"));
    gauge(
      "collector_ring_occupancy_ratio",
      "Tick ring fill level (0..1)",
      (ex) => ex.consumer.size() / ex.consumer.capacity,
    );
    this.batches = new Counter({
      name: "collector_batches_pushed_total",
      help: "Batches pushed to the edge",
      labelNames: ["symbol"],
      registers: [r],
    });
    this.bytesPushed = new Counter({
      name: "collector_bytes_pushed_total",
      help: "Bytes pushed to the edge",
      labelNames: ["symbol"],
      registers: [r],
    });
    this.recordsDrained = new Counter({
      name: "collector_ring_records_total",
      help: "Tick records drained from the rings",
      labelNames: ["exchange"],
      registers: [r],
    });
    this.pushLag = new Histogram({
      name: "collector_push_lag_seconds",
      help: "Age of the oldest tick in a batch when it is pushed to the edge",
      buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [r],
    });
  }

  /** Messages per second over the window since the last call for this exchange. */
  rate(ex: SupervisedExchange): number {
    const now = Date.now();
    const messages = ex.stats.get("messages");
    const prev = this.rates.get(ex.config.exchange);
    if (!prev) {
      this.rates.set(ex.config.exchange, { at: now, messages, rate: 0 });
      return 0;
    }
    if (now - prev.at >= 1000) {
      prev.rate = ((messages - prev.messages) * 1000) / (now - prev.at);
      prev.at = now;
      prev.messages = messages;
    }
    return prev.rate;
  }
}
