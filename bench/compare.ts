// Before → after in one run: the same benchmark client against the code before a change and the
// code after it, alternately, on this machine at the same time of day, with medians and ratios.
// A shared VM's background load moves absolute figures by ×2 within minutes, so two separate runs
// cannot show what a change did; alternating in one invocation can (the load average of every
// run is printed next to it, and server CPU per order is the less load-sensitive figure).
//
//   npm run bench:compare -- checkout <baseline> [<current>]
//   node bench/compare.ts checkout revert:abc123,def456      (HEAD without exactly those commits)
//   node bench/compare.ts checkout ea2532d HEAD               (two revisions)
//
// <baseline> and <current>: a git revision (served from a throwaway worktree of it), or
// `revert:<rev>[,<rev>…]` (a worktree of HEAD with those commits reverted: the current code minus
// one change, which isolates it from everything committed around it), or `.` (this working tree,
// the default <current>). BENCH_COMPARE_ROUNDS (default 2) alternations baseline/current; other
// BENCH_* variables go to the benchmark (e.g. BENCH_RUNS=1, BENCH_PHASES=throughput, BENCH_SKUS=1).
// The benchmark must print `BENCH_RESULT {json}` (bench/checkout.bench.ts does).
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ROOT } from "../scripts/local.ts";

interface LatencyRow {
  c: number;
  n: number;
  p50: number;
  p99: number;
  place50: number;
  base50: number;
  base99: number;
}
interface ThroughputRow {
  skus: number;
  rate: number;
  cpu: number;
}
interface BenchResult {
  root: string;
  loadBefore: number;
  loadAfter: number;
  latency: LatencyRow[];
  throughput: ThroughputRow[];
}

const [bench = "checkout", baselineSpec, currentSpec = "."] = process.argv.slice(2);
if (!baselineSpec) {
  console.error("usage: node bench/compare.ts <bench> <baseline: rev | revert:rev,rev | .> [<current>]");
  process.exit(2);
}
const ROUNDS = Number(process.env.BENCH_COMPARE_ROUNDS ?? 2);

const git = (args: string[], cwd = ROOT) =>
  execFileSync("git", ["-c", "user.name=bench", "-c", "user.email=bench@localhost", ...args], {
    cwd,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  }).trim();

const worktrees: string[] = [];
/** A directory serving `spec`'s code: this tree for `.`, else a detached worktree (removed on exit). */
function checkoutOf(spec: string): { root: string; label: string } {
  if (spec === ".")
    return { root: ROOT, label: `working tree (HEAD ${git(["rev-parse", "--short", "HEAD"])} + changes)` };
  const revert = spec.startsWith("revert:") ? spec.slice("revert:".length).split(",") : null;
  const rev = revert ? "HEAD" : spec;
  const dir = path.join(mkdtempSync(path.join(tmpdir(), "edgepulse-compare-")), "tree");
  git(["worktree", "add", "--detach", dir, git(["rev-parse", rev])]);
  worktrees.push(dir);
  // Newest first (rev-list --no-walk sorts so), so each revert applies to the code it introduced.
  if (revert) git(["revert", "--no-edit", ...git(["rev-list", "--no-walk", ...revert]).split("\n")], dir);
  symlinkSync(path.join(ROOT, "node_modules"), path.join(dir, "node_modules"));
  if (existsSync(path.join(ROOT, ".dev.vars"))) copyFileSync(path.join(ROOT, ".dev.vars"), path.join(dir, ".dev.vars"));
  const head = git(["rev-parse", "--short", "HEAD"], dir);
  return { root: dir, label: revert ? `HEAD without ${revert.join(", ")} (${head})` : `${spec} (${head})` };
}
function removeWorktrees(): void {
  for (const dir of worktrees.splice(0)) {
    try {
      git(["worktree", "remove", "--force", dir]);
    } catch {
      // Already gone; `git worktree prune` tidies up the bookkeeping.
    }
  }
}
process.on("exit", removeWorktrees);
process.on("SIGINT", () => process.exit(130));

/** Runs the benchmark once against `root`, echoing its output, and returns its BENCH_RESULT. */
function runOnce(root: string): Promise<BenchResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(import.meta.dirname, `${bench}.bench.ts`)], {
      cwd: ROOT,
      env: { ...process.env, BENCH_SERVER_ROOT: root },
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk;
      process.stdout.write(chunk);
    });
    child.on("exit", (code) => {
      const line = out.split("\n").find((l) => l.startsWith("BENCH_RESULT "));
      if (code !== 0 || !line) reject(new Error(`${bench} bench failed (exit ${code})`));
      else resolve(JSON.parse(line.slice("BENCH_RESULT ".length)) as BenchResult);
    });
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

const sides = [
  { name: "before", ...checkoutOf(baselineSpec), results: [] as BenchResult[] },
  { name: "after", ...checkoutOf(currentSpec), results: [] as BenchResult[] },
];
for (let round = 0; round < ROUNDS; round++) {
  for (const side of sides) {
    console.log(`\n=== round ${round + 1}/${ROUNDS}: ${side.name} = ${side.label} ===`);
    side.results.push(await runOnce(side.root));
  }
}

const [before, after] = sides as [(typeof sides)[number], (typeof sides)[number]];
const fmt = (x: number, unit: string) =>
  `${x.toFixed(unit === "ms" ? 0 : 1)}${unit === "/s" ? " orders/s" : ` ${unit}`}`;
const row = (label: string, pick: (r: BenchResult) => number | undefined, unit: string) => {
  const b = before.results.map(pick).filter((x): x is number => x !== undefined);
  const a = after.results.map(pick).filter((x): x is number => x !== undefined);
  if (b.length === 0 || a.length === 0) return;
  const mb = median(b);
  const ma = median(a);
  console.log(
    `  ${label.padEnd(38)} ${fmt(mb, unit).padStart(14)} → ${fmt(ma, unit).padStart(14)}   ×${(ma / mb).toFixed(2)}   (runs: ${b.map((x) => x.toFixed(0)).join(", ")} → ${a.map((x) => x.toFixed(0)).join(", ")})`,
  );
};
console.log(`\n${bench}: before = ${before.label}; after = ${after.label}; medians of ${ROUNDS} alternating runs each`);
for (const c of before.results[0]?.latency.map((r) => r.c) ?? []) {
  const at = (r: BenchResult) => r.latency.find((x) => x.c === c);
  row(`${c} shoppers: POST→confirmed p50`, (r) => at(r)?.p50, "ms");
  row(`${c} shoppers: POST→confirmed p99`, (r) => at(r)?.p99, "ms");
  row(`${c} shoppers: placed p50 (POST → first history entry)`, (r) => at(r)?.place50, "ms");
  row(`${c} shoppers: baseline GET /health p50`, (r) => at(r)?.base50, "ms");
}
for (const n of before.results[0]?.throughput.map((r) => r.skus) ?? []) {
  const at = (r: BenchResult) => r.throughput.find((x) => x.skus === n);
  row(`${n} SKU(s), 50 shoppers: confirmed`, (r) => at(r)?.rate, "/s");
  row(`${n} SKU(s): server CPU per order`, (r) => at(r)?.cpu, "ms");
}
for (const side of sides)
  console.log(
    `  load average (1 min) around the ${side.name} runs: ${side.results.map((r) => `${r.loadBefore.toFixed(1)}→${r.loadAfter.toFixed(1)}`).join(", ")}`,
  );
process.exit(0);
