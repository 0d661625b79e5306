/**
 * A range coder with adaptive frequency models: the entropy-coding core of the `entropy` market
 * feed encoding (contracts/market-entropy.ts). Written by hand: no maintained JavaScript range or
 * arithmetic coder takes caller-defined models per field (the npm ones compress byte streams), and
 * the feed encoding needs dozens of small models, uniform values and a per-message termination.
 *
 * The coder is LZMA's (32-bit range, 33-bit low with carry propagation through a cached byte and a
 * run of pending 0xFF bytes), with two changes for short messages: the leading byte LZMA always
 * writes as 0 is not written, and a message ends with the fewest bytes that identify it: the
 * encoder picks the value in its final interval with the most trailing zero bits, and the decoder
 * reads zeros past the end. So termination costs about one byte, not LZMA's five.
 */

const TOP = 2 ** 24;
const TWO32 = 2 ** 32;
/** Largest model total: with the range kept ≥ 2^24, every symbol keeps ≥ 2^8 of it. */
const MAX_TOTAL = 1 << 16;
/**
 * Zero bytes a decoder may read past a message's end: the encoder trims every trailing zero, so a
 * message may legitimately end in a long run of them; the bound only stops a hostile message that
 * claims far more content than it carries (the frame decoder bounds counts too).
 */
const MAX_OVERRUN = 1 << 16;

export class RangeEncoder {
  private low = 0;
  private range = 0xffffffff;
  private cache = 0;
  private cacheSize = 1;
  private leading = true;
  private readonly out: number[] = [];

  /** Codes the sub-interval [cum, cum + freq) of [0, total); total ≤ 2^16. */
  encode(cum: number, freq: number, total: number): void {
    const r = Math.floor(this.range / total);
    this.low += r * cum;
    this.range = r * freq;
    while (this.range < TOP) {
      this.range *= 256;
      this.shiftLow();
    }
  }

  /** A value in [0, n) at equal probability, for any safe n (split into 16-bit parts). */
  uniform(value: number, n: number): void {
    if (n <= MAX_TOTAL) {
      this.encode(value, 1, n);
      return;
    }
    const high = Math.floor(value / MAX_TOTAL);
    this.uniform(high, Math.floor((n - 1) / MAX_TOTAL) + 1);
    this.encode(value % MAX_TOTAL, 1, MAX_TOTAL);
  }

  /** The message: the shortest byte string that decodes to what was coded. */
  finish(): Uint8Array {
    for (let k = 32; k >= 0; k--) {
      const unit = 2 ** k;
      const value = Math.ceil(this.low / unit) * unit;
      if (value < this.low + this.range) {
        this.low = value;
        break;
      }
    }
    for (let i = 0; i < 5; i++) this.shiftLow();
    let end = this.out.length;
    while (end > 0 && this.out[end - 1] === 0) end--;
    return Uint8Array.from(this.out.slice(0, end));
  }

  private shiftLow(): void {
    if (this.low < 0xff000000 || this.low >= TWO32) {
      const carry = this.low >= TWO32 ? 1 : 0;
      let byte = this.cache;
      do {
        this.emit((byte + carry) & 0xff);
        byte = 0xff;
      } while (--this.cacheSize !== 0);
      this.cache = Math.floor((this.low % TWO32) / TOP);
    }
    this.cacheSize++;
    this.low = (this.low % TOP) * 256;
  }

  private emit(byte: number): void {
    // LZMA's first byte is always 0 (the code value is below 1): both ends leave it out.
    if (this.leading) this.leading = false;
    else this.out.push(byte);
  }
}

export class RangeDecoder {
  private code = 0;
  private range = 0xffffffff;
  private at: number;
  private r = 0;
  private readonly bytes: Uint8Array;

  constructor(bytes: Uint8Array, start = 0) {
    this.bytes = bytes;
    this.at = start;
    for (let i = 0; i < 4; i++) this.code = this.code * 256 + this.next();
  }

  /** The cumulative frequency the next symbol falls on; `consume` must follow. */
  target(total: number): number {
    this.r = Math.floor(this.range / total);
    const value = Math.floor(this.code / this.r);
    if (value >= total) throw new RangeError("malformed entropy-coded message");
    return value;
  }

  consume(cum: number, freq: number): void {
    this.code -= this.r * cum;
    this.range = this.r * freq;
    while (this.range < TOP) {
      this.code = this.code * 256 + this.next();
      this.range *= 256;
    }
  }

  uniform(n: number): number {
    if (n <= MAX_TOTAL) {
      const value = this.target(n);
      this.consume(value, 1);
      return value;
    }
    const high = this.uniform(Math.floor((n - 1) / MAX_TOTAL) + 1);
    const low = this.target(MAX_TOTAL);
    this.consume(low, 1);
    const value = high * MAX_TOTAL + low;
    if (value >= n) throw new RangeError("malformed entropy-coded message");
    return value;
  }

  private next(): number {
    if (this.at < this.bytes.length) return this.bytes[this.at++]!;
    if (this.at++ >= this.bytes.length + MAX_OVERRUN) throw new RangeError("truncated entropy-coded message");
    return 0;
  }
}

/**
 * An adaptive model of one field over `size` symbols: counts start at 1 and grow by 2 per
 * occurrence (the Krichevsky–Trofimov estimate), halved whenever their total passes 2^16, which
 * also lets the model follow a market whose habits drift. Both ends update it identically.
 */
export class AdaptiveModel {
  readonly freq: Uint32Array;
  private total: number;

  constructor(size: number) {
    this.freq = new Uint32Array(size).fill(1);
    this.total = size;
  }

  get size(): number {
    return this.freq.length;
  }

  encode(enc: RangeEncoder, symbol: number): void {
    if (!(symbol >= 0 && symbol < this.freq.length)) throw new RangeError(`symbol ${symbol} outside the model`);
    let cum = 0;
    for (let i = 0; i < symbol; i++) cum += this.freq[i]!;
    enc.encode(cum, this.freq[symbol]!, this.total);
    this.learn(symbol);
  }

  decode(dec: RangeDecoder): number {
    const target = dec.target(this.total);
    let cum = 0;
    let symbol = 0;
    while (cum + this.freq[symbol]! <= target) cum += this.freq[symbol++]!;
    dec.consume(cum, this.freq[symbol]!);
    this.learn(symbol);
    return symbol;
  }

  /** Replaces the counts (a subscriber's decoder starting from the encoder's state). */
  load(freq: ArrayLike<number>): void {
    if (freq.length !== this.freq.length) throw new RangeError("model size mismatch");
    let total = 0;
    for (let i = 0; i < freq.length; i++) {
      const f = freq[i]!;
      if (!(Number.isInteger(f) && f >= 1 && f <= MAX_TOTAL)) throw new RangeError("bad model count");
      this.freq[i] = f;
      total += f;
    }
    if (total > MAX_TOTAL * 2) throw new RangeError("bad model total");
    this.total = total;
  }

  private learn(symbol: number): void {
    this.freq[symbol]! += 2;
    this.total += 2;
    if (this.total <= MAX_TOTAL) return;
    this.total = 0;
    for (let i = 0; i < this.freq.length; i++) {
      const halved = (this.freq[i]! + 1) >>> 1;
      this.freq[i] = halved;
      this.total += halved;
    }
  }
}

/** Bits needed for a non-negative safe integer (0 for 0). */
function bitLength(n: number): number {
  let bits = 0;
  while (n >= 1) {
    n = Math.floor(n / 2);
    bits++;
  }
  return bits;
}

/** Classes of `NumberModel`: bit lengths 0–53 of a safe integer. */
const NUMBER_CLASSES = 54;

/**
 * A non-negative safe integer: its bit length through an adaptive model, then the bits below the
 * leading one at equal probability (a value's magnitude is predictable, its low bits are not).
 */
export class NumberModel {
  readonly lengths = new AdaptiveModel(NUMBER_CLASSES);

  encode(enc: RangeEncoder, n: number): void {
    if (!(Number.isSafeInteger(n) && n >= 0)) throw new RangeError(`not a codable number: ${n}`);
    const length = bitLength(n);
    this.lengths.encode(enc, length);
    if (length >= 2) enc.uniform(n - 2 ** (length - 1), 2 ** (length - 1));
  }

  decode(dec: RangeDecoder): number {
    const length = this.lengths.decode(dec);
    if (length < 2) return length;
    return 2 ** (length - 1) + dec.uniform(2 ** (length - 1));
  }
}

export const zigzag = (n: number) => (n >= 0 ? 2 * n : -2 * n - 1);
export const unzigzag = (z: number) => (z % 2 === 0 ? z / 2 : -(z + 1) / 2);
