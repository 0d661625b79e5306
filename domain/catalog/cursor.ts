import type { Sort } from "../../contracts/catalog";
import { base64UrlDecodeText, base64UrlEncodeText } from "../encoding";
import { invalidInput } from "../errors";

/**
 * Keyset position after the last item of a page: the sort key and the id that breaks ties.
 * For relevance, `key` is the last item's bm25 score; the next page re-scores that item against
 * the current index, so pages stay consistent even when inserts shift every score.
 */
export interface CursorPosition {
  sort: Sort;
  key: number | string;
  id: string;
  /** Fingerprint of the filters the cursor was made for; using it with others is a 400. */
  filters: string;
}

/** Encodes a position as an opaque string for `nextCursor`. */
export function encodeCursor(position: CursorPosition): string {
  return base64UrlEncodeText(JSON.stringify([1, position.sort, position.key, position.id, position.filters]));
}

/** Decodes a client-supplied cursor; anything malformed or foreign to this query is a 400. */
export function decodeCursor(cursor: string, expected: { sort: Sort; filters: string }): CursorPosition {
  const invalid = () =>
    invalidInput("The cursor is not valid for this query", [{ path: "cursor", message: "Invalid cursor" }]);
  let parsed: unknown;
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalid();
    parsed = JSON.parse(base64UrlDecodeText(cursor));
  } catch {
    throw invalid();
  }
  if (!Array.isArray(parsed) || parsed.length !== 5 || parsed[0] !== 1) throw invalid();
  const [, sort, key, id, filters] = parsed as unknown[];
  if (sort !== expected.sort || filters !== expected.filters) throw invalid();
  if (typeof id !== "string" || id.length === 0 || id.length > 64) throw invalid();
  const numericKey = sort === "relevance" || sort === "price_asc" || sort === "price_desc";
  if (numericKey ? typeof key !== "number" || !Number.isFinite(key) : typeof key !== "string" || key.length > 40) {
    throw invalid();
  }
  return { sort: expected.sort, key: key as number | string, id, filters: expected.filters };
}

/** A short, stable fingerprint (FNV-1a, 32 bit) of the normalized filter values. */
export function fingerprint(values: unknown[]): string {
  const text = JSON.stringify(values);
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return (hash >>> 0).toString(36);
}
