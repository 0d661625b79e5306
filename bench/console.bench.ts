// The console's market view under load: frame → paint latency in headless chromium while the feed
// carries 50 deltas a second, against the same view at 1 delta a second (the baseline: one frame,
// one paint, nothing queued) measured in the same run.
//
//   npm run bench -- console            (or: node_modules/.bin/node bench/console.bench.ts)
//   BENCH_SECONDS=20 BENCH_RATE=50 …
//
// A throwaway stack (test/browser/stack.ts, without the collector host) serves the console; this
// process publishes a synthetic symbol itself on /v1/ingest/:symbol with the collector's service
// token: one 200-level snapshot per exchange, then deltas of a few levels each at the set rate. The
// console measures each frame from its WebSocket `message` event to the start of the next animation
// frame after the paint that shows it (console/src/views/market.ts, `window.edgepulseConsole`), and
// where a late frame's time went: the main-thread time of each paint and the browser's long tasks
// (over 50 ms): a late frame with neither was waiting for the CPU, not for the console's code.
import { loadavg } from "node:os";
import WebSocket from "ws";
import { DEMO_ADMIN, devVar } from "../scripts/local.ts";
import { launchChromium, startStack } from "../test/browser/stack.ts";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const RATE = Number(process.env.BENCH_RATE ?? 50);
const SYMBOL = "BENCH-USD";
const EXCHANGES = ["kraken", "coinbase", "binanceus"] as const;

const percentile = (xs: number[], p: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
};

const stack = await startStack({ collector: false });
const browser = await launchChromium();
try {
  const secret = devVar("SERVICE_TOKEN_SECRET");
  const tokenRes = await fetch(`${stack.baseUrl}/v1/auth/service-token`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ secret, collectorId: "console-bench" }),
  });
  const { accessToken } = (await tokenRes.json()) as { accessToken: string };
  const ingest = new WebSocket(`${stack.baseUrl.replace("http", "ws")}/v1/ingest/${SYMBOL}`, {
    headers: { Authorization: `Bearer ${accessToken}` },
  });
  await new Promise((resolve, reject) => {
    ingest.once("open", resolve);
    ingest.once("error", reject);
  });
  let seq = 0;
  const level = (i: number, bid: boolean): [string, string] => [
    (bid ? 100 - i * 0.01 : 100.01 + i * 0.01).toFixed(2),
    (1 + ((i * 7) % 13)).toFixed(4),
  ];
  ingest.send(
    JSON.stringify({
      type: "batch",
      seq: seq++,
      ts: Date.now(),
      books: EXCHANGES.map((exchange) => ({
        exchange,
        snapshot: true,
        bids: Array.from({ length: 200 }, (_, i) => level(i, true)),
        asks: Array.from({ length: 200 }, (_, i) => level(i, false)),
      })),
      trades: [],
    }),
  );

  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  await page.goto(`${stack.baseUrl}/console`);
  await page.getByLabel("Email").fill(DEMO_ADMIN.email);
  await page.getByLabel("Password").fill(DEMO_ADMIN.password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Live market" }).waitFor();
  await page.goto(`${stack.baseUrl}/console#/market/${SYMBOL}`);
  await page.reload();
  await page.locator('article[data-exchange="kraken"] td.bid').first().waitFor({ timeout: 60_000 });

  /** Publishes `rate` deltas a second for `seconds`; returns the page's latencies for those frames. */
  const phase = async (rate: number, seconds: number) => {
    await page.evaluate(() => {
      const m = (
        globalThis as unknown as {
          edgepulseConsole: { latencies: number[]; framesPainted: number; paintMs?: number[]; longTasksMs?: number[] };
        }
      ).edgepulseConsole;
      m.latencies.length = 0;
      m.framesPainted = 0;
      if (m.paintMs) m.paintMs.length = 0;
      if (m.longTasksMs) m.longTasksMs.length = 0;
    });
    const sent = rate * seconds;
    const started = performance.now();
    for (let i = 0; i < sent; i++) {
      const due = started + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const exchange = EXCHANGES[i % EXCHANGES.length]!;
      const n = i % 150;
      ingest.send(
        JSON.stringify({
          type: "batch",
          seq: seq++,
          ts: Date.now(),
          books: [{ exchange, bids: [level(n, true), level(n + 1, true)], asks: [level(n, false)] }],
          trades: [],
        }),
      );
    }
    // Every frame painted (or a deadline): what did not arrive or paint in time counts as lost.
    const deadline = Date.now() + 10_000;
    let result = {
      latencies: [] as number[],
      framesPainted: 0,
      gaps: 0,
      paintMs: null as number[] | null,
      longTasksMs: null as number[] | null,
    };
    while (Date.now() < deadline) {
      result = await page.evaluate(() => {
        const m = (
          globalThis as unknown as {
            edgepulseConsole: {
              latencies: number[];
              framesPainted: number;
              gaps: number;
              paintMs?: number[];
              longTasksMs?: number[];
            };
          }
        ).edgepulseConsole;
        // paintMs / longTasksMs: consoles older than the bench do not keep them.
        return {
          latencies: [...m.latencies],
          framesPainted: m.framesPainted,
          gaps: m.gaps,
          paintMs: m.paintMs ? [...m.paintMs] : null,
          longTasksMs: m.longTasksMs ? [...m.longTasksMs] : null,
        };
      });
      if (result.framesPainted >= sent) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    return { sent, ...result };
  };

  const baseline = await phase(1, Math.min(10, SECONDS));
  const loaded = await phase(RATE, SECONDS);
  const work = (r: typeof baseline) =>
    r.paintMs
      ? `\n  ${"".padEnd(22)} paint work p50 ${percentile(r.paintMs, 50).toFixed(2)} ms   p99 ${percentile(r.paintMs, 99).toFixed(2)} ms   max ${Math.max(0, ...r.paintMs).toFixed(1)} ms (${r.paintMs.length} paints)   long tasks ${r.longTasksMs?.length ?? 0}${r.longTasksMs?.length ? ` (max ${Math.max(...r.longTasksMs).toFixed(0)} ms)` : ""}`
      : "";
  const row = (label: string, r: typeof baseline) =>
    `  ${label.padEnd(22)} frames ${String(r.framesPainted).padStart(5)}/${r.sent}   p50 ${percentile(r.latencies, 50).toFixed(1)} ms   p99 ${percentile(r.latencies, 99).toFixed(1)} ms   max ${Math.max(...r.latencies).toFixed(1)} ms   gaps ${r.gaps}${work(r)}`;
  const p99 = percentile(loaded.latencies, 99);
  console.log(`
console market view, frame → paint (headless chromium, ${EXCHANGES.length} exchanges × 200-level books, ladder + depth charts)
${row("1 delta/s (baseline)", baseline)}
${row(`${RATE} deltas/s`, loaded)}
  p50 ratio ${RATE}/s vs 1/s: ×${(percentile(loaded.latencies, 50) / percentile(baseline.latencies, 50)).toFixed(2)}
  target p99 < 100 ms at ${RATE} deltas/s: ${p99 < 100 && loaded.framesPainted >= loaded.sent ? "met" : "NOT met"}
  load average ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}
`);
  ingest.close();
} finally {
  await browser.close();
  await stack.stop();
}
