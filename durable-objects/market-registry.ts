import { createDurable } from "itty-durable/itty-durable.js";
import { CollectorHealthReport, EXCHANGES, type Exchange, MarketSymbol } from "../contracts/market";
import { type IttyClient, ittyClient } from "./itty-client";

/** The one registry object: the market control plane is small enough for a single JSON document. */
const REGISTRY_NAME = "market";

/** What `GET /v1/market/collectors` serves. */
export interface CollectorHealthView extends CollectorHealthReport {
  /** When the edge received the report. */
  receivedAt: string;
}

/**
 * The market-data control plane: which symbols have feeds (and from which exchanges), and the
 * collector host's last health report. Its whole state is one small JSON document written rarely
 * (a symbol gains an exchange; the host reports every few seconds), which is what itty-durable is
 * for (SPEC.md); the per-symbol books live in MarketFeedObject, which needs SQLite and sockets.
 *
 * Arguments travel in an itty-durable request header, so they are passed as ASCII-only JSON text
 * (see `asciiJson`) and parsed again here rather than trusted.
 */
export class MarketRegistryObject extends createDurable() {
  symbols: Record<string, Exchange[]> = {};
  collectors: CollectorHealthView | null = null;

  /** Adds the exchanges now publishing `symbol`; returns the symbol's exchange list. */
  async registerSymbol(symbol: string, exchanges: string[]): Promise<Exchange[]> {
    const parsed = MarketSymbol.safeParse(symbol);
    if (!parsed.success) return [];
    const known = new Set<Exchange>(this.symbols[parsed.data] ?? []);
    const before = known.size;
    for (const ex of exchanges) if ((EXCHANGES as readonly string[]).includes(ex)) known.add(ex as Exchange);
    const list = EXCHANGES.filter((ex) => known.has(ex));
    if (list.length !== before || !(parsed.data in this.symbols)) {
      this.symbols = { ...this.symbols, [parsed.data]: list };
      await this.persist();
    }
    return list;
  }

  /** Every symbol with a feed, sorted. */
  async listSymbols(): Promise<{ symbol: string; exchanges: Exchange[] }[]> {
    return Object.keys(this.symbols)
      .sort()
      .map((symbol) => ({ symbol, exchanges: this.symbols[symbol] ?? [] }));
  }

  /** Stores the collector host's report (already validated by the route; validated again here). */
  async reportCollectors(reportJson: string, receivedAt: string): Promise<CollectorHealthView | null> {
    const parsed = CollectorHealthReport.safeParse(JSON.parse(reportJson));
    if (!parsed.success) return null;
    this.collectors = { ...parsed.data, receivedAt };
    await this.persist();
    return this.collectors;
  }

  /** The last report, or null before the first one. */
  async collectorHealth(): Promise<CollectorHealthView | null> {
    return this.collectors;
  }
}

/** What callers reach of the registry: its public methods, through itty-durable's proxied stub. */
export type MarketRegistryClient = IttyClient<MarketRegistryObject>;

/** The market registry, shared by every isolate and every MarketFeed object. */
export function marketRegistry(env: Pick<Env, "MARKET_REGISTRY">): MarketRegistryClient {
  return ittyClient(env.MARKET_REGISTRY, "MARKET_REGISTRY", REGISTRY_NAME);
}

/** JSON with every non-ASCII character escaped, safe to carry in an HTTP header. */
export function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\u007f-\uffff]/g,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}
