import { DurableObject } from "cloudflare:workers";
import { alertThresholdsFor } from "../domain/analytics/alert-config";
import { evaluateCollectorAlerts, evaluateOrderAlerts } from "../domain/analytics/alerts";
import { marketRegistry } from "./market-registry";

/** The one monitor: alerts are global, and one object's alarm keeps the checks from overlapping. */
const MONITOR_NAME = "alerts";

/**
 * Evaluates the business alerts on a clock, so a collector that goes silent or a payment outage is
 * recorded with nobody reading `/v1/admin/alerts`. Why a Durable Object alarm and not a cron
 * trigger: crons fire only once deployed (`wrangler dev` and Miniflare never run them on their
 * own), while alarms run the same locally, in tests (`runDurableObjectAlarm`) and in the cloud,
 * persist across restarts, and can tick every few seconds (a cron's finest grain is a minute, too
 * coarse for "down for 30 s").
 *
 * The alarm ticks every ALERT_CHECK_INTERVAL_S (10 s) while there is something that time alone can
 * change — a collector subject not firing (silence would raise it) or outcomes in the order rules'
 * hour window — and stops otherwise, so an idle platform is not woken. What feeds the rules arms
 * it: each collector report (PUT /v1/market/collectors) and each rollup batch that moved a rate.
 * The object stores nothing but its alarm.
 */
export class AlertMonitorObject extends DurableObject<Env> {
  /** Makes sure a check is scheduled; writes only when none is. */
  async arm(): Promise<void> {
    if ((await this.ctx.storage.getAlarm()) !== null) return;
    await this.ctx.storage.setAlarm(Date.now() + alertThresholdsFor(this.env).checkIntervalMs);
  }

  /**
   * One check of every rule. A refused configuration or a D1 error throws, and the runtime retries
   * the alarm with backoff; the next report or rollup batch arms it again after that.
   */
  override async alarm(): Promise<void> {
    const thresholds = alertThresholdsFor(this.env);
    const now = new Date();
    const [collectors, orders] = await Promise.all([
      marketRegistry(this.env)
        .collectorHealth(now.getTime())
        .then((view) => evaluateCollectorAlerts(this.env, view, now, thresholds)),
      evaluateOrderAlerts(this.env, now, thresholds),
    ]);
    if (collectors.watching || orders.watching) {
      await this.ctx.storage.setAlarm(Date.now() + thresholds.checkIntervalMs);
    }
  }
}

/**
 * Makes sure the alert monitor will check soon (see AlertMonitorObject): one RPC that reads the
 * object's alarm and writes it only when none is set.
 */
export async function armAlertMonitor(env: Pick<Env, "ALERT_MONITOR">): Promise<void> {
  await alertMonitor(env).arm();
}

/** The monitor's stub (tests run its alarm). */
export function alertMonitor(env: Pick<Env, "ALERT_MONITOR">): DurableObjectStub<AlertMonitorObject> {
  return env.ALERT_MONITOR.getByName(MONITOR_NAME);
}
