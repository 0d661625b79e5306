import { z } from "./zod.ts";

/** Integer minor units; 10^11 minor units is well beyond any real price and inside 2^53. */
export const MAX_PRICE_AMOUNT = 100_000_000_000;

const Currency = z.string().regex(/^[A-Z]{3}$/, "ISO 4217 code, e.g. USD");

/** Money on the wire: integer minor units plus an ISO 4217 currency code. Never floats. */
export const Money = z.object({ amount: z.number().int(), currency: Currency }).openapi("Money");
export type Money = z.infer<typeof Money>;

/** A price an admin may set: Money that is never negative and never absurd. */
export const Price = z
  .object({ amount: z.number().int().min(0).max(MAX_PRICE_AMOUNT), currency: Currency })
  .openapi("Price");
