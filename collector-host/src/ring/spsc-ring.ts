// Lock-free single-producer/single-consumer ring of fixed-size records on a SharedArrayBuffer.
//
// Layout: a 512-byte header of Int32 slots, then `capacity` records of `recordSize` bytes. head,
// tail and the two "waiting" flags each sit 128 bytes apart: on their own 64-byte cache line and
// out of each other's adjacent-line prefetch pair, so producer and consumer never write (or drag
// along) the line the other one polls. `head` and `tail` are free-running 32-bit counters; the
// slot is `counter & (capacity - 1)`, so capacity must be a power of two. The producer writes a
// record in place and then publishes it with one Atomics.store of `head` (release); the consumer
// reads `head` with Atomics.load (acquire), reads the records, then publishes `tail`. Neither side
// takes a lock or allocates per record, and both batch their index stores: the producer commits
// once per exchange message, the consumer releases once per batch it read.
//
// Waiting: a consumer on an event loop (the publisher) sets CONSUMER_WAITING and sleeps in
// Atomics.waitAsync on `head`; the producer notifies only when that flag is set, so the common
// path costs one extra Atomics.load. A worker-thread consumer can poll for a bounded time first
// (waitSync's spinUs) since a futex wake-up costs tens of microseconds. A producer (worker thread)
// that finds the ring full sleeps in Atomics.wait on `tail` the same way.

import type { RecordViews } from "./tick-record.ts";

// Int32 indexes into the header: 128 bytes apart.
const HEAD = 0;
const TAIL = 32;
const CONSUMER_WAITING = 64;
const PRODUCER_WAITING = 96;
export const RING_HEADER_BYTES = 512;

/** Bytes of SharedArrayBuffer a ring of `capacity` records needs. */
export function ringBytes(capacity: number, recordSize: number): number {
  return RING_HEADER_BYTES + capacity * recordSize;
}

/** Allocates a ring buffer; `capacity` must be a power of two. */
export function createRingBuffer(capacity: number, recordSize: number): SharedArrayBuffer {
  if (capacity < 2 || (capacity & (capacity - 1)) !== 0) throw new Error("ring capacity must be a power of two");
  if (recordSize % 8 !== 0) throw new Error("record size must be a multiple of 8");
  return new SharedArrayBuffer(ringBytes(capacity, recordSize));
}

abstract class RingView implements RecordViews {
  readonly header: Int32Array;
  readonly bytes: Buffer;
  readonly u16: Uint16Array;
  readonly u32: Uint32Array;
  readonly f64: Float64Array;
  readonly capacity: number;
  readonly recordSize: number;
  protected readonly mask: number;

  constructor(sab: SharedArrayBuffer, recordSize: number) {
    this.header = new Int32Array(sab, 0, RING_HEADER_BYTES / 4);
    this.bytes = Buffer.from(sab);
    this.u16 = new Uint16Array(sab);
    this.u32 = new Uint32Array(sab);
    this.f64 = new Float64Array(sab);
    this.recordSize = recordSize;
    this.capacity = (sab.byteLength - RING_HEADER_BYTES) / recordSize;
    this.mask = this.capacity - 1;
  }

  /** Records written but not yet consumed (occupancy). */
  size(): number {
    return (Atomics.load(this.header, HEAD) - Atomics.load(this.header, TAIL)) | 0;
  }
}

/** The producing side; exactly one thread may own it at a time. */
export class RingProducer extends RingView {
  private head: number;
  private cachedTail: number;
  /** Times the producer found the ring full and had to wait. */
  stalls = 0;

  constructor(sab: SharedArrayBuffer, recordSize: number) {
    super(sab, recordSize);
    // A restarted producer continues after the last published record; anything a crashed
    // predecessor wrote but never published is simply overwritten.
    this.head = Atomics.load(this.header, HEAD);
    this.cachedTail = Atomics.load(this.header, TAIL);
  }

  /** Byte offset of the next free slot (advances the private head), or -1 when the ring is full. */
  tryClaim(): number {
    if (((this.head - this.cachedTail) | 0) >= this.capacity) {
      this.cachedTail = Atomics.load(this.header, TAIL);
      if (((this.head - this.cachedTail) | 0) >= this.capacity) return -1;
    }
    const offset = RING_HEADER_BYTES + (this.head & this.mask) * this.recordSize;
    this.head = (this.head + 1) | 0;
    return offset;
  }

  /** Like tryClaim, but publishes what is staged and sleeps until the consumer frees a slot (back-pressure). */
  claim(): number {
    let offset = this.tryClaim();
    while (offset < 0) {
      this.stalls++;
      this.commit();
      const tail = Atomics.load(this.header, TAIL);
      Atomics.store(this.header, PRODUCER_WAITING, 1);
      if (((this.head - Atomics.load(this.header, TAIL)) | 0) >= this.capacity) {
        Atomics.wait(this.header, TAIL, tail, 50);
      }
      Atomics.store(this.header, PRODUCER_WAITING, 0);
      offset = this.tryClaim();
    }
    return offset;
  }

  /** Makes every claimed record visible to the consumer (one release store) and wakes it if asleep. */
  commit(): void {
    if (this.header[HEAD] === this.head) return;
    Atomics.store(this.header, HEAD, this.head);
    // Only the commit that finds the flag set wakes the consumer, and clears the flag doing so: a
    // woken thread takes microseconds to run, and the commits meanwhile would each pay a futex
    // system call for a thread already on its way.
    if (
      Atomics.load(this.header, CONSUMER_WAITING) !== 0 &&
      Atomics.compareExchange(this.header, CONSUMER_WAITING, 1, 0) === 1
    )
      Atomics.notify(this.header, HEAD);
  }

  /** Records claimed but not yet committed. */
  get staged(): number {
    return (this.head - this.header[HEAD]!) | 0;
  }
}

/** The consuming side; exactly one thread may own it. */
export class RingConsumer extends RingView {
  private tail: number;

  constructor(sab: SharedArrayBuffer, recordSize: number) {
    super(sab, recordSize);
    this.tail = Atomics.load(this.header, TAIL);
  }

  /**
   * How many published records are ready (at most `max`), with one acquire load of `head`. Read
   * them at offsetOf(0 … n−1), then release(n). The batched form of drain(): the read loop stays
   * in the caller, where the JIT inlines the field reads instead of calling a closure per record.
   */
  available(max = this.capacity): number {
    const n = (Atomics.load(this.header, HEAD) - this.tail) | 0;
    return Math.min(n, max);
  }

  /** Byte offset of the i-th unreleased record. */
  offsetOf(i: number): number {
    return RING_HEADER_BYTES + ((this.tail + i) & this.mask) * this.recordSize;
  }

  /** Hands `n` read records' slots back to the producer (one store) and wakes it if it waits on a full ring. */
  release(n: number): void {
    if (n <= 0) return;
    this.tail = (this.tail + n) | 0;
    Atomics.store(this.header, TAIL, this.tail);
    // As in commit(): one wake-up per wait.
    if (
      Atomics.load(this.header, PRODUCER_WAITING) !== 0 &&
      Atomics.compareExchange(this.header, PRODUCER_WAITING, 1, 0) === 1
    )
      Atomics.notify(this.header, TAIL);
  }

  /**
   * Hands every available record's byte offset to `onRecord` (up to `max`), then releases them
   * with one store. Returns how many were consumed.
   */
  drain(onRecord: (offset: number) => void, max = this.capacity): number {
    const n = this.available(max);
    for (let i = 0; i < n; i++) onRecord(this.offsetOf(i));
    this.release(n);
    return n;
  }

  /** Resolves when the producer publishes something (immediately if records are waiting already). */
  async waitForData(timeoutMs: number): Promise<void> {
    const seen = this.tail;
    Atomics.store(this.header, CONSUMER_WAITING, 1);
    try {
      if (Atomics.load(this.header, HEAD) !== seen) return;
      const res = Atomics.waitAsync(this.header, HEAD, seen, timeoutMs);
      if (res.async) await res.value;
    } finally {
      Atomics.store(this.header, CONSUMER_WAITING, 0);
    }
  }

  /**
   * Blocks a worker-thread consumer until the producer publishes or `timeoutMs` passes. With
   * `spinUs` > 0 it first polls `head` for up to that long and parks in Atomics.wait only if
   * nothing came: a parked thread's wake-up is a futex round trip through the kernel (and, on a
   * VM, often a halted vCPU's), which alone exceeds a microsecond budget, while a feed that is
   * ticking delivers the next record within the spin. Returns whether records are ready.
   */
  waitSync(timeoutMs: number, spinUs = 0): boolean {
    const seen = this.tail;
    if (spinUs > 0) {
      const until = performance.now() + spinUs / 1000;
      // Reading the clock costs more than polling head: look at it every 64 polls.
      for (let polls = 1; ; polls++) {
        if (Atomics.load(this.header, HEAD) !== seen) return true;
        if ((polls & 63) === 0 && performance.now() >= until) break;
      }
    }
    Atomics.store(this.header, CONSUMER_WAITING, 1);
    if (Atomics.load(this.header, HEAD) === seen) Atomics.wait(this.header, HEAD, seen, timeoutMs);
    Atomics.store(this.header, CONSUMER_WAITING, 0);
    return Atomics.load(this.header, HEAD) !== seen;
  }
}
