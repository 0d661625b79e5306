// Collector health: the collector host's last report per exchange, every redundant host with the
// symbols it leads or stands by for (and a Fence button: the console's "kill", which makes the edge
// drop that host so each of its symbols fails over to its standby), and collector alerts.
import { ApiProblem, call, client, type Schema } from "../api.ts";
import { ago, h, replace, table } from "../dom.ts";
import { renderAlerts } from "./alerts.ts";

const REFRESH_MS = 5000;
const FENCE_SECONDS = 60;

/** Symbols as a short list (the full list in the cell's title). */
function symbolList(symbols: string[]): HTMLElement {
  const shown = symbols.length > 4 ? `${symbols.slice(0, 4).join(", ")} +${symbols.length - 4}` : symbols.join(", ");
  return h("span", { title: symbols.join(", ") }, symbols.length === 0 ? "—" : `${symbols.length}: ${shown}`);
}

export function collectorsView(root: HTMLElement): () => void {
  const body = h("div", { "aria-live": "polite" });
  const notice = h("p", { role: "status", class: "muted" });
  const alertsEl = h("div", { class: "panel" });
  replace(
    root,
    h(
      "section",
      { "aria-labelledby": "collectors-title" },
      h("h2", { id: "collectors-title" }, "Collector health"),
      body,
      notice,
      alertsEl,
    ),
  );
  // Fences placed from this view while it is open: the edge shows a fenced host as leading nothing, then silent.
  const fencedUntil = new Map<string, number>();
  const fence = async (host: Schema<"CollectorsView">["hosts"][number], button: HTMLButtonElement) => {
    const leads = host.primaryFor.length;
    if (
      !confirm(`Fence ${host.host} for ${FENCE_SECONDS} s? The ${leads} symbols it leads fail over to their standbys.`)
    )
      return;
    button.disabled = true;
    const send = (force: boolean) =>
      call(() =>
        client.POST("/v1/market/collectors/{host}/fence", {
          params: { path: { host: host.host } },
          body: { seconds: FENCE_SECONDS, reason: "fenced from the operator console", force },
        }),
      );
    try {
      let result: Schema<"CollectorFence">;
      try {
        result = await send(false);
      } catch (error) {
        // No standby for some symbol: say which, and fence only if the operator insists.
        if (!(error instanceof ApiProblem && error.status === 409 && confirm(`${error.message}\n\nFence anyway?`)))
          throw error;
        result = await send(true);
      }
      fencedUntil.set(result.host, Date.parse(result.fencedUntil));
      notice.textContent =
        `Fenced ${result.host} until ${new Date(result.fencedUntil).toLocaleTimeString()}: ` +
        `${result.primaryFor.length - result.withoutStandby.length} symbols failing over to their standbys` +
        (result.withoutStandby.length > 0 ? `, ${result.withoutStandby.join(", ")} without a publisher.` : ".");
      await load();
    } catch (error) {
      notice.textContent = `Fencing ${host.host} failed: ${error instanceof Error ? error.message : String(error)}`;
    } finally {
      button.disabled = false;
    }
  };

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
        table(
          "Hosts (redundant collectors: the edge follows one primary per symbol, the others stand by)",
          ["Host", "Last report", "Primary for", "Standby for", ""],
          report.hosts.map((host) => {
            const button = h("button", { type: "button", class: "fence", "data-host": host.host }, "Fence");
            button.addEventListener("click", () => void fence(host, button));
            const fenced = fencedUntil.get(host.host) ?? 0;
            return [
              host.host,
              fenced > now
                ? h(
                    "span",
                    { class: "pill", "data-state": "down" },
                    `fenced until ${new Date(fenced).toLocaleTimeString()}`,
                  )
                : host.silent
                  ? h("span", { class: "pill", "data-state": "down" }, "silent")
                  : ago(now - Date.parse(host.receivedAt)),
              symbolList(host.primaryFor),
              symbolList(host.standbyFor),
              button,
            ];
          }),
          { class: "collector-hosts" },
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
