// `npm run market:failover -- <how>`: kills a collector host of a running `npm start -- --replicas 2`
// stack mid-replay and checks that its standby keeps every book live (issue 11, redundant collectors):
//
//   node scripts/market-failover.ts --pid <pid> [--signal SIGKILL|SIGTERM|SIGSTOP]   by signal
//   node scripts/market-failover.ts --fence [--host local-a]                          from the API
//
// The pid is the one `npm start` prints for the host; SIGSTOP freezes it with its sockets open
// (the silence path: the edge waits 1 s for a heartbeat), SIGKILL and SIGTERM close them (the
// disconnect path); `--fence` calls POST /v1/market/collectors/{host}/fence as the demo admin,
// as the console's Fence button does. By default the victim is XMR-USD's primary.
//
// Passes when every symbol the victim led shows a new primary in GET /v1/market/collectors within
// 2 s, a subscriber to XMR-USD saw no seq gap and no extra snapshot, and the book is live (not
// stale, updated after the kill). PORT picks the stack (default 8787). Exit code 0/1.
import { parseArgs } from "node:util";
import WebSocket from "ws";
import { FeedMirror } from "../contracts/feed-mirror.ts";
import { FeedFrame } from "../contracts/market.ts";
import { decodeFeedMessage } from "../contracts/market-binary.ts";
import { createApiClient, expectOk } from "./api-client.ts";
import { BASE_URL, createSeedContext } from "./local.ts";

const { values } = parseArgs({
  options: {
    pid: { type: "string" },
    signal: { type: "string", default: "SIGKILL" },
    fence: { type: "boolean", default: false },
    host: { type: "string" },
  },
});
if (!values.fence && !values.pid) {
  console.error(
    "usage: node scripts/market-failover.ts --pid <collector pid> [--signal SIGKILL|SIGTERM|SIGSTOP] | --fence [--host <id>]",
  );
  process.exit(2);
}
const WATCHED = "XMR-USD";
const TAKEOVER_LIMIT_MS = 2000;
const api = createApiClient(BASE_URL);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const collectors = () => expectOk("GET /v1/market/collectors", api.GET("/v1/market/collectors"));
const failures: string[] = [];
const check = (ok: boolean, what: string) => {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures.push(what);
};

const before = await collectors();
const victim = values.host ?? before.symbols[WATCHED]?.primary;
if (!victim) throw new Error(`${WATCHED} has no primary: is the stack running with --replicas 2?`);
const led = Object.entries(before.symbols)
  .filter(([, s]) => s.primary === victim)
  .map(([symbol]) => symbol);
const unprotected = led.filter((s) => before.symbols[s]!.standbys.length === 0);
console.log(`${victim} leads ${led.length} symbols; without a standby: ${unprotected.join(", ") || "none"}`);

// A subscriber on the watched symbol, counting seq gaps and snapshots across the kill.
const mirror = new FeedMirror();
let gaps = 0;
let snapshots = 0;
let lastFrameAt = 0;
let killedAt = Number.POSITIVE_INFINITY;
let longestSilenceMs = 0;
const ws = new WebSocket(`${BASE_URL.replace("http", "ws")}/v1/market/${WATCHED}/ws`);
ws.on("message", (data) => {
  for (const raw of decodeFeedMessage(String(data)) ?? []) {
    const frame = FeedFrame.parse(raw);
    if (frame.type === "snapshot") snapshots++;
    else if (frame.seq !== mirror.lastSeq + 1) gaps++;
    mirror.apply(frame);
    const now = performance.now();
    if (now > killedAt) longestSilenceMs = Math.max(longestSilenceMs, now - Math.max(lastFrameAt, killedAt));
    lastFrameAt = now;
  }
});
await new Promise((resolve, reject) => {
  ws.once("open", resolve);
  ws.once("error", reject);
});
await sleep(3000);
console.log(`subscriber on ${WATCHED}: seq ${mirror.lastSeq} before the kill`);

const killedAtIso = new Date().toISOString();
killedAt = performance.now();
if (values.fence) {
  const token = await createSeedContext(BASE_URL).adminToken();
  const fenced = await expectOk(
    "fence",
    createApiClient(BASE_URL, { token }).POST("/v1/market/collectors/{host}/fence", {
      params: { path: { host: victim } },
      body: { seconds: 60, reason: "scripts/market-failover.ts", force: false },
    }),
  );
  console.log(`fenced ${fenced.host} until ${fenced.fencedUntil}`);
} else {
  process.kill(Number(values.pid), values.signal as NodeJS.Signals);
  console.log(`sent ${values.signal} to pid ${values.pid}`);
}

const tookOverAfter = new Map<string, number>();
while (tookOverAfter.size < led.length && performance.now() - killedAt < 10_000) {
  const view = await collectors();
  for (const symbol of led) {
    const primary = view.symbols[symbol]?.primary;
    if (!tookOverAfter.has(symbol) && primary && primary !== victim)
      tookOverAfter.set(symbol, performance.now() - killedAt);
  }
  await sleep(50);
}
await sleep(3000); // the subscriber keeps receiving from the new primary
ws.close();

const slowest = Math.max(...tookOverAfter.values());
const protectedSymbols = led.filter((s) => !unprotected.includes(s));
check(
  protectedSymbols.every((s) => (tookOverAfter.get(s) ?? Number.POSITIVE_INFINITY) <= TAKEOVER_LIMIT_MS),
  `every symbol ${victim} led with a standby has a new primary within ${TAKEOVER_LIMIT_MS} ms (${tookOverAfter.size}/${led.length}, slowest ${slowest.toFixed(0)} ms as polled)`,
);
check(gaps === 0, `subscriber on ${WATCHED}: no seq gap (${gaps})`);
check(snapshots === 1, `subscriber on ${WATCHED}: only its first snapshot (${snapshots})`);
console.log(`     longest silence on ${WATCHED} after the kill: ${longestSilenceMs.toFixed(0)} ms`);
const book = await expectOk(
  "book",
  api.GET("/v1/market/{symbol}/book", { params: { path: { symbol: WATCHED }, query: { depth: 1 } } }),
);
check(
  !book.stale && book.updatedAt > killedAtIso,
  `${WATCHED} book live (stale ${book.stale}, updated ${book.updatedAt})`,
);
if (values.signal === "SIGSTOP" && values.pid) process.kill(Number(values.pid), "SIGCONT");
process.exit(failures.length === 0 ? 0 : 1);
