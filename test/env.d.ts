// Test-only bindings, added by vitest.config.ts.
declare namespace Cloudflare {
  interface Env {
    TEST_MIGRATIONS: import("cloudflare:test").D1Migration[];
    /** Recorded exchange books as ingest updates (scripts/market-fixture-frames.ts#FixtureFeed). */
    MARKET_FIXTURES: {
      exchange: import("../contracts/market").Exchange;
      market: string;
      updates: import("../contracts/market").BookUpdate[];
      trades: import("../contracts/market").Trade[];
    }[];
  }
}
