// Fan-out from one symbol's MarketFeed Durable Object through its relay objects (MARKET_RELAYS,
// default 8 here) to 1,000 local WebSocket subscribers at 50 deltas/s and 5,000 at 10 deltas/s
// (real Kraken XMR/USD updates from the fixtures), against a plain Node `ws` broadcast server on
// the same machine as the baseline (bench/market-fanout-baseline.ts), in the same run.
//
//   npm run bench -- market-fanout          BENCH_SECONDS=8 BENCH_RUNS=3 BENCH_SCENARIOS=1000x50,5000x10
//
// Also reported: frames/s each relay sent (from the symbol's /stats), and the bytes a JSON and a
// binary (`?encoding=binary`) subscriber received for the same frames, and the CPU each side spent
// per delivered frame (the server process — workerd, or the baseline's Node process — and this
// process, which is every subscriber and the publisher): less load-sensitive than latency. Also the
// server's CPU per frame and per WebSocket message the relays sent (their /stats counters and the
// server's CPU from the start until it has sent its backlog and gone idle), which still holds when
// this process cannot read as fast as the relays send (plain subscribers on a loaded machine).
//
// Targets, each scenario in turn, same client: the relays with plain subscribers (one message per
// frame), the relays with `?coalesce=true` subscribers (frames that are ready together in one
// message), the Node `ws` baseline, and with BENCH_BEFORE=<checkout of older code> the relays as
// that code serves them, plain and coalescing (e.g. a `git worktree add` of the commit before a
// change): before → after in one run.
//
// Reported per scenario (medians over runs): delta frames received per second across all
// subscribers during the window (vs the 50 × N offered), p50/p99 tick→subscriber latency (publisher send time carried
// in the frame's `ts`, subscriber receive time, one clock: everything runs in this process and the
// server's), gaps in seq. The edge is the deployable bundle on Miniflare/workerd (scripts/serve.ts)
// on port 8840; the baseline on 8841. Publisher and subscribers share this Node process, so the
// client side's JSON parsing is part of the latency — on both servers alike.
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import WebSocket from "ws";
import type { BookUpdate } from "../contracts/market.ts";
import { EntropyFeedDecoder } from "../contracts/market-entropy.ts";
import { createApiClient, expectOk } from "../scripts/api-client.ts";
import { devVar, ensureDevVars, ROOT, wrangler } from "../scripts/local.ts";
import { loadFixtureFeeds } from "../scripts/market-fixture-frames.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const RUNS = Number(process.env.BENCH_RUNS ?? 3);
const WARMUP_MS = 1000;
const SCENARIOS = (process.env.BENCH_SCENARIOS ?? "1000x50,5000x10").split(",").map((s) => {
  const [subs, rate] = s.split("x").map(Number);
  return { subs: subs!, rate: rate ?? 50 };
});
const RELAYS = process.env.MARKET_RELAYS ?? "8";
/**
 * Subscribers offer permessage-deflate, as browsers always do (BENCH_DEFLATE=0: no offer). Neither
 * server agrees to it (wrangler.toml's no_web_socket_compression; the ws server's default).
 */
const OFFER_DEFLATE = process.env.BENCH_DEFLATE !== "0";
const EDGE_PORT = Number(process.env.BENCH_PORT ?? 8840);
const BASELINE_PORT = EDGE_PORT + 1;
const BEFORE_PORT = EDGE_PORT + 2;
const STATE = `.local/bench-market-${EDGE_PORT}`;
const BEFORE = process.env.BENCH_BEFORE ? path.resolve(process.env.BENCH_BEFORE) : null;
/** Which targets run (BENCH_TARGETS=before,before-coalescing,relays,coalescing,baseline; default all that exist). */
const TARGETS = new Set(
  (process.env.BENCH_TARGETS ?? "before,before-coalescing,relays,coalescing,baseline").split(","),
);

const now = () => performance.timeOrigin + performance.now();
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? NaN;
/** The median of a per-sample figure the baseline does not have (blank for it). */
const sent = (xs: (number | null)[]) => (xs[0] === null ? "" : median(xs as number[]).toFixed(1));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The raw value of the first `"name":value` at or after `from` in a JSON text, quotes stripped. */
function field(text: string, name: string, from = 0): string {
  const key = `"${name}":`;
  const start = text.indexOf(key, from) + key.length;
  let end = start;
  while (end < text.length && text[end] !== "," && text[end] !== "}") end++;
  return text.slice(start, end).replace(/"/g, "");
}

/**
 * type, seq and ts of each frame in a message — one frame, or a coalesced JSON array of frames —
 * read without parsing the whole text, so the client side (thousands of sockets in this one
 * process) costs as little as possible. Every frame starts `{"type":` (JSON.stringify keeps the
 * schema's key order); nothing nested inside a frame does.
 */
function frameHeads(text: string): { type: string; seq: number; ts: number }[] {
  const heads: { type: string; seq: number; ts: number }[] = [];
  for (let at = text.indexOf('{"type":'); at >= 0; at = text.indexOf('{"type":', at + 8)) {
    heads.push({
      type: field(text, "type", at),
      seq: Number(field(text, "seq", at)),
      ts: Number(field(text, "ts", at)),
    });
  }
  return heads;
}

/** CPU seconds (user + system) a process has used, from /proc (Linux). */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (100/s)
}

/**
 * Waits (up to 60 s) until a server process is idle — under 5 % of a core over half a second —
 * so a target that fell behind does not spend the next target's run still sending its backlog.
 */
async function settle(pid: number): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    const cpu0 = cpuSeconds(pid);
    await sleep(500);
    if (cpuSeconds(pid) - cpu0 < 0.025) return;
  }
}

/** This process's workerd children (Miniflare spawns one per server). */
function workerdChildren(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      if (stat.includes("(workerd)") && Number(fields[1]) === process.pid) pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

const feeds = loadFixtureFeeds(2000);
if (!feeds) throw new Error("fixtures not found: set EDGEPULSE_FIXTURES");
const kraken = feeds.find((f) => f.exchange === "kraken")!;

interface Target {
  name: string;
  /** The server's process, for its CPU time. */
  pid: number;
  /** Subscriber URL query (e.g. `?coalesce=true`). */
  query?: string;
  /** Subscriber URL asking for binary frames (edge only). */
  binaryUrl?: (symbol: string) => string;
  /** Frames one relay sent on average over the scenario (edge only). */
  relayFrames?: (symbol: string) => Promise<number>;
  /** Frames and WebSocket messages all relays sent so far (edge only). */
  relaySent?: (symbol: string) => Promise<{ frames: number; messages: number }>;
  publishUrl: (symbol: string) => string;
  subscribeUrl: (symbol: string) => string;
  headers: Record<string, string>;
}

interface Sample {
  /** Frames/s each relay sent (edge only). */
  perRelay: number | null;
  /** Bytes a JSON, a binary and an entropy subscriber received over the run (edge only). */
  jsonBytes: number;
  binaryBytes: number;
  entropyBytes: number;
  framesPerSecond: number;
  offered: number;
  p50: number;
  p99: number;
  gaps: number;
  resnapshots: number;
  /** Share of the frames sent in the window that arrived before the run ended (p99 is a lower bound below 1). */
  arrived: number;
  /** Frames per WebSocket message the subscribers received (1 unless coalescing). */
  framesPerMessage: number;
  /** CPU µs per delivered frame: the server process, and this process (subscribers + publisher). */
  serverCpuUs: number;
  clientCpuUs: number;
  /**
   * Server CPU µs per frame and per message the relays sent, backlog included, up to when the
   * server went idle (edge only): what a frame costs the server whether or not the subscribers'
   * side kept up with reading it in the window.
   */
  serverCpuPerSentFrameUs: number | null;
  serverCpuPerMessageUs: number | null;
}

/**
 * Opens a socket. `onMessage`, if given, listens from the start: a message that arrives in the
 * same packet as the 101 (the snapshot, often) is emitted before a listener added after `open`
 * resolves could see it.
 */
function open(url: string, headers: Record<string, string>, onMessage?: (data: Buffer) => void): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, perMessageDeflate: OFFER_DEFLATE });
    if (onMessage) ws.on("message", onMessage);
    ws.once("open", () => resolve(ws));
    ws.once("error", reject);
    ws.once("unexpected-response", (_req, res) => {
      let body = "";
      res.on("data", (chunk: Buffer) => {
        body += chunk.toString();
      });
      res.on("end", () => reject(new Error(`${url}: HTTP ${res.statusCode} ${body}`)));
    });
  });
}

async function scenario(target: Target, symbol: string, subscribers: number, RATE: number): Promise<Sample> {
  const latencies: number[] = [];
  let delivered = 0;
  let gaps = 0;
  let resnapshots = 0;
  let totalFrames = 0;
  let totalMessages = 0;
  let lastLatency = 0;
  let windowStart = Number.POSITIVE_INFINITY;
  let windowEnd = Number.POSITIVE_INFINITY;
  let frozen = false;
  const subs: WebSocket[] = [];
  // The publisher first, with the book, as a live market has it: subscribers start from a real
  // snapshot, and the symbol's object has storage, so it remembers its relays even if it is
  // evicted while a few thousand subscribers connect.
  const publisher = await open(target.publishUrl(symbol), target.headers);
  let seq = 0;
  const send = (books: BookUpdate[]) =>
    publisher.send(JSON.stringify({ type: "batch", seq: seq++, ts: now(), books, trades: [] }));
  send([kraken.updates[0]!]);
  // The bandwidth trio: one more JSON, one binary and one entropy subscriber (edge only), counting
  // payload bytes; the entropy one decodes every message, so a broken stream fails the run.
  let jsonBytes = 0;
  let binaryBytes = 0;
  let entropyBytes = 0;
  if (target.binaryUrl) {
    // Older servers (BENCH_BEFORE) refuse the encoding: their column stays empty.
    const decoder = new EntropyFeedDecoder();
    const e = await open(
      target.binaryUrl(symbol).replace("encoding=binary", "encoding=entropy"),
      { "CF-Connecting-IP": "10.8.0.3" },
      (data) => {
        decoder.decode(new Uint8Array(data));
        if (!frozen) entropyBytes += data.length;
      },
    ).catch(() => null);
    if (e) subs.push(e);
    else entropyBytes = Number.NaN;
    const j = await open(target.subscribeUrl(symbol), { "CF-Connecting-IP": "10.8.0.1" }, (data) => {
      if (!frozen) jsonBytes += data.length;
    });
    const b = await open(target.binaryUrl(symbol), { "CF-Connecting-IP": "10.8.0.2" }, (data) => {
      if (!frozen) binaryBytes += data.length;
    });
    subs.push(j, b);
  }
  // Connect in waves so the server sees realistic arrival, not 1,000 simultaneous handshakes.
  for (let i = 0; i < subscribers; i += 50) {
    const wave = Array.from({ length: Math.min(50, subscribers - i) }, async (_, j) => {
      const n = i + j;
      const ws = await open(target.subscribeUrl(symbol) + (target.query ?? ""), {
        "CF-Connecting-IP": `10.9.${n >> 8}.${n & 255}`,
      });
      let last = -1;
      let snapshots = 0;
      ws.on("message", (data) => {
        if (frozen) return;
        const received = now();
        totalMessages++;
        for (const frame of frameHeads(String(data))) {
          totalFrames++;
          lastLatency = received - frame.ts;
          if (frame.type === "snapshot") {
            snapshots++;
            if (snapshots > 1) resnapshots++;
          } else {
            if (last >= 0 && frame.seq !== last + 1) gaps++;
            // Throughput counts what arrives during the window; latency, every frame sent in it.
            if (received >= windowStart && received < windowEnd) delivered++;
            if (frame.ts >= windowStart && frame.ts < windowEnd) latencies.push(received - frame.ts);
          }
          last = frame.seq;
        }
      });
      subs.push(ws);
    });
    await Promise.all(wave);
  }

  // 50 batches/s on an absolute schedule (no drift), each one real Kraken update; the recorded
  // stream is replayed from its snapshot again when it runs out.
  const sent0 = target.relaySent ? await target.relaySent(symbol) : null;
  const start = now();
  const serverCpu0 = cpuSeconds(target.pid);
  const clientCpu0 = process.cpuUsage();
  const frames0 = totalFrames;
  windowStart = start + WARMUP_MS;
  windowEnd = windowStart + SECONDS * 1000;
  let k = 0;
  let cursor = 1;
  let sentInWindow = 0;
  while (now() < windowEnd) {
    const due = start + k * (1000 / RATE);
    const wait = due - now();
    if (wait > 0) await sleep(wait);
    if (cursor >= kraken.updates.length) cursor = 0;
    if (now() >= windowStart) sentInWindow++;
    send([kraken.updates[cursor++]!]);
    k++;
  }
  await sleep(2000); // let in-flight frames land (later ones are missing from the latency sample)
  frozen = true; // what arrives from here on is not counted
  const framesMeasured = Math.max(1, totalFrames - frames0);
  const serverCpuUs = ((cpuSeconds(target.pid) - serverCpu0) * 1e6) / framesMeasured;
  const clientCpu = process.cpuUsage(clientCpu0);
  const clientCpuUs = (clientCpu.user + clientCpu.system) / framesMeasured;
  if (process.env.BENCH_DEBUG) {
    const stats = target.relayFrames
      ? await fetch(`${target.publishUrl(symbol).replace(/^ws/, "http").replace("/v1/ingest/", "/v1/market/")}/stats`, {
          headers: target.headers,
        }).then((r) => r.json())
      : null;
    console.log(JSON.stringify({ sent: seq, totalFrames, totalMessages, lastLatency, stats }));
  }
  // The relays' own counters against the server CPU, both once the server has sent its backlog (the
  // subscribers still connected) and gone idle: on a busy server a /stats answer waits behind the
  // backlog, so counters and CPU read while it is busy would not match.
  let perSent = (_: number) => 0;
  let sent1: { frames: number; messages: number } | null = null;
  if (target.relaySent) {
    await settle(target.pid);
    sent1 = await target.relaySent(symbol);
    const cpu = cpuSeconds(target.pid) - serverCpu0;
    perSent = (n) => (cpu * 1e6) / Math.max(1, n);
  }
  for (const ws of subs) ws.terminate();
  publisher.close();
  latencies.sort((a, b) => a - b);
  const perRelay = target.relayFrames ? (await target.relayFrames(symbol)) / ((now() - start) / 1000) : null;
  return {
    perRelay,
    jsonBytes,
    binaryBytes,
    entropyBytes,
    framesPerSecond: delivered / SECONDS,
    offered: subscribers * RATE,
    p50: percentile(latencies, 0.5),
    p99: percentile(latencies, 0.99),
    gaps,
    resnapshots,
    arrived: latencies.length / (sentInWindow * subscribers),
    framesPerMessage: totalFrames / Math.max(1, totalMessages),
    serverCpuUs,
    clientCpuUs,
    serverCpuPerSentFrameUs: sent0 && sent1 ? perSent(sent1.frames - sent0.frames) : null,
    serverCpuPerMessageUs: sent0 && sent1 ? perSent(sent1.messages - sent0.messages) : null,
  };
}

async function serviceToken(base: string): Promise<string> {
  const secret = devVar("SERVICE_TOKEN_SECRET");
  if (!secret) throw new Error("no SERVICE_TOKEN_SECRET in .dev.vars");
  const tokens = await expectOk(
    "service token",
    createApiClient(base).POST("/v1/auth/service-token", { body: { secret } }),
  );
  return tokens.accessToken;
}

const load = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(" ");
console.log(`machine: ${os.cpus().length} × ${os.cpus()[0]?.model}, load average ${load()}`);
ensureDevVars();
rmSync(path.join(ROOT, STATE), { recursive: true, force: true });
// The publisher's token is checked against the D1 revocation list, so the schema must exist.
wrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", STATE], { quiet: true });
process.env.PORT = String(EDGE_PORT);
process.env.MARKET_RELAYS = RELAYS;
process.env.PERSIST_TO = STATE;
const { serve } = await import("../scripts/serve.ts");
const edge = await serve();
const [edgePid] = workerdChildren();
if (!edgePid) throw new Error("workerd process not found");
// The older code, served from its own checkout (its scripts/serve.ts builds its own bundle).
let before: { url: string; pid: number; dispose(): Promise<void> } | null = null;
if (BEFORE) {
  const beforeState = path.join(ROOT, `${STATE}-before`);
  rmSync(beforeState, { recursive: true, force: true });
  wrangler(["d1", "migrations", "apply", "DB", "--local", "--persist-to", beforeState], { quiet: true });
  const old = (await import(path.join(BEFORE, "scripts/serve.ts"))) as typeof import("../scripts/serve.ts");
  const served = await old.serve({ port: BEFORE_PORT, persistTo: beforeState });
  const pid = workerdChildren().find((p) => p !== edgePid);
  if (!pid) throw new Error("the older code's workerd process not found");
  before = { url: served.url, pid, dispose: () => served.dispose() };
}
const baselineProcess: ChildProcess = spawn(
  process.execPath,
  [path.join(import.meta.dirname, "market-fanout-baseline.ts"), String(BASELINE_PORT)],
  { stdio: ["ignore", "pipe", "inherit"] },
);
await new Promise<void>((resolve) => baselineProcess.stdout!.once("data", () => resolve()));

try {
  /** The relay path of one server (this code's, or the older code's). */
  const relayTarget = async (name: string, url: string, pid: number, query?: string): Promise<Target> => {
    const token = await serviceToken(url);
    const wsBase = url.replace(/^http/, "ws");
    return {
      name,
      pid,
      ...(query ? { query } : {}),
      publishUrl: (s) => `${wsBase}/v1/ingest/${s}`,
      subscribeUrl: (s) => `${wsBase}/v1/market/${s}/ws`,
      binaryUrl: (s) => `${wsBase}/v1/market/${s}/ws?encoding=binary`,
      relaySent: async (s) => {
        const res = await fetch(`${url}/v1/market/${s}/stats`, { headers: { Authorization: `Bearer ${token}` } });
        const stats = (await res.json()) as { relays: { framesOut: number; messagesOut: number } };
        return { frames: stats.relays.framesOut, messages: stats.relays.messagesOut };
      },
      relayFrames: async (s) => {
        const res = await fetch(`${url}/v1/market/${s}/stats`, { headers: { Authorization: `Bearer ${token}` } });
        const stats = (await res.json()) as { relays: { relays: number; framesOut: number } };
        return stats.relays.framesOut / Math.max(1, stats.relays.relays);
      },
      headers: { Authorization: `Bearer ${token}` },
    };
  };
  const targets: Target[] = [
    ...(before && TARGETS.has("before") ? [await relayTarget("relays (before)", before.url, before.pid)] : []),
    ...(before && TARGETS.has("before-coalescing")
      ? [await relayTarget("coalescing (before)", before.url, before.pid, "?coalesce=true")]
      : []),
    ...(TARGETS.has("relays") ? [await relayTarget("relays", edge.url, edgePid)] : []),
    ...(TARGETS.has("coalescing")
      ? [await relayTarget("relays, coalescing", edge.url, edgePid, "?coalesce=true")]
      : []),
    {
      name: "Node ws baseline",
      pid: baselineProcess.pid!,
      publishUrl: () => `ws://127.0.0.1:${BASELINE_PORT}/ingest`,
      subscribeUrl: () => `ws://127.0.0.1:${BASELINE_PORT}/sub`,
      headers: {},
    },
  ];
  const results = new Map<string, Sample[]>();
  for (let run = 0; run < RUNS; run++) {
    for (const { subs: size, rate } of SCENARIOS) {
      for (const target of targets) {
        for (const other of targets) await settle(other.pid);
        const sample = await scenario(target, `B${run}N${size}T${targets.indexOf(target)}-USD`, size, rate);
        const key = `${target.name}|${size}`;
        results.set(key, [...(results.get(key) ?? []), sample]);
        console.log(
          `run ${run + 1}/${RUNS} ${target.name.padEnd(18)} ${String(size).padStart(5)} subs: ` +
            `${sample.framesPerSecond.toFixed(0)} frames/s of ${sample.offered} offered, ` +
            `p50 ${sample.p50.toFixed(2)} ms, p99 ${sample.p99.toFixed(2)} ms, arrived ${(sample.arrived * 100).toFixed(1)} %, ` +
            `gaps ${sample.gaps}, re-snapshots ${sample.resnapshots}, frames/message ${sample.framesPerMessage.toFixed(2)}, ` +
            `CPU µs/frame server ${sample.serverCpuUs.toFixed(1)} client ${sample.clientCpuUs.toFixed(1)}, ` +
            (sample.serverCpuPerSentFrameUs === null
              ? ""
              : `server CPU µs per frame sent ${sample.serverCpuPerSentFrameUs.toFixed(1)}, per message sent ${sample.serverCpuPerMessageUs!.toFixed(1)}, `) +
            `load ${load()}` +
            (sample.perRelay === null
              ? ""
              : `, ${sample.perRelay.toFixed(0)} frames/s per relay, bytes JSON ${sample.jsonBytes} vs binary ${sample.binaryBytes} vs entropy ${sample.entropyBytes}`),
        );
      }
    }
  }
  console.log(`\nmedians of ${RUNS} runs, ${SECONDS} s each (Kraken XMR/USD updates), ${RELAYS} relays:`);
  console.log(
    "| subscribers × deltas/s | server | frames/s received (offered) | p50 ms | p99 ms | arrived | gaps | p99 vs baseline | frames/message | server CPU µs/frame | client CPU µs/frame | server CPU µs / frame sent | server CPU µs / message sent | frames/s per relay | binary bytes / JSON | entropy bytes / JSON |",
  );
  console.log("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const { subs: size, rate } of SCENARIOS) {
    const base = results.get(`Node ws baseline|${size}`)!;
    for (const target of targets) {
      const samples = results.get(`${target.name}|${size}`)!;
      const p99 = median(samples.map((s) => s.p99));
      const relay = samples[0]!.perRelay === null ? "" : median(samples.map((s) => s.perRelay!)).toFixed(0);
      const ratio = (bytes: (s: Sample) => number) =>
        samples[0]!.perRelay === null ? "" : median(samples.map((s) => bytes(s) / s.jsonBytes)).toFixed(3);
      console.log(
        `| ${size} × ${rate} | ${target.name} | ${median(samples.map((s) => s.framesPerSecond)).toFixed(0)} (${samples[0]!.offered}) | ` +
          `${median(samples.map((s) => s.p50)).toFixed(2)} | ${p99.toFixed(2)} | ` +
          `${(median(samples.map((s) => s.arrived)) * 100).toFixed(1)} % | ${samples.reduce((a, s) => a + s.gaps, 0)} | ` +
          `${(p99 / median(base.map((s) => s.p99))).toFixed(2)}× | ${median(samples.map((s) => s.framesPerMessage)).toFixed(2)} | ` +
          `${median(samples.map((s) => s.serverCpuUs)).toFixed(1)} | ${median(samples.map((s) => s.clientCpuUs)).toFixed(1)} | ` +
          `${sent(samples.map((s) => s.serverCpuPerSentFrameUs))} | ${sent(samples.map((s) => s.serverCpuPerMessageUs))} | ` +
          `${relay} | ${ratio((s) => s.binaryBytes)} | ${ratio((s) => s.entropyBytes)} |`,
      );
    }
  }
  console.log(`load average at the end: ${load()}`);
} finally {
  baselineProcess.kill("SIGTERM");
  await edge.dispose();
  await before?.dispose();
}
process.exit(0);
