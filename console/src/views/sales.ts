// Sales analytics from GET /v1/admin/analytics/summary (read from the rollups): headline figures,
// orders and revenue by day, the funnel, best sellers, payment success rate; plus order alerts.
import uPlot from "uplot";
import { call, client, type Schema } from "../api.ts";
import { h, money, percent, replace, table } from "../dom.ts";
import { renderAlerts } from "./alerts.ts";

const REFRESH_MS = 10_000;
const DAY_MS = 86_400_000;

export function salesView(root: HTMLElement): () => void {
  const range = h(
    "select",
    { id: "sales-range", name: "range" },
    h("option", { value: "7" }, "Last 7 days"),
    h("option", { value: "30", selected: true }, "Last 30 days"),
    h("option", { value: "90" }, "Last 90 days"),
  );
  const kpis = h("div", { class: "kpis", "aria-live": "polite" });
  const chartHost = h("div", { class: "chart", role: "img", "aria-label": "Orders and revenue by day" });
  const funnel = h("div", { class: "panel" });
  const products = h("div", { class: "panel" });
  const alertsEl = h("div", { class: "panel" });
  replace(
    root,
    h(
      "section",
      { "aria-labelledby": "sales-title" },
      h("h2", { id: "sales-title" }, "Sales analytics"),
      h("div", { class: "toolbar" }, h("label", { for: "sales-range" }, "Window "), range),
      kpis,
      h("h3", {}, "Orders and revenue by day"),
      chartHost,
      h("div", { class: "columns" }, funnel, products),
      alertsEl,
    ),
  );
  let chart: uPlot | null = null;

  const draw = (s: Schema<"AnalyticsSummary">) => {
    replace(
      kpis,
      ...[
        ["Orders", String(s.orders), "kpi-orders"],
        ["Revenue", money(s.revenue), "kpi-revenue"],
        ["Average order", money(s.averageOrderValue), "kpi-aov"],
        ["Payment success", percent(s.paymentSuccessRate), "kpi-payment-success"],
        ["Cart abandonment", percent(s.cartAbandonmentRate), "kpi-abandonment"],
        ["Refunded", money(s.refunded), "kpi-refunded"],
      ].map(([label, value, id]) =>
        h("div", { class: "kpi" }, h("span", { class: "label" }, label), h("strong", { "data-testid": id }, value)),
      ),
    );
    const xs = s.byDay.map((d) => Date.parse(`${d.date}T00:00:00Z`) / 1000);
    const data: uPlot.AlignedData = [xs, s.byDay.map((d) => d.orders), s.byDay.map((d) => d.revenue.amount / 100)];
    const width = Math.max(320, Math.floor(chartHost.clientWidth || 720));
    if (!chart) {
      chart = new uPlot(
        {
          width,
          height: 220,
          scales: { orders: { auto: true }, revenue: { auto: true } },
          series: [
            {},
            {
              label: "Orders",
              scale: "orders",
              stroke: "#0969da",
              fill: "rgba(9,105,218,0.2)",
              paths: uPlot.paths.bars!({ size: [0.6, 40] }),
            },
            { label: `Revenue (${s.revenue.currency})`, scale: "revenue", stroke: "#8250df", width: 2 },
          ],
          axes: [
            {},
            { scale: "orders", label: "orders" },
            { scale: "revenue", side: 1, label: "revenue", grid: { show: false } },
          ],
        },
        data,
        chartHost,
      );
      // uPlot's legend is a table: name it for screen readers.
      chart.root.querySelector("table")?.setAttribute("aria-label", "Chart legend: orders and revenue");
    } else {
      chart.setData(data);
    }
    const max = Math.max(1, s.funnel.cartsCreated, s.funnel.checkoutsStarted, s.funnel.paid);
    const step = (label: string, value: number) =>
      h(
        "li",
        {},
        h("span", { class: "label" }, label),
        h("meter", { min: 0, max, value, "aria-label": label }),
        h("strong", {}, String(value)),
      );
    replace(
      funnel,
      h("h3", {}, "Funnel"),
      h(
        "ol",
        { class: "funnel" },
        step("Carts created", s.funnel.cartsCreated),
        step("Checkouts started", s.funnel.checkoutsStarted),
        step("Paid", s.funnel.paid),
      ),
      h(
        "p",
        {},
        `Payment success rate: ${percent(s.paymentSuccessRate)} · order failure rate: ${percent(s.orderFailureRate)}`,
      ),
    );
    replace(
      products,
      h("h3", {}, "Top products"),
      s.topProducts.length === 0
        ? h("p", { class: "muted" }, "No sales in this window.")
        : table(
            "Best sellers by revenue",
            ["SKU", "Product", "Units", "Revenue"],
            s.topProducts.map((p) => [p.sku, p.name, p.units, money(p.revenue)]),
          ),
    );
  };

  const load = async () => {
    const days = Number(range.value);
    const to = new Date(Math.ceil(Date.now() / 3_600_000) * 3_600_000);
    const from = new Date(to.getTime() - days * DAY_MS);
    try {
      draw(
        await call(() =>
          client.GET("/v1/admin/analytics/summary", {
            params: { query: { from: from.toISOString(), to: to.toISOString() } },
          }),
        ),
      );
    } catch (error) {
      replace(kpis, h("p", { class: "error", role: "alert" }, `Analytics unavailable: ${String(error)}`));
    }
    await renderAlerts(alertsEl, ["payment_success_rate", "order_failure_rate"]).catch(() => undefined);
  };
  range.addEventListener("change", () => void load());
  void load();
  const timer = setInterval(() => void load(), REFRESH_MS);
  return () => {
    clearInterval(timer);
    chart?.destroy();
  };
}
