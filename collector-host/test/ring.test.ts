import { Worker } from "node:worker_threads";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { RingSink } from "../src/ring/ring-sink.ts";
import { createRingBuffer, RING_HEADER_BYTES, RingConsumer, RingProducer } from "../src/ring/spsc-ring.ts";
import {
  KIND_LEVEL,
  KIND_TRADE,
  RECORD_SIZE,
  recordId,
  recordKind,
  recordPrice,
  recordSide,
  recordSize,
  recordStamp,
  recordSymbol,
  recordTs,
  writeRecord,
} from "../src/ring/tick-record.ts";

function runProducer(ring: SharedArrayBuffer, from: number, count: number, batch = 16): Promise<number> {
  const worker = new Worker(new URL("./ring-producer-worker.ts", import.meta.url), {
    workerData: { ring, from, count, batch },
  });
  return new Promise((resolve, reject) => {
    worker.once("error", reject);
    worker.once("exit", resolve);
  });
}

describe("SPSC ring on a SharedArrayBuffer", { timeout: 60_000 }, () => {
  it("carries records across threads in order, without loss, through wrap-around and a full ring", async () => {
    const ring = createRingBuffer(64, RECORD_SIZE); // tiny: the producer must wait for the consumer
    const consumer = new RingConsumer(ring, RECORD_SIZE);
    const total = 20_000;
    const done = runProducer(ring, 0, total);
    let next = 0;
    let ok = true;
    while (next < total) {
      consumer.drain((at) => {
        const price = recordPrice(consumer, at);
        if (
          recordKind(consumer, at) !== KIND_LEVEL ||
          price !== String(next) ||
          recordSize(consumer, at) !== `${next}.00000001` ||
          recordSymbol(consumer, at) !== next % 7
        )
          ok = false;
        next++;
      });
      await consumer.waitForData(100);
    }
    expect(await done).toBe(0);
    expect(ok).toBe(true);
    expect(next).toBe(total);
    expect(consumer.size()).toBe(0);
  });

  it("a blocking consumer (spin, then Atomics.wait) reading in batches gets every record once, in order", async () => {
    const ring = createRingBuffer(64, RECORD_SIZE);
    const consumer = new RingConsumer(ring, RECORD_SIZE);
    const total = 20_000;
    const done = runProducer(ring, 0, total, 7);
    const prices: number[] = [];
    let spinsLeft = 200; // alternate: some waits park at once, some poll first
    while (prices.length < total) {
      if (consumer.available() === 0) consumer.waitSync(100, spinsLeft-- > 0 ? 50 : 0);
      const n = consumer.available(13);
      for (let i = 0; i < n; i++) prices.push(Number(recordPrice(consumer, consumer.offsetOf(i))));
      consumer.release(n);
      if (spinsLeft < -200) spinsLeft = 200;
    }
    expect(await done).toBe(0);
    expect(prices.every((p, i) => p === i)).toBe(true);
    expect(consumer.size()).toBe(0);
  });

  it("a restarted producer continues after the last published record", async () => {
    const ring = createRingBuffer(1024, RECORD_SIZE);
    const consumer = new RingConsumer(ring, RECORD_SIZE);
    await runProducer(ring, 0, 100);
    // A producer that claims but never commits (crash mid-message) leaves nothing visible.
    const crashed = new RingProducer(ring, RECORD_SIZE);
    crashed.tryClaim();
    crashed.tryClaim();
    await runProducer(ring, 100, 100);
    const prices: string[] = [];
    consumer.drain((at) => prices.push(recordPrice(consumer, at)));
    expect(prices).toEqual(Array.from({ length: 200 }, (_, i) => String(i)));
  });

  it("encodes every field of a trade record exactly", () => {
    const ring = createRingBuffer(64, RECORD_SIZE);
    const sink = new RingSink(new RingProducer(ring, RECORD_SIZE));
    const consumer = new RingConsumer(ring, RECORD_SIZE);
    sink.trade(513, "1618678133.123456-12", "0.000022900", "1044947.00000000", 1, 1_618_678_133_123);
    expect(consumer.drain(() => {})).toBe(0); // not visible before commit
    sink.commit();
    consumer.drain((at) => {
      expect(recordKind(consumer, at)).toBe(KIND_TRADE);
      expect(recordSymbol(consumer, at)).toBe(513);
      expect(recordSide(consumer, at)).toBe(1);
      expect(recordPrice(consumer, at)).toBe("0.000022900");
      expect(recordSize(consumer, at)).toBe("1044947.00000000");
      expect(recordId(consumer, at)).toBe("1618678133.123456-12");
      expect(recordTs(consumer, at)).toBe(1_618_678_133_123);
    });
  });

  it("rejects capacities that are not a power of two", () => {
    expect(() => createRingBuffer(100, RECORD_SIZE)).toThrow(/power of two/);
  });

  it("a model check: any interleaving of claims, commits and batched reads delivers every record once, in order, and never overruns", () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant("write" as const), n: fc.integer({ min: 1, max: 20 }) }),
      fc.record({ kind: fc.constant("commit" as const) }),
      fc.record({ kind: fc.constant("read" as const), max: fc.integer({ min: 1, max: 20 }) }),
    );
    fc.assert(
      fc.property(
        fc.constantFrom(2, 4, 8, 16),
        // Free-running counters start anywhere, including just before the 32-bit wrap.
        fc.oneof(fc.constant(0), fc.constant(0x7fff_fff0), fc.constant(-5), fc.integer()),
        fc.array(op, { maxLength: 200 }),
        (capacity, start, ops) => {
          const ring = createRingBuffer(capacity, RECORD_SIZE);
          const header = new Int32Array(ring, 0, RING_HEADER_BYTES / 4);
          header.fill(0);
          Atomics.store(header, 0, start); // head
          Atomics.store(header, 32, start); // tail
          const producer = new RingProducer(ring, RECORD_SIZE);
          const consumer = new RingConsumer(ring, RECORD_SIZE);
          let written = 0; // claimed
          let committed = 0;
          let read = 0;
          for (const o of ops) {
            if (o.kind === "write") {
              for (let i = 0; i < o.n; i++) {
                const at = producer.tryClaim();
                // Full exactly when every slot holds a claimed, unread record.
                expect(at < 0).toBe(written - read === capacity);
                if (at < 0) break;
                writeRecord(producer, at, KIND_LEVEL, 0, written % 65_536, String(written), "1", "", 0, written);
                written++;
              }
            } else if (o.kind === "commit") {
              producer.commit();
              committed = written;
            } else {
              const n = consumer.available(o.max);
              expect(n).toBe(Math.min(o.max, committed - read));
              for (let i = 0; i < n; i++) {
                const at = consumer.offsetOf(i);
                expect(recordStamp(consumer, at)).toBe(read + i);
                expect(recordPrice(consumer, at)).toBe(String(read + i));
              }
              consumer.release(n);
              read += n;
            }
            expect(consumer.size()).toBe(committed - read);
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it("decimal (up to 32 characters, past the first cache line), id and numeric fields of levels and trades survive any content and slot reuse", () => {
    const decimal = fc.stringMatching(/^\d{1,16}(\.\d{1,15})?$/);
    const ring = createRingBuffer(4, RECORD_SIZE);
    const producer = new RingProducer(ring, RECORD_SIZE);
    const consumer = new RingConsumer(ring, RECORD_SIZE);
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            kind: fc.constantFrom(KIND_LEVEL, KIND_TRADE),
            price: fc.oneof(decimal, fc.constant("")),
            size: fc.oneof(decimal, fc.constant("")),
            id: fc.string({ unit: fc.integer({ min: 0x20, max: 0x7e }).map(String.fromCharCode), maxLength: 40 }),
            symbol: fc.integer({ min: 0, max: 65_535 }),
            ts: fc.double({ noNaN: true }),
          }),
          { minLength: 1, maxLength: 4 },
        ),
        (records) => {
          // Slots are reused with different lengths and kinds: a shorter string must not read a longer
          // one's tail, and a level (no id, no time: its second cache line untouched) not a trade's.
          for (const r of records) {
            const level = r.kind === KIND_LEVEL;
            writeRecord(
              producer,
              producer.claim(),
              r.kind,
              1,
              r.symbol,
              r.price,
              r.size,
              level ? "" : r.id,
              level ? 0 : r.ts,
              7,
            );
          }
          producer.commit();
          let i = 0;
          consumer.drain((at) => {
            const r = records[i++]!;
            const level = r.kind === KIND_LEVEL;
            expect(recordKind(consumer, at)).toBe(r.kind);
            expect(recordSide(consumer, at)).toBe(1);
            expect(recordSymbol(consumer, at)).toBe(r.symbol);
            expect(recordPrice(consumer, at)).toBe(r.price);
            expect(recordSize(consumer, at)).toBe(r.size);
            expect(recordId(consumer, at)).toBe(level ? "" : r.id);
            expect(Object.is(recordTs(consumer, at), level ? 0 : r.ts)).toBe(true);
            expect(recordStamp(consumer, at)).toBe(7);
          });
          expect(i).toBe(records.length);
        },
      ),
      { numRuns: 300 },
    );
  });
});
