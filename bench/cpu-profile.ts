// CPU profiles of the local platform's V8 isolates, over the Chrome DevTools protocol that workerd
// serves when Miniflare has an `inspectorPort` (scripts/serve.ts: INSPECTOR_PORT). Every isolate of
// the one workerd process is profiled at once — the Worker with its Durable Objects and queue
// consumers (`core:user:edgepulse`), and Miniflare's own JavaScript around it: the entry worker
// every request passes, the D1 simulator, the queue broker, the asset router, the rate limiter —
// so the summary shows where the process's JavaScript time goes, by isolate, by source file of the
// bundle (esbuild's `// path` module markers) and by function. Native work (SQLite, fsync, KJ I/O)
// is not JavaScript: it shows as the gap between these totals and the process's CPU time.
//
//   INSPECTOR_PORT=9229 npm run serve          then, while load runs:
//   node bench/cpu-profile.ts 9229 20 /tmp/profiles   (port, seconds, where to write .cpuprofile files)
//
// The checkout benchmark does this itself with BENCH_PROFILE=<dir> (see bench/checkout.bench.ts).
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import WebSocket from "ws";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}
/** The `Profiler.stop` result (V8's CPU profile format, what DevTools opens as .cpuprofile). */
export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

interface Session {
  isolate: string;
  socket: WebSocket;
  call(method: string, params?: object): Promise<unknown>;
}

/** Connects to one inspector target; answers come back by message id. */
function connect(isolate: string, url: string): Promise<Session> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url, { maxPayload: 1024 * 1024 * 1024 });
    const waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
    let nextId = 1;
    socket.on("message", (data) => {
      const message = JSON.parse(String(data)) as { id?: number; result?: unknown; error?: { message: string } };
      const pending = message.id === undefined ? undefined : waiting.get(message.id);
      if (!pending) return;
      waiting.delete(message.id!);
      if (message.error) pending.reject(new Error(`${isolate}: ${message.error.message}`));
      else pending.resolve(message.result);
    });
    socket.once("error", reject);
    socket.once("open", () =>
      resolve({
        isolate,
        socket,
        call: (method, params = {}) =>
          new Promise((res, rej) => {
            const id = nextId++;
            waiting.set(id, { resolve: res, reject: rej });
            socket.send(JSON.stringify({ id, method, params }));
          }),
      }),
    );
  });
}

/** A profiling session over every isolate whose name matches; `stop` returns one profile per isolate. */
export async function startCpuProfile(
  inspectorPort: number,
  options: { isolates?: RegExp; samplingIntervalUs?: number } = {},
): Promise<{ stop(): Promise<Map<string, CpuProfile>> }> {
  const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json/list`)).json()) as {
    id: string;
    webSocketDebuggerUrl: string;
  }[];
  const wanted = targets.filter((t) => (options.isolates ?? /./).test(t.id));
  const sessions = await Promise.all(wanted.map((t) => connect(t.id, t.webSocketDebuggerUrl)));
  for (const s of sessions) {
    await s.call("Profiler.enable");
    await s.call("Profiler.setSamplingInterval", { interval: options.samplingIntervalUs ?? 200 });
  }
  await Promise.all(sessions.map((s) => s.call("Profiler.start")));
  return {
    async stop() {
      const out = new Map<string, CpuProfile>();
      await Promise.all(
        sessions.map(async (s) => {
          const { profile } = (await s.call("Profiler.stop")) as { profile: CpuProfile };
          out.set(s.isolate, profile);
          s.socket.close();
        }),
      );
      return out;
    },
  };
}

/** Maps a line of the esbuild bundle to the source module it came from (`// path` markers). */
function moduleIndex(bundleFile: string | undefined): (line: number) => string | undefined {
  if (!bundleFile) return () => undefined;
  const starts: { line: number; file: string }[] = [];
  readFileSync(bundleFile, "utf8")
    .split("\n")
    .forEach((text, line) => {
      const marker = /^\/\/ (\S+\.(?:[cm]?[jt]s|json))$/.exec(text);
      if (marker) starts.push({ line, file: marker[1]!.replace(/^(\.\.\/)+[^/]+\/node_modules\//, "node_modules/") });
    });
  return (line) => {
    let lo = 0;
    let hi = starts.length - 1;
    let found: string | undefined;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (starts[mid]!.line <= line) {
        found = starts[mid]!.file;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  };
}

/** Self time (ms) per node id of one profile. */
function selfTimes(profile: CpuProfile): Map<number, number> {
  const self = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0) / 1000);
  });
  return self;
}

const IDLE = new Set(["(idle)", "(program)", "(root)"]);

/**
 * A text summary: JavaScript CPU per isolate (busy = not idle/program), then the top source files
 * and functions by self time across the profiled isolates. `bundleFile` maps the Worker's bundle
 * lines to its source modules; `perUnit` (e.g. confirmed orders) adds a per-unit column.
 */
export function summarise(
  profiles: Map<string, CpuProfile>,
  options: { bundleFile?: string; perUnit?: { count: number; name: string }; top?: number } = {},
): string {
  const moduleOf = moduleIndex(options.bundleFile);
  const lines: string[] = [];
  const per = (ms: number) =>
    options.perUnit ? ` (${(ms / options.perUnit.count).toFixed(2)} ms/${options.perUnit.name})` : "";
  const byFile = new Map<string, number>();
  const byFunction = new Map<string, number>();
  const byIsolate: [string, number, number][] = [];
  for (const [isolate, profile] of profiles) {
    const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
    let busy = 0;
    let gc = 0;
    for (const [id, ms] of selfTimes(profile)) {
      const frame = nodes.get(id)!.callFrame;
      if (IDLE.has(frame.functionName)) continue;
      busy += ms;
      if (frame.functionName === "(garbage collector)") gc += ms;
      const source =
        frame.url.endsWith("index.js") && isolate.startsWith("core:user:") ? moduleOf(frame.lineNumber) : undefined;
      const file = `${isolate} ${source ?? (frame.url || "(native)")}`;
      byFile.set(file, (byFile.get(file) ?? 0) + ms);
      const fn = `${frame.functionName || "(anonymous)"} ${source ?? frame.url.split("/").pop() ?? ""}:${frame.lineNumber + 1} [${isolate}]`;
      byFunction.set(fn, (byFunction.get(fn) ?? 0) + ms);
    }
    byIsolate.push([isolate, busy, gc]);
  }
  const wall = Math.max(...[...profiles.values()].map((p) => (p.endTime - p.startTime) / 1000));
  lines.push(`JavaScript CPU by isolate over ${(wall / 1000).toFixed(1)} s (self time, idle excluded):`);
  for (const [isolate, busy, gc] of byIsolate.sort((a, b) => b[1] - a[1]).filter((x) => x[1] >= 1)) {
    lines.push(`  ${busy.toFixed(0).padStart(7)} ms${per(busy)}  ${isolate}  (GC ${gc.toFixed(0)} ms)`);
  }
  const top = options.top ?? 25;
  lines.push("Top source files by self time:");
  for (const [file, ms] of [...byFile].sort((a, b) => b[1] - a[1]).slice(0, top))
    lines.push(`  ${ms.toFixed(0).padStart(7)} ms${per(ms)}  ${file}`);
  lines.push("Top functions by self time:");
  for (const [fn, ms] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top))
    lines.push(`  ${ms.toFixed(0).padStart(7)} ms${per(ms)}  ${fn}`);
  return lines.join("\n");
}

/** Writes each isolate's profile as `<dir>/<isolate>.cpuprofile` (open them in Chrome DevTools). */
export function writeProfiles(profiles: Map<string, CpuProfile>, dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const [isolate, profile] of profiles)
    writeFileSync(path.join(dir, `${isolate.replaceAll(/[^\w.-]+/g, "_")}.cpuprofile`), JSON.stringify(profile));
}

if (import.meta.main) {
  const [port = "9229", seconds = "20", dir] = process.argv.slice(2);
  const session = await startCpuProfile(Number(port));
  await new Promise((r) => setTimeout(r, Number(seconds) * 1000));
  const profiles = await session.stop();
  if (dir) writeProfiles(profiles, dir);
  const bundle = path.join(import.meta.dirname, "..", ".local", "serve-dist", "index.js");
  console.log(summarise(profiles, { bundleFile: bundle }));
}
