// `npm run watch -- BTC-USD [--depth 5] [--encoding json|binary|entropy] [--url http://127.0.0.1:8787]`:
// a live terminal view of one
// symbol from the edge — per-exchange top of book, the consolidated best bid/offer, recent trades —
// rebuilt from the MarketFeed object's snapshot + deltas and redrawn in place.
//
// It is an ordinary subscriber: it checks that `seq` has no gaps (asks for a fresh snapshot if it
// ever sees one), and acknowledges frames so the edge can flow-control it (window 512): if the
// terminal falls behind, the edge sends one fresh snapshot instead of a backlog. `--encoding`
// picks the frame encoding (the header shows the bytes it received); an entropy stream it cannot
// decode makes it ask for a resync, as any client of that encoding must.
import WebSocket from "ws";
import { FeedMirror } from "../contracts/feed-mirror.ts";
import { FeedFrame } from "../contracts/market.ts";
import { decodeFeedMessage, type FeedEncoding } from "../contracts/market-binary.ts";
import { EntropyFeedDecoder } from "../contracts/market-entropy.ts";
import type { BookLevel } from "../contracts/order-book.ts";
import { BASE_URL } from "./local.ts";

const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args.splice(i, 2)[1] : undefined;
};
const depth = Math.max(1, Math.min(50, Number(flag("depth") ?? 5)));
const base = flag("url") ?? process.env.EDGEPULSE_URL ?? BASE_URL;
const encoding = (flag("encoding") ?? "json") as FeedEncoding;
if (!["json", "binary", "entropy"].includes(encoding)) throw new Error("--encoding: json, binary or entropy");
const symbol = args[0] ?? "BTC-USD";
const WINDOW = 512;
const REDRAW_MS = 100;

const mirror = new FeedMirror({ maxTrades: 50 });
let latencyMs = 0;
let bytesReceived = 0;
let status = "connecting";
let dirty = true;

const ESC = "\x1b[";
const dim = (s: string) => `${ESC}2m${s}${ESC}0m`;
const green = (s: string) => `${ESC}32m${s}${ESC}0m`;
const red = (s: string) => `${ESC}31m${s}${ESC}0m`;
const bold = (s: string) => `${ESC}1m${s}${ESC}0m`;

function apply(frame: FeedFrame, ws: WebSocket): void {
  latencyMs = Date.now() - frame.ts;
  // A gap means this view may be wrong: the mirror counts it and asks for a fresh snapshot.
  const resync = mirror.apply(frame);
  if (resync) ws.send(JSON.stringify(resync));
  dirty = true;
}

const pad = (s: string, n: number) => (s.length >= n ? s.slice(0, n) : s + " ".repeat(n - s.length));
const lpad = (s: string, n: number) => (s.length >= n ? s.slice(0, n) : " ".repeat(n - s.length) + s);

function render(): string {
  const { books, bbo, stale, trades, lastSeq, frames, snapshots, gaps } = mirror;
  const lines: string[] = [];
  lines.push(
    `${bold(`edgepulse watch ${symbol}`)}  ${dim(base)}  ${status === "live" ? green(status) : red(status)}  ` +
      `seq ${lastSeq}  frames ${frames}  snapshots ${snapshots}  gaps ${gaps ? red(String(gaps)) : "0"}  latency ${latencyMs} ms  ` +
      `${encoding} ${(bytesReceived / 1024).toFixed(1)} KiB`,
  );
  lines.push("");
  const bid = bbo.bid ? `${green(bbo.bid.price)} x ${bbo.bid.size} (${bbo.bid.exchange})` : dim("none");
  const ask = bbo.ask ? `${red(bbo.ask.price)} x ${bbo.ask.size} (${bbo.ask.exchange})` : dim("none");
  lines.push(`${bold("Consolidated BBO")}  bid ${bid}   ask ${ask}`);
  lines.push("");
  if (books.size === 0) lines.push(dim("no books yet: is the collector host publishing this symbol?"));
  for (const [exchange, book] of books) {
    const { bids, asks } = book.view(depth);
    lines.push(
      `${bold(pad(exchange, 10))}${stale.has(exchange) ? red(" stale (resyncing)") : ""}  ${dim(`${book.bids.size} bids / ${book.asks.size} asks`)}`,
    );
    lines.push(dim(`${lpad("bid size", 18)} ${lpad("bid", 16)} | ${pad("ask", 16)} ${pad("ask size", 18)}`));
    for (let i = 0; i < depth; i++) {
      const b: BookLevel | undefined = bids[i];
      const a: BookLevel | undefined = asks[i];
      lines.push(
        `${lpad(b?.[1] ?? "", 18)} ${green(lpad(b?.[0] ?? "", 16))} | ${red(pad(a?.[0] ?? "", 16))} ${pad(a?.[1] ?? "", 18)}`,
      );
    }
    lines.push("");
  }
  lines.push(bold("Recent trades"));
  for (const t of trades.slice(-5).reverse()) {
    const side = t.side === "buy" ? green("buy ") : red("sell");
    lines.push(
      `  ${new Date(t.ts).toISOString().slice(11, 23)}  ${pad(t.exchange, 10)} ${side} ${t.size} @ ${t.price}`,
    );
  }
  return lines.join(`${ESC}K\n`);
}

function connect(attempt = 0): void {
  const url = `${base.replace(/^http/, "ws")}/v1/market/${encodeURIComponent(symbol)}/ws?window=${WINDOW}&encoding=${encoding}`;
  const ws = new WebSocket(url, { perMessageDeflate: false });
  const entropy = new EntropyFeedDecoder();
  status = attempt ? `reconnecting (${attempt})` : "connecting";
  dirty = true;
  ws.on("open", () => {
    status = "live";
    attempt = 0;
    mirror.restart();
  });
  ws.on("message", (data: Buffer, isBinary) => {
    bytesReceived += data.length;
    let frames: unknown[] | null;
    if (!isBinary) frames = decodeFeedMessage(String(data));
    else if (encoding !== "entropy") frames = decodeFeedMessage(new Uint8Array(data));
    else {
      try {
        frames = entropy.decode(new Uint8Array(data));
      } catch {
        // Lost step with the stream: start again from the snapshot message the resync brings.
        frames = [];
        ws.send(JSON.stringify({ type: "resync" }));
      }
    }
    for (const item of frames ?? []) {
      const parsed = FeedFrame.safeParse(item);
      if (parsed.success) apply(parsed.data, ws);
    }
  });
  // Acknowledge on the redraw cadence: the edge counts unacknowledged frames against the window.
  const acker = setInterval(() => {
    const ack = mirror.ack();
    if (ws.readyState === WebSocket.OPEN && ack) ws.send(JSON.stringify(ack));
  }, REDRAW_MS);
  const retry = (why: string) => {
    clearInterval(acker);
    status = `disconnected: ${why}`;
    dirty = true;
    const delay = Math.min(10_000, 250 * 2 ** attempt) * (0.5 + Math.random() / 2);
    setTimeout(() => connect(attempt + 1), delay);
  };
  ws.on("unexpected-response", (_req, res) => {
    retry(`HTTP ${res.statusCode}`);
    ws.terminate();
  });
  ws.on("error", (error) => {
    if (ws.readyState !== WebSocket.CLOSED) ws.terminate();
    status = `error: ${error.message}`;
  });
  ws.on("close", (code) => {
    if (!status.startsWith("disconnected")) retry(`closed ${code}`);
  });
}

process.stdout.write(`${ESC}?25l${ESC}2J`);
const restore = () => {
  process.stdout.write(`${ESC}?25h\n`);
  process.exit(0);
};
process.on("SIGINT", restore);
process.on("SIGTERM", restore);
setInterval(() => {
  if (!dirty) return;
  dirty = false;
  process.stdout.write(`${ESC}H${render()}${ESC}K\n${ESC}J`);
}, REDRAW_MS);
connect();
