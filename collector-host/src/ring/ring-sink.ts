import type { FeedSink, SideCode } from "../exchanges/types.ts";
import type { RingProducer } from "./spsc-ring.ts";
import {
  KIND_INVALID,
  KIND_LEVEL,
  KIND_SNAPSHOT_BEGIN,
  KIND_SNAPSHOT_END,
  KIND_TRADE,
  MAX_ID_CHARS,
  writeRecord,
} from "./tick-record.ts";

/** The production FeedSink: every call is one fixed-size record in the exchange's ring. */
export class RingSink implements FeedSink {
  private readonly ring: RingProducer;
  constructor(ring: RingProducer) {
    this.ring = ring;
  }
  private put(kind: number, side: number, symbol: number, price: string, size: string, id: string, ts: number): void {
    const r = this.ring;
    writeRecord(r.bytes, r.view, r.claim(), kind, side, symbol, price, size, id, ts, performance.now());
  }
  snapshotBegin(symbol: number): void {
    this.put(KIND_SNAPSHOT_BEGIN, 0, symbol, "", "", "", 0);
  }
  level(symbol: number, side: SideCode, price: string, size: string): void {
    this.put(KIND_LEVEL, side, symbol, price, size, "", 0);
  }
  snapshotEnd(symbol: number): void {
    this.put(KIND_SNAPSHOT_END, 0, symbol, "", "", "", 0);
  }
  invalid(symbol: number, reason: string): void {
    this.put(KIND_INVALID, 0, symbol, "", "", reason.slice(0, MAX_ID_CHARS), 0);
  }
  trade(symbol: number, id: string, price: string, size: string, side: SideCode, ts: number): void {
    this.put(KIND_TRADE, side, symbol, price, size, id, ts);
  }
  commit(): void {
    this.ring.commit();
  }
}
