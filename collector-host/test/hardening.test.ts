// Issue 9, finding 13: each test performs the misconfiguration or the hostile input and checks the
// host refuses or contains it.
import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocketServer } from "ws";
import { OrderBook } from "../src/books/order-book.ts";
import { DEFAULT_MAX_FRAME_BYTES, HostConfig, INSTANCE_ID, loadConfig } from "../src/config.ts";
import { createBinanceAdapter } from "../src/exchanges/binanceus.ts";
import { createCoinbaseAdapter } from "../src/exchanges/coinbase.ts";
import { ExchangeConnection } from "../src/exchanges/connection.ts";
import type { ExchangeAdapter } from "../src/exchanges/types.ts";
import { startCollectorHost } from "../src/main.ts";
import { RECORDED_SYMBOLS, readHttpFixture, readWsFixture } from "../src/replay/fixtures.ts";
import { ExchangeStats } from "../src/threads/exchange-stats.ts";
import { startFakeEdge } from "./fake-edge.ts";
import { MirrorSink, silentLog, TEST_SERVICE_SECRET, testContext } from "./support.ts";

let cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const fn of cleanup.reverse()) await fn();
  cleanup = [];
});

const ONE_EXCHANGE = [{ exchange: "kraken", protocol: "kraken-v1", symbols: ["BTC-USD"] }] as const;
const configWith = (edge: Record<string, unknown>) =>
  HostConfig.safeParse({ exchanges: ONE_EXCHANGE.map((e) => ({ ...e })), edge });

describe("EDGE_URL", () => {
  it("refuses a plain-text edge that is not loopback, with a message naming the rule", () => {
    for (const url of [
      "http://edge.example.com",
      "ws://10.0.0.5:8787",
      "http://127.0.0.1.evil.example",
      "http://localhost.evil.example",
      "http://[::ffff:10.0.0.1]:8787",
      "ftp://127.0.0.1",
    ]) {
      expect(() => loadConfig({ EDGE_URL: url }, undefined), url).toThrow(/EDGE_URL must/);
    }
    const fromFile = configWith({ url: "http://api.example.com" });
    expect(fromFile.success).toBe(false);
    expect(fromFile.error?.issues[0]?.message).toMatch(/https: or wss: unless it is a loopback address/);
  });

  it("accepts TLS anywhere and plain text on loopback (127.0.0.0/8, ::1, localhost)", () => {
    const url = (u: string) => loadConfig({ EDGE_URL: u }, undefined).edge.url;
    expect(url("https://api.example.com")).toBe("https://api.example.com");
    expect(url("wss://api.example.com/")).toBe("https://api.example.com/");
    expect(url("http://127.0.0.1:8787")).toBe("http://127.0.0.1:8787");
    expect(url("http://127.3.2.1:8787")).toBe("http://127.3.2.1:8787");
    expect(url("ws://localhost:8787")).toBe("http://localhost:8787");
    expect(url("http://[::1]:8787")).toBe("http://[::1]:8787");
    expect(loadConfig({}, undefined).edge.url).toBe("http://127.0.0.1:8787");
  });
});

describe("SERVICE_TOKEN_SECRET", () => {
  it("refuses a secret shorter than 32 characters at start", () => {
    expect(() => loadConfig({ SERVICE_TOKEN_SECRET: "a".repeat(31) }, undefined)).toThrow(
      /SERVICE_TOKEN_SECRET must be at least 32 characters/,
    );
    expect(configWith({ serviceSecret: "change-me" }).success).toBe(false);
    expect(loadConfig({ SERVICE_TOKEN_SECRET: "a".repeat(32) }, undefined).edge.serviceSecret).toHaveLength(32);
    // A ready-made token needs no secret.
    expect(configWith({ token: "t" }).success).toBe(true);
  });

  it("accepts the secret `npm start` generates into .dev.vars", () => {
    const script = readFileSync(path.resolve(import.meta.dirname, "../../scripts/local.ts"), "utf8");
    const generation = /SERVICE_TOKEN_SECRET=\$\{randomBytes\((\d+)\)\.toString\("base64url"\)\}/.exec(script);
    expect(generation, "scripts/local.ts no longer generates the secret this test knows").not.toBeNull();
    for (let i = 0; i < 20; i++) {
      const secret = randomBytes(Number(generation![1])).toString("base64url");
      expect(configWith({ serviceSecret: secret }).success).toBe(true);
    }
  });
});

describe("collector id", { timeout: 60_000 }, () => {
  it("health reports name a random instance id, never the machine's host name", async () => {
    expect(loadConfig({}, undefined).host).toBe(INSTANCE_ID);
    expect(INSTANCE_ID).toMatch(/^collector-[0-9a-f]{12}$/);
    expect(INSTANCE_ID).not.toContain(os.hostname());
    expect(loadConfig({ COLLECTOR_ID: "eu-1" }, undefined).host).toBe("eu-1");

    const edge = await startFakeEdge({ secret: TEST_SERVICE_SECRET });
    cleanup.push(() => edge.close());
    const host = await startCollectorHost(
      HostConfig.parse({
        exchanges: ONE_EXCHANGE.map((e) => ({ ...e, enabled: false })),
        edge: { url: edge.url, serviceSecret: TEST_SERVICE_SECRET },
        ops: { port: 0 },
        healthIntervalMs: 100,
        logLevel: "silent",
      }),
      { log: silentLog },
    );
    cleanup.push(() => host.stop());
    const report = await edge.nextHealthReport();
    const health = await (await fetch(`${host.opsUrl}/health`)).text();
    expect(report.host).toBe(INSTANCE_ID);
    expect(JSON.stringify(report)).not.toContain(os.hostname());
    expect(health).toContain(INSTANCE_ID);
    expect(health).not.toContain(os.hostname());
  });
});

describe("exchange frame size", { timeout: 60_000 }, () => {
  it("the default bound gives the largest recorded frame 4-8x headroom", () => {
    let largest = 0;
    for (const file of [
      "KRAKEN.ws.50.0",
      "KRAKEN.ws.48.0",
      "KRAKEN.ws.49.0",
      "COINBASE.ws.28.0",
      "BINANCE_US.ws.1.0",
    ]) {
      for (const m of readWsFixture(file)) largest = Math.max(largest, Buffer.byteLength(m.text));
    }
    expect(largest).toBe(79_307); // Kraken's book-1000 snapshot
    expect(DEFAULT_MAX_FRAME_BYTES).toBeGreaterThanOrEqual(4 * largest);
    expect(DEFAULT_MAX_FRAME_BYTES).toBeLessThanOrEqual(8 * largest);
    expect(loadConfig({}, undefined).exchanges.every((e) => e.maxFrameBytes >= DEFAULT_MAX_FRAME_BYTES)).toBe(true);
  });

  it("an oversized frame is never handed to the adapter: the socket is dropped, counted, and reconnected", async () => {
    const wss = new WebSocketServer({ port: 0, host: "127.0.0.1" });
    await once(wss, "listening");
    cleanup.push(() => {
      for (const c of wss.clients) c.terminate();
      wss.close();
    });
    let connections = 0;
    const subscriptions: string[] = [];
    let onResubscribed!: () => void;
    const resubscribed = new Promise<void>((resolve) => {
      onResubscribed = resolve;
    });
    wss.on("connection", (ws) => {
      const n = ++connections;
      ws.on("message", (m) => {
        subscriptions.push(m.toString());
        if (subscriptions.length === 2) onResubscribed();
      });
      ws.send(`{"n":${n},"frame":"small"}`);
      if (n === 1) {
        ws.send(JSON.stringify({ n, frame: "x".repeat(4096) })); // over the 1 KiB bound
        ws.send(`{"n":${n},"frame":"after"}`);
      }
    });
    const received: string[] = [];
    let onSecond!: () => void;
    const second = new Promise<void>((resolve) => {
      onSecond = resolve;
    });
    const stats = new ExchangeStats();
    const connection = new ExchangeConnection(
      (ctx): ExchangeAdapter => ({
        exchange: "kraken",
        url: () => `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
        onOpen: () => ctx.send({ event: "subscribe" }),
        onMessage(text) {
          received.push(text);
          if (text.startsWith('{"n":2')) onSecond();
        },
        onClose() {},
      }),
      { symbols: ["BTC-USD"], sink: new MirrorSink(), stats, log: silentLog },
      { maxFrameBytes: 1024, backoffBaseMs: 1, backoffMaxMs: 1 },
    );
    connection.start();
    cleanup.push(() => connection.stop());
    await Promise.all([second, resubscribed]);
    expect(received).toEqual(['{"n":1,"frame":"small"}', '{"n":2,"frame":"small"}']);
    expect(stats.get("oversizedFrames")).toBe(1);
    expect(stats.get("reconnects")).toBe(1);
    expect(subscriptions).toEqual(['{"event":"subscribe"}', '{"event":"subscribe"}']);
  });
});

// Price ladders: bids 10000, 9999, ... downwards; asks 10001, 10002, ... upwards.
const ladder = (from: number, step: number, n: number) =>
  Array.from({ length: n }, (_, i) => [`${from + step * i}.00`, "1"] as [string, string]);

describe("book depth cap", { timeout: 60_000 }, () => {
  it("Coinbase: a full-depth book is kept to maxBookLevels per side, and the published book follows exactly", () => {
    const { ctx, sink } = testContext(["BTC-USD"]);
    const adapter = createCoinbaseAdapter(ctx, { maxBookLevels: 1000 });
    adapter.onMessage(
      JSON.stringify({
        type: "snapshot",
        product_id: "BTC-USD",
        bids: ladder(10_000, -1, 9_000).reverse(), // any order
        asks: ladder(10_001, 1, 30_000),
      }),
    );
    const book = sink.book(0);
    expect(book.depth).toEqual({ bids: 1000, asks: 1000 });
    expect(book.levels("bid", 1)).toEqual([["10000.00", "1"]]);
    expect(book.bids.prices.at(-1)).toBe("9001.00");
    expect(book.asks.prices.at(-1)).toBe("11000.00");
    const update = (...changes: [string, string, string][]) =>
      adapter.onMessage(JSON.stringify({ type: "l2update", product_id: "BTC-USD", changes }));

    // A better level pushes the farthest one out, and the removal is published.
    update(["buy", "10000.50", "2"]);
    expect(book.depth.bids).toBe(1000);
    expect(book.get("bid", "9001.00")).toBeUndefined();
    expect(book.bids.prices.at(-1)).toBe("9002.00");
    // A level beyond the kept depth is dropped; a flood of them changes nothing.
    update(...ladder(5000, -1, 5000).map(([p]) => ["buy", p, "7"] as [string, string, string]));
    expect(book.depth.bids).toBe(1000);
    expect(book.get("bid", "5000.00")).toBeUndefined();
    // Below the cap again, a far level is kept.
    update(["buy", "10000.50", "0"], ["buy", "9001.00", "3"]);
    expect(book.depth.bids).toBe(1000);
    expect(book.get("bid", "9001.00")).toBe("3");
    expect(ctx.stats.get("resyncs")).toBe(0);
    expect(ctx.stats.get("malformed")).toBe(0);
  });

  it("Coinbase: on the recorded feed, a cap of 2x the published depth keeps the published window exact", () => {
    // The default (5,000 kept, 1,000 published) has the same headroom: the far levels a cap drops
    // reach the published window only if the side loses the difference between the two.
    const cap = 100;
    const published = 50;
    const products = RECORDED_SYMBOLS.coinbase;
    const { ctx, sink } = testContext(products);
    const adapter = createCoinbaseAdapter(ctx, { maxBookLevels: cap });
    adapter.onOpen();
    // The reference is the same book structure, unbounded.
    const refs = products.map(() => new OrderBook());
    let truncated = 0;
    let compared = 0;
    let deepest = 0;
    const mismatches: string[] = [];
    for (const m of readWsFixture("COINBASE.ws.28.0")) {
      adapter.onMessage(m.text);
      const msg = JSON.parse(m.text);
      const i = products.indexOf(msg.product_id);
      const ref = refs[i];
      if (!ref) continue;
      if (msg.type === "snapshot") {
        ref.clear();
        for (const [p, q] of msg.bids) ref.set("bid", p, q);
        for (const [p, q] of msg.asks) ref.set("ask", p, q);
        if (msg.bids.length > cap || msg.asks.length > cap) truncated++;
      } else if (msg.type === "l2update") {
        for (const [side, p, q] of msg.changes) ref.set(side === "buy" ? "bid" : "ask", p, q);
      } else continue;
      const book = sink.book(i);
      for (const side of ["bid", "ask"] as const) {
        deepest = Math.max(deepest, book.side(side).prices.length);
        // One expect per step would dominate the run time: collect the mismatches instead.
        if (JSON.stringify(book.levels(side, published)) !== JSON.stringify(ref.levels(side, published))) {
          mismatches.push(`${products[i]} ${side}`);
        }
        compared++;
      }
    }
    expect(mismatches).toEqual([]);
    expect(deepest).toBe(cap);
    expect(truncated).toBeGreaterThan(5);
    expect(compared).toBeGreaterThan(10_000);
    expect(sink.valid.size).toBe(products.length);
    expect(ctx.stats.get("resyncs")).toBe(0);
    expect(ctx.stats.get("gaps")).toBe(0);
  });

  it("Binance.US: diffs beyond the kept depth are dropped, and the recorded stream still syncs in sequence", async () => {
    const snapshots = new Map(
      readHttpFixture("BINANCE_US.http.0.0").map((r) => [new URL(r.url).searchParams.get("symbol"), r.body]),
    );
    const symbols = RECORDED_SYMBOLS.binanceus;
    const cap = 40;
    const { ctx, sink } = testContext(symbols, async (url) =>
      JSON.parse(snapshots.get(new URL(url).searchParams.get("symbol"))!),
    );
    const adapter = createBinanceAdapter(ctx, { maxBookLevels: cap });
    adapter.onOpen();
    // Node drains microtasks after each timer: the adapter's zero-delay snapshot fetches all resolve first.
    await new Promise((r) => setTimeout(r, 0));
    expect(sink.valid.size).toBe(4);
    // COMP-USDT's REST snapshot has 526 asks.
    const comp = symbols.indexOf("COMP-USDT");
    expect(sink.book(comp).depth).toEqual({ bids: cap, asks: cap });
    const lines = readWsFixture("BINANCE_US.ws.1.0");
    for (const m of lines) adapter.onMessage(m.text);
    expect(sink.valid.size).toBe(4);
    expect(ctx.stats.get("gaps")).toBe(0);
    expect(ctx.stats.get("resyncs")).toBe(0);
    for (const [i] of symbols.entries()) {
      expect(sink.book(i).depth.bids).toBeLessThanOrEqual(cap);
      expect(sink.book(i).depth.asks).toBeLessThanOrEqual(cap);
      expect(sink.book(i).isCrossed()).toBe(false);
    }
    const last = JSON.parse(lines.findLast((m) => m.text.includes('"s":"COMPUSDT","U"'))!.text).data;
    // Far asks fill the side up to the cap; the rest are dropped.
    const before = sink.book(comp).depth.asks;
    expect(before).toBeLessThan(cap);
    const far = Array.from({ length: 10 }, (_, i) => [`99999${i}.00`, "5"]);
    adapter.onMessage(
      JSON.stringify({
        stream: "compusdt@depth@100ms",
        data: { e: "depthUpdate", s: "COMPUSDT", U: last.u + 1, u: last.u + 1, b: [], a: far },
      }),
    );
    const asks = sink.book(comp).asks.prices;
    expect(asks.length).toBe(cap);
    expect(asks.filter((p) => p.startsWith("99999"))).toEqual(far.slice(0, cap - before).map(([p]) => p));
    expect(ctx.stats.get("gaps")).toBe(0);
  });
});
