/**
 * Copies of small configuration tables an isolate keeps between requests, re-read at most once per
 * `ttlMs` per key: what every checkout consults but an admin changes rarely (fraud rules, shipping
 * rates, tax rules). A change therefore applies everywhere within `ttlMs`; the writer's isolate
 * forgets its copies at once (`forget`).
 *
 * The first caller to find a copy due reads it again; the isolate's other callers meanwhile keep
 * using the copy, instead of every concurrent request reading D1 at once. Nobody waits on another
 * caller's read: a promise made by one request's I/O and awaited by others never settles for them
 * if that request ends first (workerd cancels its I/O), which hung requests when it was tried
 * (README, Performance › Checkout, fourth session). A key without a copy is read by whoever asks.
 * If a read fails, the caller gets the error and the old copy is tried again `ttlMs` later.
 */
export class IsolateCopies<V> {
  private readonly copies = new Map<string, { value: V; readAt: number }>();

  constructor(
    private readonly ttlMs: number,
    /** Copies kept at most (keys come from requests: a country, a currency); the oldest go first. */
    private readonly maxKeys = 256,
  ) {}

  /** The copy of `key`, read with `read` when there is none or it is due. */
  async get(key: string, read: () => Promise<V>): Promise<V> {
    const now = Date.now();
    const copy = this.copies.get(key);
    if (copy && now - copy.readAt < this.ttlMs) return copy.value;
    // Due: this caller reads; the others keep the copy until it has.
    if (copy) copy.readAt = now;
    return this.refresh(key, read);
  }

  /** Reads `key` now, whatever the age of its copy (a copy that cannot answer the caller). */
  async refresh(key: string, read: () => Promise<V>): Promise<V> {
    const value = await read();
    this.put(key, value);
    return value;
  }

  /** Stores `value` as the fresh copy of `key` (a writer that knows the new value). */
  put(key: string, value: V): void {
    this.copies.delete(key);
    if (this.copies.size >= this.maxKeys) this.copies.delete(this.copies.keys().next().value!);
    this.copies.set(key, { value, readAt: Date.now() });
  }

  /** Forgets every copy: the next caller of each key reads it (after a change made in this isolate). */
  forget(): void {
    this.copies.clear();
  }
}
