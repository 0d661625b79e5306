// Live market view: symbol picker, consolidated BBO, per-exchange ladder + depth chart with
// freshness, recent trades. Frames are applied as they arrive and painted once per animation
// frame; each paint is acknowledged to the feed (flow control) and its frame→paint latency kept
// for the benchmark (bench/console.bench.ts reads `window.edgepulseConsole`).
//
// A paint costs little whatever the frame rate (README "Console frame → paint"): the ladder, BBO
// and trades are fixed cells built once whose text is set only where it changed (no elements made
// or dropped per frame, so no style recalculation of whole tables); a depth chart is redrawn only
// when its exchange's book changed, at most every CHART_INTERVAL_MS and one chart per animation
// frame, so three charts never land in the same frame; and nothing reads layout while painting
// (chart widths come from a ResizeObserver), which would force a synchronous layout mid-paint.
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

/**
 * What the benchmark and the browser test read: frames painted and their frame→paint latencies,
 * and where a late frame's time went: the main-thread time of each paint, and the browser's long
 * tasks (anything that held the main thread for over 50 ms).
 */
interface ConsoleMetrics {
  symbol: string | null;
  framesPainted: number;
  latencies: number[];
  paintMs: number[];
  longTasksMs: number[];
  lastSeq: number;
  gaps: number;
}
const freshMetrics = (symbol: string | null): ConsoleMetrics => ({
  symbol,
  framesPainted: 0,
  latencies: [],
  paintMs: [],
  longTasksMs: [],
  lastSeq: -1,
  gaps: 0,
});
declare global {
  interface Window {
    edgepulseConsole: ConsoleMetrics;
  }
}
window.edgepulseConsole = freshMetrics(null);
/** Keeps the newest `limit` samples of a metric. */
const keep = (samples: number[], value: number, limit = 10_000) => {
  samples.push(value);
  if (samples.length > limit) samples.splice(0, samples.length - limit);
};
if (PerformanceObserver.supportedEntryTypes?.includes("longtask")) {
  new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) keep(window.edgepulseConsole.longTasksMs, entry.duration);
  }).observe({ type: "longtask" });
}

const parse = (s: string) => Number.parseFloat(s);

interface ExchangePanel {
  root: HTMLElement;
  freshness: HTMLElement;
  /** LADDER_LEVELS rows of [bid size, bid, ask, ask size] cells, built once. */
  ladderCells: HTMLTableCellElement[][];
  chart: uPlot;
  /** The chart's width as last observed (ResizeObserver), so painting never reads layout. */
  chartWidth: number;
  /** When the chart last drew, and when its book last changed (performance clock / wall clock). */
  chartDrawnAt: number;
  chartDataAt: number;
}

/** Sets a node's text only when it differs: an unchanged cell costs the browser nothing. */
function setText(node: Node, text: string): void {
  if (node.textContent !== text) node.textContent = text;
}

/** A row of `n` empty cells with the given classes, and the cells. */
function cellRow(classes: string[]): { row: HTMLTableRowElement; cells: HTMLTableCellElement[] } {
  const cells = classes.map((c) => h("td", c ? { class: c } : {}));
  return { row: h("tr", {}, ...cells), cells };
}

const TRADE_ROWS = 20;

/** Mounts the market view into `root`; returns a function that tears it down. */
/** The symbol the view opens when the URL names none: the recorded feeds' liveliest book. */
const DEFAULT_SYMBOL = "XMR-USD";

export function marketView(root: HTMLElement, initialSymbol?: string): () => void {
  const select = h("select", { id: "symbol", name: "symbol" });
  const statusEl = h("span", { class: "pill", role: "status", "aria-live": "polite" }, "connecting");
  const seqEl = h("span", { class: "muted" });
  const bbo = {
    bid: h("strong", { "data-testid": "bbo-bid" }, "—"),
    bidAt: document.createTextNode(""),
    ask: h("strong", { "data-testid": "bbo-ask" }, "—"),
    askAt: document.createTextNode(""),
    spread: h("strong", {}, "—"),
  };
  const bboEl = h(
    "div",
    { class: "bbo", "aria-label": "Consolidated best bid and offer" },
    h("div", { class: "bid" }, h("span", { class: "label" }, "Best bid"), bbo.bid, bbo.bidAt),
    h("div", { class: "ask" }, h("span", { class: "label" }, "Best ask"), bbo.ask, bbo.askAt),
    h("div", {}, h("span", { class: "label" }, "Spread"), bbo.spread),
  );
  const panelsEl = h("div", { class: "exchanges" });
  const tradeRows = Array.from({ length: TRADE_ROWS }, () => cellRow(["", "", "", "", ""]));
  const tradesBody = h("tbody", {}, ...tradeRows.map((r) => r.row));
  for (const r of tradeRows) r.row.hidden = true;
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
  let chartCatchUp: ReturnType<typeof setTimeout> | undefined;
  const schedulePaint = () => {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(paint);
  };
  /** The newest trade painted, so the trades table is touched only when one arrives. */
  let lastTradePainted: unknown = null;
  const widths = new ResizeObserver((entries) => {
    for (const entry of entries) {
      const panel = [...panels.values()].find((p) => p.chart.root.parentElement === entry.target);
      if (panel) panel.chartWidth = Math.max(240, Math.floor(entry.contentRect.width));
    }
  });
  const setStatus = (next: FeedStatus, detail?: string) => {
    statusEl.textContent = detail ? `${next}: ${detail}` : next;
    statusEl.dataset.state = next;
  };

  const panelFor = (exchange: Exchange): ExchangePanel => {
    const existing = panels.get(exchange);
    if (existing) return existing;
    const freshness = h("span", { class: "freshness", "data-exchange": exchange });
    const ladderRows = Array.from({ length: LADDER_LEVELS }, () => cellRow(["size", "bid", "ask", "size"]));
    const ladder = h("tbody", {}, ...ladderRows.map((r) => r.row));
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
    const panel: ExchangePanel = {
      root: panelRoot,
      freshness,
      ladderCells: ladderRows.map((r) => r.cells),
      chart,
      chartWidth: 360,
      chartDrawnAt: Number.NEGATIVE_INFINITY,
      chartDataAt: 0,
    };
    panels.set(exchange, panel);
    widths.observe(chartHost);
    return panel;
  };

  const paintFreshness = () => {
    if (!feed) return;
    const now = Date.now();
    for (const [exchange, panel] of panels) {
      const at = feed.updatedAt.get(exchange);
      const stale = feed.mirror.stale.has(exchange);
      const fresh = at !== undefined && now - at < FRESH_MS && !stale;
      setText(panel.freshness, stale ? "stale (resyncing)" : at ? `updated ${ago(now - at)}` : "no data");
      if (panel.freshness.dataset.fresh !== String(fresh)) panel.freshness.dataset.fresh = String(fresh);
    }
  };

  /** Redraws one exchange's depth chart from its book (stepped cumulative sizes around the mid). */
  const drawChart = (exchange: Exchange, panel: ExchangePanel, now: number) => {
    if (!feed) return;
    const view = feed.mirror.view(exchange, DEPTH_LEVELS);
    const bids = view.bids.slice().reverse();
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
    for (const [price, size] of view.asks) {
      cumulative += parse(size);
      xs.push(parse(price));
      bidY.push(null);
      askY.push(cumulative);
    }
    if (panel.chart.width !== panel.chartWidth) panel.chart.setSize({ width: panel.chartWidth, height: 150 });
    panel.chart.setData([xs, bidY, askY] as uPlot.AlignedData);
    panel.chartDrawnAt = now;
  };

  const paint = () => {
    scheduled = false;
    if (!feed) return;
    const paintStarted = performance.now();
    const mirror = feed.mirror;
    const { bid, ask } = mirror.bbo;
    setText(bbo.bid, bid ? bid.price : "—");
    setText(bbo.bidAt, bid ? ` ${bid.size} @ ${bid.exchange}` : "");
    setText(bbo.ask, ask ? ask.price : "—");
    setText(bbo.askAt, ask ? ` ${ask.size} @ ${ask.exchange}` : "");
    setText(bbo.spread, bid && ask ? (parse(ask.price) - parse(bid.price)).toPrecision(6) : "—");
    const now = performance.now();
    // At most one chart per animation frame: the one whose book changed and waited longest.
    let chartDue: { exchange: Exchange; panel: ExchangePanel } | null = null;
    for (const exchange of feed.exchanges()) {
      const panel = panelFor(exchange);
      const view = mirror.view(exchange, LADDER_LEVELS);
      for (let i = 0; i < LADDER_LEVELS; i++) {
        const b = view.bids[i];
        const a = view.asks[i];
        const cells = panel.ladderCells[i]!;
        setText(cells[0]!, b?.[1] ?? "");
        setText(cells[1]!, b?.[0] ?? "");
        setText(cells[2]!, a?.[0] ?? "");
        setText(cells[3]!, a?.[1] ?? "");
      }
      const changedAt = feed.updatedAt.get(exchange) ?? 0;
      if (
        changedAt > panel.chartDataAt &&
        now - panel.chartDrawnAt > CHART_INTERVAL_MS &&
        (!chartDue || panel.chartDrawnAt < chartDue.panel.chartDrawnAt)
      ) {
        chartDue = { exchange, panel };
      }
    }
    if (chartDue) {
      chartDue.panel.chartDataAt = feed.updatedAt.get(chartDue.exchange) ?? 0;
      drawChart(chartDue.exchange, chartDue.panel, now);
    }
    for (const [exchange, panel] of panels) {
      if (!mirror.books.has(exchange)) {
        if (panel.chart.root.parentElement) widths.unobserve(panel.chart.root.parentElement);
        panel.chart.destroy();
        panel.root.remove();
        panels.delete(exchange);
      }
    }
    const newest = mirror.trades.at(-1) ?? null;
    if (newest !== lastTradePainted) {
      lastTradePainted = newest;
      const recent = mirror.trades.slice(-TRADE_ROWS).reverse();
      tradeRows.forEach(({ row, cells }, i) => {
        const t = recent[i];
        row.hidden = !t;
        if (!t) return;
        setText(cells[0]!, new Date(t.ts).toLocaleTimeString());
        setText(cells[1]!, t.exchange);
        setText(cells[2]!, t.side);
        if (cells[2]!.className !== (t.side === "buy" ? "bid" : "ask"))
          cells[2]!.className = t.side === "buy" ? "bid" : "ask";
        setText(cells[3]!, t.price);
        setText(cells[4]!, t.size);
      });
    }
    // A book whose chart had to wait (another chart took the frame, or it drew moments ago) gets a
    // paint of its own soon, even if no further frame arrives.
    if (chartCatchUp === undefined && [...panels].some(([ex, p]) => (feed!.updatedAt.get(ex) ?? 0) > p.chartDataAt)) {
      chartCatchUp = setTimeout(() => {
        chartCatchUp = undefined;
        schedulePaint();
      }, CHART_INTERVAL_MS / 5);
    }
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
      for (const receivedAt of frames) keep(metrics.latencies, paintedAt - receivedAt);
      metrics.framesPainted += frames.length;
    });
    feed.ack();
    keep(metrics.paintMs, performance.now() - paintStarted);
  };

  // Set by the cleanup: a symbol list that arrives after the view was left must not open a feed
  // (a live WebSocket painting into detached panels for good) nor schedule another look.
  let left = false;
  const open = (symbol: string) => {
    if (left) return;
    feed?.close();
    for (const panel of panels.values()) panel.chart.destroy();
    widths.disconnect();
    panels.clear();
    panelsEl.replaceChildren();
    lastTradePainted = null;
    window.edgepulseConsole = freshMetrics(symbol);
    history.replaceState(null, "", `#/market/${encodeURIComponent(symbol)}`);
    feed = new MarketFeed(symbol, {
      frame(receivedAt) {
        pending.push(receivedAt);
        schedulePaint();
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
      if (left) return;
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
    if (!left) symbolsTimer = setTimeout(() => void loadSymbols(), 3000);
  };
  void loadSymbols();

  return () => {
    left = true;
    clearTimeout(symbolsTimer);
    clearInterval(freshnessTimer);
    clearTimeout(chartCatchUp);
    widths.disconnect();
    feed?.close();
    for (const panel of panels.values()) panel.chart.destroy();
  };
}
