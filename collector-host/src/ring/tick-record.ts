// Fixed-size binary tick records (128 bytes) carried by the SPSC ring from an exchange thread to
// the publisher.
//
// Decimal strings travel as fixed-width ASCII fields (up to 32 characters for price and size, 40
// for a trade id), each with a one-byte length. Chosen over a mantissa/exponent encoding because
// the book must reproduce the exchange's exact spelling ("0.000022900", trailing zeros included)
// and over a side string table because a table needs its own allocation and garbage collection
// across threads. 32 characters covers every price and size the three exchanges send (the
// longest in the fixtures is 16); longer strings are rejected by the adapters as malformed.
//
// A level update, nearly every record, lives in the first 64-byte cache line: the producer writes
// and the consumer reads one line per record, not two, and the cross-core traffic of a record is
// halved. The second line holds what only trades need (id, exchange time) and the characters past
// the 24th of a longer decimal.
//
//   line 0:  0 u8 kind   1 u8 side (0 bid/buy, 1 ask/sell)   2 u8 price length   3 u8 size length
//            4 u16 symbol index   6 u8 id length   7 u8 second line written (id / time)
//            8 f64 producer stamp (performance.now())   16 price[0..24)   40 size[0..24)
//   line 1: 64 price[24..32)   72 size[24..32)   80 id / reason[40]   120 f64 exchange time (trades)
//
// Fields are read and written through typed arrays over the ring (host byte order) rather than a
// DataView: the buffer never leaves this process, and typed-array element access costs half of
// DataView's in the producer's per-tick budget (bench/tick-ring.ts, "where the time goes").

export const RECORD_SIZE = 128;
export const MAX_DECIMAL_CHARS = 32;
export const MAX_ID_CHARS = 40;

export const KIND_LEVEL = 1;
export const KIND_SNAPSHOT_BEGIN = 2;
export const KIND_SNAPSHOT_END = 3;
export const KIND_INVALID = 4;
export const KIND_TRADE = 5;

/** Characters of a decimal kept in the first cache line; the rest (up to MAX_DECIMAL_CHARS) in the second. */
const INLINE_CHARS = 24;
const OFF_STAMP = 8;
const OFF_PRICE = 16;
const OFF_SIZE = 40;
const OFF_PRICE_TAIL = 64;
const OFF_SIZE_TAIL = 72;
const OFF_ID = 80;
const OFF_TS = 120;

/** Views over one ring's memory (record offsets are multiples of 8, so every field is aligned). */
export interface RecordViews {
  /** The whole ring as a Buffer (no copy): its latin1 decoding is the fastest way to read the ASCII fields. */
  readonly bytes: Buffer;
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
  readonly f64: Float64Array;
}

// Characters and header bytes are packed into 32-bit words low byte first and read back as bytes.
if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) throw new Error("tick records need a little-endian host");

/** Packs `text[from, to)` into consecutive 32-bit words from `word` (`from` and `word` 4-aligned); zero past the end of the last word. */
function packAscii(u32: Uint32Array, word: number, text: string, from: number, to: number): void {
  let i = from;
  for (; i + 4 <= to; i += 4) {
    u32[word++] =
      text.charCodeAt(i) |
      (text.charCodeAt(i + 1) << 8) |
      (text.charCodeAt(i + 2) << 16) |
      (text.charCodeAt(i + 3) << 24);
  }
  if (i < to) {
    let tail = 0;
    for (let shift = 0; i < to; i++, shift += 8) tail |= text.charCodeAt(i) << shift;
    u32[word] = tail;
  }
}

/**
 * Writes a validated decimal string (ASCII digits and '.', at most 32 characters) four
 * characters per 32-bit store: a quarter of the bounds-checked stores of a byte loop, which makes
 * this the cheapest way from a JS string into shared memory (Buffer.latin1Write and
 * TextEncoder.encodeInto cost a native call each, several times a whole record). The first 24
 * characters go to `at`, any further ones to `tailAt`; the length byte bounds every read.
 */
function writeDecimal(u32: Uint32Array, at: number, tailAt: number, text: string): number {
  const n = Math.min(text.length, MAX_DECIMAL_CHARS);
  packAscii(u32, at >> 2, text, 0, Math.min(n, INLINE_CHARS));
  if (n > INLINE_CHARS) packAscii(u32, tailAt >> 2, text, INLINE_CHARS, n);
  return n;
}

function readDecimal(bytes: Buffer, at: number, tailAt: number, len: number): string {
  if (len <= INLINE_CHARS) return readAscii(bytes, at, len);
  return (
    bytes.toString("latin1", at, at + INLINE_CHARS) + bytes.toString("latin1", tailAt, tailAt + len - INLINE_CHARS)
  );
}

/** Writes any text byte by byte (ids and reasons: not validated as ASCII; each char keeps its low byte), truncated to `max`. */
function writeText(bytes: Uint8Array, at: number, text: string, max: number): number {
  const n = Math.min(text.length, max);
  for (let i = 0; i < n; i++) bytes[at + i] = text.charCodeAt(i);
  return n;
}

function readAscii(bytes: Buffer, at: number, len: number): string {
  return len === 0 ? "" : bytes.toString("latin1", at, at + len);
}

/**
 * Encodes one record into a ring slot. `price` and `size` must be validated decimals of at most
 * MAX_DECIMAL_CHARS (the adapters check; validated-books.ts), or empty.
 */
export function writeRecord(
  r: RecordViews,
  offset: number,
  kind: number,
  side: number,
  symbol: number,
  price: string,
  size: string,
  id: string,
  ts: number,
  stamp: number,
): void {
  const u32 = r.u32;
  const priceLength = writeDecimal(u32, offset + OFF_PRICE, offset + OFF_PRICE_TAIL, price);
  const sizeLength = writeDecimal(u32, offset + OFF_SIZE, offset + OFF_SIZE_TAIL, size);
  // Levels leave the second cache line alone: only trades (and invalid-book reasons) have an id
  // or a time; byte 7 says whether they were written.
  let idLength = 0;
  let secondLine = 0;
  if (kind === KIND_TRADE || id.length > 0 || ts !== 0) {
    idLength = writeText(r.bytes, offset + OFF_ID, id, MAX_ID_CHARS);
    r.f64[(offset + OFF_TS) >> 3] = ts;
    secondLine = 1;
  }
  // The eight header bytes as two 32-bit stores (little-endian, as packAscii's characters) instead
  // of one store per field: the header alone went from 18.4 to 15.4 ns a record, and the producer
  // from 74 to 66 ns a tick in the two-thread harness (README "Tick ring", twelfth session).
  u32[offset >> 2] = kind | (side << 8) | (priceLength << 16) | (sizeLength << 24);
  u32[(offset + 4) >> 2] = (symbol & 0xffff) | (idLength << 16) | (secondLine << 24);
  r.f64[(offset + OFF_STAMP) >> 3] = stamp;
}

export const recordKind = (r: RecordViews, offset: number): number => r.bytes[offset]!;
export const recordSide = (r: RecordViews, offset: number): number => r.bytes[offset + 1]!;
export const recordSymbol = (r: RecordViews, offset: number): number => r.u16[(offset + 4) >> 1]!;
/** The exchange time (trades); 0 when the record carried none. */
export const recordTs = (r: RecordViews, offset: number): number =>
  r.bytes[offset + 7] === 0 ? 0 : r.f64[(offset + OFF_TS) >> 3]!;
export const recordStamp = (r: RecordViews, offset: number): number => r.f64[(offset + OFF_STAMP) >> 3]!;
export const recordPrice = (r: RecordViews, offset: number): string =>
  readDecimal(r.bytes, offset + OFF_PRICE, offset + OFF_PRICE_TAIL, r.bytes[offset + 2]!);
export const recordSize = (r: RecordViews, offset: number): string =>
  readDecimal(r.bytes, offset + OFF_SIZE, offset + OFF_SIZE_TAIL, r.bytes[offset + 3]!);
export const recordId = (r: RecordViews, offset: number): string =>
  readAscii(r.bytes, offset + OFF_ID, r.bytes[offset + 6]!);
