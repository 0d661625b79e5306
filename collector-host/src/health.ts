import type { CollectorHealthReport, CollectorStatus, Exchange } from "../../contracts/market.ts";
import type { HostMetrics } from "./metrics.ts";
import type { SupervisedExchange } from "./threads/supervisor.ts";

/** The per-exchange health the host reports to the edge and serves on /health. */
export function healthReport(
  host: string,
  exchanges: Iterable<SupervisedExchange>,
  metrics: HostMetrics,
): CollectorHealthReport {
  const report: Partial<Record<Exchange, CollectorStatus>> = {};
  for (const ex of exchanges) {
    const at = ex.stats.get("lastMessageAt");
    report[ex.config.exchange] = {
      status: ex.stats.status(),
      lastMessageAt: at > 0 ? new Date(at).toISOString() : null,
      messagesPerSecond: Math.max(0, Math.round(metrics.rate(ex) * 100) / 100),
      reconnects: ex.stats.get("reconnects"),
      checksumFailures: ex.stats.get("checksumFailures"),
      resyncs: ex.stats.get("resyncs"),
    };
  }
  return { host, reportedAt: new Date().toISOString(), exchanges: report };
}
