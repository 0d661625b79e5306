import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { AuditPage } from "../contracts/audit";
import { CollectorFence } from "../contracts/collector-fence";
import { type BookUpdate, CollectorsView, MARKET_CLOSE } from "../contracts/market";
import { OrderBook } from "../contracts/order-book";
import { call, collectorToken, expectProblem, tokenFor } from "./helpers";
import { TestPublisher, TestSubscriber } from "./market-sockets";

// Issue 11: the console's "kill" for a collector host. Fencing goes through the revocation list the
// MarketFeed objects check once a second per publish socket, so the clock is frozen and moved by
// hand past that interval instead of sleeping.

const admin = () => tokenFor("u-fence-admin", ["admin"]);
const kraken = () => env.MARKET_FIXTURES.find((f) => f.exchange === "kraken")!;
const stats = (symbol: string) => env.MARKET_FEED.getByName(symbol).feedStats();
const fence = async (host: string, json?: unknown, token?: string) =>
  call(`/v1/market/collectors/${host}/fence`, { method: "POST", token: token ?? (await admin()), json });

/** The book the publisher has sent so far: what every subscriber must hold. */
function bookOf(updates: BookUpdate[]) {
  const book = new OrderBook();
  for (const u of updates) book[u.snapshot ? "replace" : "applyLevels"](u.bids, u.asks);
  return book.view();
}

/** A host's health report, as it sends one every 5 s; the status says whether the edge took it. */
async function report(host: string): Promise<number> {
  const res = await call("/v1/market/collectors", {
    method: "PUT",
    token: await collectorToken(host),
    json: { host, reportedAt: new Date().toISOString(), exchanges: {} },
  });
  return res.status;
}

/** Hosts publishing `symbol` in this order (the first is primary), each having reported. */
async function publishers(symbol: string, hosts: string[]): Promise<TestPublisher[]> {
  const opened: TestPublisher[] = [];
  for (const host of hosts) {
    const p = await TestPublisher.open(symbol, { collector: host });
    await p.until(() => p.roles().length === 1);
    expect(await report(host)).toBe(200);
    opened.push(p);
  }
  return opened;
}

afterEach(() => {
  vi.useRealTimers();
});

describe("POST /v1/market/collectors/{host}/fence", () => {
  it("fences the primary: its socket closes, the standby takes over with no seq gap, its reconnects and reports are refused until the fence ends; audited", async () => {
    const symbol = "FENCE-USD";
    const updates = kraken().updates.slice(0, 30);
    const start = Date.now();
    vi.useFakeTimers({ toFake: ["Date"], now: start });
    const [a, b] = await publishers(symbol, ["fence-a", "fence-b"]);
    const sub = await TestSubscriber.open(symbol);
    for (const update of updates.slice(0, 15)) {
      await a!.batch([update]);
      await b!.batch([update]);
    }

    const res = await fence("fence-a", { seconds: 60, reason: "console kill test" });
    expect(res.status).toBe(200);
    const fenced = CollectorFence.parse(await res.json());
    expect(fenced).toEqual({
      host: "fence-a",
      fencedUntil: new Date(start + 60_000).toISOString(),
      primaryFor: [symbol],
      standbyFor: [],
      withoutStandby: [],
    });

    // Past the feed's once-a-second check: host-a's next frame is its last (it was still the
    // primary when it sent it); the socket closes and host-b is promoted at once.
    vi.setSystemTime(start + 1_500);
    a!.sendRaw(JSON.stringify({ type: "batch", seq: a!.nextSeq, ts: Date.now(), books: [], trades: [] }));
    await a!.waitClosed();
    expect(a!.closed).toEqual({ code: MARKET_CLOSE.tokenExpired, reason: "the access token was revoked" });
    await b!.until(() => b!.roles().at(-1) === "primary" && b!.resyncs() === 1);
    expect(await stats(symbol)).toMatchObject({ primary: "fence-b", failovers: 1 });

    // host-b answers with its book, the one subscribers hold: nothing to send them; then it publishes on.
    const seqBefore = (await stats(symbol)).feedSeq;
    await b!.batch([{ ...bookOf(updates.slice(0, 15)), exchange: "kraken", snapshot: true }]);
    expect((await stats(symbol)).feedSeq).toBe(seqBefore);
    for (const update of updates.slice(15)) await b!.batch([update]);
    await sub.untilSeq((await stats(symbol)).feedSeq);
    expect(sub.gaps).toBe(0);
    expect(sub.snapshots).toBe(1);
    expect(sub.view("kraken")).toEqual(bookOf(updates));

    // Fenced: host-a can neither publish again nor report.
    await expect(TestPublisher.open(symbol, { collector: "fence-a" })).rejects.toThrow(/failed: 401/);
    expect(await report("fence-a")).toBe(401);
    const view = CollectorsView.parse(await (await call("/v1/market/collectors")).json());
    expect(view.symbols[symbol]).toMatchObject({ primary: "fence-b", standbys: [] });
    expect(view.hosts.find((h) => h.host === "fence-b")?.primaryFor).toContain(symbol);

    // When the fence ends it rejoins, as the standby of the live primary.
    vi.setSystemTime(start + 61_000);
    await b!.batch([]);
    const [back] = await publishers(symbol, ["fence-a"]);
    expect(back!.roles()).toEqual(["standby"]);

    const audited = await call("/v1/admin/audit", { token: await admin() });
    const entries = AuditPage.parse(await audited.json()).items.filter((e) => e.action === "collector.fenced");
    expect(entries).toEqual([
      expect.objectContaining({
        actor: "user:u-fence-admin",
        target: "collector:fence-a",
        details: expect.objectContaining({ seconds: 60, reason: "console kill test", primaryFor: [symbol] }),
      }),
    ]);
    for (const s of [back!, b!, sub]) s.close();
  });

  it("answers bad input, strangers and unknown hosts with problem+json and fences nothing; refuses to orphan a symbol unless forced", async () => {
    const symbol = "LONE-USD";
    const start = Date.now();
    vi.useFakeTimers({ toFake: ["Date"], now: start });
    const [lone] = await publishers(symbol, ["lone-host"]);
    await lone!.batch([{ exchange: "kraken", snapshot: true, bids: [["10", "1"]], asks: [["11", "1"]] }]);

    await expectProblem(await call("/v1/market/collectors/lone-host/fence", { method: "POST" }), 401);
    await expectProblem(await fence("lone-host", {}, await tokenFor("u-fence-customer")), 403);
    await expectProblem(await fence("lone-host", {}, await collectorToken("lone-host")), 403);
    await expectProblem(await fence("nobody-here"), 404);
    await expectProblem(await fence("bad%20host!"), 400);
    for (const body of [{ seconds: 1 }, { seconds: 3601 }, { seconds: "60" }, { force: "yes" }, { extra: 1 }]) {
      await expectProblem(await fence("lone-host", body), 400, JSON.stringify(body));
    }
    // The only publisher of LONE-USD: fencing it would stop the book.
    const conflict = await expectProblem(await fence("lone-host"), 409);
    expect(conflict.detail).toContain(symbol);

    // None of that fenced anything: past the check interval the host still publishes and reports.
    vi.setSystemTime(start + 1_500);
    await lone!.batch([]);
    await lone!.batch([]);
    expect(lone!.closed).toBeNull();
    expect(await report("lone-host")).toBe(200);

    // Forced (no body needed beyond it): fenced, and the answer names the symbol left without a publisher.
    const forced = await fence("lone-host", { force: true });
    expect(forced.status).toBe(200);
    expect(CollectorFence.parse(await forced.json())).toMatchObject({ primaryFor: [symbol], withoutStandby: [symbol] });
    vi.setSystemTime(start + 3_000);
    lone!.sendRaw(JSON.stringify({ type: "batch", seq: lone!.nextSeq, ts: Date.now(), books: [], trades: [] }));
    await lone!.waitClosed();
    expect(lone!.closed?.code).toBe(MARKET_CLOSE.tokenExpired);
  });
});
