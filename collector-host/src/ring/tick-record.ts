// Fixed-size binary tick records (128 bytes) carried by the SPSC ring from an exchange thread to
// the publisher.
//
// Decimal strings travel as fixed-width ASCII fields (32 bytes for price, 32 for size, 40 for a
// trade id), each with a one-byte length. Chosen over a mantissa/exponent encoding because the
// book must reproduce the exchange's exact spelling ("0.000022900", trailing zeros included) and
// over a side string table because a table needs its own allocation and garbage collection
// across threads. 32 characters covers every price and size the three exchanges send (the
// longest in the fixtures is 16); longer strings are rejected by the adapters as malformed.
//
//   0  u8   kind            1  u8  side (0 bid/buy, 1 ask/sell)
//   2  u8   price length    3  u8  size length
//   4  u16  symbol index    6  u8  id length        7 u8 reserved
//   8  f64  exchange time (ms since epoch; trades)  16 f64 producer stamp (performance.now())
//   24 price[32]   56 size[32]   88 id / reason[40]
//
// Fields are read and written through typed arrays over the ring (host byte order) rather than a
// DataView: the buffer never leaves this process, and typed-array element access costs half of
// DataView's in the producer's per-tick budget (bench/collector.bench.ts, "where the time goes").

export const RECORD_SIZE = 128;
export const MAX_DECIMAL_CHARS = 32;
export const MAX_ID_CHARS = 40;

export const KIND_LEVEL = 1;
export const KIND_SNAPSHOT_BEGIN = 2;
export const KIND_SNAPSHOT_END = 3;
export const KIND_INVALID = 4;
export const KIND_TRADE = 5;

const OFF_PRICE = 24;
const OFF_SIZE = 56;
const OFF_ID = 88;

/** Views over one ring's memory (record offsets are multiples of 8, so every field is aligned). */
export interface RecordViews {
  /** The whole ring as a Buffer (no copy): its latin1 decoding is the fastest way to read the ASCII fields. */
  readonly bytes: Buffer;
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
  readonly f64: Float64Array;
}

/**
 * Writes a validated decimal string (ASCII digits and '.', at most 32 characters) four
 * characters per 32-bit store: a quarter of the bounds-checked stores of a byte loop, which makes
 * this the cheapest way from a JS string into shared memory (Buffer.latin1Write and
 * TextEncoder.encodeInto cost a native call each, several times a whole record). Bytes past the
 * string's end inside its last word are zero; the length byte bounds every read.
 */
function writeDecimal(u32: Uint32Array, at: number, text: string): number {
  const n = Math.min(text.length, MAX_DECIMAL_CHARS);
  let word = at >> 2;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    u32[word++] =
      text.charCodeAt(i) |
      (text.charCodeAt(i + 1) << 8) |
      (text.charCodeAt(i + 2) << 16) |
      (text.charCodeAt(i + 3) << 24);
  }
  if (i < n) {
    let tail = 0;
    for (let shift = 0; i < n; i++, shift += 8) tail |= text.charCodeAt(i) << shift;
    u32[word] = tail;
  }
  return n;
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
  const bytes = r.bytes;
  bytes[offset] = kind;
  bytes[offset + 1] = side;
  bytes[offset + 2] = writeDecimal(r.u32, offset + OFF_PRICE, price);
  bytes[offset + 3] = writeDecimal(r.u32, offset + OFF_SIZE, size);
  r.u16[(offset + 4) >> 1] = symbol;
  bytes[offset + 6] = id.length === 0 ? 0 : writeText(bytes, offset + OFF_ID, id, MAX_ID_CHARS);
  r.f64[(offset + 8) >> 3] = ts;
  r.f64[(offset + 16) >> 3] = stamp;
}

export const recordKind = (r: RecordViews, offset: number): number => r.bytes[offset]!;
export const recordSide = (r: RecordViews, offset: number): number => r.bytes[offset + 1]!;
export const recordSymbol = (r: RecordViews, offset: number): number => r.u16[(offset + 4) >> 1]!;
export const recordTs = (r: RecordViews, offset: number): number => r.f64[(offset + 8) >> 3]!;
export const recordStamp = (r: RecordViews, offset: number): number => r.f64[(offset + 16) >> 3]!;
export const recordPrice = (r: RecordViews, offset: number): string =>
  readAscii(r.bytes, offset + OFF_PRICE, r.bytes[offset + 2]!);
export const recordSize = (r: RecordViews, offset: number): string =>
  readAscii(r.bytes, offset + OFF_SIZE, r.bytes[offset + 3]!);
export const recordId = (r: RecordViews, offset: number): string =>
  readAscii(r.bytes, offset + OFF_ID, r.bytes[offset + 6]!);
