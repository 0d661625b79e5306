// `npm run market:e2e`: the market-data path end to end, on this machine, no network:
//
//   recorded fixtures → replay server (real WebSockets + Binance REST) → collector host (production
//   adapters, worker threads, rings, publisher) → local Worker (`wrangler dev`) → MarketFeed objects
//   → a WebSocket subscriber and the REST routes.
//
// Passes when, for one symbol per exchange, the edge's book equals the collector host's own book
// (at a quiet moment of the live feed), and the book a subscriber rebuilds from snapshot + deltas
// equals the book the REST route serves (at the same seq, after the feed is stopped), with no seq
// gaps; when /v1/market/symbols lists every replayed symbol; and when /v1/market/collectors shows
// the host's report. Ports 8842 (Worker), 8843 (replay), 8844 (host ops). Exit code 0/1.
import { rmSync } from "node:fs";
import path from "node:path";
import WebSocket from "ws";
import { startLocalMarketData } from "../collector-host/src/local.ts";
import { FeedMirror } from "../contracts/feed-mirror.ts";
import { type Exchange, FeedFrame } from "../contracts/market.ts";
import { createApiClient, expectOk } from "./api-client.ts";
import { ensureDevVars, ROOT, spawnWrangler, waitUntilReady, wrangler } from "./local.ts";

const PORT = 8842;
const BASE = `http://127.0.0.1:${PORT}`;
const api = createApiClient(BASE);
const STATE = path.join(ROOT, ".local", "market-e2e");
const SYMBOLS = { kraken: "XMR-USD", coinbase: "SKL-USD", binanceus: "COMP-USDT" } as const;
const FEED_SECONDS = Number(process.env.E2E_SECONDS ?? 15);

const failures: string[] = [];
const check = (ok: boolean, what: string) => {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures.push(what);
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A subscriber rebuilding every exchange's book of one symbol (its gaps are checked, not repaired). */
function subscribe(symbol: string) {
  const state = new FeedMirror();
  const ws = new WebSocket(`${BASE.replace("http", "ws")}/v1/market/${symbol}/ws`);
  ws.on("message", (data) => {
    state.apply(FeedFrame.parse(JSON.parse(String(data))));
  });
  return { ws, state };
}

ensureDevVars();
rmSync(STATE, { recursive: true, force: true });
wrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", STATE], { quiet: true });
const worker = spawnWrangler(
  ["dev", "--port", String(PORT), "--ip", "127.0.0.1", "--persist-to", STATE, "--show-interactive-dev-session=false"],
  "worker",
);
let local: Awaited<ReturnType<typeof startLocalMarketData>> | null = null;
const subs = new Map<string, ReturnType<typeof subscribe>>();
try {
  await waitUntilReady(BASE, 120_000);
  for (const symbol of Object.values(SYMBOLS)) subs.set(symbol, subscribe(symbol));
  local = await startLocalMarketData({
    edgeUrl: BASE,
    replayPort: 8843,
    opsPort: 8844,
    speed: Number(process.env.REPLAY_SPEED ?? 5),
  });
  console.log(`[e2e] replaying fixtures for ${FEED_SECONDS} s`);
  await sleep(FEED_SECONDS * 1000);

  // While the feed is live: the edge must hold exactly the collector's own book. The host's mirror
  // runs ahead of the edge by one push, so compare at a quiet moment: the host's book unchanged
  // across the edge read.
  for (const [exchange, symbol] of Object.entries(SYMBOLS) as [Exchange, string][]) {
    const hostView = () => {
      const book = local?.host.publisher.book(symbol, exchange);
      return book ? JSON.stringify({ bids: book.levels("bid", 1000), asks: book.levels("ask", 1000) }) : "none";
    };
    let matched = false;
    let attempts = 0;
    for (; attempts < 40 && !matched; attempts++) {
      const before = hostView();
      await sleep(300);
      const { data: served } = await api.GET("/v1/market/{symbol}/book", {
        params: { path: { symbol }, query: { exchange, depth: 1000 } },
      });
      if (before === "none" || hostView() !== before || !served) continue;
      matched = JSON.stringify({ bids: served.bids, asks: served.asks }) === before;
      if (!matched) break;
    }
    check(
      matched,
      `${symbol} ${exchange}: the edge's book equals the collector host's book (quiet moment found in ${attempts} tries)`,
    );
  }
  // Stop the feed, then compare the subscriber's book with the served one at a quiet moment.
  await local.stop();
  local = null;
  await sleep(1500);

  for (const [exchange, symbol] of Object.entries(SYMBOLS) as [Exchange, string][]) {
    const sub = subs.get(symbol)!;
    const { data: served, response: res } = await api.GET("/v1/market/{symbol}/book", {
      params: { path: { symbol }, query: { exchange, depth: 1000 } },
    });
    check(sub.state.gaps === 0, `${symbol}: ${sub.state.frames} frames, no seq gaps`);
    if (res.status === 404) {
      // The collector withdrew this book (e.g. the looping replay reconnected) and the feed stopped
      // before its next snapshot: the subscriber must have dropped it too.
      check(!sub.state.books.has(exchange), `${symbol} ${exchange}: withdrawn at the edge and at the subscriber alike`);
      continue;
    }
    check(res.status === 200, `${symbol} ${exchange}: REST book served (HTTP ${res.status})`);
    if (res.status !== 200 || !served) continue;
    const rebuilt = sub.state.books.get(exchange)?.view(1000);
    check(served.bids.length > 0 && served.asks.length > 0, `${symbol} ${exchange}: book has both sides`);
    check(sub.state.lastSeq === served.seq, `${symbol}: subscriber at seq ${sub.state.lastSeq}, REST at ${served.seq}`);
    check(
      JSON.stringify(rebuilt) === JSON.stringify({ bids: served.bids, asks: served.asks }),
      `${symbol} ${exchange}: subscriber's rebuilt book equals the served book (${served.bids.length}/${served.asks.length} levels)`,
    );
  }

  const symbols = await expectOk("market symbols", api.GET("/v1/market/symbols"));
  for (const [exchange, symbol] of Object.entries(SYMBOLS) as [Exchange, string][]) {
    check(
      symbols.items.some((s) => s.symbol === symbol && s.exchanges.includes(exchange)),
      `/v1/market/symbols lists ${symbol} from ${exchange} (${symbols.items.length} symbols)`,
    );
  }
  const { data: report, response: collectors } = await api.GET("/v1/market/collectors");
  check(
    report !== undefined && (["kraken", "coinbase", "binanceus"] as const).every((ex) => report.exchanges[ex]),
    `/v1/market/collectors has the host's report (${collectors.status}: ${JSON.stringify(report?.exchanges ?? {}).slice(0, 160)})`,
  );
} finally {
  for (const s of subs.values()) s.ws.terminate();
  if (local) await local.stop();
  worker.kill("SIGTERM");
}
console.log(failures.length ? `\n${failures.length} check(s) failed` : "\nmarket data end to end: all checks passed");
process.exit(failures.length ? 1 : 0);
