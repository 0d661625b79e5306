/** At most this many words reach FTS5; more would only slow the match without narrowing it usefully. */
const MAX_TERMS = 12;

/**
 * Turns free text into a safe FTS5 MATCH expression, or null when it holds no searchable word.
 *
 * User text is never handed to FTS5 as syntax: it is split into the same runs of letters and
 * digits the unicode61 tokenizer indexes, and each run becomes a quoted string with a prefix
 * star (`"lap"*`), so `"`, `*`, `-`, `(`, `NEAR`, `OR`, `AND`, `NOT` and column filters are all
 * plain words or separators. Terms are ANDed; each matches as a prefix, autocomplete style.
 */
export function toFtsQuery(text: string | undefined): string | null {
  if (!text) return null;
  const words = text.normalize("NFKC").match(/[\p{L}\p{N}\p{M}]+/gu);
  if (!words) return null;
  return words
    .slice(0, MAX_TERMS)
    .map((w) => `"${w.toLowerCase()}"*`)
    .join(" ");
}
