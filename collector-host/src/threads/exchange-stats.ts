// Per-exchange counters in a small shared Float64Array: written only by the exchange thread (or
// its supervisor for `restarts`/status "down"), read by the publisher for metrics and health. It
// outlives a crashed thread, so counters are cumulative across restarts.

export const STAT = {
  messages: 0,
  reconnects: 1,
  checksumsVerified: 2,
  checksumFailures: 3,
  resyncs: 4,
  gaps: 5,
  malformed: 6,
  lastMessageAt: 7,
  status: 8,
  heartbeat: 9,
  trades: 10,
  bookMessages: 11,
  validBooks: 12,
  connected: 13,
  ringStalls: 14,
  restarts: 15,
  rawBytes: 16,
  oversizedFrames: 17,
} as const;
export type StatName = keyof typeof STAT;
const SLOTS = 24;

export const STATUS_CODES = ["connecting", "syncing", "live", "degraded", "down"] as const;
export type StatusName = (typeof STATUS_CODES)[number];

/** Typed access to one exchange's shared stats block. */
export class ExchangeStats {
  readonly values: Float64Array;
  constructor(sab: SharedArrayBuffer = new SharedArrayBuffer(SLOTS * 8)) {
    this.values = new Float64Array(sab);
  }
  get buffer(): SharedArrayBuffer {
    return this.values.buffer as SharedArrayBuffer;
  }
  inc(name: StatName, by = 1): void {
    this.values[STAT[name]]! += by;
  }
  set(name: StatName, value: number): void {
    this.values[STAT[name]] = value;
  }
  get(name: StatName): number {
    return this.values[STAT[name]]!;
  }
  setStatus(status: StatusName): void {
    this.values[STAT.status] = STATUS_CODES.indexOf(status);
  }
  status(): StatusName {
    return STATUS_CODES[this.values[STAT.status]!] ?? "connecting";
  }
}
