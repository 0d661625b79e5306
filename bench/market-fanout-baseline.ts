// Baseline for bench/market-fanout.bench.ts: the simplest possible Node fan-out server (the `ws`
// package, no books, no validation, no persistence). It re-frames each published batch as a
// subscriber delta with a seq and sends one serialized string to every subscriber, which is the
// floor any fan-out design pays. Run as its own process: `node bench/market-fanout-baseline.ts <port>`.
import { type WebSocket, WebSocketServer } from "ws";

const port = Number(process.argv[2] ?? 8841);
const wss = new WebSocketServer({ port, host: "127.0.0.1" });
const subscribers = new Set<WebSocket>();
let seq = 0;

wss.on("connection", (ws, request) => {
  if (request.url?.startsWith("/ingest")) {
    ws.on("message", (data) => {
      const batch = JSON.parse(String(data)) as { seq: number; ts: number; books: unknown[] };
      const frame = JSON.stringify({
        type: "delta",
        symbol: "BENCH-USD",
        seq: ++seq,
        ts: batch.ts,
        books: batch.books,
      });
      for (const sub of subscribers) sub.send(frame);
      ws.send(JSON.stringify({ type: "ack", seq: batch.seq }));
    });
    return;
  }
  subscribers.add(ws);
  ws.send(JSON.stringify({ type: "snapshot", symbol: "BENCH-USD", seq, ts: Date.now(), books: [], trades: [] }));
  ws.on("close", () => subscribers.delete(ws));
});
wss.on("listening", () => console.log("listening"));
