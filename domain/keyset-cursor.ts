import { base64UrlDecodeText, base64UrlEncodeText } from "./encoding";
import { invalidInput } from "./errors";

/**
 * Opaque cursor for lists paged newest first on (created_at, id): the last item's pair, so a page
 * stays stable while new rows arrive. Used by the orders read model and product reviews.
 */
export function encodeCreatedAtCursor(createdAt: string, id: string): string {
  return base64UrlEncodeText(JSON.stringify([createdAt, id]));
}

/** Decodes a client-supplied cursor; anything that is not one of ours is a 400. */
export function decodeCreatedAtCursor(cursor: string): { createdAt: string; id: string } {
  const [createdAt, id] = decoded(cursor) as unknown[];
  if (typeof createdAt === "string" && typeof id === "string") return { createdAt, id };
  throw foreignCursor();
}

/** Cursor for lists paged by a sequence number (the audit log): the last item's seq. */
export function encodeSeqCursor(seq: number): string {
  return base64UrlEncodeText(JSON.stringify(seq));
}

/** Decodes a client-supplied sequence cursor; anything that is not one of ours is a 400. */
export function decodeSeqCursor(cursor: string): number {
  const seq = decoded(cursor);
  if (typeof seq === "number" && Number.isSafeInteger(seq) && seq > 0) return seq;
  throw foreignCursor();
}

function decoded(cursor: string): unknown {
  try {
    return JSON.parse(base64UrlDecodeText(cursor));
  } catch {
    // Not base64url JSON: answered like any other foreign cursor.
    throw foreignCursor();
  }
}

const foreignCursor = () => invalidInput("Invalid cursor", [{ path: "cursor", message: "not a cursor from this API" }]);
