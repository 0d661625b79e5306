import type { Alert } from "../../contracts/analytics";
import type { CollectorsView } from "../../contracts/market";
import type { AlertThresholds } from "./alert-config";

/**
 * Business alerts (the seeds' analytics service): rules evaluated from the rollups and the
 * collector hosts' health reports, recorded in D1 `alerts` as `raised` / `resolved` events. A rule
 * writes only when its state changes, and the write itself checks the subject's newest row, so
 * evaluating twice (the consumer after a batch and the alert monitor's tick) records one event,
 * not two. Thresholds come from wrangler vars (alert-config.ts).
 */

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

const percent = (share: number) => `${Math.round(share * 1000) / 10} %`;

/** A rate rule with no outcomes in its window: not firing. */
const quiet = (kind: Alert["kind"], subject: string, threshold: number, what: string): RuleOutcome => ({
  kind,
  subject,
  firing: false,
  value: null,
  threshold,
  message: `${what} in the last hour`,
});

/**
 * Evaluates the payment-success and order-failure rules over the current and previous hour.
 * Returns whether the rules still need watching with no new events: while the window holds
 * outcomes, the hour rolling over can move a rate across its threshold (or empty the window).
 */
export async function evaluateOrderAlerts(
  env: Pick<Env, "DB">,
  now: Date,
  thresholds: AlertThresholds,
): Promise<{ watching: boolean }> {
  const [from, to] = lastHourBuckets(now);
  const totals = await env.DB.prepare(
    `SELECT coalesce(sum(orders_paid), 0) AS paid, coalesce(sum(payment_failures), 0) AS paymentFailures,
            coalesce(sum(orders_failed), 0) AS failed
       FROM analytics_hourly WHERE hour >= ?1 AND hour <= ?2`,
  )
    .bind(from, to)
    .first<{ paid: number; paymentFailures: number; failed: number }>();
  const { paid = 0, paymentFailures = 0, failed = 0 } = totals ?? {};
  const { paymentSuccessMin, orderFailureMax, minSample } = thresholds;
  const outcomes: RuleOutcome[] = [];
  const attempts = paid + paymentFailures;
  const finished = paid + failed;
  // An empty window resolves what fired (nothing failed in the last hour); a window with a few
  // outcomes, fewer than the sample, changes nothing either way.
  if (attempts === 0) outcomes.push(quiet("payment_success_rate", "payments", paymentSuccessMin, "no payments"));
  if (finished === 0) outcomes.push(quiet("order_failure_rate", "orders", orderFailureMax, "no orders finished"));
  if (attempts >= minSample) {
    const rate = paid / attempts;
    outcomes.push({
      kind: "payment_success_rate",
      subject: "payments",
      firing: rate < paymentSuccessMin,
      value: rate,
      threshold: paymentSuccessMin,
      message: `${(rate * 100).toFixed(1)} % of ${attempts} payments succeeded in the last hour (alert below ${percent(paymentSuccessMin)})`,
    });
  }
  if (finished >= minSample) {
    const rate = failed / finished;
    outcomes.push({
      kind: "order_failure_rate",
      subject: "orders",
      firing: rate > orderFailureMax,
      value: rate,
      threshold: orderFailureMax,
      message: `${(rate * 100).toFixed(1)} % of ${finished} orders failed in the last hour (alert above ${percent(orderFailureMax)})`,
    });
  }
  await record(env, outcomes, now);
  return { watching: attempts + finished > 0 };
}

/** The subject of a collector host's own alert (an exchange's is the exchange's name). */
export const hostSubject = (host: string) => `host:${host}`;

/**
 * Evaluates the collector rules over every host's last report:
 * - a **host** that has not reported for longer than the threshold is down (`host:<id>`);
 * - an **exchange** is down when no host covers it: each host reporting it is silent, or has it
 *   not `live` with no exchange message for longer than the threshold. With redundant collectors
 *   a silent standby raises its host's alert but not its exchanges' while the primary serves them.
 * Subjects no longer in any report (a host dropped after a day of silence) are resolved. Returns
 * whether the rules still need watching: while any subject is not firing, silence can raise it.
 */
export async function evaluateCollectorAlerts(
  env: Pick<Env, "DB">,
  collectors: CollectorsView | null,
  now: Date,
  thresholds: AlertThresholds,
): Promise<{ watching: boolean }> {
  const limit = thresholds.collectorDownAfterMs;
  const ago = (iso: string | null) => (iso ? now.getTime() - Date.parse(iso) : Number.POSITIVE_INFINITY);
  const seconds = (ms: number) => Math.round(ms / 1000);
  const hosts = collectors?.hosts ?? [];
  const outcomes: RuleOutcome[] = hosts.map((host) => {
    const silentFor = ago(host.receivedAt);
    return {
      kind: "collector_down",
      subject: hostSubject(host.host),
      firing: silentFor > limit,
      value: seconds(silentFor),
      threshold: limit / 1000,
      message:
        silentFor > limit
          ? `collector host ${host.host} has not reported for ${seconds(silentFor)} s`
          : `collector host ${host.host} reporting`,
    };
  });
  const exchanges = [...new Set(hosts.flatMap((host) => Object.keys(host.exchanges)))].sort();
  for (const exchange of exchanges) {
    const covering = hosts.flatMap((host) => {
      const status = host.exchanges[exchange as keyof typeof host.exchanges];
      return status ? [{ silentFor: ago(host.receivedAt), quietFor: ago(status.lastMessageAt), status }] : [];
    });
    const reporting = covering.filter((c) => c.silentFor <= limit);
    const serving = reporting.some((c) => c.status.status === "live" || c.quietFor <= limit);
    let value: number | null;
    let message: string;
    if (reporting.length === 0) {
      const silentFor = Math.min(...covering.map((c) => c.silentFor));
      value = seconds(silentFor);
      message =
        covering.length === 1
          ? `${exchange}: the collector host has not reported for ${value} s`
          : `${exchange}: none of its ${covering.length} collector hosts has reported for ${value} s`;
    } else {
      const freshest = reporting.reduce((a, b) => (b.quietFor < a.quietFor ? b : a));
      value = Number.isFinite(freshest.quietFor) ? seconds(freshest.quietFor) : null;
      message = serving
        ? `${exchange}: ${freshest.status.status}`
        : `${exchange}: ${freshest.status.status}, no exchange message for ${value === null ? "ever" : `${value} s`}`;
    }
    outcomes.push({
      kind: "collector_down",
      subject: exchange,
      firing: !serving,
      value,
      threshold: limit / 1000,
      message,
    });
  }
  const subjects = new Set(outcomes.map((o) => o.subject));
  const raised = await env.DB.prepare(
    `SELECT a.subject FROM alerts a
      WHERE a.kind = 'collector_down' AND a.state = 'raised'
        AND a.seq = (SELECT max(seq) FROM alerts b WHERE b.kind = a.kind AND b.subject = a.subject)`,
  ).all<{ subject: string }>();
  for (const { subject } of raised.results ?? []) {
    if (subjects.has(subject)) continue;
    outcomes.push({
      kind: "collector_down",
      subject,
      firing: false,
      value: null,
      threshold: limit / 1000,
      message: `${subject}: no longer reported by any collector host`,
    });
  }
  await record(env, outcomes, now);
  return { watching: outcomes.some((o) => !o.firing && subjects.has(o.subject)) };
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
