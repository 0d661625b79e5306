import {
  EXCHANGES,
  type Exchange,
  type FeedClientMessage,
  type FeedFrame,
  type IngestFrame,
  type Level,
  type Trade,
} from "./market.ts";

/**
 * The compact binary encoding of the market frames: publisher → edge (`IngestFrame`), edge →
 * subscriber (`FeedFrame`) and subscriber → edge (`FeedClientMessage`). JSON stays the default
 * everywhere; binary is negotiated (README "Market data"). A frame decodes to exactly the object
 * that was encoded, which is then checked with the same zod schema as its JSON form, so the two
 * encodings cannot drift apart.
 *
 * Written by hand, not MessagePack/CBOR/protobuf: those carry decimal strings as strings (the
 * bulk of a market frame), and carrying them as floats would lose the exchange's exact spelling.
 * Here a decimal travels as its digits (an integer mantissa) plus the number of fraction digits,
 * which reproduces the string exactly, trailing zeros included ("161.24000"), and prices in a
 * level list are sent as the difference from the previous price. Values that do not fit (more
 * than 15 significant digits, leading zeros like "007") travel as their text. Frames are
 * self-contained (no state across frames), so hibernation or a reconnect never desynchronizes
 * the two ends.
 *
 *   byte 0: 0xE0 | kind   (kind: 1 batch, 2 invalid, 3 snapshot, 4 delta, 5 trade, 6 ack, 7 resync,
 *                          8 frame list: count, then each frame as length + its own encoding)
 *   then per kind: varints (LEB128), zigzag varints for signed values, strings as length + UTF-8,
 *   exchanges as their index in EXCHANGES, level lists as count + per level one byte of fraction
 *   digits (price in the low nibble, size in the high; 15 = escape) + price delta + size.
 */

/** A subscriber's frame encoding: JSON text, this self-contained binary form, or the entropy-coded stream (contracts/market-entropy.ts). */
export type FeedEncoding = "json" | "binary" | "entropy";

export const MAGIC = 0xe0;
const KIND = { batch: 1, invalid: 2, snapshot: 3, delta: 4, trade: 5, ack: 6, resync: 7, frames: 8 } as const;
/** Mantissas stay exact as JS numbers up to 15 digits (< 2^53). */
const MAX_MANTISSA_DIGITS = 15;
export const ESCAPE = 15;
const CANONICAL = /^(0|[1-9]\d*)(?:\.(\d+))?$/;

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/** Exported for the stateful ingest stream (contracts/market-ingest-stream.ts), which shares the primitives. */
export class Writer {
  private buf = new Uint8Array(256);
  private view = new DataView(this.buf.buffer);
  length = 0;

  private ensure(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  byte(b: number): void {
    this.ensure(1);
    this.buf[this.length++] = b;
  }
  /** Unsigned LEB128 of a non-negative safe integer (arithmetic, not 32-bit shifts). */
  uint(n: number): void {
    this.ensure(8);
    while (n >= 0x80) {
      this.buf[this.length++] = (n % 0x80) | 0x80;
      n = Math.floor(n / 0x80);
    }
    this.buf[this.length++] = n;
  }
  int(n: number): void {
    this.uint(n >= 0 ? n * 2 : -n * 2 - 1);
  }
  f64(n: number): void {
    this.ensure(8);
    this.view.setFloat64(this.length, n, true);
    this.length += 8;
  }
  str(s: string): void {
    this.bytes(textEncoder.encode(s));
  }
  /** Length-prefixed bytes. */
  bytes(bytes: Uint8Array): void {
    this.uint(bytes.length);
    this.ensure(bytes.length);
    this.buf.set(bytes, this.length);
    this.length += bytes.length;
  }
  done(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

export class Reader {
  at = 0;
  private readonly buf: Uint8Array;
  private readonly view: DataView;
  constructor(buf: Uint8Array) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  byte(): number {
    if (this.at >= this.buf.length) throw new RangeError("truncated frame");
    return this.buf[this.at++]!;
  }
  uint(): number {
    let n = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.byte();
      n += (b & 0x7f) * scale;
      if (b < 0x80) return n;
      scale *= 0x80;
    }
    throw new RangeError("varint too long");
  }
  int(): number {
    const z = this.uint();
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  }
  f64(): number {
    if (this.at + 8 > this.buf.length) throw new RangeError("truncated frame");
    const n = this.view.getFloat64(this.at, true);
    this.at += 8;
    return n;
  }
  str(max = 1 << 20): string {
    return textDecoder.decode(this.bytes(max));
  }
  /** Length-prefixed bytes (a view, not a copy). */
  bytes(max = 1 << 20): Uint8Array {
    const n = this.uint();
    if (n > max || this.at + n > this.buf.length) throw new RangeError("bad string length");
    const out = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  get done(): boolean {
    return this.at === this.buf.length;
  }
}

/** A decimal as (mantissa, fraction digits), or null when it must travel as text. */
export function splitDecimal(value: string): { mantissa: number; frac: number } | null {
  const m = CANONICAL.exec(value);
  if (!m) return null;
  const frac = m[2]?.length ?? 0;
  const digits = m[1]! + (m[2] ?? "");
  // Significant digits only: "0.00002290" is the mantissa 2290.
  let i = 0;
  while (i < digits.length - 1 && digits.charCodeAt(i) === 48) i++;
  if (digits.length - i > MAX_MANTISSA_DIGITS) return null;
  return { mantissa: Number(digits.slice(i)), frac };
}

export function joinDecimal(mantissa: number, frac: number): string {
  const s = String(mantissa);
  if (frac === 0) return s;
  const padded = s.padStart(frac + 1, "0");
  return `${padded.slice(0, -frac)}.${padded.slice(-frac)}`;
}

/** Fraction-digit code of a value: 0–14 directly, ESCAPE for longer fractions or text. */
export const fracCode = (d: { frac: number } | null) => (d && d.frac < ESCAPE ? d.frac : ESCAPE);

export function writeEscaped(w: Writer, d: { mantissa: number; frac: number } | null, text: string): void {
  // After an ESCAPE nibble: 0 = text follows, else frac + 1 (for fractions of 15 digits or more).
  if (d === null) {
    w.uint(0);
    w.str(text);
  } else w.uint(d.frac + 1);
}

/** The fraction digits `writeEscaped` wrote after an ESCAPE code (any other code is the digits itself); null: text follows. */
export function readFrac(r: Reader, code: number): number | null {
  if (code !== ESCAPE) return code;
  const tag = r.uint();
  return tag === 0 ? null : tag - 1;
}

function readValue(r: Reader, code: number, prev: number, delta: boolean): { text: string; mantissa: number } {
  const frac = readFrac(r, code);
  if (frac === null) return { text: r.str(64), mantissa: prev };
  const mantissa = delta ? prev + r.int() : r.uint();
  if (!Number.isSafeInteger(mantissa) || mantissa < 0) throw new RangeError("bad decimal");
  return { text: joinDecimal(mantissa, frac), mantissa };
}

function writeDecimal(w: Writer, value: string): void {
  const d = splitDecimal(value);
  w.byte(fracCode(d));
  if (fracCode(d) === ESCAPE) writeEscaped(w, d, value);
  if (d) w.uint(d.mantissa);
}

function readDecimal(r: Reader): string {
  return readValue(r, r.byte(), 0, false).text;
}

function writeLevels(w: Writer, levels: readonly Level[]): void {
  w.uint(levels.length);
  let prev = 0;
  for (const [price, size] of levels) {
    const p = splitDecimal(price);
    const s = splitDecimal(size);
    w.byte(fracCode(p) | (fracCode(s) << 4));
    if (fracCode(p) === ESCAPE) writeEscaped(w, p, price);
    if (p) {
      w.int(p.mantissa - prev);
      prev = p.mantissa;
    }
    if (fracCode(s) === ESCAPE) writeEscaped(w, s, size);
    if (s) w.uint(s.mantissa);
  }
}

function readLevels(r: Reader): Level[] {
  const n = r.uint();
  if (n > 100_000) throw new RangeError("too many levels");
  const out: Level[] = new Array(n);
  let prev = 0;
  for (let i = 0; i < n; i++) {
    const codes = r.byte();
    const price = readValue(r, codes & 0x0f, prev, true);
    prev = price.mantissa;
    const size = readValue(r, codes >> 4, 0, false);
    out[i] = [price.text, size.text];
  }
  return out;
}

function writeExchange(w: Writer, exchange: Exchange): void {
  w.byte(EXCHANGES.indexOf(exchange));
}

function readExchange(r: Reader): Exchange {
  const exchange = EXCHANGES[r.byte()];
  if (!exchange) throw new RangeError("unknown exchange");
  return exchange;
}

/** Timestamps: an integer millisecond count as a varint (flag 0), anything else as float64 (flag 1). */
export function writeTs(w: Writer, ts: number): void {
  if (Number.isSafeInteger(ts) && ts >= 0) {
    w.byte(0);
    w.uint(ts);
  } else {
    w.byte(1);
    w.f64(ts);
  }
}

export function readTs(r: Reader): number {
  return r.byte() === 0 ? r.uint() : r.f64();
}

export function writeTrades(w: Writer, trades: readonly Trade[]): void {
  w.uint(trades.length);
  for (const t of trades) {
    w.byte(EXCHANGES.indexOf(t.exchange) * 2 + (t.side === "sell" ? 1 : 0));
    w.str(t.id);
    writeDecimal(w, t.price);
    writeDecimal(w, t.size);
    w.uint(t.ts);
  }
}

export function readTrades(r: Reader): Trade[] {
  const n = r.uint();
  if (n > 100_000) throw new RangeError("too many trades");
  const out: Trade[] = [];
  for (let i = 0; i < n; i++) {
    const code = r.byte();
    const exchange = EXCHANGES[code >> 1];
    if (!exchange) throw new RangeError("unknown exchange");
    out.push({
      exchange,
      side: code & 1 ? "sell" : "buy",
      id: r.str(64),
      price: readDecimal(r),
      size: readDecimal(r),
      ts: r.uint(),
    });
  }
  return out;
}

type Quote = { price: string; size: string; exchange: Exchange } | null;

function writeQuote(w: Writer, q: Quote): void {
  if (!q) {
    w.byte(0xff);
    return;
  }
  writeExchange(w, q.exchange);
  writeDecimal(w, q.price);
  writeDecimal(w, q.size);
}

function readQuote(r: Reader): Quote {
  const code = r.byte();
  if (code === 0xff) return null;
  const exchange = EXCHANGES[code];
  if (!exchange) throw new RangeError("unknown exchange");
  return { exchange, price: readDecimal(r), size: readDecimal(r) };
}

/** Book entries of a batch, snapshot or delta: exchange, flags (1 snapshot, 2 withdrawn, 4 stale), levels. */
function writeBooks(
  w: Writer,
  books: readonly {
    exchange: Exchange;
    snapshot?: boolean;
    withdrawn?: boolean;
    stale?: boolean;
    bids: Level[];
    asks: Level[];
  }[],
): void {
  w.uint(books.length);
  for (const b of books) {
    writeExchange(w, b.exchange);
    w.byte((b.snapshot ? 1 : 0) | (b.withdrawn ? 2 : 0) | (b.stale ? 4 : 0));
    writeLevels(w, b.bids);
    writeLevels(w, b.asks);
  }
}

function readBooks(r: Reader) {
  const n = r.uint();
  if (n > 64) throw new RangeError("too many books");
  const out: { exchange: Exchange; snapshot?: true; withdrawn?: true; stale?: true; bids: Level[]; asks: Level[] }[] =
    [];
  for (let i = 0; i < n; i++) {
    const exchange = readExchange(r);
    const flags = r.byte();
    const book: (typeof out)[number] = { exchange, bids: [], asks: [] };
    if (flags & 1) book.snapshot = true;
    if (flags & 2) book.withdrawn = true;
    if (flags & 4) book.stale = true;
    book.bids = readLevels(r);
    book.asks = readLevels(r);
    out.push(book);
  }
  return out;
}

/** Publisher → edge. */
export function encodeIngestFrame(frame: IngestFrame): Uint8Array {
  const w = new Writer();
  if (frame.type === "invalid") {
    w.byte(MAGIC | KIND.invalid);
    writeExchange(w, frame.exchange);
    w.str(frame.reason);
    return w.done();
  }
  w.byte(MAGIC | KIND.batch);
  w.str(frame.symbol ?? "");
  w.uint(frame.seq);
  writeTs(w, frame.ts);
  writeBooks(w, frame.books);
  writeTrades(w, frame.trades);
  return w.done();
}

/** The frame as a plain object for the IngestFrame schema to check, or null when it is not a well-formed binary frame. */
export function decodeIngestFrame(bytes: Uint8Array): unknown {
  try {
    const r = new Reader(bytes);
    const head = r.byte();
    let frame: unknown;
    if (head === (MAGIC | KIND.invalid)) {
      frame = { type: "invalid", exchange: readExchange(r), reason: r.str(1024) };
    } else if (head === (MAGIC | KIND.batch)) {
      const symbol = r.str(64);
      frame = {
        type: "batch",
        ...(symbol ? { symbol } : {}),
        seq: r.uint(),
        ts: readTs(r),
        books: readBooks(r),
        trades: readTrades(r),
      };
    } else return null;
    return r.done ? frame : null;
  } catch {
    return null;
  }
}

/** Edge → subscriber. */
export function encodeFeedFrame(frame: FeedFrame): Uint8Array {
  const w = new Writer();
  w.byte(MAGIC | KIND[frame.type]);
  w.str(frame.symbol);
  w.uint(frame.seq);
  writeTs(w, frame.ts);
  if (frame.type === "trade") {
    writeTrades(w, frame.trades);
    return w.done();
  }
  writeBooks(w, frame.books);
  writeQuote(w, frame.bbo.bid);
  writeQuote(w, frame.bbo.ask);
  if (frame.type === "snapshot") writeTrades(w, frame.trades);
  return w.done();
}

/** A subscriber's decoder: the frame as a plain object (check it with FeedFrame), or null. */
export function decodeFeedFrame(bytes: Uint8Array): unknown {
  try {
    const r = new Reader(bytes);
    const head = r.byte();
    const type = (["snapshot", "delta", "trade"] as const)[head - (MAGIC | KIND.snapshot)];
    if (!type) return null;
    const base = { type, symbol: r.str(64), seq: r.uint(), ts: readTs(r) };
    let frame: unknown;
    if (type === "trade") frame = { ...base, trades: readTrades(r) };
    else {
      const books = readBooks(r);
      const bbo = { bid: readQuote(r), ask: readQuote(r) };
      frame = type === "snapshot" ? { ...base, books, bbo, trades: readTrades(r) } : { ...base, books, bbo };
    }
    return r.done ? frame : null;
  } catch {
    return null;
  }
}

/**
 * Several consecutive frames as one message (`?coalesce=true` subscribers): kind 8, the count,
 * then each frame's own encoding, length-prefixed. Takes frames already encoded by `encodeFeedFrame`.
 */
export function encodeFeedFrames(frames: readonly Uint8Array[]): Uint8Array {
  const w = new Writer();
  w.byte(MAGIC | KIND.frames);
  w.uint(frames.length);
  for (const frame of frames) w.bytes(frame);
  return w.done();
}

/** Several consecutive frames' JSON texts as one JSON text message: an array of the frames, in order. */
export function joinFeedFramesJson(frames: readonly string[]): string {
  return `[${frames.join(",")}]`;
}

/** Most frames a frame list may hold (the edge sends at most 64); more is malformed. */
const MAX_LISTED_FRAMES = 4096;

/**
 * A subscriber's decoder for one message, either encoding, coalescing or not: the frames it
 * carries, in order, as plain objects (check each with FeedFrame), or null when malformed. A JSON
 * message is one frame or an array of frames; a binary one is one frame or a frame list.
 */
export function decodeFeedMessage(data: string | Uint8Array): unknown[] | null {
  if (typeof data === "string") {
    try {
      const parsed: unknown = JSON.parse(data);
      return Array.isArray(parsed) ? parsed : [parsed];
    } catch {
      return null;
    }
  }
  if (data[0] !== (MAGIC | KIND.frames)) {
    const frame = decodeFeedFrame(data);
    return frame === null ? null : [frame];
  }
  try {
    const r = new Reader(data);
    r.byte();
    const n = r.uint();
    if (n > MAX_LISTED_FRAMES) return null;
    const frames: unknown[] = [];
    for (let i = 0; i < n; i++) {
      const frame = decodeFeedFrame(r.bytes());
      if (frame === null) return null;
      frames.push(frame);
    }
    return r.done ? frames : null;
  } catch {
    return null;
  }
}

/** Subscriber → edge: `ack` (kind 6 + seq) or `resync` (kind 7). */
export function encodeClientMessage(message: FeedClientMessage): Uint8Array {
  const w = new Writer();
  if (message.type === "resync") w.byte(MAGIC | KIND.resync);
  else {
    w.byte(MAGIC | KIND.ack);
    w.uint(message.seq);
  }
  return w.done();
}

export function decodeClientMessage(bytes: Uint8Array): FeedClientMessage | null {
  try {
    const r = new Reader(bytes);
    const head = r.byte();
    const message: FeedClientMessage | null =
      head === (MAGIC | KIND.resync)
        ? { type: "resync" }
        : head === (MAGIC | KIND.ack)
          ? { type: "ack", seq: r.uint() }
          : null;
    return message && r.done ? message : null;
  } catch {
    return null;
  }
}
