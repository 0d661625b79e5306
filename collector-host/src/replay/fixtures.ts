import { existsSync, readFileSync } from "node:fs";
import path from "node:path";

/**
 * Where the recorded feeds live: `EDGEPULSE_FIXTURES`, else `../shared/fixtures/exchanges` beside the
 * repo (where every developer and CI checkout has it), else the workplace's canonical copy.
 */
export function fixturesDir(): string {
  if (process.env.EDGEPULSE_FIXTURES) return process.env.EDGEPULSE_FIXTURES;
  const besideRepo = path.resolve(import.meta.dirname, "../../../../shared/fixtures/exchanges");
  const canonical = "/work/shared/fixtures/exchanges";
  return existsSync(besideRepo) || !existsSync(canonical) ? besideRepo : canonical;
}

/** The markets each recorded feed covers, normalized (what the replay server can serve). */
export const RECORDED_SYMBOLS: Record<"kraken" | "coinbase" | "binanceus", string[]> = {
  kraken: [
    "WAVES-EUR",
    "XMR-USD",
    "KSM-BTC",
    "GRT-ETH",
    "SC-EUR",
    "ETH-CHF",
    "OCEAN-BTC",
    "OMG-USD",
    "BTC-CHF",
    "ADA-BTC",
  ],
  coinbase: [
    "SKL-USD",
    "SKL-BTC",
    "BAND-GBP",
    "NMR-EUR",
    "BAND-BTC",
    "YFI-BTC",
    "DASH-BTC",
    "NU-GBP",
    "CRV-EUR",
    "SKL-GBP",
  ],
  binanceus: ["CRV-USDT", "COMP-USDT", "OMG-BUSD", "ZRX-USDT"],
};

/** One recorded message the exchange sent, with its receive time in seconds. */
export interface FixtureMessage {
  t: number;
  text: string;
}

/** A recorded REST response: `url -> t: body`. */
export interface FixtureResponse {
  url: string;
  t: number;
  body: string;
}

/** Reads the server→client messages of a recorded WebSocket session (connection and subscription lines skipped). */
export function readWsFixture(name: string, dir = fixturesDir()): FixtureMessage[] {
  const out: FixtureMessage[] = [];
  for (const line of readFileSync(path.join(dir, name), "utf8").split("\n")) {
    if (!line || line.includes(" <-> ") || line.includes(" <- ")) continue;
    const sep = line.indexOf(": ");
    if (sep < 0) continue;
    const t = Number(line.slice(0, sep));
    if (!Number.isFinite(t)) continue;
    out.push({ t, text: line.slice(sep + 2) });
  }
  return out;
}

/** Reads recorded REST responses (`BINANCE_US.http.0.0`). */
export function readHttpFixture(name: string, dir = fixturesDir()): FixtureResponse[] {
  const out: FixtureResponse[] = [];
  for (const line of readFileSync(path.join(dir, name), "utf8").split("\n")) {
    const m = /^(\S+) -> ([\d.]+): (.*)$/.exec(line);
    if (m) out.push({ url: m[1]!, t: Number(m[2]), body: m[3]! });
  }
  return out;
}
