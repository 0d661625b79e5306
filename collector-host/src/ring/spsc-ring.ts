// Lock-free single-producer/single-consumer ring of fixed-size records on a SharedArrayBuffer.
//
// Layout: a 256-byte header of Int32 slots (head, tail and the two "waiting" flags each on their
// own 64-byte cache line so producer and consumer never write the same line), then `capacity`
// records of `recordSize` bytes. `head` and `tail` are free-running 32-bit counters; the slot is
// `counter & (capacity - 1)`, so capacity must be a power of two. The producer writes a record
// in place and then publishes it with one Atomics.store of `head` (release); the consumer reads
// `head` with Atomics.load (acquire), reads the records, then publishes `tail`. Neither side
// takes a lock or allocates per record, and both batch their index stores.
//
// Waiting without spinning: a consumer on an event loop (the publisher) sets CONSUMER_WAITING
// and sleeps in Atomics.waitAsync on `head`; the producer notifies only when that flag is set, so
// the common path costs one extra Atomics.load. A producer (worker thread) that finds the ring
// full sleeps in Atomics.wait on `tail` the same way.

const HEAD = 0;
const TAIL = 16;
const CONSUMER_WAITING = 32;
const PRODUCER_WAITING = 48;
export const RING_HEADER_BYTES = 256;

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

abstract class RingView {
  readonly header: Int32Array;
  /** The whole ring as a Buffer (a view, no copy): Buffer's latin1 decoding is the fastest way to read the ASCII fields. */
  readonly bytes: Buffer;
  readonly view: DataView;
  readonly capacity: number;
  readonly recordSize: number;
  protected readonly mask: number;

  constructor(sab: SharedArrayBuffer, recordSize: number) {
    this.header = new Int32Array(sab, 0, RING_HEADER_BYTES / 4);
    this.bytes = Buffer.from(sab);
    this.view = new DataView(sab);
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

  /** Like tryClaim, but publishes what is staged and sleeps until the consumer frees a slot. */
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
    if (Atomics.load(this.header, CONSUMER_WAITING) !== 0) Atomics.notify(this.header, HEAD);
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
   * Hands every available record's byte offset to `onRecord` (up to `max`), then releases them
   * with one store. Returns how many were consumed.
   */
  drain(onRecord: (offset: number) => void, max = this.capacity): number {
    const head = Atomics.load(this.header, HEAD);
    let n = (head - this.tail) | 0;
    if (n <= 0) return 0;
    if (n > max) n = max;
    for (let i = 0; i < n; i++) {
      onRecord(RING_HEADER_BYTES + ((this.tail + i) & this.mask) * this.recordSize);
    }
    this.tail = (this.tail + n) | 0;
    Atomics.store(this.header, TAIL, this.tail);
    if (Atomics.load(this.header, PRODUCER_WAITING) !== 0) Atomics.notify(this.header, TAIL);
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

  /** Blocking wait for worker-thread consumers (benchmarks). */
  waitSync(timeoutMs: number): void {
    const seen = this.tail;
    Atomics.store(this.header, CONSUMER_WAITING, 1);
    if (Atomics.load(this.header, HEAD) === seen) Atomics.wait(this.header, HEAD, seen, timeoutMs);
    Atomics.store(this.header, CONSUMER_WAITING, 0);
  }
}
