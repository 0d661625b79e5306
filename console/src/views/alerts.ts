// Business alerts (payment success rate, order failure rate, collector down): the ones firing now
// and the latest raised/resolved events, shared by the collector and sales views.
import { call, client, type Schema } from "../api.ts";
import { h, replace } from "../dom.ts";

/** Fetches the alerts into `el`; returns them for callers that react to them. */
export async function renderAlerts(el: HTMLElement, only?: Schema<"Alert">["kind"][]): Promise<void> {
  const alerts = await call(() => client.GET("/v1/admin/alerts", { params: { query: { limit: 20 } } }));
  const keep = (a: Schema<"Alert">) => !only || only.includes(a.kind);
  const active = alerts.active.filter(keep);
  const recent = alerts.recent.filter(keep);
  replace(
    el,
    h("h3", {}, "Alerts"),
    active.length === 0
      ? h("p", { class: "ok", role: "status" }, "No alert is firing.")
      : h(
          "ul",
          { class: "alerts", role: "alert" },
          ...active.map((a) =>
            h("li", { class: "alert", "data-kind": a.kind }, h("strong", {}, a.kind), " ", a.message),
          ),
        ),
    recent.length > 0
      ? h(
          "details",
          {},
          h("summary", {}, `Alert history (${recent.length})`),
          h(
            "ul",
            {},
            ...recent.map((a) =>
              h("li", {}, `${new Date(a.at).toLocaleString()} — ${a.state} — ${a.kind} (${a.subject}): ${a.message}`),
            ),
          ),
        )
      : null,
  );
}
