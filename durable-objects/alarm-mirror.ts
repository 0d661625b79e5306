/**
 * A Durable Object's alarm as last written, kept in memory (loaded on wake-up) so that leaving it
 * where it is writes nothing. Every alarm write is a durable write of its own (locally one more
 * fsync on the one workerd thread): moving it on every change was 8 of the ~48 fsyncs a checkout
 * cost in OrderObject, and one per cart call in CartObject (README, Performance › Checkout).
 * OrderObject, CartObject and InventoryObject use it. Construct it once per object instance and
 * `load` it in `blockConcurrencyWhile`.
 */
export class AlarmMirror {
  private at: number | null = null;

  constructor(private readonly storage: DurableObjectStorage) {}

  /** Reads the alarm storage holds (call on wake-up). */
  async load(): Promise<void> {
    this.at = await this.storage.getAlarm();
  }

  /** The alarm fired: none is set until the handler writes the next one. */
  fired(): void {
    this.at = null;
  }

  /** The alarm at exactly `next` (null: none), written only when that moves it. */
  async moveTo(next: number | null): Promise<void> {
    if (next === this.at) return;
    this.at = next;
    if (next !== null) await this.storage.setAlarm(next);
    else await this.storage.deleteAlarm();
  }

  /**
   * An alarm no later than `next`: one already due by then stays (it re-arms for the real time
   * when it fires early), so it is written only to come sooner. Not awaited by callers: the output
   * gate holds their reply until the write is durable.
   */
  armBy(next: number): void {
    if (this.at !== null && this.at <= next) return;
    this.at = next;
    void this.storage.setAlarm(next);
  }
}
