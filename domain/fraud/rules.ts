import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { type FraudDecision, FraudRules, type ScreeningContext } from "../../contracts/fraud";
import { users } from "../../d1/schema/identity";
import { fraudRules } from "../../d1/schema/trust";
import { IsolateCopies } from "../isolate-copy";

/** The built-in thresholds (`FRAUD_RULES_DEFAULT = "on"`, staging and production). */
export const DEFAULT_FRAUD_RULES: FraudRules = {
  customerVelocity: { enabled: true, maxOrders: 5, windowMinutes: 60 },
  ipVelocity: { enabled: true, maxOrders: 10, windowMinutes: 60 },
  cardVelocity: { enabled: true, maxOrders: 5, windowMinutes: 60 },
  newAccountAmount: { enabled: true, accountAgeHours: 24, maxAmount: 50_000 },
  countryMismatch: { enabled: true },
  reviewHoldMinutes: 10,
};

/** Same thresholds, every rule off (`FRAUD_RULES_DEFAULT = "off"`: local runs, tests, benchmarks). */
const RULES_OFF: FraudRules = {
  ...DEFAULT_FRAUD_RULES,
  customerVelocity: { ...DEFAULT_FRAUD_RULES.customerVelocity, enabled: false },
  ipVelocity: { ...DEFAULT_FRAUD_RULES.ipVelocity, enabled: false },
  cardVelocity: { ...DEFAULT_FRAUD_RULES.cardVelocity, enabled: false },
  newAccountAmount: { ...DEFAULT_FRAUD_RULES.newAccountAmount, enabled: false },
  countryMismatch: { enabled: false },
};

/** Checkouts read the rules at most once a second per isolate (an admin's change applies within a second). */
const rulesCopy = new IsolateCopies<FraudRules>(1000);

/** The rules in force: what an admin stored, else the environment's default. */
export async function fraudRulesFor(env: Pick<Env, "DB" | "FRAUD_RULES_DEFAULT">): Promise<FraudRules> {
  return rulesCopy.get("rules", async () => {
    const row = await drizzle(env.DB).select().from(fraudRules).where(eq(fraudRules.id, 1)).get();
    // A stored row was validated when it was written; parse again so a hand-edited row fails loudly.
    if (row) return FraudRules.parse(row.config);
    return env.FRAUD_RULES_DEFAULT === "off" ? RULES_OFF : DEFAULT_FRAUD_RULES;
  });
}

/** Stores the rules (admin); this isolate uses them at once, the others within a second. */
export async function setFraudRules(env: Pick<Env, "DB">, rules: FraudRules, updatedBy: string): Promise<void> {
  const at = new Date().toISOString();
  await drizzle(env.DB)
    .insert(fraudRules)
    .values({ id: 1, config: rules, updatedAt: at, updatedBy })
    .onConflictDoUpdate({ target: fraudRules.id, set: { config: rules, updatedAt: at, updatedBy } });
  rulesCopy.put("rules", rules);
}

/** True when at least one rule would look at an order (otherwise checkout skips the step entirely). */
export function anyRuleEnabled(rules: FraudRules): boolean {
  return (
    rules.customerVelocity.enabled ||
    rules.ipVelocity.enabled ||
    rules.cardVelocity.enabled ||
    rules.newAccountAmount.enabled ||
    rules.countryMismatch.enabled
  );
}

/** The order as the fraud step sees it. */
export interface ScreenedOrder {
  orderId: string;
  userId: string;
  amount: number;
}

/**
 * Runs every enabled rule against one order and says whether to hold it for review, and why.
 * Velocity counters are Durable Objects (one per customer, address and card fingerprint) that
 * record the order once by id, so a redelivered saga message does not count it twice.
 */
export async function screenOrder(
  env: Pick<Env, "DB" | "FRAUD_VELOCITY">,
  order: ScreenedOrder,
  context: ScreeningContext,
  rules: FraudRules,
): Promise<FraudDecision> {
  const velocity = async (
    rule: "customer_velocity" | "ip_velocity" | "card_velocity",
    config: FraudRules["customerVelocity"],
    key: string | null,
  ) => {
    if (!config.enabled || key === null) return null;
    const { count } = await env.FRAUD_VELOCITY.getByName(key).record(order.orderId, config.windowMinutes * 60_000);
    return count > config.maxOrders
      ? { rule, detail: `${count} orders in ${config.windowMinutes} min (limit ${config.maxOrders})` }
      : null;
  };
  const newAccount = async () => {
    const rule = rules.newAccountAmount;
    if (!rule.enabled || order.amount <= rule.maxAmount) return null;
    const user = await drizzle(env.DB)
      .select({ createdAt: users.createdAt })
      .from(users)
      .where(eq(users.id, order.userId))
      .get();
    if (!user) return null;
    const ageHours = (Date.now() - Date.parse(user.createdAt)) / 3_600_000;
    return ageHours < rule.accountAgeHours
      ? {
          rule: "new_account_amount" as const,
          detail: `amount ${order.amount} above ${rule.maxAmount} from an account ${Math.floor(ageHours)} h old`,
        }
      : null;
  };
  const country = () =>
    rules.countryMismatch.enabled && context.country !== null && context.country !== context.shippingCountry
      ? {
          rule: "country_mismatch" as const,
          detail: `ships to ${context.shippingCountry}, ordered from ${context.country}`,
        }
      : null;
  const results = await Promise.all([
    velocity("customer_velocity", rules.customerVelocity, `customer:${order.userId}`),
    velocity("ip_velocity", rules.ipVelocity, context.ip === null ? null : `ip:${context.ip}`),
    velocity("card_velocity", rules.cardVelocity, `card:${context.cardFingerprint}`),
    newAccount(),
    country(),
  ]);
  const hits = results.filter((hit) => hit !== null);
  return { decision: hits.length > 0 ? "review" : "clear", hits };
}
