import { z } from "./zod.ts";

const Velocity = z
  .object({
    enabled: z.boolean(),
    /** More than this many orders inside the window hold the order. */
    maxOrders: z.number().int().min(1).max(10_000),
    windowMinutes: z
      .number()
      .int()
      .min(1)
      .max(7 * 24 * 60),
  })
  .strict();

/** Rules and thresholds of the fraud step (GET/PUT /v1/admin/fraud-rules). */
export const FraudRules = z
  .object({
    customerVelocity: Velocity,
    ipVelocity: Velocity,
    cardVelocity: Velocity,
    newAccountAmount: z
      .object({
        enabled: z.boolean(),
        /** Accounts younger than this are "new". */
        accountAgeHours: z
          .number()
          .int()
          .min(1)
          .max(24 * 365),
        /** Order totals above this (minor units, any currency) from a new account are held. */
        maxAmount: z.number().int().min(0),
      })
      .strict(),
    countryMismatch: z.object({ enabled: z.boolean() }).strict(),
    /** How long a held order keeps its stock before it is cancelled (below the 15-minute reservation TTL). */
    reviewHoldMinutes: z.number().int().min(1).max(14),
  })
  .strict();
export type FraudRules = z.infer<typeof FraudRules>;

export const FRAUD_RULE_NAMES = [
  "customer_velocity",
  "ip_velocity",
  "card_velocity",
  "new_account_amount",
  "country_mismatch",
] as const;
export const FraudRuleName = z.enum(FRAUD_RULE_NAMES);
export type FraudRuleName = z.infer<typeof FraudRuleName>;

/** What the checkout request knew, kept with the order for the fraud step (never a card number). */
export const ScreeningContext = z.object({
  /** Keyed hash of the client address group (IPv4, or IPv6 /64); null when unknown. */
  ip: z.string().max(128).nullable(),
  /** ISO 3166-1 alpha-2 of the request (`request.cf.country`), null when unknown. */
  country: z.string().max(2).nullable(),
  /** Keyed hash of the card number (or of the provider token); never the number. */
  cardFingerprint: z.string().max(128),
  shippingCountry: z.string().max(2),
});
export type ScreeningContext = z.infer<typeof ScreeningContext>;

export const FraudDecision = z.object({
  decision: z.enum(["clear", "review"]),
  /** The rules that held the order, with what they measured. */
  hits: z.array(z.object({ rule: FraudRuleName, detail: z.string() })),
});
export type FraudDecision = z.infer<typeof FraudDecision>;

/** POST /v1/admin/orders/{id}/review */
export const ReviewDecision = z.object({ decision: z.enum(["approve", "reject"]) }).strict();
export type ReviewDecision = z.infer<typeof ReviewDecision>;
