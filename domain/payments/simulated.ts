import { sha256Hex } from "../encoding";
import {
  type AuthorizeInput,
  type AuthorizeResult,
  asTimeout,
  type PaymentProvider,
  PermanentPaymentError,
  TransientPaymentError,
} from "./provider";
import { simulatedScenario } from "./tokenize";

/** The transient test card fails this many times per operation, then the "provider recovers". */
export const SIMULATED_TRANSIENT_FAILURES = 2;
/**
 * The refund-outage card's refunds fail this many times per refund, then the "provider recovers":
 * as many as the saga queue delivers a message (4), so the refund lands in the dead-letter queue
 * and an operator's retry (POST /v1/admin/sagas/:orderId/retry) is what gets it through.
 */
export const SIMULATED_REFUND_OUTAGE_FAILURES = 4;
/** Authorizations of the refund-outage card carry this prefix, so their refunds know to fail. */
const REFUND_OUTAGE_AUTH = "sim_auth_ro_";

interface SimRow {
  attempts: number;
  result: string | null;
}

/**
 * The default provider: behaves like a real one (idempotency keys, declines, outages, hangs) with
 * its own books in D1 (`simulated_payments`), so replays with the same key return the first
 * result and the transient card really recovers after a couple of attempts.
 */
export class SimulatedPaymentProvider implements PaymentProvider {
  readonly name = "simulated";
  readonly #db: D1Database;

  constructor(db: D1Database) {
    this.#db = db;
  }

  async authorize(input: AuthorizeInput, signal: AbortSignal): Promise<AuthorizeResult> {
    const scenario = simulatedScenario(input.token);
    if (!scenario) throw new PermanentPaymentError("unknown payment token");
    const outcome = async (): Promise<AuthorizeResult> => {
      if (scenario === "declined") return { status: "declined", code: "card_declined" };
      if (scenario === "insufficient_funds") return { status: "declined", code: "insufficient_funds" };
      const prefix = scenario === "refund_outage" ? REFUND_OUTAGE_AUTH : "sim_auth_";
      return { status: "authorized", authorizationId: `${prefix}${await shortHash(input.idempotencyKey)}` };
    };
    if (scenario !== "hang" && scenario !== "transient") {
      return this.#once(input.idempotencyKey, "authorize", outcome, outcome);
    }
    return this.#once(input.idempotencyKey, "authorize", async (attempt) => {
      if (scenario === "hang") {
        // Never answers: only our own timeout (the AbortSignal) ends the call.
        await new Promise<never>((_, reject) => {
          signal.addEventListener("abort", () => reject(signal.reason), { once: true });
        }).catch((error: unknown) => asTimeout(error, signal));
      }
      if (scenario === "transient" && attempt <= SIMULATED_TRANSIENT_FAILURES) {
        throw new TransientPaymentError("simulated provider unavailable (503)");
      }
      return outcome();
    });
  }

  async capture(input: {
    authorizationId: string;
    amount: number;
    idempotencyKey: string;
  }): Promise<{ captureId: string }> {
    const outcome = async () => ({ captureId: `sim_cap_${await shortHash(input.idempotencyKey)}` });
    return this.#once(input.idempotencyKey, "capture", outcome, outcome);
  }

  async void(input: { authorizationId: string; idempotencyKey: string }): Promise<{ voided: boolean }> {
    const outcome = async () => ({ voided: true });
    return this.#once(input.idempotencyKey, "void", outcome, outcome);
  }

  async refund(input: {
    authorizationId: string;
    amount: number;
    idempotencyKey: string;
  }): Promise<{ refundId: string }> {
    const outcome = async () => ({ refundId: `sim_ref_${await shortHash(input.idempotencyKey)}` });
    if (input.authorizationId.startsWith(REFUND_OUTAGE_AUTH)) {
      return this.#once(input.idempotencyKey, "refund", async (attempt) => {
        if (attempt <= SIMULATED_REFUND_OUTAGE_FAILURES) {
          throw new TransientPaymentError("simulated provider refunds unavailable (503)");
        }
        return outcome();
      });
    }
    return this.#once(input.idempotencyKey, "refund", outcome, outcome);
  }

  /**
   * Runs `compute` at most once successfully per key; counts every attempt. When the outcome is
   * known up front (`settled`: no outage or hang to play), it is stored by the same single write.
   */
  async #once<T>(
    key: string,
    operation: string,
    compute: (attempt: number) => Promise<T>,
    settled?: () => Promise<T>,
  ): Promise<T> {
    if (settled) {
      const result = await settled();
      const row = await this.#db
        .prepare(
          `INSERT INTO simulated_payments (idempotency_key, operation, attempts, result) VALUES (?1, ?2, 1, ?3)
           ON CONFLICT (idempotency_key) DO UPDATE SET attempts = attempts + 1, result = COALESCE(result, excluded.result)
           RETURNING result`,
        )
        .bind(key, operation, JSON.stringify(result))
        .first<{ result: string }>();
      return row ? (JSON.parse(row.result) as T) : result;
    }
    const row = await this.#db
      .prepare(
        `INSERT INTO simulated_payments (idempotency_key, operation, attempts) VALUES (?1, ?2, 1)
         ON CONFLICT (idempotency_key) DO UPDATE SET attempts = attempts + 1
         RETURNING attempts, result`,
      )
      .bind(key, operation)
      .first<SimRow>();
    if (row?.result) return JSON.parse(row.result) as T;
    const result = await compute(row?.attempts ?? 1);
    // COALESCE: a concurrent duplicate computed the same deterministic result; keep the first.
    await this.#db
      .prepare("UPDATE simulated_payments SET result = COALESCE(result, ?2) WHERE idempotency_key = ?1")
      .bind(key, JSON.stringify(result))
      .run();
    return result;
  }
}

/** 96 bits of SHA-256, hex: short, stable provider references derived from idempotency keys. */
async function shortHash(value: string): Promise<string> {
  return (await sha256Hex(value)).slice(0, 24);
}
