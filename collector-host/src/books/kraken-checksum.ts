import { crc32 } from "node:zlib";
import type { OrderBook } from "./order-book.ts";

// Kraken's book checksum: CRC32 over the top 10 asks (ascending) then the top 10 bids
// (descending), each level as price then volume with "." removed and leading zeros stripped.
// https://docs.kraken.com/api/docs/guides/spot-ws-book-v1 ("Calculate checksum").

// Prices and volumes repeat constantly in the top 10, so their stripped forms are memoized.
const stripped = new Map<string, string>();

function strip(value: string): string {
  const hit = stripped.get(value);
  if (hit !== undefined) return hit;
  const noDot = value.replace(".", "");
  let i = 0;
  while (i < noDot.length && noDot.charCodeAt(i) === 48) i++;
  const out = i === 0 ? noDot : noDot.slice(i);
  if (stripped.size > 100_000) stripped.clear();
  stripped.set(value, out);
  return out;
}

/** The unsigned CRC32 Kraken computes for the book's current top 10 levels. */
export function krakenChecksum(book: OrderBook): number {
  let text = "";
  const asks = book.asks;
  for (let i = 0; i < 10 && i < asks.prices.length; i++) text += strip(asks.prices[i]!) + strip(asks.sizes[i]!);
  const bids = book.bids;
  for (let i = 0; i < 10 && i < bids.prices.length; i++) text += strip(bids.prices[i]!) + strip(bids.sizes[i]!);
  return crc32(text) >>> 0;
}
