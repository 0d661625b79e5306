import { evictDurableObject, runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type BookUpdate, type Level, MARKET_CLOSE } from "../contracts/market";
import { ACCESS_TOKEN_TTL_SECONDS } from "../domain/identity/access-tokens";
import { revoke } from "../domain/identity/revocation";
import { call, expectProblem } from "../test/helpers";
import { relayOf, restBook, TestPublisher, TestSubscriber } from "../test/market-sockets";
import {
  MAX_MALFORMED_MESSAGES,
  MAX_SNAPSHOT_DEPTH,
  MESSAGE_BURST,
  RESYNC_INTERVAL_MS,
  SUBSCRIBER_LIMITS,
} from "./market-feed";

// Issue 9, findings 3 (subscriber abuse) and 9 (publish sockets outliving their token). Every
// throttle reads Date.now(), which these tests freeze and move by hand: no sleeps, no races.
// Subscribers are served by the symbol's relay objects (issue 11): their alarms, evictions and
// caps are the relay's (`relayOf`); the counters are summed over the relays by `feedStats`.

const stub = (symbol: string) => env.MARKET_FEED.getByName(symbol);
const stats = (symbol: string) => stub(symbol).feedStats();

/** Polls the object's counters (each poll an RPC, no timer) until `test` holds; the test timeout bounds it. */
async function untilStats(symbol: string, test: (s: Awaited<ReturnType<typeof stats>>) => boolean) {
  for (;;) {
    const s = await stats(symbol);
    if (test(s)) return s;
  }
}

const levels = (from: number, n: number): Level[] => Array.from({ length: n }, (_, i) => [`${from + i}`, "1"]);
const book = (bids: Level[], asks: Level[]): BookUpdate => ({ exchange: "kraken", snapshot: true, bids, asks });

afterEach(() => {
  vi.useRealTimers();
});

describe("MarketFeed subscribers: resync storms (finding 3)", () => {
  it("answers 1,000 resync frames with one snapshot when the interval ends, not 1,000", async () => {
    const symbol = "STORM-USD";
    const publisher = await TestPublisher.open(symbol);
    await publisher.batch([book(levels(1, 50), levels(100, 50))]);
    const start = Date.now();
    vi.useFakeTimers({ toFake: ["Date"], now: start });
    const sub = await TestSubscriber.open(symbol);
    await sub.until(() => sub.snapshots === 1);

    for (let i = 0; i < 1000; i++) sub.sendRaw('{"type":"resync"}');
    const absorbed = await untilStats(symbol, (s) => s.subscriberResyncsCoalesced === 1000);
    expect(absorbed.subscriberResyncs).toBe(0); // none within the interval of the connect snapshot
    expect(sub.snapshots).toBe(1);

    // The interval ends: the relay's alarm sends the one snapshot all 1,000 requests coalesced into.
    vi.setSystemTime(start + RESYNC_INTERVAL_MS);
    expect(await runDurableObjectAlarm(relayOf(symbol))).toBe(true);
    await sub.until(() => sub.snapshots === 2);
    // Nothing else is owed: the next frame after it is the publisher's delta, not a third snapshot.
    await publisher.batch([{ exchange: "kraken", bids: [["1", "0"]], asks: [] }]);
    await sub.untilSeq((await stats(symbol)).feedSeq);
    expect(sub.frames.map((f) => f.type)).toEqual(["snapshot", "snapshot", "delta"]);
    expect(sub.closed).toBeNull();

    // Past the interval a resync is answered at once again.
    vi.setSystemTime(start + 2.5 * RESYNC_INTERVAL_MS);
    sub.sendRaw('{"type":"resync"}');
    await sub.until(() => sub.snapshots === 3);
    expect((await stats(symbol)).subscriberResyncs).toBe(1);
    publisher.close();
    sub.close();
  });

  it("serves a coalesced resync after the interval with the next batch even before the alarm", async () => {
    const symbol = "STORM2-USD";
    const publisher = await TestPublisher.open(symbol);
    await publisher.batch([book(levels(1, 5), levels(100, 5))]);
    const start = Date.now();
    vi.useFakeTimers({ toFake: ["Date"], now: start });
    const sub = await TestSubscriber.open(symbol);
    for (let i = 0; i < 10; i++) sub.sendRaw('{"type":"resync"}');
    await untilStats(symbol, (s) => s.subscriberResyncsCoalesced === 10);
    vi.setSystemTime(start + RESYNC_INTERVAL_MS);
    await publisher.batch([{ exchange: "kraken", bids: [["1", "0"]], asks: [] }]);
    const seq = (await stats(symbol)).feedSeq;
    await sub.until(() => sub.snapshots === 2);
    // The snapshot follows the batch's delta (never between a batch's frames) and carries its seq.
    expect(sub.frames.map((f) => f.type)).toEqual(["snapshot", "delta", "snapshot"]);
    expect(sub.frames.at(-1)?.seq).toBe(seq);
    expect(sub.gaps).toBe(0);
    publisher.close();
    sub.close();
  });
});

describe("MarketFeed subscribers: abusive sockets (finding 3)", () => {
  it("closes a socket that floods messages with 1008, and one that keeps sending garbage", async () => {
    const symbol = "ABUSE-USD";
    vi.useFakeTimers({ toFake: ["Date"], now: Date.now() });
    const flooder = await TestSubscriber.open(symbol);
    const bystander = await TestSubscriber.open(symbol);
    for (let i = 0; i <= MESSAGE_BURST; i++) flooder.sendRaw('{"type":"ack","seq":0}');
    await flooder.waitClosed();
    expect(flooder.closed).toEqual({ code: MARKET_CLOSE.policyViolation, reason: "too many messages" });

    const garbage = await TestSubscriber.open(symbol);
    for (let i = 0; i < MAX_MALFORMED_MESSAGES; i++) garbage.sendRaw(i % 2 ? "not json" : '{"type":"subscribe"}');
    garbage.sendRaw('{"type":"resync"}'); // valid messages do not reset the count...
    garbage.sendRaw(new TextEncoder().encode("binary").buffer as ArrayBuffer); // ...one more malformed one closes it
    await garbage.waitClosed();
    expect(garbage.closed).toEqual({ code: MARKET_CLOSE.policyViolation, reason: "too many malformed messages" });

    const after = await untilStats(symbol, (s) => s.subscribers === 1);
    expect(after.subscribersClosedAbusive).toBe(2);
    expect(bystander.closed).toBeNull();
    bystander.close();
  });
});

describe("MarketFeed subscribers: socket caps (finding 3)", () => {
  it(`refuses socket ${SUBSCRIBER_LIMITS.perAddress + 1} from one address (IPv6 by /64) with ${MARKET_CLOSE.tooManySockets}, also after hibernation, while other addresses connect`, async () => {
    const symbol = "CAP-USD";
    const mine = await Promise.all(
      Array.from({ length: SUBSCRIBER_LIMITS.perAddress }, (_, i) =>
        TestSubscriber.open(symbol, { ip: `2001:db8:1:2::${(i + 1).toString(16)}` }),
      ),
    );
    const over = await TestSubscriber.open(symbol, { ip: "2001:db8:1:2:ffff::9" });
    await over.waitClosed();
    expect(over.closed?.code).toBe(MARKET_CLOSE.tooManySockets);
    expect(over.frames).toHaveLength(0); // refused before any snapshot was built

    const neighbour = await TestSubscriber.open(symbol, { ip: "2001:db8:1:3::1" });
    const v4 = await TestSubscriber.open(symbol, { ip: "198.51.100.7" });
    await neighbour.until(() => neighbour.snapshots === 1);
    await v4.until(() => v4.snapshots === 1);

    // The count lives in the sockets' tags, not in memory: an evicted relay still refuses.
    await evictDurableObject(relayOf(symbol, { ip: "2001:db8:1:2::abcd" }));
    const again = await TestSubscriber.open(symbol, { ip: "2001:db8:1:2::abcd" });
    await again.waitClosed();
    expect(again.closed?.code).toBe(MARKET_CLOSE.tooManySockets);

    // One of them leaves: the address may connect again.
    mine[0]!.close();
    await untilStats(symbol, (s) => s.subscribers === SUBSCRIBER_LIMITS.perAddress + 1);
    const back = await TestSubscriber.open(symbol, { ip: "2001:db8:1:2::abcd" });
    await back.until(() => back.snapshots === 1);
    expect((await stats(symbol)).subscribersRefused).toBe(1); // counters are in memory: since the relay's eviction
    for (const s of [...mine, neighbour, v4, back]) s.close();
  });

  it(`closes subscriber ${SUBSCRIBER_LIMITS.perObject + 1} of one relay with ${MARKET_CLOSE.tryAgainLater} (try again later)`, async () => {
    const symbol = "FULL-USD";
    // Loopback is exempt from the per-address cap (local runs), and sharded by WebSocket key: one
    // key puts every socket on one relay, so one address can fill it.
    const key = "dGhlIHNhbXBsZSBub25jZQ==";
    const subs: TestSubscriber[] = [];
    for (let i = 0; i < SUBSCRIBER_LIMITS.perObject; i += 100) {
      subs.push(
        ...(await Promise.all(
          Array.from({ length: 100 }, () => TestSubscriber.open(symbol, { ip: "127.0.0.1", key })),
        )),
      );
    }
    const over = await TestSubscriber.open(symbol, { ip: "127.0.0.1", key });
    await over.waitClosed();
    expect(over.closed?.code).toBe(MARKET_CLOSE.tryAgainLater);
    expect((await stats(symbol)).subscribers).toBe(SUBSCRIBER_LIMITS.perObject);
    for (const s of subs) s.close();
  }, 120_000);
});

describe("MarketFeed subscribers: snapshot depth (finding 3)", () => {
  it("bounds a subscriber's snapshots to the depth it asked for; refuses depths over the maximum", async () => {
    const symbol = "DEPTH-USD";
    const publisher = await TestPublisher.open(symbol);
    await publisher.batch([book(levels(1, 40), levels(100, 40))]);
    const start = Date.now();
    vi.useFakeTimers({ toFake: ["Date"], now: start });
    const shallow = await TestSubscriber.open(symbol, { depth: 5 });
    const full = await TestSubscriber.open(symbol);
    await shallow.until(() => shallow.snapshots === 1);
    await full.until(() => full.snapshots === 1);
    expect(shallow.view("kraken").bids).toEqual(levels(36, 5).reverse());
    expect(shallow.view("kraken").asks).toEqual(levels(100, 5));
    expect(full.view("kraken").bids).toHaveLength(40);

    // A resync snapshot keeps the bound too.
    vi.setSystemTime(start + RESYNC_INTERVAL_MS);
    shallow.sendRaw('{"type":"resync"}');
    await shallow.until(() => shallow.snapshots === 2);
    const snapshot = shallow.frames.at(-1);
    expect(snapshot?.type === "snapshot" && snapshot.books[0]?.bids.length).toBe(5);

    for (const depth of ["0", String(MAX_SNAPSHOT_DEPTH + 1), "abc", "2.5"]) {
      await expectProblem(
        await call(`/v1/market/${symbol}/ws?depth=${depth}`, { headers: { Upgrade: "websocket" } }),
        400,
        depth,
      );
    }
    publisher.close();
    shallow.close();
    full.close();
  });
});

describe("MarketFeed publishers: token lifetime and collector identity (finding 9)", () => {
  it(`closes a publish socket with ${MARKET_CLOSE.tokenExpired} at its first frame after the token expired, applying nothing`, async () => {
    const symbol = "EXP-USD";
    const start = Date.now();
    vi.useFakeTimers({ toFake: ["Date"], now: start });
    const publisher = await TestPublisher.open(symbol, { collector: "exp-host" });
    await publisher.batch([book([["10", "1"]], [["11", "1"]])]);
    vi.setSystemTime(start + ACCESS_TOKEN_TTL_SECONDS * 1000);
    publisher.sendRaw(JSON.stringify({ type: "batch", seq: 1, ts: 1, books: [book([["99", "1"]], [])], trades: [] }));
    await publisher.waitClosed();
    expect(publisher.closed?.code).toBe(MARKET_CLOSE.tokenExpired);
    expect((await restBook(symbol, "?exchange=kraken")).bids).toEqual([["10", "1"]]);
    expect((await stats(symbol)).publishersExpired).toBe(1);
  });

  it(`closes a publish socket with ${MARKET_CLOSE.tokenExpired} once its collector's tokens are revoked`, async () => {
    const symbol = "REV-USD";
    const start = Date.now();
    vi.useFakeTimers({ toFake: ["Date"], now: start });
    const publisher = await TestPublisher.open(symbol, { collector: "rev-host" });
    await publisher.batch([book([["10", "1"]], [["11", "1"]])]);
    await revoke(env, [{ kind: "user", subject: "rev-host", expiresAt: start + 3_600_000 }]);
    // Past the revocation list's staleness bound, so every isolate has seen the row.
    vi.setSystemTime(start + 2_000);
    publisher.sendRaw(JSON.stringify({ type: "batch", seq: 1, ts: 1, books: [], trades: [] }));
    await publisher.waitClosed();
    expect(publisher.closed).toEqual({ code: MARKET_CLOSE.tokenExpired, reason: "the access token was revoked" });
    // A fresh token of another collector publishes on.
    const other = await TestPublisher.open(symbol, { collector: "other-host" });
    await other.batch([book([["12", "1"]], [])]);
    other.close();
  });

  it("keeps one socket per collector identity: the same identity replaces its socket (4001); another is a hot standby that takes over when the primary leaves", async () => {
    const symbol = "IDENT-USD";
    const a1 = await TestPublisher.open(symbol, { collector: "host-a" });
    await a1.batch([book([["10", "1"]], [])]);
    const a2 = await TestPublisher.open(symbol, { collector: "host-a" });
    await a1.waitClosed();
    expect(a1.closed?.code).toBe(MARKET_CLOSE.replaced);
    await a2.batch([book([["11", "1"]], [])]);
    await a2.until(() => a2.roles().length === 1);
    expect(a2.roles()).toEqual(["primary"]);

    // Another identity is acknowledged but not applied: host-a stays the writer.
    const b = await TestPublisher.open(symbol, { collector: "host-b" });
    await b.batch([book([["12", "1"]], [])]);
    await b.until(() => b.roles().length === 1);
    expect(b.roles()).toEqual(["standby"]);
    expect((await restBook(symbol, "?exchange=kraken")).bids).toEqual([["11", "1"]]);
    expect(await stats(symbol)).toMatchObject({ primary: "host-a", standbys: ["host-b"], standbyFrames: 1 });

    // host-a leaves: host-b is promoted at once and asked for snapshots; its book is applied.
    a2.close();
    await b.until(() => b.roles().at(-1) === "primary" && b.resyncs() === 1);
    await b.batch([book([["13", "1"]], [])]);
    expect((await restBook(symbol, "?exchange=kraken")).bids).toEqual([["13", "1"]]);
    expect(await stats(symbol)).toMatchObject({ primary: "host-b", failovers: 1, failoverBooksDiffered: 1 });
    b.close();
  });

  it("keeps its primary across an unclean restart: the standby that speaks first stays standby", async () => {
    const symbol = "RESTART-USD";
    const stub = env.MARKET_FEED.getByName(symbol);
    const a = await TestPublisher.open(symbol, { collector: "host-a" });
    await a.batch([book([["10", "1"]], [["11", "1"]])]);
    expect(await runDurableObjectAlarm(stub)).toBe(true); // flushed: storage knows host-a's socket
    const b = await TestPublisher.open(symbol, { collector: "host-b" });
    await b.batch([book([["12", "1"]], [])]);
    await b.until(() => b.roles().length === 1);
    await a.batch([{ exchange: "kraken", snapshot: false, bids: [["10", "2"]], asks: [] }]);
    await evictDurableObject(stub); // after a batch storage did not get: an unclean restart

    // The standby speaks first; it must not take the role from a primary whose socket is open.
    await b.batch([book([["13", "1"]], [])]);
    expect(await stats(symbol)).toMatchObject({ primary: "host-a", standbys: ["host-b"], failovers: 0 });
    expect(b.roles()).toEqual(["standby"]);
    expect((await restBook(symbol, "?exchange=kraken")).bids).not.toContainEqual(["13", "1"]);
    // The primary's next delta finds its book suspect: it is asked for snapshots, which apply.
    await a.batch([{ exchange: "kraken", snapshot: false, bids: [["10", "3"]], asks: [] }]);
    await a.until(() => a.resyncs() === 1);
    await a.batch([book([["10", "4"]], [["11", "1"]])]);
    expect((await restBook(symbol, "?exchange=kraken")).bids).toEqual([["10", "4"]]);
    a.close();
    b.close();
  });
});
