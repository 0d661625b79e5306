// Saga monitor: orders by status, sagas that are stuck, dead-lettered or in flight (with a retry
// button), and any order's full history and saga message log.
import { ApiProblem, call, client, type Schema } from "../api.ts";
import { ago, h, money, replace, table } from "../dom.ts";

const REFRESH_MS = 5000;
type State = Schema<"SagaItem">["state"];

export function sagasView(root: HTMLElement, initialOrder?: string): () => void {
  const stateSelect = h(
    "select",
    { id: "saga-state", name: "state" },
    h("option", { value: "dead-lettered" }, "Dead-lettered"),
    h("option", { value: "stuck" }, "Stuck"),
    h("option", { value: "in-flight" }, "In flight"),
  );
  const counts = h("div", { class: "kpis", "aria-live": "polite" });
  const list = h("div", { "aria-live": "polite" });
  const notice = h("p", { role: "status", class: "muted" });
  const lookup = h("input", { id: "order-id", name: "orderId", placeholder: "ord_…", autocomplete: "off" });
  const detail = h("div", { class: "panel", id: "saga-detail" });
  replace(
    root,
    h(
      "section",
      { "aria-labelledby": "sagas-title" },
      h("h2", { id: "sagas-title" }, "Saga monitor"),
      h("h3", {}, "Orders by status"),
      counts,
      h("div", { class: "toolbar" }, h("label", { for: "saga-state" }, "Show "), stateSelect),
      notice,
      list,
      h(
        "form",
        {
          class: "toolbar",
          onsubmit: (event: Event) => {
            event.preventDefault();
            if (lookup.value.trim()) void showOrder(lookup.value.trim());
          },
        },
        h("label", { for: "order-id" }, "Order "),
        lookup,
        h("button", { type: "submit" }, "Show history"),
      ),
      detail,
    ),
  );

  const retry = async (orderId: string, button: HTMLButtonElement) => {
    button.disabled = true;
    try {
      const result = await call(() =>
        client.POST("/v1/admin/sagas/{orderId}/retry", { params: { path: { orderId } } }),
      );
      notice.textContent =
        result.redelivered.length > 0
          ? `Redelivered ${result.redelivered.map((r) => r.type ?? "message").join(", ")} for ${orderId}.`
          : `Nothing left to redeliver for ${orderId} (already retried).`;
      await load();
      await showOrder(orderId);
    } catch (error) {
      notice.textContent = `Retry of ${orderId} failed: ${error instanceof Error ? error.message : String(error)}`;
      button.disabled = false;
    }
  };

  const load = async () => {
    const state = stateSelect.value as State;
    try {
      const sagas = await call(() => client.GET("/v1/admin/sagas", { params: { query: { state } } }));
      replace(
        counts,
        ...Object.entries(sagas.byStatus)
          .sort(([a], [b]) => a.localeCompare(b))
          .map(([status, n]) =>
            h(
              "div",
              { class: "kpi" },
              h("span", { class: "label" }, status),
              h("strong", { "data-status": status }, String(n)),
            ),
          ),
      );
      replace(
        list,
        sagas.items.length === 0
          ? h("p", { class: "ok" }, `No ${state} sagas.`)
          : table(
              `${state} sagas`,
              ["Order", "Status", "Step", "Error", "Attempts", "Idle", "Total", ""],
              sagas.items.map((s) => {
                const button = h("button", { type: "button", class: "retry", "data-order": s.orderId }, "Retry");
                button.addEventListener("click", () => void retry(s.orderId, button));
                return [
                  h("button", { type: "button", class: "link", onclick: () => void showOrder(s.orderId) }, s.orderId),
                  s.status,
                  s.lastStep,
                  s.error ?? "",
                  s.attempts,
                  ago(s.idleMs),
                  money(s.total),
                  state === "in-flight" ? null : button,
                ];
              }),
              { class: "sagas" },
            ),
      );
    } catch (error) {
      replace(list, h("p", { class: "error", role: "alert" }, `Sagas unavailable: ${String(error)}`));
    }
  };

  const showOrder = async (orderId: string) => {
    try {
      const { order, log } = await call(() =>
        client.GET("/v1/admin/sagas/{orderId}", { params: { path: { orderId } } }),
      );
      replace(
        detail,
        h("h3", { tabindex: -1 }, `Order ${order.id}`),
        h("p", {}, `Status ${order.status} · ${money(order.total)} · payment ${order.payment.status}`),
        order.needsAttention ? h("p", { class: "error" }, `Needs attention: ${order.needsAttention}`) : null,
        table(
          "Status history",
          ["When", "Status", "Reason"],
          order.history.map((e) => [new Date(e.at).toLocaleString(), e.status, e.reason ?? ""]),
          { class: "history" },
        ),
        table(
          "Saga messages",
          ["When", "Kind", "Type", "Detail"],
          log.map((e) => [new Date(e.at).toLocaleString(), e.kind, e.type ?? "", e.detail ?? ""]),
          { class: "saga-log" },
        ),
      );
      detail.querySelector<HTMLElement>("h3")?.focus();
    } catch (error) {
      replace(
        detail,
        h(
          "p",
          { class: "error", role: "alert" },
          error instanceof ApiProblem && error.status === 404
            ? `No order ${orderId}.`
            : `Order unavailable: ${String(error)}`,
        ),
      );
    }
  };

  stateSelect.addEventListener("change", () => void load());
  void load();
  if (initialOrder) void showOrder(initialOrder);
  const timer = setInterval(() => void load(), REFRESH_MS);
  return () => clearInterval(timer);
}
