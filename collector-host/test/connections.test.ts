import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
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

const waitFor = async (check: () => boolean, timeoutMs = 5000) => {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
};

describe("exchange connection", () => {
  it("the watchdog reconnects a feed that went silent, and each connection resubscribes", async () => {
    const { wss, url } = await wsServer();
    let connections = 0;
    const subscriptions: string[] = [];
    wss.on("connection", (ws) => {
      connections++;
      ws.on("message", (m) => subscriptions.push(m.toString()));
      ws.send('{"event":"heartbeat"}'); // then nothing: a silent feed
    });
    const stats = new ExchangeStats();
    let closes = 0;
    const connection = new ExchangeConnection(
      (ctx): ExchangeAdapter => ({
        exchange: "kraken",
        url: () => url,
        onOpen: () => ctx.send({ event: "subscribe" }),
        onMessage() {},
        onClose: () => {
          closes++;
        },
      }),
      { symbols: ["BTC-USD"], sink: new MirrorSink(), stats, log: silentLog },
      { silentMs: 200, pingMs: 100, backoffBaseMs: 10, backoffMaxMs: 20 },
    );
    connection.start();
    closers.push(() => connection.stop());
    await waitFor(() => connections >= 3);
    expect(stats.get("reconnects")).toBeGreaterThanOrEqual(2);
    expect(closes).toBeGreaterThanOrEqual(2);
    expect(subscriptions.filter((s) => s === '{"event":"subscribe"}').length).toBeGreaterThanOrEqual(3);
    expect(stats.get("messages")).toBeGreaterThanOrEqual(3);
  });

  it("a feed without application heartbeats (Binance) is kept alive by WebSocket pings while quiet", async () => {
    const { wss, url } = await wsServer();
    let connections = 0;
    wss.on("connection", () => {
      connections++;
    });
    const stats = new ExchangeStats();
    const connection = new ExchangeConnection(
      (): ExchangeAdapter => ({
        exchange: "binanceus",
        liveness: "pong",
        url: () => url,
        onOpen() {},
        onMessage() {},
        onClose() {},
      }),
      { symbols: ["BTC-USDT"], sink: new MirrorSink(), stats, log: silentLog },
      { silentMs: 300, pingMs: 50, backoffBaseMs: 10, backoffMaxMs: 20 },
    );
    connection.start();
    closers.push(() => connection.stop());
    await new Promise((r) => setTimeout(r, 1200));
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

describe("edge publish socket", () => {
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
    const link = new EdgeLink({
      edgeUrl: url.replace("ws", "http"),
      symbol: "BTC-USD",
      token,
      log: silentLog,
      onOpen: () => {
        opens++;
      },
      onControl() {},
      backoffBaseMs: 10,
      backoffMaxMs: 20,
    });
    link.start();
    closers.push(() => link.stop());
    await waitFor(() => opens === 1);
    expect(invalidations).toBe(1);
    expect(tokens.slice(0, 2)).toEqual(["Bearer t1", "Bearer t2"]);
    for (const c of wss.clients) c.terminate();
    await waitFor(() => opens === 2);
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
