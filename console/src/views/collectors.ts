// Collector health: the collector host's last report per exchange, and collector alerts.
import { ApiProblem, call, client } from "../api.ts";
import { ago, h, replace, table } from "../dom.ts";
import { renderAlerts } from "./alerts.ts";

const REFRESH_MS = 5000;

export function collectorsView(root: HTMLElement): () => void {
  const body = h("div", { "aria-live": "polite" });
  const alertsEl = h("div", { class: "panel" });
  replace(
    root,
    h(
      "section",
      { "aria-labelledby": "collectors-title" },
      h("h2", { id: "collectors-title" }, "Collector health"),
      body,
      alertsEl,
    ),
  );
  const load = async () => {
    try {
      const report = await call(() => client.GET("/v1/market/collectors"));
      const now = Date.now();
      replace(
        body,
        h("p", { class: "muted" }, `Host ${report.host}, reported ${ago(now - Date.parse(report.reportedAt))}.`),
        table(
          "Per exchange",
          ["Exchange", "Status", "Last message", "Messages/s", "Reconnects", "Checksum failures", "Resyncs"],
          Object.entries(report.exchanges).map(([exchange, s]) => [
            exchange,
            h("span", { class: "pill", "data-state": s.status }, s.status),
            s.lastMessageAt ? ago(now - Date.parse(s.lastMessageAt)) : "never",
            s.messagesPerSecond.toFixed(1),
            s.reconnects,
            s.checksumFailures,
            s.resyncs,
          ]),
          { class: "collectors" },
        ),
      );
    } catch (error) {
      replace(
        body,
        h(
          "p",
          { class: "error", role: "alert" },
          error instanceof ApiProblem && error.status === 404
            ? "No collector host has reported yet."
            : `Collector health unavailable: ${error instanceof Error ? error.message : String(error)}`,
        ),
      );
    }
    await renderAlerts(alertsEl).catch(() => undefined);
  };
  void load();
  const timer = setInterval(() => void load(), REFRESH_MS);
  return () => clearInterval(timer);
}
