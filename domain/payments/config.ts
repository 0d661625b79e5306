import { parsedOncePerEnv } from "../env-config";
import { DomainError } from "../errors";

/** The payment provider a Worker may use, read from its vars and secrets. */
export type PaymentConfig = { provider: "simulated"; testMode: boolean } | { provider: "stripe"; secretKey: string };

/** What the config is read from; the `STRIPE_SECRET_KEY` secret exists only where it was put. */
export type PaymentConfigEnv = Pick<Env, "ENVIRONMENT" | "PAYMENT_PROVIDER" | "PAYMENT_TEST_MODE"> & {
  STRIPE_SECRET_KEY?: string;
};

/** A misconfigured deployment cannot fix itself: clients should come back in minutes, not at once. */
export const PAYMENT_UNAVAILABLE_RETRY_SECONDS = 300;

/**
 * Parses the payment configuration, strictly: the simulated provider confirms orders without
 * taking money, so a typo in the provider name or a production env left on the default must stop
 * checkout rather than quietly give goods away. Throws `unavailable` / `payment-unavailable`.
 */
export function parsePaymentConfig(env: PaymentConfigEnv): PaymentConfig {
  const refuse = (reason: string) =>
    new DomainError("unavailable", `Payments are not configured: ${reason}`, {
      kind: "payment-unavailable",
      retryAfterSeconds: PAYMENT_UNAVAILABLE_RETRY_SECONDS,
    });
  const provider = env.PAYMENT_PROVIDER;
  if (provider === "stripe") {
    if (!env.STRIPE_SECRET_KEY) throw refuse('PAYMENT_PROVIDER "stripe" needs the STRIPE_SECRET_KEY secret');
    return { provider: "stripe", secretKey: env.STRIPE_SECRET_KEY };
  }
  if (provider === "simulated") {
    const testMode = env.PAYMENT_TEST_MODE === "true";
    if (env.ENVIRONMENT !== "local" && !testMode) {
      throw refuse(
        `the simulated provider takes no money; it runs only with ENVIRONMENT "local" or PAYMENT_TEST_MODE "true" (ENVIRONMENT is ${JSON.stringify(env.ENVIRONMENT)})`,
      );
    }
    return { provider: "simulated", testMode };
  }
  throw refuse(`PAYMENT_PROVIDER ${JSON.stringify(provider)} is not "simulated" or "stripe"`);
}

/**
 * The env's payment config, parsed once per env object (checkout pays for the check once per
 * isolate) and logged once when it is wrong. Throws the same `payment-unavailable` error on every
 * call while misconfigured.
 */
export const paymentConfigFor: (env: PaymentConfigEnv) => PaymentConfig = parsedOncePerEnv(
  "payment",
  parsePaymentConfig,
);
