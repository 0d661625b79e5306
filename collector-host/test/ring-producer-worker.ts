// Worker used by ring.test.ts: writes `count` level records whose price is the sequence number.
import { workerData } from "node:worker_threads";
import { RingSink } from "../src/ring/ring-sink.ts";
import { RingProducer } from "../src/ring/spsc-ring.ts";
import { RECORD_SIZE } from "../src/ring/tick-record.ts";

const { ring, from, count, batch } = workerData as {
  ring: SharedArrayBuffer;
  from: number;
  count: number;
  batch: number;
};
const sink = new RingSink(new RingProducer(ring, RECORD_SIZE));
for (let i = from; i < from + count; i++) {
  sink.level(i % 7, i % 2 === 0 ? 0 : 1, String(i), `${i}.00000001`);
  if ((i + 1) % batch === 0) sink.commit();
}
sink.commit();
