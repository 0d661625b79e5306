/**
 * Calendar buckets of the product rollups and how a range of days is read from them.
 *
 * Best sellers over a window sum one row per product and bucket. Summing day rows reads every
 * product-day of the window (90 days × ~1,000 products sold a day is ~90,000 rows), so the
 * consumer also keeps each product's totals per **week** and **month**, and a window is read as a
 * few signed buckets instead. Weeks are month-aligned — the 1st–7th, 8th–14th, 15th–21st,
 * 22nd–28th and 29th–end — so days nest in weeks and weeks in months, and a window never needs a
 * bucket that straddles a month.
 *
 * Rollups are sums, so a bucket may also be subtracted: the 3rd to the 30th of a 30-day month is
 * the month minus the 1st and the 2nd (3 buckets), not five days and four weeks (9). The cover
 * picks, at each level, the cheaper of reading the parts inside the range or the whole minus the
 * parts outside it; the signs always add up to exactly one count per day of the range.
 */

export type PeriodSpan = "day" | "week" | "month";

/** One bucket of a cover: its span, its first day (`YYYY-MM-DD`) and whether it adds or subtracts. */
export interface PeriodTerm {
  span: PeriodSpan;
  start: string;
  sign: 1 | -1;
}

const DAY_MS = 86_400_000;
/** The first day of each month-aligned week. */
const WEEK_STARTS = [1, 8, 15, 22, 29] as const;

const epochDay = (day: string): number => {
  const ms = Date.parse(`${day}T00:00:00.000Z`);
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day) || Number.isNaN(ms)) throw new RangeError(`not a UTC day: ${day}`);
  return Math.round(ms / DAY_MS);
};
const dayString = (n: number): string => new Date(n * DAY_MS).toISOString().slice(0, 10);

/** The week (of its month) and the month a day falls in, each named by its first day. */
export function periodsOf(day: string): { week: string; month: string } {
  const dayOfMonth = Number(day.slice(8, 10));
  const weekStart = WEEK_STARTS[Math.min(4, Math.floor((dayOfMonth - 1) / 7))]!;
  return { week: `${day.slice(0, 8)}${String(weekStart).padStart(2, "0")}`, month: `${day.slice(0, 8)}01` };
}

/** A bucket as a closed range of epoch days, with the buckets it is made of. */
interface Period {
  span: PeriodSpan;
  first: number;
  last: number;
}

function monthOf(n: number): Period {
  const date = new Date(n * DAY_MS);
  const first = Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1) / DAY_MS;
  const last = Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + 1, 0) / DAY_MS;
  return { span: "month", first, last };
}

function partsOf(period: Period): Period[] {
  if (period.span === "day") return [];
  if (period.span === "week") {
    return Array.from({ length: period.last - period.first + 1 }, (_, i) => ({
      span: "day" as const,
      first: period.first + i,
      last: period.first + i,
    }));
  }
  return WEEK_STARTS.map((d, i) => ({
    span: "week" as const,
    first: period.first + d - 1,
    last: Math.min(period.last, period.first + (WEEK_STARTS[i + 1] ?? 32) - 2),
  })).filter((week) => week.first <= period.last);
}

/** `[first, last]` (inside `period`) from `period`'s parts, each read whole or as a whole minus. */
function coverInside(period: Period, first: number, last: number, sign: 1 | -1): PeriodTerm[] {
  return partsOf(period)
    .filter((part) => part.last >= first && part.first <= last)
    .flatMap((part) => cover(part, Math.max(first, part.first), Math.min(last, part.last), sign));
}

function cover(period: Period, first: number, last: number, sign: 1 | -1): PeriodTerm[] {
  const whole: PeriodTerm = { span: period.span, start: dayString(period.first), sign };
  if (first === period.first && last === period.last) return [whole];
  const inside = coverInside(period, first, last, sign);
  const minus = -sign as 1 | -1;
  const outside = [
    whole,
    ...(first > period.first ? coverInside(period, period.first, first - 1, minus) : []),
    ...(last < period.last ? coverInside(period, last + 1, period.last, minus) : []),
  ];
  return outside.length < inside.length ? outside : inside;
}

/**
 * The fewest day, week and month buckets whose signed sum is exactly the days `first..last`
 * (inclusive, `YYYY-MM-DD`). A window of whole months is one bucket a month; any part of a month
 * takes at most 9 (the 4th–18th: four days, a week, four days), so a window reads at most 18 plus
 * one per whole month; the last 90 days take 7 or 8.
 */
export function coverDays(first: string, last: string): PeriodTerm[] {
  let from = epochDay(first);
  const to = epochDay(last);
  const terms: PeriodTerm[] = [];
  while (from <= to) {
    const month = monthOf(from);
    const end = Math.min(to, month.last);
    terms.push(...cover(month, from, end, 1));
    from = end + 1;
  }
  return terms;
}
