/**
 * Group commit for a Durable Object whose every request writes (locally each write is a SQLite
 * commit, and the output gate holds the answer until it is durable): while one commit is in
 * flight, new requests queue; when it is durable, the queued ones are decided and written together
 * in one synchronous step (one commit for the group), in arrival order. Without contention a
 * request is written at once. `write` must decide each item against the state its predecessors in
 * the group left, inside one `transactionSync`, and must not await.
 * InventoryObject (reservations) and PromotionObject (redemptions) use it.
 */
export class GroupCommit<Item, Result> {
  private queued: { item: Item; resolve: (result: Result) => void; reject: (error: unknown) => void }[] = [];
  private committing = false;

  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly write: (group: Item[]) => Result[],
  ) {}

  /** Decides and writes `item` now, or with the next group if a commit is in flight. */
  submit(item: Item): Promise<Result> {
    if (this.committing) return new Promise((resolve, reject) => this.queued.push({ item, resolve, reject }));
    const [result] = this.write([item]);
    this.afterCommit();
    return Promise.resolve(result!);
  }

  /** Waits for the commit in flight, then writes what queued meanwhile as one group. */
  private afterCommit(): void {
    this.committing = true;
    const next = () => {
      this.committing = false;
      const group = this.queued;
      if (group.length === 0) return;
      this.queued = [];
      let results: Result[];
      try {
        results = this.write(group.map((q) => q.item));
      } catch (error) {
        for (const q of group) q.reject(error);
        return;
      }
      this.afterCommit();
      for (const [n, q] of group.entries()) q.resolve(results[n]!);
    };
    this.storage.sync().then(next, next);
  }
}
