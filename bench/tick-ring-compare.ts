// Tick ring before → after in one run: `node bench/tick-ring-compare.ts [<baseline rev>]` (default
// 04bd392^, the ring before issue 11's rework) runs the same two-thread throughput harness over
// the ring and record code of the baseline revision (its two files, from git) and of this working
// tree, alternately (BENCH_ROUNDS, default 6), 5M ticks each, and prints medians and ratios. On a
// shared VM only such alternating runs show what a change did; the load average is printed.
//
// The producer is an exchange thread's pattern (varied prices and sizes, one clock read and one
// commit per 64 records); each consumer is its revision's own: the old ring's callback drain()
// with a 1 ms Atomics.wait when empty, the new one's batched available()/release() with a 200 µs
// poll before parking (BENCH_SPIN_US).
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { isMainThread, parentPort, Worker, workerData } from "node:worker_threads";
import { ROOT } from "../scripts/local.ts";
import { median } from "./stats.ts";

interface Job {
  role: "producer" | "consumer";
  dir: string;
  ring: SharedArrayBuffer;
  sync: SharedArrayBuffer;
  count: number;
}

/** The new consumer's poll before parking (BENCH_SPIN_US, default 200). */
const SPIN_US = Number(process.env.BENCH_SPIN_US ?? 200);
const PRICES = Array.from({ length: 1024 }, (_, i) => (296.58 + i / 100).toFixed(8));
const SIZES = Array.from({ length: 1024 }, (_, i) => (1.4 + i / 7).toFixed(8));
const cpuMs = () => {
  const t = process.threadCpuUsage();
  return (t.user + t.system) / 1000;
};

// Both revisions' APIs, loosely typed: the baseline's shapes are not this tree's.
// biome-ignore lint/suspicious/noExplicitAny: two revisions of one module
type Module = any;

async function work(job: Job): Promise<void> {
  const ring: Module = await import(path.join(job.dir, "spsc-ring.ts"));
  const rec: Module = await import(path.join(job.dir, "tick-record.ts"));
  const sync = new Int32Array(job.sync);
  if (job.role === "producer") {
    const p = new ring.RingProducer(job.ring, 128);
    // The baseline wrote through (bytes, DataView, offset, …); the new code through (views, offset, …).
    const oldApi = rec.writeRecord.length === 11;
    while (Atomics.load(sync, 0) === 0) {
      // wait for the consumer
    }
    const c0 = cpuMs();
    let t = performance.now();
    for (let i = 0; i < job.count; i++) {
      if (oldApi) rec.writeRecord(p.bytes, p.view, p.claim(), 1, 0, i & 7, PRICES[i & 1023], SIZES[i & 1023], "", 0, t);
      else rec.writeRecord(p, p.claim(), 1, 0, i & 7, PRICES[i & 1023], SIZES[i & 1023], "", 0, t);
      if ((i & 63) === 63) {
        p.commit();
        t = performance.now();
      }
    }
    p.commit();
    parentPort!.postMessage({ cpuMs: cpuMs() - c0 });
    return;
  }
  const c = new ring.RingConsumer(job.ring, 128);
  let n = 0;
  let check = 0;
  Atomics.store(sync, 0, 1);
  const t0 = performance.now();
  const c0 = cpuMs();
  if (typeof c.available === "function") {
    while (n < job.count) {
      let ready = c.available();
      if (ready === 0) {
        c.waitSync(50, SPIN_US);
        ready = c.available();
      }
      for (let i = 0; i < ready; i++) {
        const at = c.offsetOf(i);
        check += rec.recordKind(c, at) + rec.recordSymbol(c, at);
      }
      c.release(ready);
      n += ready;
    }
  } else {
    const bytes = c.bytes;
    const view = c.view;
    while (n < job.count) {
      if (c.size() === 0) c.waitSync(1);
      n += c.drain((at: number) => {
        check += rec.recordKind(bytes, at) + rec.recordSymbol(view, at);
      });
    }
  }
  parentPort!.postMessage({ ms: performance.now() - t0, cpuMs: cpuMs() - c0, check });
}

if (!isMainThread) {
  void work(workerData as Job);
} else {
  const baseline = process.argv[2] ?? "04bd392^";
  const dirs = {
    baseline: mkdtempSync(path.join(os.tmpdir(), "edgepulse-ring-baseline-")),
    current: path.join(ROOT, "collector-host", "src", "ring"),
  };
  for (const file of ["spsc-ring.ts", "tick-record.ts"]) {
    const text = execFileSync("git", ["show", `${baseline}:collector-host/src/ring/${file}`], { cwd: ROOT });
    writeFileSync(path.join(dirs.baseline, file), text);
  }
  const spawn = (job: Job) =>
    new Promise<{ ms?: number; cpuMs: number }>((resolve, reject) => {
      const w = new Worker(new URL(import.meta.url), { workerData: job });
      w.once("message", resolve);
      w.once("error", reject);
    });
  const count = 5_000_000;
  const rounds = Number(process.env.BENCH_ROUNDS ?? 6);
  const load = () =>
    os
      .loadavg()
      .map((l) => l.toFixed(1))
      .join(" ");
  console.log(`tick ring: ${baseline} vs working tree, ${rounds} alternating rounds; load average ${load()}`);
  const results = { baseline: [] as number[][], current: [] as number[][] };
  for (let r = 0; r < rounds; r++) {
    for (const which of r % 2 ? (["current", "baseline"] as const) : (["baseline", "current"] as const)) {
      // 64k records as the collector's default, laid out by the revision's own code.
      const ring: SharedArrayBuffer = (
        (await import(path.join(dirs[which], "spsc-ring.ts"))) as Module
      ).createRingBuffer(65_536, 128);
      const sync = new SharedArrayBuffer(64);
      const job = { dir: dirs[which], ring, sync, count };
      const [consumer, producer] = await Promise.all([
        spawn({ ...job, role: "consumer" }),
        spawn({ ...job, role: "producer" }),
      ]);
      results[which].push([
        count / consumer.ms! / 1000,
        count / Math.max(consumer.cpuMs, producer.cpuMs) / 1000,
        (producer.cpuMs * 1e6) / count,
      ]);
    }
  }
  const col = (which: keyof typeof results, i: number) => median(results[which].map((row) => row[i]!));
  for (const which of ["baseline", "current"] as const) {
    console.log(
      `  ${which.padEnd(8)} wall ${col(which, 0).toFixed(2)}M ticks/s (runs ${results[which].map((row) => row[0]!.toFixed(2)).join(" ")})   per CPU-second ${col(which, 1).toFixed(2)}M   producer ${col(which, 2).toFixed(1)} ns/tick`,
    );
  }
  console.log(
    `  current / baseline: wall ×${(col("current", 0) / col("baseline", 0)).toFixed(2)}, per CPU-second ×${(col("current", 1) / col("baseline", 1)).toFixed(2)}, producer ns/tick ×${(col("current", 2) / col("baseline", 2)).toFixed(2)}; load average ${load()}`,
  );
}
