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
  try {
    const [createdAt, id] = JSON.parse(base64UrlDecodeText(cursor)) as unknown[];
    if (typeof createdAt === "string" && typeof id === "string") return { createdAt, id };
  } catch {
    // Not base64url JSON: answered below like any other foreign cursor.
  }
  throw invalidInput("Invalid cursor", [{ path: "cursor", message: "not a cursor from this API" }]);
}
