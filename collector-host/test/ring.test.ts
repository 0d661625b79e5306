import { Worker } from "node:worker_threads";
import { describe, expect, it } from "vitest";
import { RingSink } from "../src/ring/ring-sink.ts";
import { createRingBuffer, RingConsumer, RingProducer } from "../src/ring/spsc-ring.ts";
import {
  KIND_LEVEL,
  KIND_TRADE,
  RECORD_SIZE,
  recordId,
  recordKind,
  recordPrice,
  recordSide,
  recordSize,
  recordSymbol,
  recordTs,
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
        const price = recordPrice(consumer.bytes, at);
        if (
          recordKind(consumer.bytes, at) !== KIND_LEVEL ||
          price !== String(next) ||
          recordSize(consumer.bytes, at) !== `${next}.00000001` ||
          recordSymbol(consumer.view, at) !== next % 7
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
    consumer.drain((at) => prices.push(recordPrice(consumer.bytes, at)));
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
      expect(recordKind(consumer.bytes, at)).toBe(KIND_TRADE);
      expect(recordSymbol(consumer.view, at)).toBe(513);
      expect(recordSide(consumer.bytes, at)).toBe(1);
      expect(recordPrice(consumer.bytes, at)).toBe("0.000022900");
      expect(recordSize(consumer.bytes, at)).toBe("1044947.00000000");
      expect(recordId(consumer.bytes, at)).toBe("1618678133.123456-12");
      expect(recordTs(consumer.view, at)).toBe(1_618_678_133_123);
    });
  });

  it("rejects capacities that are not a power of two", () => {
    expect(() => createRingBuffer(100, RECORD_SIZE)).toThrow(/power of two/);
  });
});
