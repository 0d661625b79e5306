import { z } from "zod";
import { parsedOncePerEnv } from "../env-config";
import { DomainError } from "../errors";

/**
 * The business alerts' thresholds and how often they are checked, from wrangler vars (README
 * "Alerts"). Every var is optional and falls back to the default below; a var that is set must
 * parse, or the alerts are refused as misconfigured (GET /ready answers 503 with the reason, which
 * `npm start` and a deploy's health check stop on) rather than quietly checking something else.
 */
export interface AlertThresholds {
  /** Below this share of successful payments over the last hour is an alert. */
  paymentSuccessMin: number;
  /** Above this share of failed orders (anything but a customer's cancel) over the last hour is an alert. */
  orderFailureMax: number;
  /** Rates over fewer outcomes than this say nothing yet (two declines in a quiet hour are not an outage). */
  minSample: number;
  /** A collector host silent, or an exchange down, for longer than this is an alert. */
  collectorDownAfterMs: number;
  /** How often the alert monitor checks while there is something to watch. */
  checkIntervalMs: number;
}

export const DEFAULT_ALERT_THRESHOLDS: AlertThresholds = {
  paymentSuccessMin: 0.8,
  orderFailureMax: 0.25,
  minSample: 10,
  collectorDownAfterMs: 30_000,
  checkIntervalMs: 10_000,
};

export type AlertConfigEnv = Partial<
  Record<
    | "ALERT_PAYMENT_SUCCESS_MIN"
    | "ALERT_ORDER_FAILURE_MAX"
    | "ALERT_MIN_SAMPLE"
    | "ALERT_COLLECTOR_DOWN_AFTER_S"
    | "ALERT_CHECK_INTERVAL_S",
    string
  >
>;

/** A var as a number in range, or its default when unset (an empty string counts as unset). */
const numberVar = (schema: z.ZodNumber, fallback: number) =>
  z.preprocess((raw) => (raw === undefined || raw === "" ? fallback : Number(raw)), schema);

const AlertVars = z
  .object({
    ALERT_PAYMENT_SUCCESS_MIN: numberVar(z.number().gt(0).max(1), DEFAULT_ALERT_THRESHOLDS.paymentSuccessMin),
    ALERT_ORDER_FAILURE_MAX: numberVar(z.number().min(0).lt(1), DEFAULT_ALERT_THRESHOLDS.orderFailureMax),
    ALERT_MIN_SAMPLE: numberVar(z.number().int().min(1).max(100_000), DEFAULT_ALERT_THRESHOLDS.minSample),
    ALERT_COLLECTOR_DOWN_AFTER_S: numberVar(
      z.number().int().min(5).max(3600),
      DEFAULT_ALERT_THRESHOLDS.collectorDownAfterMs / 1000,
    ),
    ALERT_CHECK_INTERVAL_S: numberVar(
      z.number().int().min(1).max(300),
      DEFAULT_ALERT_THRESHOLDS.checkIntervalMs / 1000,
    ),
  })
  // A check interval as long as the silence it should notice would report it up to twice as late.
  .refine((v) => v.ALERT_CHECK_INTERVAL_S * 2 <= v.ALERT_COLLECTOR_DOWN_AFTER_S, {
    path: ["ALERT_CHECK_INTERVAL_S"],
    message: "must be at most half of ALERT_COLLECTOR_DOWN_AFTER_S",
  });

/** Parses the alert vars; throws `unavailable` / `alerts-misconfigured` naming every bad var. */
export function parseAlertThresholds(env: AlertConfigEnv): AlertThresholds {
  const parsed = AlertVars.safeParse({
    ALERT_PAYMENT_SUCCESS_MIN: env.ALERT_PAYMENT_SUCCESS_MIN,
    ALERT_ORDER_FAILURE_MAX: env.ALERT_ORDER_FAILURE_MAX,
    ALERT_MIN_SAMPLE: env.ALERT_MIN_SAMPLE,
    ALERT_COLLECTOR_DOWN_AFTER_S: env.ALERT_COLLECTOR_DOWN_AFTER_S,
    ALERT_CHECK_INTERVAL_S: env.ALERT_CHECK_INTERVAL_S,
  });
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => {
      const name = String(issue.path[0]);
      const value = env[name as keyof AlertConfigEnv];
      return `${name}${value === undefined ? "" : ` = ${JSON.stringify(value)}`}: ${issue.message}`;
    });
    throw new DomainError("unavailable", `Alerts are not configured: ${problems.join("; ")}`, {
      kind: "alerts-misconfigured",
      retryAfterSeconds: 300,
    });
  }
  const v = parsed.data;
  return {
    paymentSuccessMin: v.ALERT_PAYMENT_SUCCESS_MIN,
    orderFailureMax: v.ALERT_ORDER_FAILURE_MAX,
    minSample: v.ALERT_MIN_SAMPLE,
    collectorDownAfterMs: v.ALERT_COLLECTOR_DOWN_AFTER_S * 1000,
    checkIntervalMs: v.ALERT_CHECK_INTERVAL_S * 1000,
  };
}

/**
 * The env's alert thresholds, parsed once per env object and logged once when refused; throws the
 * same error on every call while misconfigured.
 */
export const alertThresholdsFor: (env: AlertConfigEnv) => AlertThresholds = parsedOncePerEnv(
  "alert",
  parseAlertThresholds,
);
