import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { z } from "zod";
import { Exchange, MarketSymbol } from "../../contracts/market.ts";
import { DEFAULT_MAX_BOOK_LEVELS } from "./books/validated-books.ts";
import { RECORDED_SYMBOLS } from "./replay/fixtures.ts";

// Host configuration: an optional JSON file (`--config <file>` or COLLECTOR_CONFIG) overlaid with
// environment variables, validated with zod so a bad config fails at start, not at 3 a.m.

export const PROTOCOLS = ["kraken-v1", "kraken-v2", "coinbase-exchange", "coinbase-advanced", "binanceus"] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** Default `maxFrameBytes`: 512 KiB. */
export const DEFAULT_MAX_FRAME_BYTES = 512 << 10;
/** The service secret's minimum length: 24 random bytes in base64url, as `npm start` generates. */
export const MIN_SERVICE_SECRET_LENGTH = 32;

/**
 * This process's collector id when none is configured: random, so the health report (published
 * at the edge) names the instance without revealing the machine's host name.
 */
export const INSTANCE_ID = `collector-${randomBytes(6).toString("hex")}`;

/** True for 127.0.0.0/8, ::1 and localhost (the WHATWG parser has already normalized 127.1, 0x7f000001, ...). */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

/**
 * The edge's base URL: the service secret and the bearer token travel on it, so anything but a
 * loopback address must be TLS. `ws:`/`wss:` spellings are accepted and stored as `http:`/`https:`.
 */
export const EdgeUrl = z
  .url({ protocol: /^(https?|wss?)$/, error: "EDGE_URL must be an http(s) or ws(s) URL" })
  .transform((url) => {
    const protocol = new URL(url).protocol;
    const scheme = protocol === "ws:" ? "http" : protocol === "wss:" ? "https" : protocol.slice(0, -1);
    return scheme + url.slice(url.indexOf(":"));
  })
  .refine(
    (url) => {
      const u = new URL(url);
      return u.protocol === "https:" || isLoopbackHost(u.hostname);
    },
    {
      error:
        "EDGE_URL must use https: or wss: unless it is a loopback address (127.0.0.0/8, ::1, localhost): " +
        "the service secret and bearer token would otherwise cross the network in clear text",
    },
  );

export const ExchangeConfig = z.object({
  exchange: Exchange,
  protocol: z.enum(PROTOCOLS),
  enabled: z.boolean().default(true),
  symbols: z.array(MarketSymbol).min(1).max(256),
  /** WebSocket URL (base URL for Binance combined streams); the production endpoint when omitted. */
  url: z.url().optional(),
  /** REST base URL (Binance depth snapshots). */
  restUrl: z.url().optional(),
  /** Subscribed book depth (Kraken). */
  depth: z.number().int().positive().optional(),
  /**
   * Levels kept per book side (Coinbase, Binance.US: their feeds are unbounded; Kraken keeps its
   * subscribed `depth`). Farther levels are dropped; keep it well above `publishDepth`.
   */
  maxBookLevels: z.number().int().min(1).max(100_000).default(DEFAULT_MAX_BOOK_LEVELS),
  /**
   * Largest exchange frame accepted (ws `maxPayload`); a larger one closes the socket and counts a
   * reconnect. The default is 6.6x the largest recorded frame (Kraken's book-1000 snapshot, 79,307 bytes).
   */
  maxFrameBytes: z
    .number()
    .int()
    .min(1024)
    .max(256 << 20)
    .default(DEFAULT_MAX_FRAME_BYTES),
  silentMs: z.number().int().positive().default(15_000),
  pingMs: z.number().int().positive().default(5_000),
});
export type ExchangeConfig = z.infer<typeof ExchangeConfig>;

export const HostConfig = z.object({
  /** The collector id in health reports (COLLECTOR_ID); a random per-process id when unset. */
  host: z.string().min(1).max(200).default(INSTANCE_ID),
  edge: z
    .object({
      url: EdgeUrl.default("http://127.0.0.1:8787"),
      /** Exchanged for a service-role access token at POST /v1/auth/service-token. */
      serviceSecret: z
        .string()
        .min(MIN_SERVICE_SECRET_LENGTH, {
          error: `SERVICE_TOKEN_SECRET must be at least ${MIN_SERVICE_SECRET_LENGTH} characters (e.g. \`openssl rand -base64 24\`)`,
        })
        .optional(),
      /** A ready-made service token (skips the exchange). */
      token: z.string().min(1).optional(),
      enabled: z.boolean().default(true),
      /** Offer permessage-deflate on the publish sockets. */
      compress: z.boolean().default(true),
      /**
       * Batch encoding on the publish sockets: the stateful stream encoding (default; state per
       * socket, restarted with every snapshot), the self-contained compact binary one, or JSON text.
       */
      encoding: z.enum(["stream", "binary", "json"]).default("stream"),
    })
    .prefault({}),
  pushIntervalMs: z.number().int().min(5).max(5_000).default(50),
  /** Levels per side published to the edge (the edge serves depth ≤ 1000). */
  publishDepth: z.number().int().min(1).max(2_500).default(1_000),
  healthIntervalMs: z.number().int().min(100).default(5_000),
  ops: z
    .object({ port: z.number().int().min(0).max(65_535).default(9464), host: z.string().default("127.0.0.1") })
    .prefault({}),
  ringCapacity: z
    .number()
    .int()
    .refine((n) => n >= 64 && (n & (n - 1)) === 0, "a power of two >= 64")
    .default(65_536),
  /** A thread whose event loop has not ticked for this long is considered hung and restarted. */
  hangMs: z.number().int().min(200).default(5_000),
  restartBaseMs: z.number().int().min(10).default(500),
  restartMaxMs: z.number().int().min(10).default(30_000),
  logLevel: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
  /** Tests only: lets the supervisor crash or hang a thread on purpose. */
  faultInjection: z.boolean().default(false),
  exchanges: z.array(ExchangeConfig).min(1),
});
export type HostConfig = z.infer<typeof HostConfig>;
export type HostConfigInput = z.input<typeof HostConfig>;

/** Production defaults: the exchanges' real endpoints (see each adapter for the URL). */
export const PRODUCTION_EXCHANGES: z.input<typeof ExchangeConfig>[] = [
  { exchange: "kraken", protocol: "kraken-v1", symbols: ["BTC-USD", "ETH-USD"], depth: 1000 },
  // The full level2 snapshot of a major pair runs to megabytes (tens of thousands of levels), far
  // past the recorded markets' 40 KB: an estimate, not measured here (no network).
  { exchange: "coinbase", protocol: "coinbase-exchange", symbols: ["BTC-USD", "ETH-USD"], maxFrameBytes: 16 << 20 },
  { exchange: "binanceus", protocol: "binanceus", symbols: ["BTC-USDT", "ETH-USDT"] },
];

/** The recorded fixtures' symbols, served by the replay server at `replayUrl`. */
export function replayExchanges(replayUrl: string): z.input<typeof ExchangeConfig>[] {
  const ws = replayUrl.replace(/^http/, "ws").replace(/\/$/, "");
  const http = replayUrl.replace(/\/$/, "");
  return [
    {
      exchange: "kraken",
      protocol: "kraken-v1",
      url: `${ws}/kraken`,
      depth: 1000,
      symbols: [...RECORDED_SYMBOLS.kraken],
    },
    {
      exchange: "coinbase",
      protocol: "coinbase-exchange",
      url: `${ws}/coinbase`,
      symbols: [...RECORDED_SYMBOLS.coinbase],
    },
    {
      exchange: "binanceus",
      protocol: "binanceus",
      url: `${ws}/binanceus`,
      restUrl: `${http}/binanceus`,
      symbols: [...RECORDED_SYMBOLS.binanceus],
    },
  ];
}

/**
 * Builds the config: file (if any), then environment overrides:
 * EDGE_URL, SERVICE_TOKEN_SECRET, COLLECTOR_SERVICE_TOKEN, COLLECTOR_REPLAY_URL (use the replay
 * server's fixtures instead of production), COLLECTOR_EXCHANGES (comma list to enable),
 * COLLECTOR_PUSH_INTERVAL_MS, COLLECTOR_OPS_PORT, COLLECTOR_ID (COLLECTOR_HOST, its older name), LOG_LEVEL.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, file = env.COLLECTOR_CONFIG): HostConfig {
  const fromFile: Record<string, unknown> = file ? JSON.parse(readFileSync(file, "utf8")) : {};
  const input: Record<string, unknown> = { ...fromFile };
  const edge = { ...((fromFile.edge as Record<string, unknown> | undefined) ?? {}) };
  if (env.EDGE_URL) edge.url = env.EDGE_URL;
  if (env.SERVICE_TOKEN_SECRET) edge.serviceSecret = env.SERVICE_TOKEN_SECRET;
  if (env.COLLECTOR_SERVICE_TOKEN) edge.token = env.COLLECTOR_SERVICE_TOKEN;
  if (env.COLLECTOR_ENCODING) edge.encoding = env.COLLECTOR_ENCODING;
  input.edge = edge;
  if (env.COLLECTOR_REPLAY_URL) input.exchanges = replayExchanges(env.COLLECTOR_REPLAY_URL);
  input.exchanges ??= PRODUCTION_EXCHANGES;
  if (env.COLLECTOR_EXCHANGES) {
    const on = new Set(env.COLLECTOR_EXCHANGES.split(",").map((s) => s.trim()));
    input.exchanges = (input.exchanges as { exchange: string }[]).map((e) => ({ ...e, enabled: on.has(e.exchange) }));
  }
  if (env.COLLECTOR_PUSH_INTERVAL_MS) input.pushIntervalMs = Number(env.COLLECTOR_PUSH_INTERVAL_MS);
  if (env.COLLECTOR_OPS_PORT) input.ops = { ...(input.ops as object), port: Number(env.COLLECTOR_OPS_PORT) };
  const id = env.COLLECTOR_ID || env.COLLECTOR_HOST;
  if (id) input.host = id;
  if (env.LOG_LEVEL) input.logLevel = env.LOG_LEVEL;
  return HostConfig.parse(input);
}
