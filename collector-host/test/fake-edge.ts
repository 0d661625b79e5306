import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { type WebSocket, WebSocketServer } from "ws";
import { CollectorHealthReport, type Exchange, IngestFrame } from "../../contracts/market.ts";
import { decodeIngestFrame } from "../../contracts/market-binary.ts";
import { decodeIngestStream, type IngestStreamState } from "../../contracts/market-ingest-stream.ts";
import { OrderBook } from "../src/books/order-book.ts";
import { applyBookUpdate } from "../src/publisher/delta-encoder.ts";

export interface ReceivedBatch {
  symbol: string;
  seq: number;
  at: number;
  snapshots: Exchange[];
  deltas: Exchange[];
  trades: number;
}

/**
 * A stand-in for the edge: the service-token endpoint, the `/v1/ingest/:symbol` publish socket
 * (bearer token required) and `PUT /v1/market/collectors`. Every frame is validated against
 * contracts/market.ts and applied to books the way a subscriber would.
 */
export async function startFakeEdge(opts: { secret: string }) {
  const token = "fake-service-token";
  const books = new Map<string, OrderBook>();
  const synced = new Set<string>();
  const batches: ReceivedBatch[] = [];
  const invalidFrames: string[] = [];
  const problems: string[] = [];
  const invalids: { symbol: string; exchange: Exchange; reason: string }[] = [];
  const healthReports: CollectorHealthReport[] = [];
  const reportWaiters: ((report: CollectorHealthReport) => void)[] = [];
  const sockets = new Map<string, WebSocket>();
  const lastSeq = new Map<string, number>();
  let trades = 0;
  let rejectedUpgrades = 0;
  /** Binary frames received on stream-encoded sockets (decoded with the socket's state). */
  let streamFrames = 0;

  const server: Server = createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => {
      body += c.toString();
    });
    req.on("end", () => {
      if (req.method === "POST" && req.url === "/v1/auth/service-token") {
        const ok = JSON.parse(body || "{}").secret === opts.secret;
        res.writeHead(ok ? 200 : 401, { "Content-Type": "application/json" });
        return void res.end(
          JSON.stringify(ok ? { accessToken: token, tokenType: "Bearer", expiresIn: 900 } : { title: "Unauthorized" }),
        );
      }
      if (req.method === "PUT" && req.url === "/v1/market/collectors") {
        const parsed = CollectorHealthReport.safeParse(JSON.parse(body));
        const authed = req.headers.authorization === `Bearer ${token}`;
        if (parsed.success && authed) {
          healthReports.push(parsed.data);
          for (const resolve of reportWaiters.splice(0)) resolve(parsed.data);
        } else problems.push(`bad health report: ${authed ? JSON.stringify(parsed.error?.issues) : "no auth"}`);
        res.writeHead(parsed.success && authed ? 200 : 400);
        return void res.end();
      }
      res.writeHead(404);
      res.end();
    });
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on("upgrade", (req, socket, head) => {
    const m = /^\/v1\/ingest\/([A-Z0-9]+-[A-Z0-9]+)(\?encoding=stream)?$/.exec(req.url ?? "");
    if (!m || req.headers.authorization !== `Bearer ${token}`) {
      rejectedUpgrades++;
      socket.end("HTTP/1.1 401 Unauthorized\r\n\r\n");
      return;
    }
    const symbol = m[1]!;
    // `?encoding=stream`: binary frames are the stateful stream encoding, decoded with this socket's state.
    const stream = m[2] !== undefined;
    let streamState: IngestStreamState | null = null;
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.set(symbol, ws);
      // A new connection starts clean, as the MarketFeed object does for a new publisher.
      for (const key of [...synced]) if (key.startsWith(`${symbol}|`)) synced.delete(key);
      lastSeq.delete(symbol);
      let first = true;
      ws.on("message", (data, isBinary) => {
        // Binary frames are the compact encoding: decoded, then checked by the very same schema.
        const bytes = data as Buffer;
        const text = isBinary ? `binary frame of ${bytes.length} bytes` : data.toString();
        let decoded: unknown;
        if (!isBinary) decoded = JSON.parse(text);
        else if (!stream) decoded = decodeIngestFrame(new Uint8Array(bytes));
        else {
          const result = decodeIngestStream(streamState, new Uint8Array(bytes));
          if ("error" in result) {
            problems.push(`${symbol}: ${result.error}`);
            return;
          }
          streamState = result.state;
          decoded = result.frame;
          streamFrames++;
        }
        const parsed = IngestFrame.safeParse(decoded);
        if (!parsed.success) return void invalidFrames.push(text.slice(0, 300));
        const frame = parsed.data;
        if (frame.type === "invalid") {
          invalids.push({ symbol, exchange: frame.exchange, reason: frame.reason });
          books.delete(`${symbol}|${frame.exchange}`);
          synced.delete(`${symbol}|${frame.exchange}`);
          return;
        }
        const prev = lastSeq.get(symbol);
        if (prev !== undefined && frame.seq !== prev + 1) problems.push(`${symbol}: seq ${frame.seq} after ${prev}`);
        lastSeq.set(symbol, frame.seq);
        const snapshots: Exchange[] = [];
        const deltas: Exchange[] = [];
        for (const update of frame.books) {
          const key = `${symbol}|${update.exchange}`;
          if (first && !update.snapshot) problems.push(`${symbol}: first batch after connect carried a delta`);
          if (!update.snapshot && !synced.has(key)) problems.push(`${key}: delta before any snapshot`);
          let book = books.get(key);
          if (!book) {
            book = new OrderBook();
            books.set(key, book);
          }
          applyBookUpdate(book, update);
          if (update.snapshot) synced.add(key);
          (update.snapshot ? snapshots : deltas).push(update.exchange);
        }
        first = false;
        trades += frame.trades.length;
        batches.push({ symbol, seq: frame.seq, at: Date.now(), snapshots, deltas, trades: frame.trades.length });
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    books,
    batches,
    invalidFrames,
    problems,
    invalids,
    healthReports,
    /** Resolves with the next accepted health report. */
    nextHealthReport: () => new Promise<CollectorHealthReport>((resolve) => reportWaiters.push(resolve)),
    sockets,
    /** The seq of the last batch received for `symbol` on its current socket (0 before the first). */
    seqOf: (symbol: string) => lastSeq.get(symbol) ?? 0,
    get trades() {
      return trades;
    },
    get rejectedUpgrades() {
      return rejectedUpgrades;
    },
    get streamFrames() {
      return streamFrames;
    },
    async close() {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export type FakeEdge = Awaited<ReturnType<typeof startFakeEdge>>;
