/**
 * Group commit for the D1 writes of one queue batch. The saga's consumers handle a batch's
 * messages concurrently, and each of them writes to D1 on its own: the payment step alone books
 * four rows per order (the provider's authorization and capture, the ledger's two), one statement
 * at a time because each must be durable before the next call to the provider. Every D1 call is a
 * transaction on one single-writer database that every isolate's consumers share (and locally an
 * fsync). Here, while one D1 call is in flight, the writes that arrive meanwhile wait and then
 * go together as one `batch()` (one transaction, one commit), each caller getting its own result
 * once the group is durable: the order of each caller's own writes and what it has seen durable
 * before its next provider call are unchanged, only the commits are shared.
 *
 * Scoped to one queue invocation (the dispatcher wraps `env.DB` per batch), so a group never
 * mixes work of two requests; reads (`raw()`, and SELECTs) go straight to D1 and wait for no
 * commit. If a group fails, D1 rolled it back whole, so each of its writes is tried again alone:
 * one bad statement fails only its own caller (every saga write is idempotent, should D1 ever
 * report a failure after committing). Locally this halves D1's commits per checkout without
 * moving its throughput (README › Performance › Checkout): fsyncs are not what limits it there.
 */
export function groupCommitted(db: D1Database): D1Database {
  const group = new D1GroupCommit(db);
  return {
    prepare: (query) => new GroupedStatement(group, db.prepare(query), isRead(query)),
    batch: <T>(statements: D1PreparedStatement[]) => group.submit<T>(statements.map(unwrapped)),
    exec: (query) => db.exec(query),
    // A session has its own consistency contract; it bypasses the group.
    withSession: (constraintOrBookmark) => db.withSession(constraintOrBookmark),
    dump: () => db.dump(),
  };
}

/** One caller's writes: a single statement, or a batch it asked for (which stays atomic). */
interface Unit {
  statements: D1PreparedStatement[];
  resolve: (results: D1Result[]) => void;
  reject: (error: unknown) => void;
}

class D1GroupCommit {
  private queued: Unit[] = [];
  private inFlight = false;

  constructor(private readonly db: D1Database) {}

  submit<T>(statements: D1PreparedStatement[]): Promise<D1Result<T>[]> {
    if (statements.length === 0) return Promise.resolve([]);
    const result = new Promise<D1Result[]>((resolve, reject) => this.queued.push({ statements, resolve, reject }));
    // A macrotask, not a microtask: writes the batch's handlers issue in the same turn (the
    // read-model projection and the analytics rollup start together) join the first group too.
    if (!this.inFlight) {
      this.inFlight = true;
      setTimeout(() => void this.commitQueued(), 0);
    }
    return result as Promise<D1Result<T>[]>;
  }

  private async commitQueued(): Promise<void> {
    const units = this.queued;
    this.queued = [];
    if (units.length === 1) await this.commitAlone(units[0]!);
    else if (units.length > 1) await this.commitTogether(units);
    if (this.queued.length > 0) return this.commitQueued();
    this.inFlight = false;
  }

  private async commitTogether(units: Unit[]): Promise<void> {
    let results: D1Result[];
    try {
      results = await this.db.batch(units.flatMap((unit) => unit.statements));
    } catch {
      await Promise.all(units.map((unit) => this.commitAlone(unit)));
      return;
    }
    let offset = 0;
    for (const unit of units) {
      unit.resolve(results.slice(offset, offset + unit.statements.length));
      offset += unit.statements.length;
    }
  }

  private async commitAlone(unit: Unit): Promise<void> {
    try {
      unit.resolve(await this.db.batch(unit.statements));
    } catch (error) {
      unit.reject(error);
    }
  }
}

const READ = /^\s*(select|with)\b/i;
const isRead = (query: string) => READ.test(query);

/** A statement whose `run`/`first`/`all` join the group; reads and `raw()` go to D1 directly. */
class GroupedStatement implements D1PreparedStatement {
  constructor(
    private readonly group: D1GroupCommit,
    readonly statement: D1PreparedStatement,
    private readonly read: boolean,
  ) {}

  bind(...values: unknown[]): D1PreparedStatement {
    return new GroupedStatement(this.group, this.statement.bind(...values), this.read);
  }

  async run<T = Record<string, unknown>>(): Promise<D1Result<T>> {
    if (this.read) return this.statement.run<T>();
    const [result] = await this.group.submit<T>([this.statement]);
    return result!;
  }

  async all<T = Record<string, unknown>>(): Promise<D1Result<T>> {
    if (this.read) return this.statement.all<T>();
    return this.run<T>();
  }

  first<T = unknown>(colName: string): Promise<T | null>;
  first<T = Record<string, unknown>>(): Promise<T | null>;
  async first<T>(colName?: string): Promise<T | null> {
    if (this.read) return colName === undefined ? this.statement.first<T>() : this.statement.first<T>(colName);
    const row = (await this.run<Record<string, unknown>>()).results[0];
    if (row === undefined) return null;
    if (colName === undefined) return row as T;
    // As D1's own first(column): a column the statement does not return is a programming error.
    if (!(colName in row)) throw new Error(`D1_COLUMN_NOTFOUND: Column not found (${colName})`);
    return row[colName] as T;
  }

  raw<T = unknown[]>(options: { columnNames: true }): Promise<[string[], ...T[]]>;
  raw<T = unknown[]>(options?: { columnNames?: false }): Promise<T[]>;
  raw<T>(options?: { columnNames?: boolean }): Promise<T[] | [string[], ...T[]]> {
    return options?.columnNames
      ? this.statement.raw<T>({ columnNames: true })
      : this.statement.raw<T>({ columnNames: false });
  }
}

const unwrapped = (statement: D1PreparedStatement) =>
  statement instanceof GroupedStatement ? statement.statement : statement;
