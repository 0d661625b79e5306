import type { ExchangeConfig } from "../config.ts";
import { createBinanceAdapter } from "./binanceus.ts";
import { createCoinbaseAdapter } from "./coinbase.ts";
import { createCoinbaseAdvancedAdapter } from "./coinbase-advanced.ts";
import { createKrakenAdapter } from "./kraken.ts";
import { createKrakenV2Adapter } from "./kraken-v2.ts";
import type { AdapterFactory } from "./types.ts";

/** Picks the adapter for a configured protocol; URLs default to production inside each adapter. */
export function createAdapterFactory(config: ExchangeConfig): AdapterFactory {
  const url = config.url ? { url: config.url } : {};
  const maxBookLevels = config.maxBookLevels;
  switch (config.protocol) {
    case "kraken-v1":
      return (ctx) =>
        createKrakenAdapter(ctx, {
          ...url,
          ...(config.depth ? { depth: config.depth as 10 | 25 | 100 | 500 | 1000 } : {}),
        });
    case "kraken-v2":
      return (ctx) => createKrakenV2Adapter(ctx, { ...url, ...(config.depth ? { depth: config.depth } : {}) });
    case "coinbase-exchange":
      return (ctx) => createCoinbaseAdapter(ctx, { ...url, maxBookLevels });
    case "coinbase-advanced":
      return (ctx) => createCoinbaseAdvancedAdapter(ctx, { ...url, maxBookLevels });
    case "binanceus":
      return (ctx) =>
        createBinanceAdapter(ctx, {
          ...(config.url ? { wsUrl: config.url } : {}),
          ...(config.restUrl ? { restUrl: config.restUrl } : {}),
          maxBookLevels,
        });
  }
}
