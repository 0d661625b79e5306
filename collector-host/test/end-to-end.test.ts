// Real sockets all the way: production adapters in worker threads ↔ replay server ↔ rings ↔
// publisher ↔ a fake edge that validates every frame against contracts/market.ts.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MARKET_CLOSE } from "../../contracts/market.ts";
import { krakenChecksum } from "../src/books/kraken-checksum.ts";
import { HostConfig, replayExchanges } from "../src/config.ts";
import { type CollectorHost, startCollectorHost } from "../src/main.ts";
import { readWsFixture } from "../src/replay/fixtures.ts";
import { type ReplayServer, startReplayServer } from "../src/replay/replay-server.ts";
import { normalizeSymbol } from "../src/symbols.ts";
import { startFakeEdge } from "./fake-edge.ts";
import { settled, silentLog, TEST_SERVICE_SECRET, waitFor } from "./support.ts";

// Waits are on conditions, never on the clock: the timeout is only a last resort for a stuck run.
describe("collector host end to end on the replayed fixtures", { timeout: 180_000 }, () => {
  let replay: ReplayServer;
  let edge: Awaited<ReturnType<typeof startFakeEdge>>;
  let host: CollectorHost;

  beforeAll(async () => {
    replay = await startReplayServer({ speed: 0 });
    edge = await startFakeEdge({ secret: TEST_SERVICE_SECRET });
    host = await startCollectorHost(
      HostConfig.parse({
        host: "test-host",
        exchanges: replayExchanges(replay.url),
        edge: { url: edge.url, serviceSecret: TEST_SERVICE_SECRET },
        ops: { port: 0 },
        pushIntervalMs: 20,
        healthIntervalMs: 200,
        logLevel: "silent",
      }),
      { log: silentLog },
    );
    await waitFor("publish sockets", () => edge.sockets.size === 24);
    await Promise.all([replay.finished("kraken"), replay.finished("coinbase"), replay.finished("binanceus")]);
    // Let the threads drain their sockets and the publisher push the last batch.
    await waitFor("replay fully consumed", () => {
      const kr = host.supervisor.exchanges.get("kraken")!.stats;
      return kr.get("checksumsVerified") + kr.get("checksumFailures") >= 4269;
    });
    // Every book synced (Binance's depend on REST round trips) and every publish socket open.
    await waitFor("host ready", () => host.ready());
    await settled(replay, host, edge);
  }, 180_000);

  afterAll(async () => {
    await host?.stop();
    await replay?.close();
    await edge?.close();
  });

  it("verifies every Kraken checksum, and the edge's rebuilt books carry the exchange's last checksum", () => {
    const kraken = host.supervisor.exchanges.get("kraken")!.stats;
    expect(kraken.get("checksumsVerified")).toBe(4269);
    expect(kraken.get("checksumFailures")).toBe(0);
    const last = new Map<string, number>();
    for (const m of readWsFixture("KRAKEN.ws.50.0")) {
      const c = /"c":"(\d+)"\},"book-1000","([A-Z/]+)"\]$/.exec(m.text);
      if (c) last.set(normalizeSymbol(c[2]!)!, Number(c[1]));
    }
    for (const [symbol, checksum] of last) {
      expect(krakenChecksum(edge.books.get(`${symbol}|kraken`)!), symbol).toBe(checksum);
    }
  });

  it("every frame matched the contract, seq rose by exactly 1 per symbol, and snapshots came before deltas", () => {
    expect(edge.invalidFrames).toEqual([]);
    expect(edge.problems).toEqual([]);
    expect(edge.invalids).toEqual([]);
    expect(edge.batches.length).toBeGreaterThan(24);
    // In the default encoding: the stateful stream, negotiated on every publish socket.
    expect(edge.streamFrames).toBe(edge.batches.length);
  });

  it("the edge's books equal the collector's for every symbol and exchange (all 24 synced)", () => {
    let compared = 0;
    for (const ex of host.supervisor.exchanges.values()) {
      expect(ex.stats.get("validBooks"), ex.config.exchange).toBe(ex.config.symbols.length);
      for (const symbol of ex.config.symbols) {
        const mine = host.publisher.book(symbol, ex.config.exchange)!;
        const theirs = edge.books.get(`${symbol}|${ex.config.exchange}`)!;
        // The edge holds the top 1000 levels per side (publishDepth), exactly.
        expect(theirs.levels("bid"), `${symbol} ${ex.config.exchange}`).toEqual(mine.levels("bid", 1000));
        expect(theirs.levels("ask"), `${symbol} ${ex.config.exchange}`).toEqual(mine.levels("ask", 1000));
        compared++;
      }
    }
    expect(compared).toBe(24);
    const binance = host.supervisor.exchanges.get("binanceus")!.stats;
    expect(binance.get("gaps")).toBe(0);
    expect(binance.get("resyncs")).toBe(0);
  });

  it("delivers the recorded trades from all three exchanges", () => {
    const krakenTrades = readWsFixture("KRAKEN.ws.48.0")
      .map((m) => JSON.parse(m.text))
      .filter((m) => Array.isArray(m))
      .reduce((n: number, m: unknown[]) => n + (m[1] as unknown[]).length, 0);
    expect(edge.trades).toBe(krakenTrades + 107 + 11);
  });

  it("serves /health, /ready and Prometheus /metrics, and reports health to the edge", async () => {
    const health = await (await fetch(`${host.opsUrl}/health`)).json();
    expect(health).toMatchObject({
      status: "ok",
      host: "test-host",
      exchanges: { kraken: { status: "live", checksumFailures: 0 } },
    });
    expect((await fetch(`${host.opsUrl}/ready`)).status).toBe(200);
    const metrics = await (await fetch(`${host.opsUrl}/metrics`)).text();
    expect(metrics).toContain('collector_checksums_verified_total{exchange="kraken"} 4269');
    expect(metrics).toContain('collector_exchange_status{exchange="binanceus",status="live"} 1');
    expect(metrics).toMatch(/collector_ring_occupancy_ratio\{exchange="coinbase"\} 0/);
    expect(metrics).toMatch(/collector_push_lag_seconds_count \d+/);
    // Reports go out every 200 ms and the replayed feeds end and reconnect, so any one report may
    // catch an exchange re-syncing: wait for one that shows it live rather than reading the last.
    await waitFor("a health report with coinbase live", () =>
      edge.healthReports.some((report) => report.exchanges.coinbase?.status === "live"),
    );
    expect(edge.healthReports.find((report) => report.exchanges.coinbase?.status === "live")).toMatchObject({
      host: "test-host",
    });
  });

  it("reconnects a publish socket the edge dropped and starts it with full snapshots", async () => {
    const symbol = "COMP-USDT";
    const old = edge.sockets.get(symbol)!;
    const before = edge.batches.length;
    old.terminate();
    await waitFor("reconnected", () => edge.sockets.get(symbol) !== old);
    await waitFor("snapshot on the new socket", () =>
      edge.batches.slice(before).some((b) => b.symbol === symbol && b.snapshots.includes("binanceus")),
    );
    expect(edge.problems).toEqual([]);
    const mine = host.publisher.book(symbol, "binanceus")!;
    expect(edge.books.get(`${symbol}|binanceus`)!.levels("ask")).toEqual(mine.levels("ask", 1000));
  });

  it("reconnects when the edge cannot decode its stream (4003), and the new socket's stream starts from snapshots", async () => {
    const symbol = "XMR-USD";
    const old = edge.sockets.get(symbol)!;
    const before = edge.batches.length;
    old.close(MARKET_CLOSE.streamOutOfSync, "ingest stream out of sync: test");
    await waitFor("reconnected", () => edge.sockets.get(symbol) !== old);
    await waitFor("snapshot on the new socket", () =>
      edge.batches.slice(before).some((b) => b.symbol === symbol && b.snapshots.includes("kraken")),
    );
    // The new socket's decoder started from nothing: a continuation frame would be a problem here.
    expect(edge.problems).toEqual([]);
    const mine = host.publisher.book(symbol, "kraken")!;
    expect(edge.books.get(`${symbol}|kraken`)!.levels("bid")).toEqual(mine.levels("bid", 1000));
  });

  it("answers the edge's resync with a full snapshot for that symbol", async () => {
    const symbol = "BTC-CHF";
    const before = edge.batches.length;
    edge.sockets.get(symbol)!.send(JSON.stringify({ type: "resync", reason: "test" }));
    await waitFor("snapshot after resync", () =>
      edge.batches.slice(before).some((b) => b.symbol === symbol && b.snapshots.includes("kraken")),
    );
    expect(edge.problems).toEqual([]);
  });
});
