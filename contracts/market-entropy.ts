import {
  type Bbo,
  type BestQuote,
  EXCHANGES,
  type Exchange,
  type FeedBook,
  type FeedBookChange,
  type FeedDelta,
  type FeedFrame,
  type FeedSnapshot,
  type FeedTrades,
  type Level,
  type MarketSymbol,
} from "./market.ts";
import {
  decodeFeedFrame,
  encodeFeedFrame,
  joinDecimal,
  MAGIC,
  Reader,
  readTrades,
  splitDecimal,
  Writer,
  writeTrades,
} from "./market-binary.ts";
import { bestQuotes, canonicalDecimal, isZeroDecimal, OrderBook } from "./order-book.ts";
import { AdaptiveModel, NumberModel, RangeDecoder, RangeEncoder, unzigzag, zigzag } from "./range-coder.ts";

/**
 * The entropy-coded subscriber encoding (`/v1/market/:symbol/ws?encoding=entropy`, or the
 * `edgepulse.market.v1.entropy` subprotocol): the smallest form of the feed, for clients that pay
 * for bandwidth. Where the binary encoding (contracts/market-binary.ts) makes every frame
 * self-contained, this one codes each frame against what both ends already hold:
 *
 *   - the books: a size another level of that side has now is coded as its index among the side's
 *     distinct sizes, and the consolidated best bid/offer is recomputed, not sent;
 *   - per exchange side, the previous price (prices travel as differences in the side's tick),
 *     the side's spellings (fraction digits of prices and sizes, the spelling of a removal);
 *   - adaptive models (contracts/range-coder.ts) of every field, which learn the market's habits
 *     and which a subscriber receives with its snapshot.
 *
 * One encoder serves every entropy subscriber of a fan-out: it codes each message once, and a
 * subscriber joining later gets a snapshot message carrying the encoder's whole state, so from then
 * on the same bytes decode for everyone. Messages:
 *
 *   0xEA snapshot message: the binary snapshot frame (length-prefixed), then the coder state
 *        (previous ts, each side's spellings and previous price, every model's counts)
 *   0xEB frames message:   range-coded: two bits of the first frame's seq (a check), the frame
 *        count, then each delta/trade frame (seq +1 each, implicit)
 *
 * Decimal strings arrive exactly as spelled: anything the side's spellings cannot express (a new
 * spelling, a value of more than 15 digits, text) travels as its characters and updates them.
 * A decoder that fails (a lost message, a malformed one) must not guess: it asks for a `resync`
 * and starts again from the snapshot message it gets.
 */

export const ENTROPY_SUBPROTOCOL = "edgepulse.market.v1.entropy";
export const ENTROPY_SNAPSHOT = MAGIC | 10;
export const ENTROPY_FRAMES = MAGIC | 11;

/** A side's spellings before its first level: nothing can be coded against them yet. */
const UNSET = -1;
/** Most frames, books and levels a message may claim (a hostile one cannot make the decoder loop). */
const MAX_FRAMES = 4096;
const MAX_BOOKS = 16;
const MAX_LEVELS = 100_000;
const MAX_TEXT = 64;
/** Shapes of a new size: significant digits (1–15) × trailing zeros in the side's spelling (0–15). */
const MAX_DIGITS = 15;
const SHAPES = MAX_DIGITS * 16;

const LEVEL = { coded: 0, literal: 1 } as const;
const SIZE = { removal: 0, recent: 1, inBook: 2, new: 3 } as const;
/** Sizes a side remembers by recency: market makers re-quote the sizes they just used. */
const RECENT_SIZES = 16;
const CHANGE = { levels: 0, snapshot: 1, withdrawn: 2 } as const;
const FRAME = { delta: 0, trade: 1 } as const;
const TS = { difference: 0, literal: 1 } as const;

/** A side's multiset of sizes, with the distinct ones in a stable order both ends agree on. */
class SizeSet {
  private readonly counts = new Map<string, number>();
  /** Distinct sizes in string order (binary-searched; a side has at most a few thousand). */
  readonly distinct: string[] = [];

  add(size: string): void {
    const n = this.counts.get(size) ?? 0;
    this.counts.set(size, n + 1);
    if (n === 0) this.distinct.splice(this.position(size), 0, size);
  }

  remove(size: string): void {
    const n = this.counts.get(size) ?? 0;
    if (n > 1) this.counts.set(size, n - 1);
    else if (n === 1) {
      this.counts.delete(size);
      this.distinct.splice(this.position(size), 1);
    }
  }

  indexOf(size: string): number {
    if (!this.counts.has(size)) return -1;
    return this.position(size);
  }

  clear(): void {
    this.counts.clear();
    this.distinct.length = 0;
  }

  private position(size: string): number {
    let lo = 0;
    let hi = this.distinct.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.distinct[mid]! < size) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

/** What one exchange side's coding depends on. */
interface SideState {
  /** Mantissa of the previous price coded on this side (in its fraction digits). */
  last: number;
  priceFrac: number;
  sizeFrac: number;
  /** Trailing zeros every price of the side has had: differences travel in units of 10^scale. */
  scale: number;
  /** How this side spells a removal ("0", "0.00000000"). */
  zero: string;
  /** The side's last distinct non-zero sizes, most recent first (at most RECENT_SIZES). */
  recent: string[];
}

const freshSide = (): SideState => ({
  last: 0,
  priceFrac: UNSET,
  sizeFrac: UNSET,
  scale: UNSET,
  zero: "0",
  recent: [],
});

/** Moves a size to the front of the side's recency list. */
function remember(side: SideState, size: string): void {
  if (isZeroDecimal(size)) return;
  const at = side.recent.indexOf(size);
  if (at === 0) return;
  if (at > 0) side.recent.splice(at, 1);
  else if (side.recent.length === RECENT_SIZES) side.recent.pop();
  side.recent.unshift(size);
}

/** One exchange's book as both ends hold it, with its sides' size sets. */
class MirrorBook {
  readonly book = new OrderBook();
  readonly sizes = { bids: new SizeSet(), asks: new SizeSet() };

  apply(side: "bids" | "asks", price: string, size: string): void {
    const levels = this.book[side];
    const old = levels.get(canonicalDecimal(price));
    if (old) this.sizes[side].remove(old[1]);
    if (!isZeroDecimal(size)) this.sizes[side].add(size);
    levels.apply(price, size);
  }

  clear(): void {
    this.book.replace([], []);
    this.sizes.bids.clear();
    this.sizes.asks.clear();
  }
}

/** A side's level models. */
class LevelModels {
  readonly levels = new NumberModel();
  readonly levelKind = new AdaptiveModel(2);
  readonly price = new NumberModel();
  readonly sizeClass = new AdaptiveModel(4);
  readonly recentRank = new AdaptiveModel(RECENT_SIZES);
  readonly shape = new AdaptiveModel(SHAPES);
}

/** Adaptive models among `values`, in order, looking into number models, level models and arrays. */
function flatten(values: unknown[]): AdaptiveModel[] {
  const out: AdaptiveModel[] = [];
  for (const value of values) {
    if (value instanceof AdaptiveModel) out.push(value);
    else if (value instanceof NumberModel) out.push(value.lengths);
    else if (value instanceof LevelModels) out.push(...flatten(Object.values(value)));
    else if (Array.isArray(value)) out.push(...flatten(value));
  }
  return out;
}

/** Every model of the stream, in the fixed order the snapshot message carries them. */
class Models {
  readonly frames = new NumberModel();
  readonly frameType = new AdaptiveModel(2);
  readonly tsKind = new AdaptiveModel(2);
  readonly tsDiff = new NumberModel();
  readonly books = new NumberModel();
  readonly exchange = new AdaptiveModel(EXCHANGES.length);
  readonly change = new AdaptiveModel(3);
  /** The level models, one set per exchange (both sides share it: their habits are alike, and they learn twice as fast). */
  readonly exchanges = Array.from({ length: EXCHANGES.length }, () => new LevelModels());
  readonly textLength = new NumberModel();
  readonly textByte = new AdaptiveModel(256);
  readonly bboDerived = new AdaptiveModel(2);
  /** An explicit quote: 0 none, else its exchange's index + 1. */
  readonly quote = new AdaptiveModel(EXCHANGES.length + 1);
  readonly tradeLength = new NumberModel();
  readonly tradeByte = new AdaptiveModel(256);

  all(): AdaptiveModel[] {
    return flatten(Object.values(this));
  }
}

/** The state both ends of an entropy stream hold after the same messages. */
class StreamState {
  seq: number;
  ts: number;
  readonly symbol: MarketSymbol;
  readonly models = new Models();
  /** Per exchange × side (index × 2 + 0 bids / 1 asks). */
  readonly sides: SideState[] = Array.from({ length: EXCHANGES.length * 2 }, freshSide);
  /** Books in the order the feed lists them (its consolidated quote breaks ties by that order). */
  readonly books = new Map<Exchange, MirrorBook>();

  constructor(snapshot: FeedSnapshot) {
    this.symbol = snapshot.symbol;
    this.seq = snapshot.seq;
    this.ts = snapshot.ts;
    for (const book of snapshot.books) this.replaceBook(book.exchange, book.bids, book.asks);
  }

  /** An exchange's book; a new one goes last, as in the feed (an existing one keeps its place). */
  mirror(exchange: Exchange): MirrorBook {
    let mirror = this.books.get(exchange);
    if (!mirror) {
      mirror = new MirrorBook();
      this.books.set(exchange, mirror);
    }
    return mirror;
  }

  replaceBook(exchange: Exchange, bids: readonly Level[], asks: readonly Level[]): MirrorBook {
    const mirror = this.mirror(exchange);
    mirror.clear();
    for (const [price, size] of bids) mirror.apply("bids", price, size);
    for (const [price, size] of asks) mirror.apply("asks", price, size);
    return mirror;
  }

  /** The consolidated best bid/offer, by the feed's own rule. */
  bbo(): Bbo {
    return bestQuotes(this.bookEntries());
  }

  private *bookEntries(): Generator<[Exchange, OrderBook]> {
    for (const [exchange, mirror] of this.books) yield [exchange, mirror.book];
  }

  /** The state's books as a snapshot's (full depth, the feed's order). */
  sameBooks(books: readonly FeedBook[]): boolean {
    if (books.length !== this.books.size) return false;
    let i = 0;
    for (const [exchange, mirror] of this.books) {
      const book = books[i++]!;
      if (book.exchange !== exchange) return false;
      const view = mirror.book.view();
      if (!sameLevels(view.bids, book.bids) || !sameLevels(view.asks, book.asks)) return false;
    }
    return true;
  }

  writeState(w: Writer): void {
    w.f64(this.ts);
    for (const side of this.sides) {
      w.uint(side.last);
      w.int(side.priceFrac);
      w.int(side.sizeFrac);
      w.int(side.scale);
      w.str(side.zero);
      w.uint(side.recent.length);
      for (const size of side.recent) w.str(size);
    }
    for (const model of this.models.all()) for (const f of model.freq) w.uint(f);
  }

  readState(r: Reader): void {
    this.ts = r.f64();
    for (const side of this.sides) {
      side.last = r.uint();
      side.priceFrac = r.int();
      side.sizeFrac = r.int();
      side.scale = r.int();
      side.zero = r.str(MAX_TEXT);
      const recent = r.uint();
      if (recent > RECENT_SIZES) throw new RangeError("bad side state");
      side.recent = Array.from({ length: recent }, () => r.str(MAX_TEXT));
      if (
        !Number.isSafeInteger(side.last) ||
        [side.priceFrac, side.sizeFrac, side.scale].some((n) => n < UNSET || n > 64) ||
        !isZeroDecimal(side.zero)
      )
        throw new RangeError("bad side state");
    }
    for (const model of this.models.all()) {
      const freq = new Array<number>(model.size);
      for (let i = 0; i < freq.length; i++) freq[i] = r.uint();
      model.load(freq);
    }
  }
}

function sameLevels(a: readonly Level[], b: readonly Level[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i]![0] !== b[i]![0] || a[i]![1] !== b[i]![1]) return false;
  return true;
}

function trailingZeros(mantissa: number): number {
  let zeros = 0;
  while (zeros < 15 && mantissa > 0 && mantissa % 10 === 0) {
    mantissa /= 10;
    zeros++;
  }
  return zeros;
}

/** A decimal the side's fraction digits spell exactly, as its mantissa; null otherwise. */
function spelled(value: string, frac: number): number | null {
  if (frac === UNSET) return null;
  const d = splitDecimal(value);
  if (!d || d.frac !== frac || joinDecimal(d.mantissa, frac) !== value) return null;
  return d.mantissa;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * The encoder of one fan-out's entropy stream, started from the feed's snapshot. Every frame the
 * fan-out sends must pass through `encode` exactly once, in seq order; `snapshotMessage` gives a
 * subscriber the state to decode what follows.
 */
export class EntropyFeedEncoder {
  /** Names this encoder's stream: a subscriber started from another stream must be sent a snapshot. */
  readonly epoch = crypto.randomUUID();
  private readonly state: StreamState;

  constructor(snapshot: FeedSnapshot) {
    this.state = new StreamState(snapshot);
  }

  get seq(): number {
    return this.state.seq;
  }

  /**
   * The snapshot message for the feed's `snapshot` at this encoder's seq, or null if the feed's
   * books are not the encoder's (then the encoder must be replaced by one started from it).
   */
  snapshotMessage(snapshot: FeedSnapshot): Uint8Array | null {
    if (snapshot.seq !== this.state.seq || !this.state.sameBooks(snapshot.books)) return null;
    const w = new Writer();
    w.byte(ENTROPY_SNAPSHOT);
    w.bytes(encodeFeedFrame(snapshot));
    this.state.writeState(w);
    return w.done();
  }

  /** One message carrying `frames`, which must continue this stream (seq + 1 each). */
  encode(frames: readonly (FeedDelta | FeedTrades)[]): Uint8Array {
    const s = this.state;
    const m = s.models;
    const enc = new RangeEncoder();
    // Two bits of the first frame's seq: a decoder a message behind or ahead fails instead of
    // yielding frames decoded against the wrong state (three times in four).
    enc.uniform((s.seq + 1) & 3, 4);
    m.frames.encode(enc, frames.length);
    for (const frame of frames) {
      if (frame.seq !== s.seq + 1) throw new RangeError(`frame ${frame.seq} does not follow ${s.seq}`);
      s.seq = frame.seq;
      m.frameType.encode(enc, frame.type === "delta" ? FRAME.delta : FRAME.trade);
      const diff = frame.ts - s.ts;
      // Only a difference the decoder's sum turns back into exactly this ts. The ingest stream
      // failed that near 2^53 after a fractional ts (its property test found it); here zigzag's
      // doubling keeps such differences out, and this states the invariant rather than relying on it.
      if (Number.isSafeInteger(frame.ts) && Number.isSafeInteger(zigzag(diff)) && s.ts + diff === frame.ts) {
        m.tsKind.encode(enc, TS.difference);
        m.tsDiff.encode(enc, zigzag(diff));
      } else {
        m.tsKind.encode(enc, TS.literal);
        encodeBytes(enc, m.textLength, m.textByte, new Uint8Array(new Float64Array([frame.ts]).buffer));
      }
      s.ts = frame.ts;
      if (frame.type === "trade") {
        const w = new Writer();
        writeTrades(w, frame.trades);
        encodeBytes(enc, m.tradeLength, m.tradeByte, w.done());
        continue;
      }
      m.books.encode(enc, frame.books.length);
      for (const change of frame.books) this.encodeChange(enc, change);
      const derived = s.bbo();
      if (sameBbo(derived, frame.bbo)) m.bboDerived.encode(enc, 1);
      else {
        m.bboDerived.encode(enc, 0);
        for (const quote of [frame.bbo.bid, frame.bbo.ask]) {
          m.quote.encode(enc, quote ? EXCHANGES.indexOf(quote.exchange) + 1 : 0);
          if (quote) {
            encodeText(enc, m, quote.price);
            encodeText(enc, m, quote.size);
          }
        }
      }
    }
    const body = enc.finish();
    const out = new Uint8Array(body.length + 1);
    out[0] = ENTROPY_FRAMES;
    out.set(body, 1);
    return out;
  }

  private encodeChange(enc: RangeEncoder, change: FeedBookChange): void {
    const s = this.state;
    const m = s.models;
    const ex = EXCHANGES.indexOf(change.exchange);
    m.exchange.encode(enc, ex);
    if (change.withdrawn) {
      m.change.encode(enc, CHANGE.withdrawn);
      s.books.delete(change.exchange);
      return;
    }
    m.change.encode(enc, change.snapshot ? CHANGE.snapshot : CHANGE.levels);
    const mirror = s.mirror(change.exchange);
    if (change.snapshot) mirror.clear();
    for (const side of ["bids", "asks"] as const) {
      const levels = change[side];
      const index = ex * 2 + (side === "bids" ? 0 : 1);
      const models = m.exchanges[ex]!;
      models.levels.encode(enc, levels.length);
      const state = s.sides[index]!;
      for (const [price, size] of levels) {
        this.encodeLevel(enc, models, state, mirror, side, price, size);
        mirror.apply(side, price, size);
      }
    }
  }

  private encodeLevel(
    enc: RangeEncoder,
    m: LevelModels,
    side: SideState,
    mirror: MirrorBook,
    which: "bids" | "asks",
    price: string,
    size: string,
  ): void {
    const mantissa = spelled(price, side.priceFrac);
    const zeros = mantissa === null ? 0 : trailingZeros(mantissa);
    const rank = side.recent.indexOf(size);
    const inBook = rank < 0 ? mirror.sizes[which].indexOf(size) : -1;
    let sizeClass: number = SIZE.removal;
    let sizeMantissa = 0;
    if (size !== side.zero) {
      if (rank >= 0) sizeClass = SIZE.recent;
      else if (inBook >= 0) sizeClass = SIZE.inBook;
      else {
        sizeClass = SIZE.new;
        sizeMantissa = spelled(size, side.sizeFrac) ?? 0;
      }
    }
    const sizeZeros = trailingZeros(sizeMantissa);
    const digits = sizeMantissa / 10 ** sizeZeros;
    const coded =
      mantissa !== null &&
      side.scale !== UNSET &&
      zeros >= side.scale &&
      (sizeClass !== SIZE.new || (sizeMantissa > 0 && String(digits).length <= MAX_DIGITS));
    if (!coded) {
      m.levelKind.encode(enc, LEVEL.literal);
      encodeText(enc, this.state.models, price);
      encodeText(enc, this.state.models, size);
      learnLiteral(side, price, size);
      remember(side, size);
      return;
    }
    m.levelKind.encode(enc, LEVEL.coded);
    m.price.encode(enc, zigzag((mantissa - side.last) / 10 ** side.scale));
    side.last = mantissa;
    side.scale = Math.min(side.scale, zeros);
    m.sizeClass.encode(enc, sizeClass);
    remember(side, size);
    if (sizeClass === SIZE.recent) m.recentRank.encode(enc, rank);
    else if (sizeClass === SIZE.inBook) enc.uniform(inBook, mirror.sizes[which].distinct.length);
    else if (sizeClass === SIZE.new) {
      const length = String(digits).length;
      m.shape.encode(enc, (length - 1) * 16 + sizeZeros);
      const floor = 10 ** (length - 1);
      enc.uniform(digits - floor, 9 * floor);
    }
  }
}

/** After a literal level: the side takes its spellings, so the next such level codes small. */
function learnLiteral(side: SideState, price: string, size: string): void {
  const p = splitDecimal(price);
  if (p && joinDecimal(p.mantissa, p.frac) === price) {
    side.last = p.mantissa;
    side.priceFrac = p.frac;
    const zeros = trailingZeros(p.mantissa);
    side.scale = side.scale === UNSET ? zeros : Math.min(side.scale, zeros);
  }
  if (isZeroDecimal(size)) {
    if (size.length <= MAX_TEXT) side.zero = size;
    return;
  }
  const s = splitDecimal(size);
  if (s && joinDecimal(s.mantissa, s.frac) === size) side.sizeFrac = s.frac;
}

function sameQuote(a: BestQuote | null, b: BestQuote | null): boolean {
  if (!a || !b) return a === b;
  return a.price === b.price && a.size === b.size && a.exchange === b.exchange;
}

const sameBbo = (a: Bbo, b: Bbo) => sameQuote(a.bid, b.bid) && sameQuote(a.ask, b.ask);

function encodeBytes(enc: RangeEncoder, length: NumberModel, model: AdaptiveModel, bytes: Uint8Array): void {
  length.encode(enc, bytes.length);
  for (const b of bytes) model.encode(enc, b);
}

function decodeBytes(dec: RangeDecoder, length: NumberModel, model: AdaptiveModel, max: number): Uint8Array {
  const n = length.decode(dec);
  if (n > max) throw new RangeError("entropy-coded text too long");
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = model.decode(dec);
  return out;
}

function encodeText(enc: RangeEncoder, m: Models, text: string): void {
  encodeBytes(enc, m.textLength, m.textByte, textEncoder.encode(text));
}

function decodeText(dec: RangeDecoder, m: Models): string {
  return textDecoder.decode(decodeBytes(dec, m.textLength, m.textByte, MAX_TEXT));
}

/**
 * A subscriber's decoder. `decode` returns the frames of one message, starting with a snapshot
 * message; it throws on anything it cannot decode against its state (then send `resync` and keep
 * calling it: the snapshot message that answers starts it again).
 */
export class EntropyFeedDecoder {
  private state: StreamState | null = null;

  decode(message: Uint8Array): FeedFrame[] {
    if (message[0] === ENTROPY_SNAPSHOT) {
      this.state = null;
      const r = new Reader(message);
      r.byte();
      const snapshot = decodeFeedFrame(r.bytes()) as FeedSnapshot | null;
      if (snapshot?.type !== "snapshot") throw new RangeError("malformed snapshot message");
      const state = new StreamState(snapshot);
      state.readState(r);
      if (!r.done) throw new RangeError("trailing bytes after the snapshot message");
      this.state = state;
      return [snapshot];
    }
    if (message[0] !== ENTROPY_FRAMES) throw new RangeError("not an entropy-coded feed message");
    const state = this.state;
    if (!state) throw new RangeError("frames before a snapshot message");
    // A message that fails leaves the state half-advanced: nothing may be decoded until a snapshot.
    this.state = null;
    const frames = decodeFrames(state, new RangeDecoder(message, 1));
    this.state = state;
    return frames;
  }
}

function decodeFrames(s: StreamState, dec: RangeDecoder): FeedFrame[] {
  const m = s.models;
  if (dec.uniform(4) !== ((s.seq + 1) & 3)) throw new RangeError(`a message that does not follow seq ${s.seq}`);
  const count = m.frames.decode(dec);
  if (count > MAX_FRAMES) throw new RangeError("too many frames");
  const frames: FeedFrame[] = [];
  for (let i = 0; i < count; i++) {
    s.seq += 1;
    const type = m.frameType.decode(dec);
    if (m.tsKind.decode(dec) === TS.difference) s.ts += unzigzag(m.tsDiff.decode(dec));
    else {
      const bytes = decodeBytes(dec, m.textLength, m.textByte, 8);
      if (bytes.length !== 8) throw new RangeError("bad literal ts");
      s.ts = new Float64Array(bytes.buffer)[0]!;
    }
    const base = { symbol: s.symbol, seq: s.seq, ts: s.ts };
    if (type === FRAME.trade) {
      const bytes = decodeBytes(dec, m.tradeLength, m.tradeByte, 1 << 24);
      const r = new Reader(bytes);
      const trades = readTrades(r);
      if (!r.done) throw new RangeError("trailing trade bytes");
      frames.push({ type: "trade", ...base, trades });
      continue;
    }
    const n = m.books.decode(dec);
    if (n > MAX_BOOKS) throw new RangeError("too many books");
    const books: FeedBookChange[] = [];
    for (let b = 0; b < n; b++) books.push(decodeChange(s, dec));
    let bbo: Bbo;
    if (m.bboDerived.decode(dec) === 1) bbo = s.bbo();
    else {
      const quotes: (BestQuote | null)[] = [];
      for (let q = 0; q < 2; q++) {
        const exchange = EXCHANGES[m.quote.decode(dec) - 1];
        quotes.push(exchange ? { price: decodeText(dec, m), size: decodeText(dec, m), exchange } : null);
      }
      bbo = { bid: quotes[0]!, ask: quotes[1]! };
    }
    frames.push({ type: "delta", ...base, books, bbo });
  }
  return frames;
}

function decodeChange(s: StreamState, dec: RangeDecoder): FeedBookChange {
  const m = s.models;
  const ex = m.exchange.decode(dec);
  const exchange = EXCHANGES[ex]!;
  const kind = m.change.decode(dec);
  if (kind === CHANGE.withdrawn) {
    s.books.delete(exchange);
    return { exchange, withdrawn: true, bids: [], asks: [] };
  }
  const mirror = s.mirror(exchange);
  if (kind === CHANGE.snapshot) mirror.clear();
  // Keys in the feed's order, so a decoded frame serializes as the JSON encoding's does.
  const change: FeedBookChange =
    kind === CHANGE.snapshot ? { exchange, snapshot: true, bids: [], asks: [] } : { exchange, bids: [], asks: [] };
  for (const side of ["bids", "asks"] as const) {
    const index = ex * 2 + (side === "bids" ? 0 : 1);
    const models = m.exchanges[ex]!;
    const n = models.levels.decode(dec);
    if (n > MAX_LEVELS) throw new RangeError("too many levels");
    const state = s.sides[index]!;
    const levels: Level[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const level = decodeLevel(s, dec, models, state, mirror, side);
      mirror.apply(side, level[0], level[1]);
      levels[i] = level;
    }
    change[side] = levels;
  }
  return change;
}

function decodeLevel(
  s: StreamState,
  dec: RangeDecoder,
  m: LevelModels,
  side: SideState,
  mirror: MirrorBook,
  which: "bids" | "asks",
): Level {
  if (m.levelKind.decode(dec) === LEVEL.literal) {
    const price = decodeText(dec, s.models);
    const size = decodeText(dec, s.models);
    learnLiteral(side, price, size);
    remember(side, size);
    return [price, size];
  }
  if (side.scale === UNSET) throw new RangeError("a coded level before the side's first");
  const mantissa = side.last + unzigzag(m.price.decode(dec)) * 10 ** side.scale;
  if (!Number.isSafeInteger(mantissa) || mantissa < 0) throw new RangeError("bad price");
  side.last = mantissa;
  side.scale = Math.min(side.scale, trailingZeros(mantissa));
  const price = joinDecimal(mantissa, side.priceFrac);
  const sizeClass = m.sizeClass.decode(dec);
  if (sizeClass === SIZE.removal) return [price, side.zero];
  let size: string;
  if (sizeClass === SIZE.recent) {
    const recent = side.recent[m.recentRank.decode(dec)];
    if (recent === undefined) throw new RangeError("no such recent size");
    size = recent;
  } else if (sizeClass === SIZE.inBook) {
    const distinct = mirror.sizes[which].distinct;
    if (distinct.length === 0) throw new RangeError("no size in the book to refer to");
    size = distinct[dec.uniform(distinct.length)]!;
  } else size = newSize(dec, m, side);
  remember(side, size);
  return [price, size];
}

function newSize(dec: RangeDecoder, m: LevelModels, side: SideState): string {
  const shape = m.shape.decode(dec);
  const length = Math.floor(shape / 16) + 1;
  const floor = 10 ** (length - 1);
  const digits = floor + dec.uniform(9 * floor);
  const sizeMantissa = digits * 10 ** (shape % 16);
  if (!Number.isSafeInteger(sizeMantissa) || side.sizeFrac === UNSET) throw new RangeError("bad size");
  return joinDecimal(sizeMantissa, side.sizeFrac);
}
