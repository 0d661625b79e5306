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

/** Writes ASCII `text` (already validated as fitting) without allocating. */
function writeAscii(bytes: Uint8Array, at: number, text: string, max: number): number {
  const n = Math.min(text.length, max);
  for (let i = 0; i < n; i++) bytes[at + i] = text.charCodeAt(i);
  return n;
}

function readAscii(bytes: Buffer, at: number, len: number): string {
  return len === 0 ? "" : bytes.toString("latin1", at, at + len);
}

/** Encodes records into a ring slot. */
export function writeRecord(
  bytes: Uint8Array,
  view: DataView,
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
  bytes[offset] = kind;
  bytes[offset + 1] = side;
  bytes[offset + 2] = writeAscii(bytes, offset + OFF_PRICE, price, MAX_DECIMAL_CHARS);
  bytes[offset + 3] = writeAscii(bytes, offset + OFF_SIZE, size, MAX_DECIMAL_CHARS);
  view.setUint16(offset + 4, symbol, true);
  bytes[offset + 6] = writeAscii(bytes, offset + OFF_ID, id, MAX_ID_CHARS);
  view.setFloat64(offset + 8, ts, true);
  view.setFloat64(offset + 16, stamp, true);
}

export const recordKind = (bytes: Uint8Array, offset: number): number => bytes[offset]!;
export const recordSide = (bytes: Uint8Array, offset: number): number => bytes[offset + 1]!;
export const recordSymbol = (view: DataView, offset: number): number => view.getUint16(offset + 4, true);
export const recordTs = (view: DataView, offset: number): number => view.getFloat64(offset + 8, true);
export const recordStamp = (view: DataView, offset: number): number => view.getFloat64(offset + 16, true);
export const recordPrice = (bytes: Buffer, offset: number): string =>
  readAscii(bytes, offset + OFF_PRICE, bytes[offset + 2]!);
export const recordSize = (bytes: Buffer, offset: number): string =>
  readAscii(bytes, offset + OFF_SIZE, bytes[offset + 3]!);
export const recordId = (bytes: Buffer, offset: number): string =>
  readAscii(bytes, offset + OFF_ID, bytes[offset + 6]!);
