import type { Alert } from "../../contracts/analytics";
import type { CollectorHealthReport } from "../../contracts/market";

/**
 * Business alerts (the seeds' analytics service): rules evaluated from the rollups and the
 * collector host's health report, recorded in D1 `alerts` as `raised` / `resolved` events. A rule
 * writes only when its state changes, and the write itself checks the subject's newest row, so
 * evaluating twice (two consumers, a console poll and a cron) records one event, not two.
 */

/** Below this share of successful payments over the last hour (with enough attempts) is an alert. */
export const PAYMENT_SUCCESS_MIN = 0.8;
/** Above this share of failed orders (anything but a customer's cancel) over the last hour is an alert. */
export const ORDER_FAILURE_MAX = 0.25;
/** Rates over fewer outcomes than this say nothing yet (two declines in a quiet hour are not an outage). */
export const ALERT_MIN_SAMPLE = 10;
/** A collector silent or down for longer than this is an alert. */
export const COLLECTOR_DOWN_AFTER_MS = 30_000;

/** What `GET /v1/market/collectors` holds: the report and when the edge received it. */
export type CollectorReportView = CollectorHealthReport & { receivedAt: string };

interface RuleOutcome {
  kind: Alert["kind"];
  subject: string;
  firing: boolean;
  value: number | null;
  threshold: number;
  message: string;
}

const RECORD = `INSERT INTO alerts (kind, subject, state, value, threshold, message, at)
  SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
  WHERE coalesce((SELECT state FROM alerts WHERE kind = ?1 AND subject = ?2 ORDER BY seq DESC LIMIT 1), 'resolved') != ?3`;

/** Records the rules whose state changed (one conditional insert each, in one D1 batch). */
async function record(env: Pick<Env, "DB">, outcomes: RuleOutcome[], at: Date): Promise<void> {
  if (outcomes.length === 0) return;
  await env.DB.batch(
    outcomes.map((o) =>
      env.DB.prepare(RECORD).bind(
        o.kind,
        o.subject,
        o.firing ? "raised" : "resolved",
        o.value,
        o.threshold,
        o.message,
        at.toISOString(),
      ),
    ),
  );
}

/** The previous and the current UTC hour buckets: the window the order rules look at. */
function lastHourBuckets(now: Date): [string, string] {
  return [new Date(now.getTime() - 3_600_000).toISOString().slice(0, 13), now.toISOString().slice(0, 13)];
}

/** Evaluates the payment-success and order-failure rules over the current and previous hour. */
export async function evaluateOrderAlerts(env: Pick<Env, "DB">, now: Date): Promise<void> {
  const [from, to] = lastHourBuckets(now);
  const totals = await env.DB.prepare(
    `SELECT coalesce(sum(orders_paid), 0) AS paid, coalesce(sum(payment_failures), 0) AS paymentFailures,
            coalesce(sum(orders_failed), 0) AS failed
       FROM analytics_hourly WHERE hour >= ?1 AND hour <= ?2`,
  )
    .bind(from, to)
    .first<{ paid: number; paymentFailures: number; failed: number }>();
  const { paid = 0, paymentFailures = 0, failed = 0 } = totals ?? {};
  const outcomes: RuleOutcome[] = [];
  const attempts = paid + paymentFailures;
  if (attempts >= ALERT_MIN_SAMPLE) {
    const rate = paid / attempts;
    outcomes.push({
      kind: "payment_success_rate",
      subject: "payments",
      firing: rate < PAYMENT_SUCCESS_MIN,
      value: rate,
      threshold: PAYMENT_SUCCESS_MIN,
      message: `${(rate * 100).toFixed(1)} % of ${attempts} payments succeeded in the last hour (alert below ${PAYMENT_SUCCESS_MIN * 100} %)`,
    });
  }
  const finished = paid + failed;
  if (finished >= ALERT_MIN_SAMPLE) {
    const rate = failed / finished;
    outcomes.push({
      kind: "order_failure_rate",
      subject: "orders",
      firing: rate > ORDER_FAILURE_MAX,
      value: rate,
      threshold: ORDER_FAILURE_MAX,
      message: `${(rate * 100).toFixed(1)} % of ${finished} orders failed in the last hour (alert above ${ORDER_FAILURE_MAX * 100} %)`,
    });
  }
  await record(env, outcomes, now);
}

/**
 * Evaluates the collector rule per exchange of the last report: an exchange is down when the
 * host has not reported for 30 s (the whole host is gone), or when it is not `live` and its last
 * exchange message is more than 30 s old. Exchanges that recover resolve their alert.
 */
export async function evaluateCollectorAlerts(
  env: Pick<Env, "DB">,
  report: CollectorReportView | null,
  now: Date,
): Promise<void> {
  if (!report) return;
  const silentFor = now.getTime() - Date.parse(report.receivedAt);
  const outcomes: RuleOutcome[] = Object.entries(report.exchanges).map(([exchange, status]) => {
    const quietFor = status.lastMessageAt ? now.getTime() - Date.parse(status.lastMessageAt) : Number.POSITIVE_INFINITY;
    const hostSilent = silentFor > COLLECTOR_DOWN_AFTER_MS;
    const down = hostSilent || (status.status !== "live" && quietFor > COLLECTOR_DOWN_AFTER_MS);
    const seconds = Math.round((hostSilent ? silentFor : quietFor) / 1000);
    return {
      kind: "collector_down",
      subject: exchange,
      firing: down,
      value: Number.isFinite(seconds) ? seconds : null,
      threshold: COLLECTOR_DOWN_AFTER_MS / 1000,
      message: hostSilent
        ? `${exchange}: the collector host has not reported for ${seconds} s`
        : down
          ? `${exchange}: ${status.status}, no exchange message for ${Number.isFinite(seconds) ? `${seconds} s` : "ever"}`
          : `${exchange}: ${status.status}`,
    };
  });
  await record(env, outcomes, now);
}

interface AlertRow {
  seq: number;
  kind: Alert["kind"];
  subject: string;
  state: Alert["state"];
  value: number | null;
  threshold: number | null;
  message: string;
  at: string;
}

const toAlert = (r: AlertRow): Alert => ({
  seq: r.seq,
  kind: r.kind,
  subject: r.subject,
  state: r.state,
  value: r.value,
  threshold: r.threshold,
  message: r.message,
  at: r.at,
});

/** The rules firing now (each subject's newest event is `raised`) and the latest events, newest first. */
export async function listAlerts(env: Pick<Env, "DB">, limit: number): Promise<{ active: Alert[]; recent: Alert[] }> {
  const [active, recent] = await env.DB.batch<AlertRow>([
    env.DB.prepare(
      `SELECT a.* FROM alerts a
        WHERE a.seq = (SELECT max(seq) FROM alerts b WHERE b.kind = a.kind AND b.subject = a.subject)
          AND a.state = 'raised'
        ORDER BY a.seq DESC`,
    ),
    env.DB.prepare("SELECT * FROM alerts ORDER BY seq DESC LIMIT ?").bind(limit),
  ]);
  return { active: (active?.results ?? []).map(toAlert), recent: (recent?.results ?? []).map(toAlert) };
}
