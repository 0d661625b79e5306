import { once } from "node:events";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type ServerOptions, WebSocketServer } from "ws";
import { loadConfig } from "../src/config.ts";
import { backoffDelay, ExchangeConnection } from "../src/exchanges/connection.ts";
import type { ExchangeAdapter } from "../src/exchanges/types.ts";
import { EdgeLink } from "../src/publisher/edge-link.ts";
import { ServiceToken } from "../src/publisher/service-token.ts";
import { ExchangeStats } from "../src/threads/exchange-stats.ts";
import { MirrorSink, silentLog, TEST_SERVICE_SECRET } from "./support.ts";

const closers: (() => void)[] = [];
afterEach(() => {
  for (const c of closers.splice(0)) c();
});

async function wsServer(verifyClient?: ServerOptions["verifyClient"]) {
  const wss = new WebSocketServer({ port: 0, host: "127.0.0.1", ...(verifyClient ? { verifyClient } : {}) });
  await new Promise<void>((r) => wss.once("listening", () => r()));
  closers.push(() => {
    for (const c of wss.clients) c.terminate();
    wss.close();
  });
  return { wss, url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}` };
}

/** A promise for the next call of the returned `signal`, re-armed by `next()`: waits on events, not on the clock. */
function signals() {
  let resolve!: () => void;
  let promise = new Promise<void>((r) => {
    resolve = r;
  });
  return {
    signal: () => resolve(),
    next: () => promise,
    rearm() {
      promise = new Promise<void>((r) => {
        resolve = r;
      });
    },
  };
}

// Only the timers and the clock the connection reads are faked: socket I/O stays real, and each
// step waits for the socket event it depends on, so a loaded machine only makes the test slower.
const fakeClock = () =>
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date"] });

describe("exchange connection", { timeout: 60_000 }, () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it("the watchdog reconnects a feed that went silent, and each connection resubscribes", async () => {
    fakeClock();
    const { wss, url } = await wsServer();
    let connections = 0;
    const subscriptions: string[] = [];
    const subscribed = signals();
    wss.on("connection", (ws) => {
      connections++;
      ws.on("message", (m) => {
        subscriptions.push(m.toString());
        subscribed.signal();
      });
      ws.send('{"event":"heartbeat"}'); // then nothing: a silent feed
    });
    const stats = new ExchangeStats();
    let closes = 0;
    const received = signals();
    const closed = signals();
    const connection = new ExchangeConnection(
      (ctx): ExchangeAdapter => ({
        exchange: "kraken",
        url: () => url,
        onOpen: () => ctx.send({ event: "subscribe" }),
        onMessage: () => received.signal(),
        onClose: () => {
          closes++;
          closed.signal();
        },
      }),
      { symbols: ["BTC-USD"], sink: new MirrorSink(), stats, log: silentLog },
      { silentMs: 200, pingMs: 100, backoffBaseMs: 10, backoffMaxMs: 20 },
    );
    connection.start();
    closers.push(() => connection.stop());
    for (let n = 1; n <= 3; n++) {
      // Connected, subscribed, and the heartbeat arrived.
      await Promise.all([subscribed.next(), received.next()]);
      subscribed.rearm();
      received.rearm();
      expect(connections).toBe(n);
      if (n === 3) break;
      // Silence past silentMs: the watchdog drops the socket; then the backoff (at most 20 ms) reconnects.
      await vi.advanceTimersByTimeAsync(250);
      await closed.next();
      closed.rearm();
      await vi.advanceTimersByTimeAsync(20);
    }
    expect(connections).toBeGreaterThanOrEqual(3);
    expect(stats.get("reconnects")).toBeGreaterThanOrEqual(2);
    expect(closes).toBeGreaterThanOrEqual(2);
    expect(subscriptions.filter((s) => s === '{"event":"subscribe"}').length).toBeGreaterThanOrEqual(3);
    expect(stats.get("messages")).toBeGreaterThanOrEqual(3);
  });

  it("a feed without application heartbeats (Binance) is kept alive by WebSocket pings while quiet", async () => {
    fakeClock();
    const { wss, url } = await wsServer();
    let connections = 0;
    wss.on("connection", () => {
      connections++;
    });
    const stats = new ExchangeStats();
    const opened = signals();
    const connection = new ExchangeConnection(
      (): ExchangeAdapter => ({
        exchange: "binanceus",
        liveness: "pong",
        url: () => url,
        onOpen: () => opened.signal(),
        onMessage() {},
        onClose() {},
      }),
      { symbols: ["BTC-USDT"], sink: new MirrorSink(), stats, log: silentLog },
      { silentMs: 300, pingMs: 50, backoffBaseMs: 10, backoffMaxMs: 20 },
    );
    connection.start();
    closers.push(() => connection.stop());
    await opened.next();
    // 1.2 s of quiet feed, one watchdog tick (75 ms) at a time: every tick finds the feed quiet for
    // longer than pingMs and pings; the clock moves on only once the pong is back.
    for (let elapsed = 0; elapsed < 1200; elapsed += 75) {
      const pong = once(connection.socket!, "pong");
      await vi.advanceTimersByTimeAsync(75);
      await pong;
    }
    expect(connections).toBe(1);
    expect(stats.get("reconnects")).toBe(0);
  });

  it("backoff is exponential with full jitter and capped", () => {
    expect(backoffDelay(0, 250, 30_000, () => 1)).toBe(250);
    expect(backoffDelay(3, 250, 30_000, () => 1)).toBe(2000);
    expect(backoffDelay(30, 250, 30_000, () => 1)).toBe(30_000);
    expect(backoffDelay(5, 250, 30_000, () => 0)).toBe(0);
  });
});

describe("edge publish socket", { timeout: 60_000 }, () => {
  it("sends the bearer token, re-fetches it after a 401, and reconnects after the edge drops it", async () => {
    const tokens: (string | undefined)[] = [];
    let refuseNext = true;
    const { wss, url } = await wsServer((info, cb) => {
      tokens.push(info.req.headers.authorization);
      if (refuseNext) {
        refuseNext = false;
        return cb(false, 401);
      }
      cb(true);
    });
    let issued = 0;
    const token = new ServiceToken({ edgeUrl: "http://unused", token: undefined });
    token.get = async () => `t${++issued}`;
    const invalidate = token.invalidate.bind(token);
    let invalidations = 0;
    token.invalidate = () => {
      invalidations++;
      invalidate();
    };
    let opens = 0;
    const opened = signals();
    const link = new EdgeLink({
      edgeUrl: url.replace("ws", "http"),
      symbol: "BTC-USD",
      token,
      log: silentLog,
      onOpen: () => {
        opens++;
        opened.signal();
      },
      onControl() {},
      backoffBaseMs: 10,
      backoffMaxMs: 20,
    });
    link.start();
    closers.push(() => link.stop());
    await opened.next();
    opened.rearm();
    expect(opens).toBe(1);
    expect(invalidations).toBe(1);
    expect(tokens.slice(0, 2)).toEqual(["Bearer t1", "Bearer t2"]);
    for (const c of wss.clients) c.terminate();
    await opened.next();
    expect(opens).toBe(2);
    expect(link.reconnects).toBeGreaterThanOrEqual(2);
  });
});

describe("config", () => {
  it("applies environment overrides and points every exchange at the replay server", () => {
    const config = loadConfig(
      {
        EDGE_URL: "http://127.0.0.1:9999",
        SERVICE_TOKEN_SECRET: TEST_SERVICE_SECRET,
        COLLECTOR_REPLAY_URL: "http://127.0.0.1:8830",
        COLLECTOR_EXCHANGES: "kraken,binanceus",
        COLLECTOR_PUSH_INTERVAL_MS: "25",
      },
      undefined,
    );
    expect(config.edge).toMatchObject({ url: "http://127.0.0.1:9999", serviceSecret: TEST_SERVICE_SECRET });
    expect(config.pushIntervalMs).toBe(25);
    expect(config.exchanges.map((e) => [e.exchange, e.enabled, e.url])).toEqual([
      ["kraken", true, "ws://127.0.0.1:8830/kraken"],
      ["coinbase", false, "ws://127.0.0.1:8830/coinbase"],
      ["binanceus", true, "ws://127.0.0.1:8830/binanceus"],
    ]);
  });

  it("reads a JSON config file, with the environment taking precedence", () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), "collector-config-"));
    const file = path.join(dir, "host.json");
    writeFileSync(
      file,
      JSON.stringify({
        host: "from-file",
        pushIntervalMs: 80,
        edge: { url: "https://edge.example", token: "file-token" },
        exchanges: [{ exchange: "kraken", protocol: "kraken-v2", symbols: ["BTC-USD"], depth: 100 }],
      }),
    );
    const config = loadConfig({ COLLECTOR_PUSH_INTERVAL_MS: "30" }, file);
    expect(config).toMatchObject({
      host: "from-file",
      pushIntervalMs: 30,
      publishDepth: 1000,
      edge: { url: "https://edge.example", token: "file-token" },
    });
    expect(config.exchanges).toEqual([
      expect.objectContaining({ protocol: "kraken-v2", depth: 100, enabled: true, silentMs: 15_000 }),
    ]);
    writeFileSync(
      file,
      JSON.stringify({ exchanges: [{ exchange: "kraken", protocol: "kraken-v9", symbols: ["BTC-USD"] }] }),
    );
    expect(() => loadConfig({}, file)).toThrow();
    rmSync(dir, { recursive: true });
  });

  it("defaults to the exchanges' production endpoints and rejects invalid settings", () => {
    expect(loadConfig({}, undefined).exchanges.map((e) => e.protocol)).toEqual([
      "kraken-v1",
      "coinbase-exchange",
      "binanceus",
    ]);
    expect(() => loadConfig({ COLLECTOR_PUSH_INTERVAL_MS: "1" }, undefined)).toThrow();
    expect(() => loadConfig({ LOG_LEVEL: "loud" }, undefined)).toThrow();
  });
});
