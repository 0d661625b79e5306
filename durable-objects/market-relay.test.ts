import { evictDurableObject, runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { FeedMirror } from "../contracts/feed-mirror";
import { type BookUpdate, CollectorsView, type Exchange, type FeedFrame } from "../contracts/market";
import { decodeFeedMessage } from "../contracts/market-binary";
import { OrderBook } from "../contracts/order-book";
import { call, collectorToken } from "../test/helpers";
import { relayOf, restBook, TestPublisher, TestSubscriber } from "../test/market-sockets";
import { FAILOVER_SILENCE_MS } from "./market-feed";
import { RESYNC_INTERVAL_MS } from "./market-feed-fan-out";
import { relaysPerSymbol } from "./market-relay-links";

// Issue 11: the fan-out tree (MarketFeed → relays → subscribers) and redundant collectors, end to
// end through the public routes, on recorded Kraken XMR/USD updates. Nothing here waits on time:
// clients wait for frames, the failover's silence is measured on a frozen clock moved by hand.

const feeds = env.MARKET_FIXTURES;
const kraken = () => feeds.find((f) => f.exchange === "kraken")!;
const stats = (symbol: string) => env.MARKET_FEED.getByName(symbol).feedStats();

/** What the publisher has published: the reference every subscriber's book must equal. */
function reference(updates: BookUpdate[]): OrderBook {
  const book = new OrderBook();
  for (const u of updates) {
    if (u.snapshot) book.replace(u.bids, u.asks);
    else book.applyLevels(u.bids, u.asks);
  }
  return book;
}

/**
 * A lean subscriber for the 2,000-socket test: the message decoder and the FeedMirror real clients
 * use, without the zod check per frame (TestSubscriber does that for the other tests), so 2,000
 * of them stay cheap on two loaded cores. It records any frame that does not continue its seq.
 */
class LeanSubscriber {
  readonly mirror = new FeedMirror();
  outOfOrder = 0;
  messages = 0;
  private signal: (() => void) | null = null;
  private target = Number.POSITIVE_INFINITY;

  constructor(
    readonly ws: WebSocket,
    readonly coalesce: boolean,
  ) {
    ws.addEventListener("message", (event) => {
      this.messages++;
      const frames = decodeFeedMessage(String(event.data)) as FeedFrame[];
      if (frames.length !== 1 && !coalesce) this.outOfOrder++; // a frame list it did not ask for
      for (const frame of frames) {
        if (frame.type !== "snapshot" && frame.seq !== this.mirror.lastSeq + 1) this.outOfOrder++;
        this.mirror.apply(frame);
      }
      if (this.mirror.lastSeq >= this.target) this.signal?.();
    });
  }

  static async open(symbol: string, coalesce: boolean): Promise<LeanSubscriber> {
    const res = await call(`/v1/market/${symbol}/ws${coalesce ? "?coalesce=true" : ""}`, {
      headers: { Upgrade: "websocket", "CF-Connecting-IP": "127.0.0.1" },
    });
    if (res.status !== 101 || !res.webSocket) throw new Error(`upgrade failed: ${res.status}`);
    res.webSocket.accept();
    return new LeanSubscriber(res.webSocket, coalesce);
  }

  untilSeq(seq: number): Promise<void> {
    if (this.mirror.lastSeq >= seq) return Promise.resolve();
    this.target = seq;
    return new Promise((resolve) => {
      this.signal = resolve;
    });
  }
}

afterEach(() => {
  vi.useRealTimers();
});

describe("market fan-out through relay objects", () => {
  // The deadline (300 s) only catches a hang: opening 2,000 sockets alone took 38-55 s at load 10,
  // and the whole test 126 s under `stress --cpu 2`; nothing here depends on speed.
  it("2,000 subscribers on one symbol (half of them coalescing) get every frame in order, gap-free, and end with the feed's book", async () => {
    const symbol = "FANOUT-USD";
    const updates = kraken().updates.slice(0, 21);
    const publisher = await TestPublisher.open(symbol);
    await publisher.batch([updates[0]!]);

    const subs: LeanSubscriber[] = [];
    for (let i = 0; i < 2000; i += 100) {
      subs.push(
        ...(await Promise.all(Array.from({ length: 100 }, (_, j) => LeanSubscriber.open(symbol, j % 2 === 0)))),
      );
    }
    const start = (await stats(symbol)).feedSeq;
    // Published back to back, as a busy collector does: relays may get several batches at once.
    await Promise.all(updates.slice(1).map((update) => publisher.batch([update])));
    const end = (await stats(symbol)).feedSeq;
    expect(end).toBe(start + 20);
    await Promise.all(subs.map((s) => s.untilSeq(end)));

    const expected = JSON.stringify(reference(updates).view());
    const served = await restBook(symbol, "?exchange=kraken&depth=1000");
    expect(JSON.stringify({ bids: served.bids, asks: served.asks })).toBe(
      JSON.stringify(reference(updates).view(1000)),
    );
    for (const sub of subs) {
      expect(sub.outOfOrder).toBe(0);
      expect(sub.mirror.gaps).toBe(0);
      expect(sub.mirror.snapshots).toBe(1);
      expect(sub.mirror.frames).toBe(1 + 20); // the snapshot, then every delta
      expect(JSON.stringify(sub.mirror.view("kraken"))).toBe(expected);
    }

    // The feed handed each batch once to each relay; the relays did the 2,000-way fan-out.
    const after = await stats(symbol);
    expect(after.subscribers).toBe(2000);
    expect(after.relays.relays).toBe(relaysPerSymbol(env));
    expect(after.relays.framesIn).toBe(20 * relaysPerSymbol(env));
    expect(after.relays.framesOut).toBe(20 * 2000);
    // Plain subscribers got one message per frame; coalescing ones at most that many.
    expect(subs.filter((s) => !s.coalesce).every((s) => s.messages === 21)).toBe(true);
    expect(subs.filter((s) => s.coalesce).every((s) => s.messages >= 2 && s.messages <= 21)).toBe(true);
    expect(after.relays.deliveryFailures).toBe(0);
    expect(after.relays.resnapshots).toBe(0);
    for (const sub of subs) sub.ws.close(1000, "done");
    publisher.close();
  }, 300_000);

  it("a relay that restarts (evicted, memory gone) catches up from the feed: its subscribers see no gap and no extra snapshot", async () => {
    const symbol = "RELAYRST-USD";
    const updates = kraken().updates.slice(0, 31);
    const publisher = await TestPublisher.open(symbol);
    await publisher.batch([updates[0]!]);
    const sub = await TestSubscriber.open(symbol);
    const binary = await TestSubscriber.open(symbol, { binary: true });
    for (const update of updates.slice(1, 11)) await publisher.batch([update]);
    await sub.untilSeq((await stats(symbol)).feedSeq);

    await evictDurableObject(relayOf(symbol)); // sockets survive (hibernation), state is gone
    for (const update of updates.slice(11)) await publisher.batch([update]);
    const end = (await stats(symbol)).feedSeq;
    await sub.untilSeq(end);
    await binary.untilSeq(end);
    expect(sub.gaps).toBe(0);
    expect(sub.snapshots).toBe(1);
    expect(sub.view("kraken")).toEqual(reference(updates).view());
    expect((await stats(symbol)).relays.catchUps).toBeGreaterThanOrEqual(1);

    // The binary subscriber decoded exactly the same frames, in fewer bytes.
    expect(binary.frames).toEqual(sub.frames);
    expect(binary.bytes).toBeLessThan(sub.bytes / 2);
    publisher.close();
    sub.close();
    binary.close();
  });
});

describe("coalescing subscribers (?coalesce=true)", () => {
  it("get the frames that are ready together as one message (a JSON array, a binary frame list); plain subscribers one message per frame; the same frames either way", async () => {
    const symbol = "COALESCE-USD";
    const updates = kraken().updates.slice(0, 4);
    const publisher = await TestPublisher.open(symbol);
    await publisher.batch([updates[0]!]);
    const plain = await TestSubscriber.open(symbol);
    const json = await TestSubscriber.open(symbol, { coalesce: true });
    const binary = await TestSubscriber.open(symbol, { coalesce: true, binary: true });
    // Each batch with a trade becomes two frames (a delta, then the trades), handed to the relay together.
    for (const [i, update] of updates.slice(1).entries()) {
      const trade = {
        exchange: "kraken" as const,
        id: `t${i}`,
        price: "161.24000",
        size: "0.5",
        side: "buy" as const,
        ts: 1,
      };
      await publisher.batch([update], [trade]);
    }
    const end = (await stats(symbol)).feedSeq;
    for (const sub of [plain, json, binary]) await sub.untilSeq(end);
    expect(plain.frames.length).toBe(1 + 6);
    expect(plain.messages).toBe(1 + 6);
    expect(json.messages).toBeLessThanOrEqual(1 + 3);
    expect(binary.messages).toBeLessThanOrEqual(1 + 3);
    expect(json.frames).toEqual(plain.frames);
    expect(binary.frames).toEqual(plain.frames);
    for (const sub of [plain, json, binary]) {
      expect(sub.gaps).toBe(0);
      expect(sub.view("kraken")).toEqual(reference(updates).view());
    }
    publisher.close();
    for (const sub of [plain, json, binary]) sub.close();
  });
});

describe("entropy subscribers (?encoding=entropy)", () => {
  const trade = (i: number) => ({
    exchange: "kraken" as const,
    id: `t${i}`,
    price: "161.24000",
    size: "0.5",
    side: "buy" as const,
    ts: 1_700_000_000_000 + i,
  });

  it("decode the same frames as JSON subscribers in a fraction of the bytes, across a relay restart (one snapshot) and a resync", async () => {
    const symbol = "ENTROPY-USD";
    const updates = kraken().updates.slice(0, 61);
    // The clock moves by hand, so the resync below is past the interval and answered at once.
    const start = Date.now();
    vi.useFakeTimers({ toFake: ["Date"], now: start });
    const publisher = await TestPublisher.open(symbol);
    await publisher.batch([updates[0]!]);
    // Both on the relay the test restarts.
    const json = await TestSubscriber.open(symbol);
    const entropy = await TestSubscriber.open(symbol, { entropy: true });
    for (const [i, update] of updates.slice(1, 21).entries()) await publisher.batch([update], i % 3 ? [] : [trade(i)]);
    await entropy.untilSeq((await stats(symbol)).feedSeq);

    // The relay loses its memory (the entropy stream with it): its entropy subscriber gets one
    // snapshot message of the new stream, then frames again; the JSON one notices nothing.
    await evictDurableObject(relayOf(symbol));
    for (const [i, update] of updates.slice(21, 41).entries()) await publisher.batch([update], i % 3 ? [] : [trade(i)]);
    await entropy.untilSeq((await stats(symbol)).feedSeq);
    const snapshotsBefore = entropy.snapshots;
    vi.setSystemTime(start + 2 * RESYNC_INTERVAL_MS);
    entropy.sendRaw(JSON.stringify({ type: "resync" }));
    await entropy.until(() => entropy.snapshots === snapshotsBefore + 1);
    for (const update of updates.slice(41)) await publisher.batch([update]);
    const end = (await stats(symbol)).feedSeq;
    await json.untilSeq(end);
    await entropy.untilSeq(end);

    expect(entropy.undecodable).toBe(0);
    expect(entropy.gaps).toBe(0);
    expect(json.snapshots).toBe(1);
    expect(entropy.snapshots).toBe(3); // joining, the relay's restart, the resync
    // Each delta and trade frame the entropy subscriber decoded is the JSON subscriber's of that seq
    // (those the restart's snapshot covered it never got: its snapshot holds their effect).
    const bySeq = new Map(json.frames.map((f) => [f.seq, f]));
    const decoded = entropy.frames.filter((f) => f.type !== "snapshot");
    expect(decoded.length).toBeGreaterThan(json.frames.length - 25);
    for (const frame of decoded) expect(frame).toEqual(bySeq.get(frame.seq));
    expect(entropy.view("kraken")).toEqual(reference(updates).view());
    expect(json.view("kraken")).toEqual(reference(updates).view());
    // The steady state in a small fraction of JSON's bytes (snapshot messages aside).
    expect(entropy.deltaBytes).toBeLessThan(json.deltaBytes / 8);
    publisher.close();
    json.close();
    entropy.close();
  });

  it("is refused with a 400 problem for an unknown encoding, and echoes the entropy subprotocol it was offered", async () => {
    const bad = await call("/v1/market/ENTROPY-USD/ws?encoding=zstd", { headers: { Upgrade: "websocket" } });
    expect(bad.status).toBe(400);
    expect(bad.headers.get("Content-Type")).toContain("application/problem+json");
    const res = await call("/v1/market/ENTROPY-USD/ws", {
      headers: { Upgrade: "websocket", "Sec-WebSocket-Protocol": "chat, edgepulse.market.v1.entropy" },
    });
    expect(res.status).toBe(101);
    expect(res.headers.get("Sec-WebSocket-Protocol")).toBe("edgepulse.market.v1.entropy");
    res.webSocket!.accept();
    res.webSocket!.close(1000, "done");
  });
});

describe("relays attached before anyone publishes", () => {
  it("subscribers that came first (no publisher, no storage yet) get the first publisher's frames", async () => {
    const symbol = "EARLY-USD";
    const updates = kraken().updates.slice(0, 6);
    const subs = await Promise.all(
      ["198.51.100.1", "198.51.100.2", "2001:db8:9::1"].map((ip) => TestSubscriber.open(symbol, { ip })),
    );
    for (const sub of subs) await sub.until(() => sub.snapshots === 1);
    const publisher = await TestPublisher.open(symbol);
    for (const update of updates) await publisher.batch([update]);
    const end = (await stats(symbol)).feedSeq;
    for (const sub of subs) {
      await sub.untilSeq(end);
      expect(sub.gaps).toBe(0);
      expect(sub.view("kraken")).toEqual(reference(updates).view());
    }
    publisher.close();
    for (const sub of subs) sub.close();
  });
});

describe("a MarketFeed object evicted before anyone published", () => {
  it("has forgotten the relays (it had no storage yet); they re-attach on their alarm and the first publisher's frames reach their subscribers", async () => {
    const symbol = "FORGOT-USD";
    const updates = kraken().updates.slice(0, 6);
    const sub = await TestSubscriber.open(symbol);
    await sub.until(() => sub.snapshots === 1);
    await evictDurableObject(env.MARKET_FEED.getByName(symbol)); // memory gone, nothing stored
    const publisher = await TestPublisher.open(symbol);
    for (const update of updates.slice(0, 3)) await publisher.batch([update]);
    expect((await stats(symbol)).relays.relays).toBe(0); // published to nobody
    // The relay's re-attach alarm: the answer carries the frames it missed.
    expect(await runDurableObjectAlarm(relayOf(symbol))).toBe(true);
    for (const update of updates.slice(3)) await publisher.batch([update]);
    const end = (await stats(symbol)).feedSeq;
    await sub.untilSeq(end);
    expect(sub.gaps).toBe(0);
    expect(sub.snapshots).toBe(1);
    expect(sub.view("kraken")).toEqual(reference(updates).view());
    publisher.close();
    sub.close();
  });
});

describe("redundant collectors", () => {
  /** Two collector identities publishing the same recorded feed, batch for batch, as two hosts on one replay do. */
  async function twoHosts(symbol: string) {
    const a = await TestPublisher.open(symbol, { collector: "host-a" });
    const b = await TestPublisher.open(symbol, { collector: "host-b" });
    await a.until(() => a.roles().length === 1);
    await b.until(() => b.roles().length === 1);
    expect(a.roles()).toEqual(["primary"]);
    expect(b.roles()).toEqual(["standby"]);
    // Both hosts report health, as they do every 5 s.
    for (const host of ["host-a", "host-b"]) {
      const res = await call("/v1/market/collectors", {
        method: "PUT",
        token: await collectorToken(host),
        json: { host, reportedAt: new Date().toISOString(), exchanges: {} },
      });
      expect(res.status).toBe(200);
    }
    return { a, b };
  }

  async function collectors() {
    const res = await call("/v1/market/collectors");
    expect(res.status).toBe(200);
    return CollectorsView.parse(await res.json());
  }

  it("fails over to the standby when the primary is killed mid-replay: no seq gap, no resnapshot (the books agree), the collector view shows it", async () => {
    const symbol = "FAILOVER-USD";
    const updates = kraken().updates.slice(0, 41);
    const { a, b } = await twoHosts(symbol);
    const sub = await TestSubscriber.open(symbol);
    for (const update of updates.slice(0, 20)) {
      await a.batch([update]);
      await b.batch([update]); // validated and acknowledged, not applied
    }
    expect((await stats(symbol)).standbyFrames).toBe(20);
    let view = await collectors();
    expect(view.symbols[symbol]).toMatchObject({ primary: "host-a", standbys: ["host-b"], failovers: 0 });

    // The primary dies (its socket goes away): host-b is promoted at once and asked for snapshots.
    a.close();
    await b.until(() => b.roles().at(-1) === "primary" && b.resyncs() === 1);
    // It answers with its full book, which equals the one subscribers hold: nothing to send them.
    const seqBefore = (await stats(symbol)).feedSeq;
    await b.batch([{ ...reference(updates.slice(0, 20)).view(), exchange: "kraken" as Exchange, snapshot: true }]);
    expect((await stats(symbol)).feedSeq).toBe(seqBefore);
    for (const update of updates.slice(20)) await b.batch([update]);
    const end = (await stats(symbol)).feedSeq;
    await sub.untilSeq(end);
    expect(sub.gaps).toBe(0);
    expect(sub.snapshots).toBe(1);
    expect(sub.view("kraken")).toEqual(reference(updates).view());
    expect(await stats(symbol)).toMatchObject({ failovers: 1, failoverBooksEqual: 1, failoverBooksDiffered: 0 });

    view = await collectors();
    expect(view.symbols[symbol]).toMatchObject({ primary: "host-b", standbys: [], failovers: 1 });
    expect(view.symbols[symbol]?.lastFailoverAt).not.toBeNull();
    expect(view.hosts.find((h) => h.host === "host-b")?.primaryFor).toContain(symbol);
    expect(view.hosts.find((h) => h.host === "host-a")?.primaryFor).not.toContain(symbol);
    b.close();
    sub.close();
  });

  it(`fails over from a primary that hangs (socket open, silent ${FAILOVER_SILENCE_MS} ms) at the standby's next frame; a different book is replaced in-band, seq continuing`, async () => {
    const symbol = "HANG-USD";
    const updates = kraken().updates.slice(0, 11);
    // The clock stands still until moved: host-a's last frame is at `start` exactly.
    const start = Date.now();
    vi.useFakeTimers({ toFake: ["Date"], now: start });
    const { a, b } = await twoHosts(symbol);
    for (const update of updates) {
      await a.batch([update]);
      await b.batch([update]);
    }
    const sub = await TestSubscriber.open(symbol);
    // host-a hangs. Just inside the window the standby is still only acknowledged...
    vi.setSystemTime(start + FAILOVER_SILENCE_MS - 1);
    await b.batch([]);
    expect(b.roles()).toEqual(["standby"]);
    // ...and at the window's end its next frame makes it the primary.
    vi.setSystemTime(start + FAILOVER_SILENCE_MS);
    await b.batch([]);
    await b.until(() => b.roles().at(-1) === "primary" && b.resyncs() === 1);
    await a.until(() => a.roles().at(-1) === "standby"); // told, should it wake up

    // host-b's book differs (it saw a level host-a never sent): subscribers get it as an in-band replacement.
    const differing = reference(updates).view();
    differing.bids.push(["0.00001", "7"]);
    const seqBefore = sub.lastSeq;
    await b.batch([{ exchange: "kraken", snapshot: true, ...differing }]);
    await sub.untilSeq(seqBefore + 1);
    expect(sub.gaps).toBe(0);
    expect(sub.frames.at(-1)).toMatchObject({ type: "delta", seq: seqBefore + 1 });
    expect(sub.view("kraken")).toEqual(reference([{ exchange: "kraken", snapshot: true, ...differing }]).view());
    expect(await stats(symbol)).toMatchObject({ failovers: 1, failoverBooksDiffered: 1 });
    a.close();
    b.close();
    sub.close();
  });
});
