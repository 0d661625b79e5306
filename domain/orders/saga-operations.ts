import type { SagaItem, SagaList, SagaRetryAccepted, SagaState } from "../../contracts/analytics";
import { conflict, DomainError, notFound } from "../errors";

/**
 * Saga operations for the console (GET /v1/admin/sagas, POST /v1/admin/sagas/:orderId/retry):
 * which orders' sagas are in flight, stuck or dead-lettered, and sending a step's message again.
 * Read from the orders read model and `dead_letters`, never by asking every Order object.
 */

/** Statuses after which the saga has nothing left to do by itself (shipping is an admin action). */
const SETTLED = ["confirmed", "shipped", "delivered", "cancelled", "refunded"] as const;
const SETTLED_SQL = SETTLED.map((s) => `'${s}'`).join(", ");
/** Statuses that wait for a person, not for a consumer: stuck from the moment they are entered. */
const WAITING_FOR_A_PERSON: ReadonlySet<string> = new Set(["needs_attention", "review"]);
/**
 * A step that has not moved its order for this long is stuck. The slowest healthy step is the
 * payment: 4 deliveries with a 5 s provider timeout and 1 + 2 + 4 s backoff, under 30 s.
 */
export const STEP_DEADLINE_MS = 60_000;
const LIST_LIMIT = 200;

/** The consumer step an order in `status` waits on, and the event type that drives it. */
function stepOf(status: string): { step: string; event: string | null } {
  switch (status) {
    case "pending":
      return { step: "inventory.reserve", event: "order.placed" };
    case "reserved":
      return { step: "payment.charge", event: "order.reserved" };
    case "paid":
      return { step: "inventory.commit", event: "order.paid" };
    case "needs_attention":
      return { step: "shipping.create", event: "order.needs_attention" };
    case "review":
      return { step: "fraud.review", event: null };
    default:
      return { step: status, event: null };
  }
}

/** The step a dead-lettered message of `type` belonged to. */
function stepOfEvent(type: string | null): string {
  switch (type) {
    case "order.placed":
      return "inventory.reserve";
    case "order.reserved":
      return "payment.charge";
    case "order.paid":
      return "inventory.commit";
    case "order.refund_requested":
      return "payment.refund";
    case "order.cancelled":
      return "compensation";
    case "order.shipment_requested":
      return "shipping.create";
    case "order.confirmed":
    case "order.refunded":
      return "notification";
    default:
      return type ?? "unparseable message";
  }
}

interface OrderRow {
  id: string;
  user_id: string;
  status: string;
  total_amount: number;
  currency: string;
  updated_at: string;
  retries: number;
}

interface DeadLetterRow {
  id: string;
  order_id: string;
  type: string | null;
  event_id: string | null;
  problem: string;
  attempts: number;
  received_at: string;
  body: string;
  user_id: string | null;
  status: string | null;
  total_amount: number | null;
  currency: string | null;
  updated_at: string | null;
}

const idle = (at: string, now: number) => Math.max(0, now - Date.parse(at));

/** The sagas in `state`, oldest first (dead-lettered: newest dead letter first), plus orders by status. */
export async function listSagas(env: Pick<Env, "DB">, state: SagaState, now = Date.now()): Promise<SagaList> {
  const stuckBefore = new Date(now - STEP_DEADLINE_MS).toISOString();
  const waiting = [...WAITING_FOR_A_PERSON].map((s) => `'${s}'`).join(", ");
  const [byStatus, orders, letters] = await env.DB.batch<Record<string, unknown>>([
    env.DB.prepare("SELECT status, count(*) AS n FROM orders_view GROUP BY status"),
    env.DB.prepare(
      `SELECT o.id, o.user_id, o.status, o.total_amount, o.currency, o.updated_at,
              (SELECT count(*) FROM saga_retries r WHERE r.order_id = o.id) AS retries
         FROM orders_view o
        WHERE o.status NOT IN (${SETTLED_SQL})
          AND (?1 = 'in-flight' OR o.updated_at < ?2 OR o.status IN (${waiting}))
        ORDER BY o.updated_at LIMIT ?3`,
    ).bind(state === "dead-lettered" ? "none" : state, stuckBefore, state === "dead-lettered" ? 0 : LIST_LIMIT),
    env.DB.prepare(
      `SELECT d.id, d.order_id, d.type, d.event_id, d.problem, d.attempts, d.received_at, d.body,
              o.user_id, o.status, o.total_amount, o.currency, o.updated_at
         FROM dead_letters d
         LEFT JOIN saga_retries r ON r.id = d.id
         LEFT JOIN orders_view o ON o.id = d.order_id
        WHERE r.id IS NULL AND d.order_id IS NOT NULL
        ORDER BY d.received_at DESC LIMIT ?1`,
    ).bind(state === "dead-lettered" ? LIST_LIMIT : 0),
  ]);
  const counts: Record<string, number> = {};
  for (const row of byStatus?.results ?? []) counts[String(row.status)] = Number(row.n);
  const items: SagaItem[] = [];
  for (const row of (orders?.results ?? []) as unknown as OrderRow[]) {
    const { step, event } = stepOf(row.status);
    const idleMs = idle(row.updated_at, now);
    items.push({
      orderId: row.id,
      userId: row.user_id,
      status: row.status,
      state: idleMs > STEP_DEADLINE_MS || WAITING_FOR_A_PERSON.has(row.status) ? "stuck" : "in-flight",
      lastStep: step,
      lastEvent: event,
      error:
        idleMs > STEP_DEADLINE_MS
          ? `no progress for ${Math.round(idleMs / 1000)} s (a step should finish within ${STEP_DEADLINE_MS / 1000} s)`
          : null,
      attempts: Number(row.retries),
      total: { amount: row.total_amount, currency: row.currency },
      updatedAt: row.updated_at,
      idleMs,
    });
  }
  const seen = new Set<string>();
  for (const row of (letters?.results ?? []) as unknown as DeadLetterRow[]) {
    // One entry per order: its newest dead letter (a retry redelivers all of them).
    if (seen.has(row.order_id)) continue;
    seen.add(row.order_id);
    const snapshot = parseSnapshot(row.body);
    const updatedAt = row.updated_at ?? row.received_at;
    items.push({
      orderId: row.order_id,
      userId: row.user_id ?? snapshot?.userId ?? "",
      status: row.status ?? snapshot?.status ?? "unknown",
      state: "dead-lettered",
      lastStep: stepOfEvent(row.type),
      lastEvent: row.type,
      error: row.problem,
      attempts: row.attempts,
      total: {
        amount: row.total_amount ?? snapshot?.total?.amount ?? 0,
        currency: row.currency ?? snapshot?.total?.currency ?? "USD",
      },
      updatedAt: new Date(updatedAt).toISOString(),
      idleMs: idle(updatedAt, now),
    });
  }
  return { items, byStatus: counts };
}

/** The order snapshot a dead-lettered event carried, for orders the read model never saw. */
function parseSnapshot(body: string): {
  userId?: string;
  status?: string;
  total?: { amount: number; currency: string };
} | null {
  try {
    const parsed = JSON.parse(body) as { order?: unknown };
    return parsed && typeof parsed.order === "object" ? (parsed.order as ReturnType<typeof parseSnapshot>) : null;
  } catch {
    return null;
  }
}

/** What the retry needs besides D1: the queue to send on and the order's object. */
export interface SagaRetryPorts {
  send(body: unknown): Promise<void>;
  /** Clears the order's needs-attention flag; with `resendLatest`, sends its newest event again (null if none). */
  operatorRetry(resendLatest: boolean): Promise<{ eventId: string; type: string } | null>;
}

/**
 * Redelivers what an order's saga is waiting for. Dead letters not yet retried are each sent
 * again exactly once: the retry claims them in `saga_retries` first (a concurrent or repeated
 * retry finds them claimed and sends nothing), and gives the claim back if the queue refuses.
 * Without dead letters, an unfinished saga gets its newest event again (its step re-runs; every
 * consumer is idempotent), or a needs-attention order its carrier booking; that too is claimed
 * first, once per step deadline, so a double click or a second operator sends nothing more, while
 * a saga still stuck a deadline later can be retried again. A finished saga with nothing
 * dead-lettered has nothing to retry (409).
 */
export async function retrySaga(
  env: Pick<Env, "DB">,
  ports: SagaRetryPorts,
  input: { orderId: string; actor: string },
): Promise<SagaRetryAccepted> {
  const now = Date.now();
  const at = new Date(now).toISOString();
  const letters = await env.DB.prepare(
    `SELECT d.id, d.event_id, d.type, d.body FROM dead_letters d LEFT JOIN saga_retries r ON r.id = d.id
      WHERE d.order_id = ?1 AND r.id IS NULL ORDER BY d.received_at`,
  )
    .bind(input.orderId)
    .all<{ id: string; event_id: string | null; type: string | null; body: string }>();
  const redelivered: SagaRetryAccepted["redelivered"] = [];
  for (const letter of letters.results) {
    const claimed = await env.DB.prepare(
      `INSERT INTO saga_retries (id, order_id, event_id, event_type, actor, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
       ON CONFLICT (id) DO NOTHING RETURNING id`,
    )
      .bind(letter.id, input.orderId, letter.event_id, letter.type, input.actor, at)
      .first();
    if (!claimed) continue;
    try {
      await ports.send(JSON.parse(letter.body) as unknown);
    } catch (error) {
      await giveBack(env, letter.id);
      throw queueRefused(error);
    }
    redelivered.push({ eventId: letter.event_id, type: letter.type });
  }
  if (letters.results.length > 0) {
    // Someone else's retry may have claimed them first: then this one is the idempotent repeat.
    await ports.operatorRetry(false);
    return { orderId: input.orderId, redelivered };
  }
  const view = await env.DB.prepare("SELECT status FROM orders_view WHERE id = ?")
    .bind(input.orderId)
    .first<{ status: string }>();
  // Checked before touching the order's object, so a guessed id creates no object storage.
  if (!view) throw notFound("No such order");
  // One statement claims the redelivery unless this order was retried within a step deadline, so
  // of two concurrent retries exactly one sends.
  const claimId = `${input.orderId}:${crypto.randomUUID()}`;
  const claimed = await env.DB.prepare(
    `INSERT INTO saga_retries (id, order_id, actor, at) SELECT ?1, ?2, ?3, ?4
      WHERE NOT EXISTS (SELECT 1 FROM saga_retries WHERE order_id = ?2 AND at > ?5) RETURNING id`,
  )
    .bind(claimId, input.orderId, input.actor, at, new Date(now - STEP_DEADLINE_MS).toISOString())
    .first();
  if (!claimed) return { orderId: input.orderId, redelivered: [] };
  let latest: { eventId: string; type: string } | null;
  try {
    latest = await ports.operatorRetry(true);
  } catch (error) {
    await giveBack(env, claimId);
    throw queueRefused(error);
  }
  if (!latest) {
    await giveBack(env, claimId);
    const retried = await env.DB.prepare("SELECT 1 FROM saga_retries WHERE order_id = ? LIMIT 1")
      .bind(input.orderId)
      .first();
    // A repeat of a retry that already redelivered everything: accepted, nothing more to send.
    if (retried) return { orderId: input.orderId, redelivered: [] };
    throw conflict(
      `The saga of this order has finished (${view.status}) and nothing of it is dead-lettered`,
      "saga-settled",
    );
  }
  await env.DB.prepare("UPDATE saga_retries SET event_id = ?2, event_type = ?3 WHERE id = ?1")
    .bind(claimId, latest.eventId, latest.type)
    .run();
  return { orderId: input.orderId, redelivered: [latest] };
}

/** Drops a claim whose message was not sent, so the next retry sends it. */
async function giveBack(env: Pick<Env, "DB">, claimId: string): Promise<void> {
  await env.DB.prepare("DELETE FROM saga_retries WHERE id = ?").bind(claimId).run();
}

const queueRefused = (error: unknown) =>
  new DomainError("unavailable", `The saga queue refused the message: ${String(error)}`, { retryAfterSeconds: 5 });
