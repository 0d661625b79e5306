// DERIVED DATA, NOT A RECORDING. The recorded feeds (../shared/fixtures/exchanges) share no market
// across exchanges, so a consolidated book, its best bid/offer and per-exchange freshness are
// never exercised by them. This builds a second exchange's feed for one recorded market by a
// fixed, documented transformation of the recording, so tests (and anyone replaying it) can
// publish one market from two exchanges. Every use names it as derived; it is never presented as
// what an exchange sent. Runtime-neutral (no Node imports): the Workers tests run it in workerd.
import type { BookUpdate, Exchange, Level } from "../contracts/market.ts";
import { addDecimal, isZeroDecimal } from "../contracts/order-book.ts";

/** How the derived feed was made, for labels and logs. */
export interface DerivedFeedLabel {
  derived: true;
  from: string;
  as: Exchange;
  transformation: string;
}

/**
 * The recorded `updates` (snapshot first) re-labelled as `exchange`, every price raised by
 * `priceOffset` (exact decimal addition) and every size kept, removals kept as removals. The
 * derived book is the recorded one shifted up: its best bid is above the recording's (the
 * consolidated bid comes from it) while the recording's best ask stays the lowest (the ask comes
 * from the original), and where a shifted price meets an original one the consolidated size is
 * the exact sum.
 */
export function deriveSecondExchange(
  updates: readonly BookUpdate[],
  exchange: Exchange,
  priceOffset: string,
  from: string,
): { label: DerivedFeedLabel; updates: BookUpdate[] } {
  const shift = (levels: readonly Level[]): Level[] =>
    levels.map(([price, size]): Level => [addDecimal(price, priceOffset), isZeroDecimal(size) ? "0" : size]);
  return {
    label: {
      derived: true,
      from,
      as: exchange,
      transformation: `prices + ${priceOffset}, sizes unchanged (derived from the recording, not recorded)`,
    },
    updates: updates.map((u) => ({ ...u, exchange, bids: shift(u.bids), asks: shift(u.asks) })),
  };
}
