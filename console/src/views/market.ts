// Live market view: symbol picker, consolidated BBO, per-exchange ladder + depth chart with
// freshness, recent trades. Frames are applied as they arrive and painted once per animation
// frame; each paint is acknowledged to the feed (flow control) and its frame→paint latency kept
// for the benchmark (bench/console.bench.ts reads `window.edgepulseConsole`).
import uPlot from "uplot";
import type { Exchange } from "../../../contracts/market.ts";
import { call, client } from "../api.ts";
import { ago, h, replace } from "../dom.ts";
import { type FeedStatus, MarketFeed } from "../market-feed.ts";

const LADDER_LEVELS = 12;
const DEPTH_LEVELS = 60;
const CHART_INTERVAL_MS = 250;
/** An exchange with no book change for this long is shown as not fresh. */
const FRESH_MS = 5000;

/** What the benchmark and the browser test read: frames painted and their frame→paint latencies. */
interface ConsoleMetrics {
  symbol: string | null;
  framesPainted: number;
  latencies: number[];
  lastSeq: number;
  gaps: number;
}
declare global {
  interface Window {
    edgepulseConsole: ConsoleMetrics;
  }
}
window.edgepulseConsole = { symbol: null, framesPainted: 0, latencies: [], lastSeq: -1, gaps: 0 };

const parse = (s: string) => Number.parseFloat(s);

interface ExchangePanel {
  root: HTMLElement;
  freshness: HTMLElement;
  ladder: HTMLTableSectionElement;
  chart: uPlot;
  chartHost: HTMLElement;
}

/** Mounts the market view into `root`; returns a function that tears it down. */
/** The symbol the view opens when the URL names none: the recorded feeds' liveliest book. */
const DEFAULT_SYMBOL = "XMR-USD";

export function marketView(root: HTMLElement, initialSymbol?: string): () => void {
  const select = h("select", { id: "symbol", name: "symbol" });
  const statusEl = h("span", { class: "pill", role: "status", "aria-live": "polite" }, "connecting");
  const seqEl = h("span", { class: "muted" });
  const bboEl = h("div", { class: "bbo", "aria-label": "Consolidated best bid and offer" });
  const panelsEl = h("div", { class: "exchanges" });
  const tradesBody = h("tbody");
  replace(
    root,
    h(
      "section",
      { "aria-labelledby": "market-title" },
      h("h2", { id: "market-title" }, "Live market"),
      h("div", { class: "toolbar" }, h("label", { for: "symbol" }, "Symbol "), select, " ", statusEl, " ", seqEl),
      bboEl,
      panelsEl,
      h(
        "table",
        { class: "trades" },
        h("caption", {}, "Recent trades"),
        h(
          "thead",
          {},
          h("tr", {}, ...["Time", "Exchange", "Side", "Price", "Size"].map((t) => h("th", { scope: "col" }, t))),
        ),
        tradesBody,
      ),
    ),
  );

  let feed: MarketFeed | null = null;
  const panels = new Map<Exchange, ExchangePanel>();
  let pending: number[] = [];
  let scheduled = false;
  let lastChart = 0;
  const setStatus = (next: FeedStatus, detail?: string) => {
    statusEl.textContent = detail ? `${next}: ${detail}` : next;
    statusEl.dataset.state = next;
  };

  const panelFor = (exchange: Exchange): ExchangePanel => {
    const existing = panels.get(exchange);
    if (existing) return existing;
    const freshness = h("span", { class: "freshness", "data-exchange": exchange });
    const ladder = h("tbody");
    const chartHost = h("div", { class: "depth", role: "img", "aria-label": `${exchange} depth chart` });
    const panelRoot = h(
      "article",
      { class: "exchange", "data-exchange": exchange, "aria-label": `${exchange} order book` },
      h("h3", {}, exchange, " ", freshness),
      chartHost,
      h(
        "table",
        { class: "ladder" },
        h("caption", {}, `${exchange} order book ladder`),
        h("thead", {}, h("tr", {}, ...["Bid size", "Bid", "Ask", "Ask size"].map((t) => h("th", { scope: "col" }, t)))),
        ladder,
      ),
    );
    const chart = new uPlot(
      {
        width: 360,
        height: 150,
        legend: { show: false },
        cursor: { show: false },
        scales: { x: { time: false } },
        axes: [{ size: 30 }, { size: 50 }],
        series: [
          {},
          { label: "bids", stroke: "#1a7f37", fill: "rgba(26,127,55,0.15)", paths: uPlot.paths.stepped!({ align: 1 }) },
          {
            label: "asks",
            stroke: "#cf222e",
            fill: "rgba(207,34,46,0.15)",
            paths: uPlot.paths.stepped!({ align: -1 }),
          },
        ],
      },
      [[], [], []],
      chartHost,
    );
    panelsEl.appendChild(panelRoot);
    const panel = { root: panelRoot, freshness, ladder, chart, chartHost };
    panels.set(exchange, panel);
    return panel;
  };

  const paintFreshness = () => {
    if (!feed) return;
    const now = Date.now();
    for (const [exchange, panel] of panels) {
      const at = feed.updatedAt.get(exchange);
      const stale = feed.mirror.stale.has(exchange);
      const fresh = at !== undefined && now - at < FRESH_MS && !stale;
      panel.freshness.textContent = stale ? "stale (resyncing)" : at ? `updated ${ago(now - at)}` : "no data";
      panel.freshness.dataset.fresh = String(fresh);
    }
  };

  const paint = () => {
    scheduled = false;
    if (!feed) return;
    const mirror = feed.mirror;
    const { bid, ask } = mirror.bbo;
    replace(
      bboEl,
      h(
        "div",
        { class: "bid" },
        h("span", { class: "label" }, "Best bid"),
        h("strong", { "data-testid": "bbo-bid" }, bid ? bid.price : "—"),
        bid ? ` ${bid.size} @ ${bid.exchange}` : "",
      ),
      h(
        "div",
        { class: "ask" },
        h("span", { class: "label" }, "Best ask"),
        h("strong", { "data-testid": "bbo-ask" }, ask ? ask.price : "—"),
        ask ? ` ${ask.size} @ ${ask.exchange}` : "",
      ),
      h(
        "div",
        {},
        h("span", { class: "label" }, "Spread"),
        h("strong", {}, bid && ask ? (parse(ask.price) - parse(bid.price)).toPrecision(6) : "—"),
      ),
    );
    const drawCharts = performance.now() - lastChart > CHART_INTERVAL_MS;
    for (const exchange of feed.exchanges()) {
      const panel = panelFor(exchange);
      const view = mirror.view(exchange, Math.max(LADDER_LEVELS, DEPTH_LEVELS));
      const rows: HTMLTableRowElement[] = [];
      for (let i = 0; i < LADDER_LEVELS; i++) {
        const b = view.bids[i];
        const a = view.asks[i];
        rows.push(
          h(
            "tr",
            {},
            h("td", { class: "size" }, b?.[1] ?? ""),
            h("td", { class: "bid" }, b?.[0] ?? ""),
            h("td", { class: "ask" }, a?.[0] ?? ""),
            h("td", { class: "size" }, a?.[1] ?? ""),
          ),
        );
      }
      panel.ladder.replaceChildren(...rows);
      if (drawCharts) {
        const bids = view.bids.slice(0, DEPTH_LEVELS).reverse();
        const asks = view.asks.slice(0, DEPTH_LEVELS);
        const xs: number[] = [];
        const bidY: (number | null)[] = [];
        const askY: (number | null)[] = [];
        let cumulative = bids.reduce((sum, l) => sum + parse(l[1]), 0);
        for (const [price, size] of bids) {
          xs.push(parse(price));
          bidY.push(cumulative);
          askY.push(null);
          cumulative -= parse(size);
        }
        cumulative = 0;
        for (const [price, size] of asks) {
          cumulative += parse(size);
          xs.push(parse(price));
          bidY.push(null);
          askY.push(cumulative);
        }
        const width = Math.max(240, Math.floor(panel.chartHost.clientWidth || 360));
        if (panel.chart.width !== width) panel.chart.setSize({ width, height: 150 });
        panel.chart.setData([xs, bidY, askY] as uPlot.AlignedData);
      }
    }
    for (const [exchange, panel] of panels) {
      if (!mirror.books.has(exchange)) {
        panel.root.remove();
        panels.delete(exchange);
      }
    }
    if (drawCharts) lastChart = performance.now();
    tradesBody.replaceChildren(
      ...mirror.trades
        .slice(-20)
        .reverse()
        .map((t) =>
          h(
            "tr",
            {},
            h("td", {}, new Date(t.ts).toLocaleTimeString()),
            h("td", {}, t.exchange),
            h("td", { class: t.side === "buy" ? "bid" : "ask" }, t.side),
            h("td", {}, t.price),
            h("td", {}, t.size),
          ),
        ),
    );
    paintFreshness();
    seqEl.textContent = `seq ${mirror.lastSeq} · ${mirror.frames} frames · ${mirror.gaps} gaps`;
    const metrics = window.edgepulseConsole;
    metrics.lastSeq = mirror.lastSeq;
    metrics.gaps = mirror.gaps;
    // The paint happens after this callback returns: measure at the start of the next frame.
    const frames = pending;
    pending = [];
    requestAnimationFrame(() => {
      const paintedAt = performance.now();
      for (const receivedAt of frames) metrics.latencies.push(paintedAt - receivedAt);
      if (metrics.latencies.length > 10_000) metrics.latencies.splice(0, metrics.latencies.length - 10_000);
      metrics.framesPainted += frames.length;
    });
    feed.ack();
  };

  const open = (symbol: string) => {
    feed?.close();
    for (const panel of panels.values()) panel.chart.destroy();
    panels.clear();
    panelsEl.replaceChildren();
    window.edgepulseConsole = { symbol, framesPainted: 0, latencies: [], lastSeq: -1, gaps: 0 };
    history.replaceState(null, "", `#/market/${encodeURIComponent(symbol)}`);
    feed = new MarketFeed(symbol, {
      frame(receivedAt) {
        pending.push(receivedAt);
        if (!scheduled) {
          scheduled = true;
          requestAnimationFrame(paint);
        }
      },
      status: setStatus,
    });
  };

  // Once the operator picks a symbol (or asked for one in the URL), the list refresh never moves it.
  let picked = false;
  select.addEventListener("change", () => {
    picked = true;
    select.dataset.open = select.value;
    open(select.value);
  });
  const freshnessTimer = setInterval(paintFreshness, 1000);

  // Until a feed exists (a collector host that is still starting), ask again every few seconds.
  let symbolsTimer: ReturnType<typeof setTimeout> | undefined;
  const loadSymbols = async () => {
    try {
      const { items } = await call(() => client.GET("/v1/market/symbols"));
      const symbols = items.map((i) => i.symbol);
      replace(
        select,
        ...items.map((item) => h("option", { value: item.symbol }, `${item.symbol} (${item.exchanges.join(", ")})`)),
      );
      const wanted = initialSymbol && symbols.includes(initialSymbol) ? initialSymbol : null;
      const preferred = wanted ?? (symbols.includes(DEFAULT_SYMBOL) ? DEFAULT_SYMBOL : null);
      const chosen = picked ? select.dataset.open : (preferred ?? symbols[0]);
      if (chosen) {
        select.value = chosen;
        if (chosen !== select.dataset.open) {
          select.dataset.open = chosen;
          open(chosen);
        }
        // Settled on what was asked for (or the operator chose): no more list refreshes.
        if (picked || preferred) return;
        // Otherwise the first symbol stands in while collectors are still registering theirs:
        // look again, and move to the default symbol when it appears.
      } else {
        setStatus("connecting", "no symbol has a feed yet");
      }
    } catch (error) {
      setStatus("reconnecting", `symbols unavailable: ${error instanceof Error ? error.message : String(error)}`);
    }
    symbolsTimer = setTimeout(() => void loadSymbols(), 3000);
  };
  void loadSymbols();

  return () => {
    clearTimeout(symbolsTimer);
    clearInterval(freshnessTimer);
    feed?.close();
    for (const panel of panels.values()) panel.chart.destroy();
  };
}
