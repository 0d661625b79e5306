// The tick ring's benchmark (bench/collector.bench.ts runs it first; BENCH_SECTIONS=ring alone).
//
// Throughput and latency are measured separately, because they answer different questions:
//   - throughput: the producer writes as fast as it can (committing every 64 records, as an
//     exchange message does), the consumer reads in batches and parks in Atomics.wait when the
//     ring is empty; ticks/s wall and per CPU-second of the busier thread, beside postMessage
//     between the same two worker threads;
//   - latency: the producer is paced at realistic feed rates, 10k and 100k ticks/s (the replayed
//     recordings run at 150-330 messages/s per exchange, each a few levels; a busy live feed is
//     10-100× that), and stamps every tick; at saturation the figure would be queueing delay, not
//     the path's. Three consumers: spinning, parking at once, and spinning
//     for up to 200 µs before parking (waitSync's spinUs);
//   - where the time goes: the single-thread cost of every step, the cross-core cache-line round
//     trip, a futex wake-up, and how often the scheduler takes a spinning thread off its core for
//     more than 5 µs on this (shared, 2-vCPU) machine, which bounds any p99 from below.
import os from "node:os";
import { isMainThread, MessageChannel, type MessagePort, parentPort, Worker, workerData } from "node:worker_threads";
import {
  createRingBuffer,
  RING_HEADER_BYTES,
  RingConsumer,
  RingProducer,
} from "../collector-host/src/ring/spsc-ring.ts";
import {
  KIND_LEVEL,
  RECORD_SIZE,
  recordKind,
  recordPrice,
  recordSize,
  recordStamp,
  recordSymbol,
  writeRecord,
} from "../collector-host/src/ring/tick-record.ts";
import { median } from "./stats.ts";

type ConsumerWait = "spin" | "park" | "spin-then-park";

type Role =
  | { role: "ring-producer"; ring: SharedArrayBuffer; sync: SharedArrayBuffer; count: number; pacedNs: number }
  | {
      role: "ring-consumer";
      ring: SharedArrayBuffer;
      sync: SharedArrayBuffer;
      count: number;
      paced: boolean;
      decode: boolean;
      wait: ConsumerWait;
    }
  | { role: "pm-producer" | "pm-consumer"; sync: SharedArrayBuffer; count: number; port: MessagePort }
  | { role: "stalls"; sync: SharedArrayBuffer; ms: number }
  | { role: "ping" | "pong"; sync: SharedArrayBuffer; rounds: number; park: boolean };

interface WorkerResult {
  ms?: number;
  cpuMs?: number;
  lat?: Float64Array;
  /** stalls: total time and count of gaps > 5 µs between consecutive clock reads. */
  stallMs?: number;
  stalls?: number;
  check?: number;
}

const BENCH = "tick-ring";
/** The collector's default ring (config ringCapacity): room for a burst of book-1000 snapshots. */
const RING_CAPACITY = 65_536;
const BATCH = 64;
const PRICES = Array.from({ length: 1024 }, (_, i) => (296.58 + i / 100).toFixed(8));
const SIZES = Array.from({ length: 1024 }, (_, i) => (1.4 + i / 7).toFixed(8));
// sync Int32 slots: 0 = go flag, 1 = calibration request/reply, 2 = ping-pong; Float64 slot at byte 64 = stamp
const GO = 0;
const CAL = 1;
const PING = 2;
const STALL_US = 5;

/** This thread's CPU time in ms (Node ≥ 22.19); the machine is shared, so wall time alone misleads. */
function threadCpuMs(): number {
  const t = process.threadCpuUsage();
  return (t.user + t.system) / 1000;
}

function spinUntil(t: number): void {
  while (performance.now() < t) {
    // busy-wait: a paced producer cannot sleep for 10 µs
  }
}

/** Answers the consumer's clock probes with this thread's clock until told to stop. */
function answerClockProbes(sync: Int32Array, stamp: Float64Array): void {
  for (;;) {
    const v = Atomics.load(sync, CAL);
    if (v === -1) return;
    if (v === 1) {
      stamp[0] = performance.now();
      Atomics.store(sync, CAL, 2);
    }
  }
}

/** (producer clock − this thread's clock), from the probe with the smallest round trip. */
function clockOffset(sync: Int32Array, stamp: Float64Array): number {
  let best = Number.POSITIVE_INFINITY;
  let offset = 0;
  for (let i = 0; i < 2000; i++) {
    const t0 = performance.now();
    Atomics.store(sync, CAL, 1);
    while (Atomics.load(sync, CAL) !== 2) {
      // the producer answers within a cache-line round trip
    }
    const t1 = performance.now();
    if (t1 - t0 < best) {
      best = t1 - t0;
      offset = stamp[0]! - (t0 + t1) / 2;
    }
    Atomics.store(sync, CAL, 0);
  }
  Atomics.store(sync, CAL, -1);
  return offset;
}

function runWorker(data: Role): void {
  const sync = new Int32Array(data.sync, 0, 16);
  const stamp = new Float64Array(data.sync, 64, 1);
  const reply = (r: WorkerResult) => parentPort!.postMessage(r, r.lat ? [r.lat.buffer as ArrayBuffer] : []);
  switch (data.role) {
    case "ring-producer": {
      answerClockProbes(sync, stamp);
      const p = new RingProducer(data.ring, RECORD_SIZE);
      while (Atomics.load(sync, GO) === 0) {
        // wait for the consumer
      }
      const start = performance.now();
      const cpu0 = threadCpuMs();
      if (data.pacedNs > 0) {
        // One tick per commit, each stamped when it is published.
        const step = data.pacedNs / 1e6;
        for (let i = 0; i < data.count; i++) {
          spinUntil(start + i * step);
          writeRecord(
            p,
            p.claim(),
            KIND_LEVEL,
            0,
            i & 7,
            PRICES[i & 1023]!,
            SIZES[i & 1023]!,
            "",
            0,
            performance.now(),
          );
          p.commit();
        }
      } else {
        // As an exchange thread does: one clock read and one commit per message of 64 records.
        let t = performance.now();
        for (let i = 0; i < data.count; i++) {
          writeRecord(p, p.claim(), KIND_LEVEL, 0, i & 7, PRICES[i & 1023]!, SIZES[i & 1023]!, "", 0, t);
          if ((i & (BATCH - 1)) === BATCH - 1) {
            p.commit();
            t = performance.now();
          }
        }
        p.commit();
      }
      reply({ ms: performance.now() - start, cpuMs: threadCpuMs() - cpu0 });
      return;
    }
    case "ring-consumer": {
      const offset = clockOffset(sync, stamp);
      const c = new RingConsumer(data.ring, RECORD_SIZE);
      const lat = new Float64Array(data.paced ? data.count : 0);
      const spinUs = data.wait === "spin-then-park" ? 200 : 0;
      let n = 0;
      let check = 0;
      Atomics.store(sync, GO, 1);
      const start = performance.now();
      const cpu0 = threadCpuMs();
      while (n < data.count) {
        let ready = c.available();
        if (ready === 0) {
          if (data.wait !== "spin") c.waitSync(50, spinUs);
          ready = c.available();
          if (ready === 0) continue;
        }
        if (data.paced) {
          // One clock read per batch: every record in it became visible before this moment.
          const now = performance.now() + offset;
          for (let i = 0; i < ready; i++) lat[n + i] = (now - recordStamp(c, c.offsetOf(i))) * 1000;
        } else if (data.decode) {
          for (let i = 0; i < ready; i++) {
            const at = c.offsetOf(i);
            check += recordPrice(c, at).length + recordSize(c, at).length;
          }
        } else {
          for (let i = 0; i < ready; i++) {
            const at = c.offsetOf(i);
            check += recordKind(c, at) + recordSymbol(c, at);
          }
        }
        c.release(ready);
        n += ready;
      }
      reply({ ms: performance.now() - start, cpuMs: threadCpuMs() - cpu0, lat, check });
      return;
    }
    case "pm-producer": {
      while (Atomics.load(sync, GO) === 0) {
        // wait for the consumer
      }
      const start = performance.now();
      const cpu0 = threadCpuMs();
      let t = start;
      for (let i = 0; i < data.count; i++) {
        if ((i & (BATCH - 1)) === 0) t = performance.now();
        data.port.postMessage({
          kind: KIND_LEVEL,
          side: 0,
          symbol: i & 7,
          price: PRICES[i & 1023],
          size: SIZES[i & 1023],
          stamp: t,
        });
      }
      reply({ ms: performance.now() - start, cpuMs: threadCpuMs() - cpu0 });
      return;
    }
    case "pm-consumer": {
      let n = 0;
      let start = 0;
      let cpu0 = 0;
      data.port.on("message", () => {
        if (n === 0) {
          start = performance.now();
          cpu0 = threadCpuMs();
        }
        if (++n === data.count) {
          reply({ ms: performance.now() - start, cpuMs: threadCpuMs() - cpu0 });
          data.port.close();
        }
      });
      Atomics.store(sync, GO, 1);
      return;
    }
    case "stalls": {
      // A thread that only reads the clock: every gap longer than 5 µs is time it was off its core.
      const end = performance.now() + data.ms;
      let last = performance.now();
      let stallMs = 0;
      let stalls = 0;
      while (last < end) {
        const now = performance.now();
        if (now - last > STALL_US / 1000) {
          stallMs += now - last;
          stalls++;
        }
        last = now;
      }
      reply({ stallMs, stalls });
      return;
    }
    case "ping":
    case "pong": {
      // Round trips through one Int32: ping sets 1, pong sets it back to 0; parked or spinning.
      // Timed per batch of rounds: the least disturbed batch is the hardware's (or kernel's) cost,
      // the median what this machine gives at the moment.
      const mine = data.role === "ping" ? 0 : 1;
      const batch = data.park ? 50 : 1000;
      const perBatch = new Float64Array(Math.ceil(data.rounds / batch));
      let t0 = performance.now();
      for (let i = 0; i < data.rounds; i++) {
        for (;;) {
          const v = Atomics.load(sync, PING);
          if (v === mine) break;
          if (data.park) Atomics.wait(sync, PING, v, 100);
        }
        Atomics.store(sync, PING, 1 - mine);
        if (data.park) Atomics.notify(sync, PING);
        if (i % batch === batch - 1) {
          const t1 = performance.now();
          perBatch[Math.floor(i / batch)] = ((t1 - t0) * 1000) / batch / 2; // µs one way
          t0 = t1;
        }
      }
      reply({ lat: perBatch });
      return;
    }
  }
}

if (!isMainThread && (workerData as { bench?: string } | null)?.bench === BENCH) runWorker(workerData.role as Role);

// ---------------------------------------------------------------- main side

function spawn(role: Role, transfer: MessagePort[] = []): Promise<WorkerResult> {
  const w = new Worker(new URL(import.meta.url), { workerData: { bench: BENCH, role }, transferList: transfer });
  return new Promise((resolve, reject) => {
    w.once("message", resolve);
    w.once("error", reject);
  });
}

interface Pair {
  ticksPerSec: number;
  /** Ticks per CPU-second of the busier thread: the rate two dedicated cores would give. */
  ticksPerCpuSec: number;
  lat?: Float64Array;
  consumerCpuShare: number;
  /** CPU ns per tick on each side. */
  producerNs: number;
  consumerNs: number;
}

async function ringPair(
  count: number,
  opts: { pacedNs?: number; decode?: boolean; wait: ConsumerWait; capacity?: number },
): Promise<Pair> {
  const ring = createRingBuffer(opts.capacity ?? RING_CAPACITY, RECORD_SIZE);
  const sync = new SharedArrayBuffer(128);
  const pacedNs = opts.pacedNs ?? 0;
  const [cons, prod] = await Promise.all([
    spawn({
      role: "ring-consumer",
      ring,
      sync,
      count,
      paced: pacedNs > 0,
      decode: opts.decode ?? false,
      wait: opts.wait,
    }),
    spawn({ role: "ring-producer", ring, sync, count, pacedNs }),
  ]);
  return {
    ticksPerSec: count / (cons.ms! / 1000),
    ticksPerCpuSec: count / (Math.max(cons.cpuMs!, prod.cpuMs!) / 1000),
    lat: cons.lat,
    consumerCpuShare: cons.cpuMs! / cons.ms!,
    producerNs: (prod.cpuMs! * 1e6) / count,
    consumerNs: (cons.cpuMs! * 1e6) / count,
  };
}

async function postMessagePair(count: number): Promise<Pair> {
  const sync = new SharedArrayBuffer(128);
  const { port1, port2 } = new MessageChannel();
  const [cons, prod] = await Promise.all([
    spawn({ role: "pm-consumer", sync, count, port: port1 }, [port1]),
    spawn({ role: "pm-producer", sync, count, port: port2 }, [port2]),
  ]);
  return {
    ticksPerSec: count / (cons.ms! / 1000),
    ticksPerCpuSec: count / (Math.max(cons.cpuMs!, prod.cpuMs!) / 1000),
    consumerCpuShare: cons.cpuMs! / cons.ms!,
    producerNs: (prod.cpuMs! * 1e6) / count,
    consumerNs: (cons.cpuMs! * 1e6) / count,
  };
}

/**
 * Single-thread cost of `step` in ns per tick: the best of 20 slices of count/20 ticks. A slice is
 * a few milliseconds, short enough that some run between two preemptions on a loaded machine.
 */
function nsPerTick(count: number, step: (i: number) => number): number {
  const slice = Math.max(1, Math.floor(count / 20));
  let best = Number.POSITIVE_INFINITY;
  let sink = 0;
  for (let r = 0; r < 20; r++) {
    const t0 = performance.now();
    for (let i = 0; i < slice; i++) sink += step(i);
    best = Math.min(best, ((performance.now() - t0) * 1e6) / slice);
  }
  if (sink === Number.NEGATIVE_INFINITY) console.log(sink);
  return best;
}

/** Where a tick's time goes, one thread, no cross-core traffic. */
function costBreakdown(count: number): { name: string; ns: number }[] {
  const ring = createRingBuffer(4096, RECORD_SIZE);
  const p = new RingProducer(ring, RECORD_SIZE);
  const c = new RingConsumer(ring, RECORD_SIZE);
  const slot = (i: number) => RING_HEADER_BYTES + (i & 4095) * RECORD_SIZE;
  const full = (i: number) => {
    writeRecord(p, p.tryClaim(), KIND_LEVEL, 0, i & 7, PRICES[i & 1023]!, SIZES[i & 1023]!, "", 0, 1.5);
    if ((i & (BATCH - 1)) !== BATCH - 1) return 0;
    p.commit();
    const n = c.available();
    let s = 0;
    for (let k = 0; k < n; k++) {
      const at = c.offsetOf(k);
      s += recordKind(c, at) + recordSymbol(c, at);
    }
    c.release(n);
    return s;
  };
  return [
    { name: "write + read through the ring (header fields), batches of 64", ns: nsPerTick(count, full) },
    {
      name: "  write one record (header + price + size strings)",
      ns: nsPerTick(count, (i) => {
        writeRecord(p, slot(i), KIND_LEVEL, 0, i & 7, PRICES[i & 1023]!, SIZES[i & 1023]!, "", 0, 1.5);
        return 0;
      }),
    },
    {
      name: "    of which the header alone (no strings)",
      ns: nsPerTick(count, (i) => {
        writeRecord(p, slot(i), KIND_LEVEL, 0, i & 7, "", "", "", 0, 1.5);
        return 0;
      }),
    },
    { name: "  read kind + symbol", ns: nsPerTick(count, (i) => recordKind(c, slot(i)) + recordSymbol(c, slot(i))) },
    {
      name: "  decode price + size into JS strings (allocates)",
      ns: nsPerTick(count, (i) => recordPrice(c, slot(i)).length + recordSize(c, slot(i)).length),
    },
    { name: "  performance.now() (one per message / per paced tick)", ns: nsPerTick(count, () => performance.now()) },
    { name: "  Atomics.store (one per commit / release)", ns: nsPerTick(count, (i) => Atomics.store(c.header, 0, i)) },
  ];
}

/** One-way hand-off between two threads in µs: the best batch and the median batch. */
async function pingPong(rounds: number, park: boolean): Promise<{ best: number; median: number }> {
  const sync = new SharedArrayBuffer(128);
  const [a] = await Promise.all([
    spawn({ role: "ping", sync, rounds, park }),
    spawn({ role: "pong", sync, rounds, park }),
  ]);
  const batches = [...a.lat!];
  return { best: Math.min(...batches), median: median(batches) };
}

async function stallShare(ms: number): Promise<{ share: number; perSec: number }> {
  const sync = new SharedArrayBuffer(128);
  // Two threads, like producer and consumer: the machine's other work lands on one of them.
  const rs = await Promise.all([spawn({ role: "stalls", sync, ms }), spawn({ role: "stalls", sync, ms })]);
  return {
    share: rs.reduce((s, r) => s + r.stallMs!, 0) / (2 * ms),
    perSec: rs.reduce((s, r) => s + r.stalls!, 0) / (2 * (ms / 1000)),
  };
}

function latencySummary(lat: Float64Array): { p50: number; p99: number; p999: number; over5: number } {
  // The first 10 % is JIT warm-up.
  const s = Float64Array.from(lat.subarray(Math.floor(lat.length / 10))).sort();
  let over = 0;
  for (const v of s) if (v > STALL_US) over++;
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
  return { p50: at(0.5), p99: at(0.99), p999: at(0.999), over5: over / s.length };
}

const fmt = (n: number) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(1);
const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(" ");

export async function tickRingSections(runs: number, ticks: number): Promise<void> {
  console.log(`\n[tick ring] load average ${load()}`);
  // Throughput: the runs interleave so background load falls on all three alike.
  const ring: Pair[] = [];
  const small: Pair[] = [];
  const decoded: Pair[] = [];
  const pm: Pair[] = [];
  for (let r = 0; r < runs; r++) {
    ring.push(await ringPair(ticks, { wait: "spin-then-park" }));
    small.push(await ringPair(ticks, { wait: "spin-then-park", capacity: 4096 }));
    decoded.push(await ringPair(ticks, { wait: "spin-then-park", decode: true }));
    pm.push(await postMessagePair(Math.min(ticks, 1_000_000)));
  }
  const wall = (xs: Pair[]) => median(xs.map((x) => x.ticksPerSec));
  const cpu = (xs: Pair[]) => median(xs.map((x) => x.ticksPerCpuSec));
  console.log("[ring throughput] 128-byte tick records, two worker threads, commits of 64, batched reads,");
  console.log("  consumer polls 200 µs then parks when empty (wall = as measured; cpu = per CPU-second of the");
  console.log("  busier thread; producer/consumer = CPU ns per tick on each side)");
  for (const [name, xs] of [
    ["ring, header fields read        ", ring],
    ["  same, 4,096-record ring (512 kB)", small],
    ["ring, price/size strings decoded", decoded],
    ["postMessage, one object per tick", pm],
  ] as const) {
    console.log(
      `  ${name}  wall median ${fmt(wall(xs))}/s (runs ${xs.map((x) => fmt(x.ticksPerSec)).join(" ")})   cpu median ${fmt(cpu(xs))}/s   producer ${median(xs.map((x) => x.producerNs)).toFixed(0)} ns, consumer ${median(xs.map((x) => x.consumerNs)).toFixed(0)} ns`,
    );
  }
  console.log(
    `  ring / postMessage: wall ${(wall(ring) / wall(pm)).toFixed(1)}×, cpu ${(cpu(ring) / cpu(pm)).toFixed(1)}×   load average ${load()}`,
  );

  console.log("\n[where the time goes] one thread, ns per tick (best of 5)");
  const costs = costBreakdown(Math.min(ticks, 2_000_000));
  for (const c of costs) console.log(`  ${c.name.padEnd(64)} ${c.ns.toFixed(1)} ns`);
  console.log(
    `  → one producer core writes at most ${fmt(1e9 / costs[1]!.ns)} ticks/s; write + read on one core ${fmt(1e9 / costs[0]!.ns)}/s`,
  );
  const spinTrip = await pingPong(200_000, false);
  const parkTrip = await pingPong(2_000, true);
  console.log(
    `  cross-core hand-off, spinning (cache-line transfer), one way: best ${spinTrip.best.toFixed(2)} µs, median ${spinTrip.median.toFixed(2)} µs`,
  );
  console.log(
    `  cross-core hand-off, Atomics.wait/notify (futex wake-up), one way: best ${parkTrip.best.toFixed(1)} µs, median ${parkTrip.median.toFixed(1)} µs`,
  );
  const stalls = await stallShare(2000);
  console.log(
    `  two spinning threads were off-CPU for > ${STALL_US} µs at a stretch ${fmt(stalls.perSec)} times/s, ${(stalls.share * 100).toFixed(2)} % of the time (load average ${load()})`,
  );

  console.log("\n[latency] producer → consumer at paced rates, µs (p50 / p99 / p99.9, share > 5 µs, consumer CPU)");
  for (const rate of [10_000, 100_000]) {
    const count = rate * 2; // two seconds each
    for (const wait of ["spin", "spin-then-park", "park"] as const) {
      const r = await ringPair(count, { pacedNs: 1e9 / rate, wait });
      const l = latencySummary(r.lat!);
      console.log(
        `  ${fmt(rate)} ticks/s, ${wait.padEnd(14)} p50 ${l.p50.toFixed(2)}  p99 ${l.p99.toFixed(2)}  p99.9 ${l.p999.toFixed(1)}  > 5 µs ${(l.over5 * 100).toFixed(2)} %  consumer CPU ${(r.consumerCpuShare * 100).toFixed(0)} %   load ${load()}`,
      );
    }
  }
}
