// Collector-host benchmarks (one run, one process; `npm run bench -- collector`):
//   1. The SPSC tick ring (bench/tick-ring.ts): throughput against postMessage between the same
//      two worker threads, where a tick's time goes, and latency at paced, realistic rates.
//   2. Kraken book-1000 replay throughput with every CRC32 checksum verified, against JSON.parse
//      of the same messages alone.
//   3. Bytes pushed to the edge vs (a) the raw exchange bytes and (b) a full-depth snapshot per
//      update, on the recorded fixtures with the default 50 ms push interval.
import os from "node:os";
import { isMainThread } from "node:worker_threads";
import zlib from "node:zlib";
import { createBinanceAdapter } from "../collector-host/src/exchanges/binanceus.ts";
import { createCoinbaseAdapter } from "../collector-host/src/exchanges/coinbase.ts";
import { createKrakenAdapter } from "../collector-host/src/exchanges/kraken.ts";
import type { AdapterContext, ExchangeAdapter, FeedSink } from "../collector-host/src/exchanges/types.ts";
import { snapshotUpdate } from "../collector-host/src/publisher/delta-encoder.ts";
import { type Link, Publisher } from "../collector-host/src/publisher/publisher.ts";
import { RECORDED_SYMBOLS, readHttpFixture, readWsFixture } from "../collector-host/src/replay/fixtures.ts";
import { RingSink } from "../collector-host/src/ring/ring-sink.ts";
import { createRingBuffer, RingConsumer, RingProducer } from "../collector-host/src/ring/spsc-ring.ts";
import { RECORD_SIZE } from "../collector-host/src/ring/tick-record.ts";
import { ExchangeStats } from "../collector-host/src/threads/exchange-stats.ts";
import type { BookUpdate, IngestFrame } from "../contracts/market.ts";
import { encodeIngestFrame, splitDecimal } from "../contracts/market-binary.ts";
import {
  encodeIngestStream,
  type IngestStreamState,
  type IngestStreamTally,
} from "../contracts/market-ingest-stream.ts";
import { entropyStream } from "./feed-stream.ts";
import { median } from "./stats.ts";
import { tickRingSections } from "./tick-ring.ts";

/** This thread's CPU time in ms (Node ≥ 22.19); the machine is shared, so wall time alone misleads. */
function threadCpuMs(): number {
  const t = process.threadCpuUsage();
  return (t.user + t.system) / 1000;
}

const fmt = (n: number) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(1);

const nullSink: FeedSink = {
  snapshotBegin() {},
  level() {},
  snapshotEnd() {},
  invalid() {},
  trade() {},
  commit() {},
};
const quietLog = { info() {}, warn() {}, error() {} };
function adapterContext(
  symbols: string[],
  sink: FeedSink,
  fetchJson: AdapterContext["fetchJson"] = async () => ({}),
): AdapterContext {
  return { symbols, sink, stats: new ExchangeStats(), log: quietLog, send() {}, reconnect() {}, fetchJson };
}

const KRAKEN = RECORDED_SYMBOLS.kraken;
const COINBASE = RECORDED_SYMBOLS.coinbase;
const BINANCE = RECORDED_SYMBOLS.binanceus;

function krakenReplay(runs: number) {
  const lines = readWsFixture("KRAKEN.ws.50.0").map((m) => m.text);
  const perRun: number[] = [];
  const perRunCpu: number[] = [];
  const parseOnly: number[] = [];
  let verified = 0;
  let bookMessages = 0;
  for (let r = 0; r < runs; r++) {
    const ctx = adapterContext(KRAKEN, nullSink);
    const adapter = createKrakenAdapter(ctx);
    const t0 = performance.now();
    const c0 = threadCpuMs();
    for (const l of lines) adapter.onMessage(l);
    const ms = performance.now() - t0;
    perRunCpu.push(ctx.stats.get("bookMessages") / ((threadCpuMs() - c0) / 1000));
    if (ctx.stats.get("checksumsVerified") !== 4269 || ctx.stats.get("checksumFailures") !== 0) {
      throw new Error("kraken replay did not verify every checksum");
    }
    verified = ctx.stats.get("checksumsVerified");
    bookMessages = ctx.stats.get("bookMessages");
    perRun.push(bookMessages / (ms / 1000));
    let sink = 0;
    const t1 = performance.now();
    for (const l of lines) sink += (JSON.parse(l) as unknown[]).length ?? 0;
    parseOnly.push(bookMessages / ((performance.now() - t1) / 1000) + sink * 0);
  }
  return {
    verified,
    bookMessages,
    perSec: median(perRun),
    perCpuSec: median(perRunCpu),
    parsePerSec: median(parseOnly),
  };
}

/** Feeds all three recordings through adapters → ring → publisher on the recorded clock. */
async function bandwidth(intervalMs: number) {
  const feeds: { exchange: "kraken" | "coinbase" | "binanceus"; symbols: string[]; file: string }[] = [
    { exchange: "kraken", symbols: KRAKEN, file: "KRAKEN.ws.50.0" },
    { exchange: "coinbase", symbols: COINBASE, file: "COINBASE.ws.28.0" },
    { exchange: "binanceus", symbols: BINANCE, file: "BINANCE_US.ws.1.0" },
  ];
  const snapshots = new Map(
    readHttpFixture("BINANCE_US.http.0.0").map((r) => [new URL(r.url).searchParams.get("symbol"), JSON.parse(r.body)]),
  );
  let pushed = 0;
  let frames = 0;
  let snapshotBytes = 0;
  let initialSnapshotBytes = 0;
  // The same frames in the compact binary encoding (contracts/market-binary.ts), the collector's default.
  let binary = 0;
  let binaryInitial = 0;
  const sentBySymbol = new Map<string, (string | Uint8Array)[]>();
  const binaryBySymbol = new Map<string, Uint8Array[]>();
  // And in the stateful stream encoding (contracts/market-ingest-stream.ts), one stream per symbol's
  // socket, restarted by every snapshot batch as the publisher does.
  let stream = 0;
  let streamInitial = 0;
  const streamBySymbol = new Map<string, Uint8Array[]>();
  const streamState = new Map<string, IngestStreamState | null>();
  // Where the steady state's stream bytes go (frames after each symbol's first).
  const tally: IngestStreamTally & { wsHeaders: number } = {
    wsHeaders: 0,
    envelope: 0,
    books: 0,
    prices: 0,
    sizes: 0,
    escapes: 0,
    trades: 0,
  };
  const linkFor = (symbol: string): Link => ({
    open: true,
    writable: true,
    send: (data) => {
      const t = typeof data === "string" ? data : "";
      const n = Buffer.byteLength(t);
      pushed += n + wsHeader(n);
      frames++;
      const bin = encodeIngestFrame(JSON.parse(t) as IngestFrame);
      binary += bin.length + wsHeader(bin.length);
      const list = sentBySymbol.get(symbol) ?? [];
      // The first frame per symbol is its initial full snapshot.
      if (list.length === 0) {
        initialSnapshotBytes += n + wsHeader(n);
        binaryInitial += bin.length + wsHeader(bin.length);
      }
      list.push(t);
      sentBySymbol.set(symbol, list);
      binaryBySymbol.set(symbol, [...(binaryBySymbol.get(symbol) ?? []), bin]);
      const frame = JSON.parse(t) as IngestFrame;
      const restart = frame.type === "batch" && frame.books.some((b) => b.snapshot);
      const steady = list.length > 1;
      const encoded = encodeIngestStream(streamState.get(symbol) ?? null, frame, restart, steady ? tally : undefined);
      if (steady) tally.wsHeaders += wsHeader(encoded.bytes.length);
      streamState.set(symbol, encoded.state);
      stream += encoded.bytes.length + wsHeader(encoded.bytes.length);
      if (list.length === 1) streamInitial += encoded.bytes.length + wsHeader(encoded.bytes.length);
      streamBySymbol.set(symbol, [...(streamBySymbol.get(symbol) ?? []), encoded.bytes]);
      return true;
    },
    start() {},
    stop() {},
  });
  const sources = feeds.map((f) => {
    const ring = createRingBuffer(65_536, RECORD_SIZE);
    return {
      f,
      sink: new RingSink(new RingProducer(ring, RECORD_SIZE)),
      consumer: new RingConsumer(ring, RECORD_SIZE),
    };
  });
  const publisher = new Publisher({
    sources: sources.map((s) => ({
      exchange: s.f.exchange,
      symbols: s.f.symbols,
      consumer: s.consumer,
      clockOffset: () => 0,
    })),
    intervalMs: 1e9,
    // Deeper than any recorded book, so the pushed books are as full as the snapshot alternative.
    publishDepth: 2500,
    encoding: "json",
    links: (symbol) => linkFor(symbol),
    log: quietLog,
  });
  // One timeline of every message, each with its adapter.
  const events: {
    t: number;
    text: string;
    adapter: ExchangeAdapter;
    exchange: string;
    src: (typeof sources)[number];
  }[] = [];
  let raw = 0;
  const booksBefore: { adapter: ExchangeAdapter; ctx: AdapterContext }[] = [];
  for (const s of sources) {
    const ctx = adapterContext(s.f.symbols, s.sink, async (url) =>
      snapshots.get(new URL(url).searchParams.get("symbol")),
    );
    const adapter =
      s.f.exchange === "kraken"
        ? createKrakenAdapter(ctx)
        : s.f.exchange === "coinbase"
          ? createCoinbaseAdapter(ctx)
          : createBinanceAdapter(ctx);
    adapter.onOpen();
    booksBefore.push({ adapter, ctx });
    for (const m of readWsFixture(s.f.file)) {
      events.push({ t: m.t, text: m.text, adapter, exchange: s.f.exchange, src: s });
      raw += Buffer.byteLength(m.text);
    }
  }
  await new Promise((r) => setTimeout(r, 20)); // Binance snapshot fetches resolve
  // Recordings come from different days: align each to its own start.
  const starts = new Map<string, number>();
  for (const e of events) starts.set(e.exchange, Math.min(starts.get(e.exchange) ?? Number.POSITIVE_INFINITY, e.t));
  for (const e of events) e.t -= starts.get(e.exchange)!;
  events.sort((a, b) => a.t - b.t);
  let nextFlush = intervalMs / 1000;
  let bookUpdates = 0;
  for (const e of events) {
    while (e.t >= nextFlush) {
      for (const s of sources)
        publisher.drainNow({
          exchange: s.f.exchange,
          symbols: s.f.symbols,
          consumer: s.consumer,
          clockOffset: () => 0,
        });
      publisher.flush();
      nextFlush += intervalMs / 1000;
    }
    const before = e.src.consumer.size();
    e.adapter.onMessage(e.text);
    e.src.sink.commit();
    if (e.src.consumer.size() > before) {
      // The alternative design: a full-depth snapshot of this exchange's book after every update.
      for (const s of sources)
        publisher.drainNow({
          exchange: s.f.exchange,
          symbols: s.f.symbols,
          consumer: s.consumer,
          clockOffset: () => 0,
        });
      const msg = JSON.parse(e.text) as unknown;
      const sym = symbolOf(e.exchange, msg);
      const book = sym ? publisher.book(sym, e.exchange as "kraken") : undefined;
      if (book) {
        bookUpdates++;
        const frame = {
          type: "batch",
          seq: 1,
          ts: Date.now(),
          books: [snapshotUpdate(e.exchange as "kraken", book) as BookUpdate],
          trades: [],
        };
        const n = Buffer.byteLength(JSON.stringify(frame));
        snapshotBytes += n + wsHeader(n);
      }
    }
  }
  for (const s of sources)
    publisher.drainNow({ exchange: s.f.exchange, symbols: s.f.symbols, consumer: s.consumer, clockOffset: () => 0 });
  publisher.flush();
  const json = await deflated(sentBySymbol.values());
  const bin = await deflated(binaryBySymbol.values());
  const str = await deflated(streamBySymbol.values());
  return {
    raw,
    pushed,
    frames,
    snapshotBytes,
    bookUpdates,
    compressed: json.total,
    compressedInitial: json.initial,
    initialSnapshotBytes,
    binary,
    binaryInitial,
    binaryCompressed: bin.total,
    binaryCompressedInitial: bin.initial,
    stream,
    streamInitial,
    tally,
    floor: informationFloor(sentBySymbol.values()),
    model: adaptiveModelEstimate(sentBySymbol.values()),
    entropy: entropyStream(sentBySymbol as Map<string, string[]>),
    streamCompressed: str.total,
    streamCompressedInitial: str.initial,
  };
}

/**
 * A floor for any encoding of the steady state that sends one message per batch and keeps the
 * levels' information: the WebSocket header of each message (6 bytes: client frames are masked),
 * plus each level's price as the bits of its difference from the previous price on that side
 * (and a sign bit) and its size as the bits of its significant digits — with no bits at all for
 * lengths, counts, timestamps or spellings. Real encodings spend more; none of them can spend less
 * without knowing more than the previous frame (e.g. a model of the sizes).
 */
function informationFloor(sockets: Iterable<(string | Uint8Array)[]>): number {
  const bits = (n: number) => (n === 0 ? 0 : Math.floor(Math.log2(n)) + 1);
  let total = 0;
  for (const list of sockets) {
    const last = new Map<string, number>();
    for (const [i, text] of list.entries()) {
      if (i === 0) continue;
      total += 6 * 8;
      const frame = JSON.parse(String(text)) as IngestFrame;
      if (frame.type !== "batch") continue;
      for (const book of frame.books) {
        for (const [side, levels] of [
          ["b", book.bids],
          ["a", book.asks],
        ] as const) {
          for (const [price, size] of levels) {
            const p = splitDecimal(price)?.mantissa ?? 0;
            let m = splitDecimal(size)?.mantissa ?? 0;
            while (m > 0 && m % 10 === 0) m /= 10;
            const key = book.exchange + side;
            if (last.has(key)) total += bits(Math.abs(p - last.get(key)!)) + 1;
            last.set(key, p);
            total += bits(m);
          }
        }
      }
    }
  }
  return total / 8;
}

/** An adaptive frequency model of one field (Krichevsky–Trofimov counts over `alphabet` symbols). */
class AdaptiveModel {
  private readonly counts = new Map<string | number, number>();
  private total = 0;
  private readonly alphabet: number;
  constructor(alphabet: number) {
    this.alphabet = alphabet;
  }
  /** Bits an arithmetic coder spends on `symbol` under this model, which then learns it. */
  code(symbol: string | number): number {
    const seen = this.counts.get(symbol) ?? 0;
    const bits = -Math.log2((seen + 0.5) / (this.total + 0.5 * this.alphabet));
    this.counts.set(symbol, seen + 1);
    this.total++;
    return bits;
  }
}

/** A decimal as significant digits × 10^exponent, trailing zeros dropped ("0.1200" → 12 × 10^-2). */
function significant(value: string): { digits: number; exponent: number } {
  const d = splitDecimal(value);
  let digits = d?.mantissa ?? 0;
  let exponent = -(d?.frac ?? 0);
  while (digits > 0 && digits % 10 === 0) {
    digits /= 10;
    exponent++;
  }
  return { digits, exponent };
}

/** Bits of a non-negative integer below its leading one (the leading one is in its length class). */
const tailBits = (n: number) => (n <= 1 ? 0 : Math.floor(Math.log2(n)));

/**
 * What an arithmetic coder could reach on the steady state, estimated (no coder is built): each
 * socket's models start empty and learn as they go, as a coder's would, and every field is
 * counted — the timestamp difference, book and level counts, each price as its difference in the
 * side's ticks, and each size as a class (removal / a size another level of that side of the book
 * has now / a new one), then the book size's index or the new size's digit count, scale and
 * digits. Book-derived predictions need no state beyond the book both ends hold. Trades are
 * counted at the stream encoding's bytes. Returns bits per part, WebSocket headers excluded.
 */
function adaptiveModelEstimate(sockets: Iterable<(string | Uint8Array)[]>) {
  const bitsOf = { envelope: 0, prices: 0, sizes: 0 };
  let frames = 0;
  for (const list of sockets) {
    const models = {
      tsLength: new AdaptiveModel(48),
      books: new AdaptiveModel(8),
      count: new AdaptiveModel(16),
      priceLength: new AdaptiveModel(64),
      sizeClass: new AdaptiveModel(3),
      sizeShape: new AdaptiveModel(400),
    };
    const books = new Map<string, Map<string, string>>();
    const last = new Map<string, number>();
    const tick = new Map<string, number>();
    let ts: number | null = null;
    for (const [i, text] of list.entries()) {
      const frame = JSON.parse(String(text)) as IngestFrame;
      if (frame.type !== "batch") continue;
      const steady = i > 0;
      if (steady) {
        frames++;
        const dt = Math.abs(frame.ts - (ts ?? frame.ts));
        bitsOf.envelope += models.tsLength.code(Math.floor(Math.log2(dt + 1))) + tailBits(dt + 1);
        bitsOf.envelope += models.books.code(frame.books.length);
      }
      ts = frame.ts;
      for (const book of frame.books) {
        for (const [side, levels] of [
          ["b", book.bids],
          ["a", book.asks],
        ] as const) {
          const key = book.exchange + side;
          if (book.snapshot) books.set(key, new Map());
          const sizes = books.get(key) ?? new Map<string, string>();
          books.set(key, sizes);
          if (steady) {
            const n = levels.length;
            bitsOf.envelope += models.count.code(Math.floor(Math.log2(n + 1))) + tailBits(n + 1);
          }
          for (const [price, size] of levels) {
            // The price in units of the side's tick: the finest power of ten its prices have used.
            const { digits: priceDigits, exponent } = significant(price);
            const unit = Math.min(tick.get(key) ?? exponent, exponent);
            tick.set(key, unit);
            const units = priceDigits * 10 ** (exponent - unit);
            if (steady && last.has(key)) {
              const delta = Math.round(units - last.get(key)!);
              const zigzag = delta >= 0 ? 2 * delta : -2 * delta - 1;
              bitsOf.prices += models.priceLength.code(Math.floor(Math.log2(zigzag + 1))) + tailBits(zigzag + 1);
            }
            last.set(key, units);
            const removal = Number(size) === 0;
            if (steady) {
              if (removal) bitsOf.sizes += models.sizeClass.code("removal");
              else {
                const present = [...new Set(sizes.values())];
                if (present.includes(size)) {
                  bitsOf.sizes += models.sizeClass.code("in book") + Math.log2(present.length);
                } else {
                  const { digits, exponent: sizeExponent } = significant(size);
                  const length = String(digits).length;
                  bitsOf.sizes +=
                    models.sizeClass.code("new") +
                    models.sizeShape.code(`${length}:${sizeExponent}`) +
                    Math.log2(9 * 10 ** (length - 1));
                }
              }
            }
            if (removal) sizes.delete(price);
            else sizes.set(price, size);
          }
        }
      }
    }
  }
  return { frames, envelopeBytes: bitsOf.envelope / 8, priceBytes: bitsOf.prices / 8, sizeBytes: bitsOf.sizes / 8 };
}

/**
 * permessage-deflate as the ws client negotiates it: one deflate context per socket (context
 * takeover), each message flushed with Z_SYNC_FLUSH and its 4-byte tail dropped (RFC 7692).
 */
async function deflated(sockets: Iterable<(string | Uint8Array)[]>): Promise<{ total: number; initial: number }> {
  let total = 0;
  let initial = 0;
  for (const list of sockets) {
    const deflate = zlib.createDeflateRaw({ level: zlib.constants.Z_DEFAULT_COMPRESSION });
    const chunks: Buffer[] = [];
    deflate.on("data", (c: Buffer) => chunks.push(c));
    for (const [i, frame] of list.entries()) {
      deflate.write(frame);
      await new Promise<void>((r) => deflate.flush(zlib.constants.Z_SYNC_FLUSH, () => r()));
      const n = Buffer.concat(chunks.splice(0)).length - 4;
      total += n + wsHeader(n);
      if (i === 0) initial += n + wsHeader(n);
    }
    deflate.close();
  }
  return { total, initial };
}

/** Client→server WebSocket frame header bytes (masked) for a payload of n bytes. */
function wsHeader(n: number): number {
  return 2 + 4 + (n > 65_535 ? 8 : n > 125 ? 2 : 0);
}

function symbolOf(exchange: string, msg: unknown): string | undefined {
  if (exchange === "kraken" && Array.isArray(msg))
    return String(msg[msg.length - 1])
      .replace("XBT", "BTC")
      .replace("/", "-");
  if (exchange === "coinbase" && msg && typeof msg === "object") return (msg as { product_id?: string }).product_id;
  if (exchange === "binanceus" && msg && typeof msg === "object") {
    const s = (msg as { data?: { s?: string } }).data?.s;
    return BINANCE.find((b) => b.replace("-", "") === s);
  }
  return undefined;
}

async function main(): Promise<void> {
  console.log(
    `machine: ${os.cpus().length} × ${os.cpus()[0]?.model}, load average ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}, node ${process.version}`,
  );
  const RUNS = Number(process.env.BENCH_RUNS ?? 5);
  const N = Number(process.env.BENCH_TICKS ?? 5_000_000);
  // BENCH_SECTIONS=ring,kraken,bandwidth (default all) runs a subset.
  const sections = new Set((process.env.BENCH_SECTIONS ?? "ring,kraken,bandwidth").split(","));
  if (sections.has("ring")) await tickRingSections(RUNS, N);
  if (sections.has("kraken")) krakenSection(RUNS);
  if (sections.has("bandwidth")) await bandwidthSection();
  console.log(
    `\nload average at the end: ${os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(" ")}`,
  );
}

function krakenSection(RUNS: number): void {
  // 2. Kraken replay with checksums.
  const kr = krakenReplay(Math.max(RUNS, 5) * 2);
  console.log("\n[kraken replay] KRAKEN.ws.50.0 through the production adapter, every checksum verified");
  console.log(`  ${kr.bookMessages} book messages, ${kr.verified} checksums verified per run`);
  console.log(
    `  median ${fmt(kr.perSec)} book messages/s wall, ${fmt(kr.perCpuSec)}/s per CPU-second   (JSON.parse alone: ${fmt(kr.parsePerSec)} msg/s wall, ${(kr.parsePerSec / kr.perSec).toFixed(2)}× the full path)`,
  );
}

async function bandwidthSection(): Promise<void> {
  // 3. Bandwidth.
  for (const interval of [50, 100]) {
    const bw = await bandwidth(interval);
    const pct = (x: number, of: number) => `${((x / of) * 100).toFixed(2)} %`;
    const red = (x: number) => `${((1 - x / bw.snapshotBytes) * 100).toFixed(3)} %`;
    console.log(`\n[bandwidth] all three recordings, ${interval} ms push interval (WebSocket framing included)`);
    console.log(`  raw exchange bytes:             ${fmt(bw.raw)} B`);
    console.log(
      `  full-depth snapshot per update: ${fmt(bw.snapshotBytes)} B over ${bw.bookUpdates} book updates (the alternative)`,
    );
    console.log(
      `  pushed, JSON frames:            ${fmt(bw.pushed)} B in ${bw.frames} frames = ${pct(bw.pushed, bw.raw)} of raw`,
    );
    console.log(`    reduction vs full snapshots:  ${red(bw.pushed)}`);
    console.log(
      `    without the 24 initial snapshots (${fmt(bw.initialSnapshotBytes)} B): ${red(bw.pushed - bw.initialSnapshotBytes)}`,
    );
    // One row per encoding: bytes, reduction, and reduction without each symbol's first frame.
    const row = (label: string, total: number, initial: number) => {
      console.log(`  pushed, ${`${label}:`.padEnd(24)}${fmt(total)} B = ${pct(total, bw.raw)} of raw`);
      console.log(`    reduction vs full snapshots:  ${red(total)}`);
      console.log(`    without the initial snapshots (${fmt(initial)} B): ${red(total - initial)}`);
    };
    row("permessage-deflate", bw.compressed, bw.compressedInitial);
    row("binary frames", bw.binary, bw.binaryInitial);
    row("binary + deflate", bw.binaryCompressed, bw.binaryCompressedInitial);
    row("stream frames", bw.stream, bw.streamInitial);
    row("stream + deflate", bw.streamCompressed, bw.streamCompressedInitial);
    const steadyFrames = bw.frames - 24;
    const t = bw.tally;
    const per = (n: number) => `${fmt(n)} B (${(n / steadyFrames).toFixed(1)} B/frame)`;
    console.log(`  stream steady state by field, ${steadyFrames} frames:`);
    console.log(`    WebSocket headers ${per(t.wsHeaders)}, envelope ${per(t.envelope)}, book headers ${per(t.books)}`);
    console.log(
      `    prices ${per(t.prices)}, sizes ${per(t.sizes)}, escapes ${per(t.escapes)}, trades ${per(t.trades)}`,
    );
    console.log(
      `  information floor of the steady state (headers + price-difference and size-digit bits, nothing else): ${fmt(bw.floor)} B = ${red(bw.floor)}`,
    );
    const m = bw.model;
    const modelled = m.envelopeBytes + m.priceBytes + m.sizeBytes + t.trades;
    console.log(
      `  adaptive-model estimate of an arithmetic coder (book-derived sizes; no coder built): envelope ${fmt(m.envelopeBytes)} B, prices ${fmt(m.priceBytes)} B, sizes ${fmt(m.sizeBytes)} B, trades ${fmt(t.trades)} B (as streamed)`,
    );
    console.log(
      `    with server→client headers (2 B): ${fmt(modelled + 2 * m.frames)} B = ${red(modelled + 2 * m.frames)}; with client→server headers (6 B): ${fmt(modelled + 6 * m.frames)} B = ${red(modelled + 6 * m.frames)}`,
    );
    const e = bw.entropy;
    console.log(
      `  subscriber stream, entropy encoding (every message decoded and compared): ${fmt(e.initial + e.steady)} B = ${red(e.initial + e.steady)}; steady state ${fmt(e.steady)} B in ${e.steadyMessages} messages (${(e.steady / e.steadyMessages).toFixed(1)} B each, 2-byte headers included) = ${red(e.steady)}`,
    );
    console.log(`  the 99.975 % target allows ${fmt(bw.snapshotBytes * 0.00025)} B`);
  }
}

if (isMainThread) {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
