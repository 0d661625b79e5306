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
      if (scenario === "declined") return { status: "declined", code: "card_declined" };
      if (scenario === "insufficient_funds") return { status: "declined", code: "insufficient_funds" };
      return { status: "authorized", authorizationId: `sim_auth_${await shortHash(input.idempotencyKey)}` };
    });
  }

  async capture(input: {
    authorizationId: string;
    amount: number;
    idempotencyKey: string;
  }): Promise<{ captureId: string }> {
    return this.#once(input.idempotencyKey, "capture", async () => ({
      captureId: `sim_cap_${await shortHash(input.idempotencyKey)}`,
    }));
  }

  async void(input: { authorizationId: string; idempotencyKey: string }): Promise<{ voided: boolean }> {
    return this.#once(input.idempotencyKey, "void", async () => ({ voided: true }));
  }

  async refund(input: {
    authorizationId: string;
    amount: number;
    idempotencyKey: string;
  }): Promise<{ refundId: string }> {
    return this.#once(input.idempotencyKey, "refund", async () => ({
      refundId: `sim_ref_${await shortHash(input.idempotencyKey)}`,
    }));
  }

  /** Runs `compute` at most once successfully per key; counts every attempt. */
  async #once<T>(key: string, operation: string, compute: (attempt: number) => Promise<T>): Promise<T> {
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

async function shortHash(value: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(value));
  return [...new Uint8Array(digest).slice(0, 12)].map((b) => b.toString(16).padStart(2, "0")).join("");
}
