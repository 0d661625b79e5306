import { EXCHANGES, type Exchange, type IngestBatch, type IngestFrame, type Level } from "./market.ts";
import {
  decodeIngestFrame,
  ESCAPE,
  encodeIngestFrame,
  fracCode,
  joinDecimal,
  MAGIC,
  Reader,
  readFrac,
  readTrades,
  readTs,
  splitDecimal,
  Writer,
  writeEscaped,
  writeTrades,
  writeTs,
} from "./market-binary.ts";

/**
 * The stateful ingest encoding (publish socket `?encoding=stream`): the compact binary encoding of
 * contracts/market-binary.ts, minus everything both ends of one socket already know. Each side keeps
 * an `IngestStreamState` (a few dozen numbers) that every frame advances:
 *
 *   - `seq` is implicit (+1 per batch); two of its bits ride in the tag byte as a check,
 *   - `ts` travels as the difference from the previous batch's,
 *   - a price travels as the difference from the previous price sent on that exchange's side (in
 *     any earlier frame), in units of the side's tick (the trailing zeros all its prices share), and
 *     with that side's fraction digits,
 *   - a size travels as its significant digits and its trailing-zero count, spelled with the side's
 *     last size fraction digits; "0" (a removal) is one byte,
 *   - counts and flags are packed into a tag byte per frame and two bytes per book.
 *
 * Anything the state cannot express (a new spelling, a value of more than 15 digits, text) escapes
 * to the same literal forms as the self-contained encoding, so every decimal string arrives exactly
 * as spelled. Decoding is a pure function of (state, bytes) → (frame, next state), so the edge keeps
 * its state in the socket's hibernation attachment (it survives eviction) and a frame it cannot
 * decode leaves the state untouched; the edge then closes the socket (MARKET_CLOSE.streamOutOfSync)
 * and the collector's reconnect starts a new stream. A stream starts, and restarts whenever the
 * publisher sends full snapshots, with a start frame carrying the seq and ts in full.
 *
 *   start frame: 0xE9, symbol (string), seq (varint), ts (as market-binary), body
 *   batch frame: tag byte < 0x80: bits 0–1 book count (3: varint follows), bit 2 trades follow,
 *                bit 3 ts went backwards, bits 4–5 seq & 3, bit 6 symbol follows; |ts − previous| (varint), body
 *   body:        books, then trades (market-binary's form) when flagged
 *   book:        exchange index | 8 for a snapshot; a byte of counts (bids in the
 *                low nibble, asks in the high, 15 = 15 + varint), then the bids, then the asks
 *   level:       zigzag((price − previous price) / 10^scale) (varint; unscaled when S escapes), then S (varint):
 *                0 = size "0"; otherwise
 *                S = digits × 16 + code, code 0–14 = trailing zeros of the size spelled with the side's size
 *                fraction digits, code 15 = escape: one byte of price | size fraction codes as in
 *                market-binary (15 = text or long fraction, see `writeEscaped`), which become the side's
 *                spellings from then on
 *
 * Written by hand for the same reason as market-binary: no maintained codec carries decimal strings
 * exactly as integer differences against per-connection state.
 */

export const INGEST_STREAM_ENCODING = "stream";
const START = MAGIC | 9;
/**
 * Per exchange × side: the previous price's mantissa, the side's price fraction digits, its size
 * fraction digits, and its price scale: the trailing zeros every price on the side has carried
 * since the stream started (NO_SCALE before the first), so differences travel in units of the
 * side's tick (Binance.US spells "43210.12000000": differences in 10^6 units of the last digit).
 */
const SIDE_FIELDS = 4;
const NO_SCALE = 15;
const SIDES = EXCHANGES.length * 2;

/** What both ends of one publish socket know after the last frame; small enough for a socket attachment. */
export interface IngestStreamState {
  seq: number;
  ts: number;
  /** Per exchange × side (exchange index × 2 + 0 bids / 1 asks), SIDE_FIELDS numbers each. */
  sides: number[];
}

function freshState(seq: number, ts: number): IngestStreamState {
  const sides = new Array<number>(SIDES * SIDE_FIELDS).fill(0);
  for (let at = 3; at < sides.length; at += SIDE_FIELDS) sides[at] = NO_SCALE;
  return { seq, ts, sides };
}

/** Where a stream's bytes go, by field (the bandwidth benchmark's breakdown). */
export interface IngestStreamTally {
  /** Tag byte, ts difference (start frames: seq, ts, symbol) and book count. */
  envelope: number;
  /** Per book: exchange/flags byte and level counts. */
  books: number;
  prices: number;
  /** Sizes in the side's spelling (a removal's "0" included). */
  sizes: number;
  /** Escapes: new spellings and values that travel as text. */
  escapes: number;
  trades: number;
}

/**
 * Encodes `frame` after `state` (null: no stream yet, or a restart): the bytes and the state both
 * ends hold afterwards. Invalid frames use the self-contained form and leave the state as it is.
 * `restart` forces a start frame (the publisher sends one with every full snapshot); `tally`, if
 * given, adds each field's bytes to it.
 */
export function encodeIngestStream(
  state: IngestStreamState | null,
  frame: IngestFrame,
  restart = false,
  tally?: IngestStreamTally,
): { bytes: Uint8Array; state: IngestStreamState | null } {
  if (frame.type === "invalid") return { bytes: encodeIngestFrame(frame), state };
  const w = new Writer();
  const tsDiff = state ? frame.ts - state.ts : 0;
  // The decoder adds the difference to its previous ts: only a sum that gives back exactly this ts
  // may travel as one (a previous ts with a fraction, near 2^53, rounds the difference).
  const delta =
    state !== null &&
    !restart &&
    frame.seq === state.seq + 1 &&
    Number.isSafeInteger(frame.ts) &&
    Number.isSafeInteger(tsDiff) &&
    state.ts + tsDiff === frame.ts;
  let next: IngestStreamState;
  if (delta) {
    next = { seq: frame.seq, ts: frame.ts, sides: state.sides.slice() };
    const books = frame.books.length;
    const tag =
      Math.min(books, 3) |
      (frame.trades.length > 0 ? 4 : 0) |
      (tsDiff < 0 ? 8 : 0) |
      ((frame.seq & 3) << 4) |
      (frame.symbol !== undefined ? 64 : 0);
    w.byte(tag);
    w.uint(Math.abs(tsDiff));
    if (books >= 3) w.uint(books - 3);
    if (frame.symbol !== undefined) w.str(frame.symbol);
  } else {
    next = freshState(frame.seq, frame.ts);
    w.byte(START);
    w.str(frame.symbol ?? "");
    w.uint(frame.seq);
    writeTs(w, frame.ts);
    w.uint(frame.books.length);
    w.byte(frame.trades.length > 0 ? 1 : 0);
  }
  if (tally) tally.envelope += w.length;
  for (const book of frame.books) {
    const ex = EXCHANGES.indexOf(book.exchange);
    const at = w.length;
    w.byte(ex | (book.snapshot ? 8 : 0));
    writeCounts(w, book.bids.length, book.asks.length);
    if (tally) tally.books += w.length - at;
    writeLevels(w, next.sides, ex * 2, book.bids, tally);
    writeLevels(w, next.sides, ex * 2 + 1, book.asks, tally);
  }
  const at = w.length;
  if (frame.trades.length > 0) writeTrades(w, frame.trades);
  if (tally) tally.trades += w.length - at;
  return { bytes: w.done(), state: next };
}

function writeCounts(w: Writer, bids: number, asks: number): void {
  w.byte(Math.min(bids, 15) | (Math.min(asks, 15) << 4));
  if (bids >= 15) w.uint(bids - 15);
  if (asks >= 15) w.uint(asks - 15);
}

function readCount(r: Reader, nibble: number): number {
  const n = nibble === 15 ? 15 + r.uint() : nibble;
  if (n > 100_000) throw new RangeError("too many levels");
  return n;
}

function trailingZeros(mantissa: number): number {
  let zeros = 0;
  while (zeros < 14 && mantissa % 10 === 0) {
    mantissa /= 10;
    zeros++;
  }
  return zeros;
}

function writeLevels(
  w: Writer,
  sides: number[],
  side: number,
  levels: readonly Level[],
  tally: IngestStreamTally | undefined,
): void {
  const at = side * SIDE_FIELDS;
  let mark = w.length;
  // Bytes since the last mark go to `field` of the tally.
  const count = (field: "prices" | "sizes" | "escapes") => {
    if (tally) tally[field] += w.length - mark;
    mark = w.length;
  };
  for (const [price, size] of levels) {
    const p = splitDecimal(price);
    const s = size === "0" ? null : splitDecimal(size);
    // The usual case: the price in the side's spelling and scale, the size in its spelling (or "0").
    let sizeValue = -1;
    if (size === "0") sizeValue = 0;
    else if (s !== null && s.frac === sides[at + 2] && s.mantissa > 0) {
      const zeros = trailingZeros(s.mantissa);
      const value = (s.mantissa / 10 ** zeros) * 16 + zeros;
      if (Number.isSafeInteger(value)) sizeValue = value;
    }
    const scale = sides[at + 3]!;
    const priceZeros = p ? trailingZeros(p.mantissa) : 0;
    if (p !== null && p.frac === sides[at + 1] && scale !== NO_SCALE && priceZeros >= scale && sizeValue >= 0) {
      w.int((p.mantissa - sides[at]!) / 10 ** scale);
      count("prices");
      w.uint(sizeValue);
      count("sizes");
    } else {
      // Escaped: the price difference in units of its last digit, then the new spellings.
      w.int(p ? p.mantissa - sides[at]! : 0);
      count("prices");
      writeEscapedSize(w, sides, at, p, price, s ?? splitDecimal(size), size);
      count("escapes");
    }
    if (p) {
      sides[at] = p.mantissa;
      sides[at + 3] = Math.min(scale, priceZeros);
    }
  }
}

/** S = mantissa × 16 + 15, then the fraction codes (and texts); the side takes the new spellings. */
function writeEscapedSize(
  w: Writer,
  sides: number[],
  at: number,
  p: { mantissa: number; frac: number } | null,
  price: string,
  s: { mantissa: number; frac: number } | null,
  size: string,
): void {
  const mantissa = s ? s.mantissa : 0;
  const value = mantissa * 16 + ESCAPE;
  // A 15-digit mantissa × 16 can pass 2^53: such a size travels as text.
  const sized = s && Number.isSafeInteger(value) ? s : null;
  w.uint(sized ? value : ESCAPE);
  w.byte(fracCode(p) | (fracCode(sized) << 4));
  if (fracCode(p) === ESCAPE) writeEscaped(w, p, price);
  if (fracCode(sized) === ESCAPE) writeEscaped(w, sized, size);
  if (p) sides[at + 1] = p.frac;
  // A removal's "0" says nothing about how the side spells sizes.
  if (sized && sized.mantissa > 0) sides[at + 2] = sized.frac;
}

/**
 * Decodes one frame of a stream after `state` (null before the stream's start frame): the frame
 * as a plain object for the IngestFrame schema to check and the next state, or an error (the frame
 * is not a well-formed continuation of this stream; the state has not moved).
 */
export function decodeIngestStream(
  state: IngestStreamState | null,
  bytes: Uint8Array,
): { frame: unknown; state: IngestStreamState | null } | { error: string } {
  const head = bytes[0];
  if (head === undefined) return { error: "empty frame" };
  if (head >= MAGIC && head !== START) {
    // Self-contained frames (an `invalid`, or a plain binary batch) stay valid on a stream socket.
    const frame = decodeIngestFrame(bytes) as IngestBatch | { type: "invalid" } | null;
    if (frame === null) return { error: "malformed binary frame" };
    return { frame, state: frame.type === "batch" && state ? { ...state, seq: frame.seq, ts: frame.ts } : state };
  }
  try {
    const r = new Reader(bytes);
    r.byte();
    let next: IngestStreamState;
    let symbol: string | undefined;
    let books: number;
    let trades: boolean;
    if (head === START) {
      symbol = r.str(64) || undefined;
      const seq = r.uint();
      next = freshState(seq, readTs(r));
      books = r.uint();
      const flags = r.byte();
      if (flags > 1) return { error: "bad start frame flags" };
      trades = flags === 1;
    } else {
      if (state === null) return { error: "a stream frame before the stream's start frame" };
      const seq = state.seq + 1;
      if (((head >> 4) & 3) !== (seq & 3)) return { error: `stream seq check failed after ${state.seq}` };
      if (head & 0x80) return { error: "bad tag byte" };
      const diff = r.uint();
      next = { seq, ts: state.ts + (head & 8 ? -diff : diff), sides: state.sides.slice() };
      books = head & 3;
      if (books === 3) books += r.uint();
      trades = (head & 4) !== 0;
      if (head & 64) symbol = r.str(64);
    }
    if (books > 64) return { error: "too many books" };
    const out: {
      exchange: Exchange;
      snapshot?: true;
      bids: Level[];
      asks: Level[];
    }[] = [];
    for (let i = 0; i < books; i++) {
      const code = r.byte();
      const ex = code & 7;
      const exchange = EXCHANGES[ex];
      if (!exchange || code >> 4) return { error: "unknown exchange or book flags" };
      const counts = r.byte();
      const nBids = readCount(r, counts & 15);
      const nAsks = readCount(r, counts >> 4);
      const book: (typeof out)[number] = { exchange, bids: [], asks: [] };
      if (code & 8) book.snapshot = true;
      book.bids = readLevels(r, next.sides, ex * 2, nBids);
      book.asks = readLevels(r, next.sides, ex * 2 + 1, nAsks);
      out.push(book);
    }
    const frame = {
      type: "batch",
      ...(symbol !== undefined ? { symbol } : {}),
      seq: next.seq,
      ts: next.ts,
      books: out,
      trades: trades ? readTrades(r) : [],
    };
    if (!r.done) return { error: "trailing bytes" };
    return { frame, state: next };
  } catch (error) {
    return { error: error instanceof Error ? error.message : "malformed stream frame" };
  }
}

function readLevels(r: Reader, sides: number[], side: number, n: number): Level[] {
  const at = side * SIDE_FIELDS;
  const out: Level[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const diff = r.int();
    const value = r.uint();
    const code = value % 16;
    const digits = (value - code) / 16;
    if (code !== ESCAPE) {
      const scale = sides[at + 3]!;
      if (scale === NO_SCALE || (value !== 0 && digits === 0)) throw new RangeError("bad level");
      const mantissa = sides[at]! + diff * 10 ** scale;
      const priceText = decimal(mantissa, sides[at + 1]!);
      out[i] = [priceText, value === 0 ? "0" : decimal(digits * 10 ** code, sides[at + 2]!)];
      sides[at] = mantissa;
      sides[at + 3] = Math.min(scale, trailingZeros(mantissa));
      continue;
    }
    const mantissa = sides[at]! + diff;
    const codes = r.byte();
    const price = readEscaped(r, codes & 15, mantissa);
    const size = readEscaped(r, codes >> 4, digits);
    if (price.frac !== null) {
      sides[at] = mantissa;
      sides[at + 1] = price.frac;
      sides[at + 3] = Math.min(sides[at + 3]!, trailingZeros(mantissa));
    }
    if (size.frac !== null && digits > 0) sides[at + 2] = size.frac;
    out[i] = [price.text, size.text];
  }
  return out;
}

/** A value after an escape byte's nibble: its fraction digits (0–14 direct, or tagged), or text. */
function readEscaped(r: Reader, code: number, mantissa: number): { text: string; frac: number | null } {
  const frac = readFrac(r, code);
  if (frac === null) return { text: r.str(64), frac: null };
  return { text: decimal(mantissa, frac), frac };
}

function decimal(mantissa: number, frac: number): string {
  if (!Number.isSafeInteger(mantissa) || mantissa < 0 || frac > 64) throw new RangeError("bad decimal");
  return joinDecimal(mantissa, frac);
}
