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
  // One clock read per exchange message, not per record: every record of a message was produced
  // at the same moment, and reading the clock costs as much as writing a record on some VMs.
  private stamp = -1;
  constructor(ring: RingProducer) {
    this.ring = ring;
  }
  private put(kind: number, side: number, symbol: number, price: string, size: string, id: string, ts: number): void {
    const r = this.ring;
    if (this.stamp < 0) this.stamp = performance.now();
    writeRecord(r, r.claim(), kind, side, symbol, price, size, id, ts, this.stamp);
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
    this.stamp = -1;
    this.ring.commit();
  }
}
