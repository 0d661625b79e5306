import type { Context } from "hono";
import type { ScreeningContext } from "../contracts/fraud";
import { personalDataKey, personalDigest } from "../domain/audit/chain";
import { anyRuleEnabled, fraudRulesFor } from "../domain/fraud/rules";
import { addressGroup } from "../domain/identity/throttling";
import type { AppEnv } from "./env";
import { clientIp } from "./middleware/rate-limit";

/**
 * The country the request came from. In Cloudflare that is `request.cf.country`, set by the edge
 * and beyond the client's reach. Locally (ENVIRONMENT "local": `npm start`, tests) there is no
 * geolocation — Miniflare's `cf` is a fixed placeholder — so the `X-Simulated-Country` header
 * stands in for it; it is ignored everywhere else, where a client could forge it.
 */
export function requestCountry(c: Context<AppEnv>): string | null {
  const country =
    c.env.ENVIRONMENT === "local"
      ? c.req.header("x-simulated-country")
      : (c.req.raw.cf as { country?: unknown } | undefined)?.country;
  // XX: Cloudflare could not tell; T1 (Tor) is not alpha-2 and counts as unknown too.
  return typeof country === "string" && /^[A-Z]{2}$/.test(country) && country !== "XX" ? country : null;
}

/**
 * What the fraud step needs from this checkout, or nothing when no rule is on (the order is then
 * clear from the start and the saga does not wait for the step). The client address and the card
 * are kept only as keyed digests: velocity needs "the same one again", not the value.
 */
export async function fraudScreeningFor(
  c: Context<AppEnv>,
  payment: { cardNumber?: string; token?: string },
  shippingCountry: string,
): Promise<{ screening?: ScreeningContext }> {
  if (!anyRuleEnabled(await fraudRulesFor(c.env))) return {};
  const key = personalDataKey(c.env);
  const card =
    payment.cardNumber !== undefined ? `card:${payment.cardNumber.replace(/[\s-]/g, "")}` : `token:${payment.token}`;
  const ip = clientIp(c);
  return {
    screening: {
      ip: ip === "unknown" ? null : personalDigest(key, `ip:${addressGroup(ip)}`),
      country: requestCountry(c),
      cardFingerprint: personalDigest(key, card),
      shippingCountry,
    },
  };
}
