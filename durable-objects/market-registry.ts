import { createDurable } from "itty-durable/itty-durable.js";
import {
  CollectorHealthReport,
  type CollectorsView,
  EXCHANGES,
  type Exchange,
  MarketSymbol,
  SymbolPublishers,
} from "../contracts/market";
import { type IttyClient, ittyClient } from "./itty-client";

/** The one registry object: the market control plane is small enough for a single JSON document. */
const REGISTRY_NAME = "market";

/** One host's stored report. */
export interface CollectorHealthView extends CollectorHealthReport {
  /** When the edge received the report. */
  receivedAt: string;
}

export type { SymbolPublishers };

/** A host that has not reported for this long is shown as silent (three 5 s report intervals). */
const SILENT_AFTER_MS = 15_000;
/** Hosts not heard from for this long are dropped from the view. */
const FORGET_AFTER_MS = 24 * 3600_000;

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
  /** Every host's last report (redundant collectors), by host id. */
  hosts: Record<string, CollectorHealthView> = {};
  /** Each symbol's publishers as its MarketFeed object last reported them. */
  publishers: Record<string, SymbolPublishers> = {};

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
    const now = Date.parse(receivedAt);
    const hosts: Record<string, CollectorHealthView> = {};
    for (const [host, view] of Object.entries(this.hosts)) {
      if (now - Date.parse(view.receivedAt) < FORGET_AFTER_MS) hosts[host] = view;
    }
    hosts[parsed.data.host] = this.collectors;
    this.hosts = hosts;
    await this.persist();
    return this.collectors;
  }

  /** A MarketFeed object's publishers changed (connect, disconnect, failover). */
  async reportPublishers(symbol: string, publishersJson: string): Promise<void> {
    const parsed = SymbolPublishers.safeParse(JSON.parse(publishersJson));
    if (!parsed.success || !MarketSymbol.safeParse(symbol).success) return;
    this.publishers = { ...this.publishers, [symbol]: parsed.data };
    await this.persist();
  }

  /** The last report with every host's and every symbol's publishers, or null before the first report. */
  async collectorHealth(now = Date.now()): Promise<CollectorsView | null> {
    if (!this.collectors) return null;
    const hosts = Object.values(this.hosts)
      .sort((a, b) => a.host.localeCompare(b.host))
      .map((view) => {
        const primaryFor: string[] = [];
        const standbyFor: string[] = [];
        for (const [symbol, p] of Object.entries(this.publishers)) {
          if (p.primary === view.host) primaryFor.push(symbol);
          if (p.standbys.includes(view.host)) standbyFor.push(symbol);
        }
        return {
          ...view,
          silent: now - Date.parse(view.receivedAt) >= SILENT_AFTER_MS,
          primaryFor: primaryFor.sort(),
          standbyFor: standbyFor.sort(),
        };
      });
    return { ...this.collectors, hosts, symbols: { ...this.publishers } };
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
