import {
  createExecutionContext,
  runDurableObjectAlarm,
  runInDurableObject,
  waitOnExecutionContext,
} from "cloudflare:test";
import { env } from "cloudflare:workers";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type Alert, AlertList } from "../contracts/analytics";
import type { OrderEvent } from "../contracts/saga-events";
import { DEFAULT_ALERT_THRESHOLDS, parseAlertThresholds } from "../domain/analytics/alert-config";
import { alertMonitor } from "../durable-objects/alert-monitor";
import { rollUpEvents } from "../queues/analytics";
import { app } from "../workers/app";
import { call, collectorToken, tokenFor } from "./helpers";
import { orderEvent, orderLine } from "./order-fixtures";

/**
 * Business alerts on a clock: the alert monitor's alarm evaluates the rules with nobody reading
 * /v1/admin/alerts. Time is a fake clock (Date only) moved to each alarm's due time and the alarm
 * run with runDurableObjectAlarm: no sleeps, and the test says when each event was recorded.
 */
const monitor = () => alertMonitor(env);
const dueAt = () => runInDurableObject(monitor(), (_instance, state) => state.storage.getAlarm());

/** The alert events recorded for `subject`, oldest first, straight from D1 (no API read). */
async function recorded(subject: string): Promise<Pick<Alert, "state" | "message" | "at">[]> {
  const { results } = await env.DB.prepare("SELECT state, message, at FROM alerts WHERE subject = ? ORDER BY seq")
    .bind(subject)
    .all<Pick<Alert, "state" | "message" | "at">>();
  return results;
}

async function report(host: string, exchanges: Record<string, { status: string; lastMessageAt: string | null }>) {
  const counters = { messagesPerSecond: 1, reconnects: 0, checksumFailures: 0, resyncs: 0 };
  const res = await call("/v1/market/collectors", {
    method: "PUT",
    token: await collectorToken(host),
    json: {
      host,
      reportedAt: new Date().toISOString(),
      exchanges: Object.fromEntries(
        Object.entries(exchanges).map(([name, status]) => [name, { ...counters, ...status }]),
      ),
    },
  });
  expect(res.status, await res.clone().text()).toBe(200);
}

/** Moves the fake clock to the monitor's next check and runs it; returns that time. */
async function nextCheck(): Promise<number> {
  const due = await dueAt();
  expect(due, "the monitor has a check scheduled").not.toBeNull();
  vi.setSystemTime(Math.max(due!, Date.now()));
  expect(await runDurableObjectAlarm(monitor())).toBe(true);
  return due!;
}

/** Runs the monitor's scheduled check now, whenever it is due (for the rules, not the timing). */
async function checkNow(): Promise<void> {
  expect(await runDurableObjectAlarm(monitor())).toBe(true);
}

afterEach(() => {
  vi.useRealTimers();
});

describe("alert monitor (Durable Object alarm)", () => {
  it("records a collector host silent for more than 30 s within 40 s, with nobody reading, and its recovery", async () => {
    const start = Date.now();
    vi.useFakeTimers({ toFake: ["Date"], now: start });
    const host = `silent-${crypto.randomUUID().slice(0, 8)}`;
    await report(host, { binanceus: { status: "live", lastMessageAt: new Date().toISOString() } });
    // The report armed the monitor (ingest), for one check interval from now.
    expect(await dueAt()).toBeLessThanOrEqual(start + DEFAULT_ALERT_THRESHOLDS.checkIntervalMs);

    // The host never reports again. Each check re-arms itself until the alert is recorded.
    let raisedAt: number | null = null;
    for (let check = 0; check < 8 && raisedAt === null; check++) {
      const at = await nextCheck();
      if ((await recorded(`host:${host}`)).length > 0) raisedAt = at;
    }
    expect(raisedAt, "alert recorded").not.toBeNull();
    expect(raisedAt! - start).toBeGreaterThan(30_000);
    expect(raisedAt! - start).toBeLessThanOrEqual(40_000);
    expect(await recorded(`host:${host}`)).toEqual([
      {
        state: "raised",
        message: expect.stringMatching(/has not reported for (3\d|40) s$/),
        at: new Date(raisedAt!).toISOString(),
      },
    ]);
    // Its exchange has no other host: down too.
    expect((await recorded("binanceus")).map((a) => [a.state, a.message])).toEqual([
      ["raised", expect.stringMatching(/^binanceus: the collector host has not reported for (3\d|40) s$/)],
    ]);
    // Everything that can fire has: nothing left for time alone to change, so the monitor stops
    // (an idle platform is not woken every 10 s).
    expect(await dueAt()).toBeNull();

    // The host is back: its report arms the monitor, whose next check resolves both.
    await report(host, { binanceus: { status: "live", lastMessageAt: new Date().toISOString() } });
    await nextCheck();
    expect((await recorded(`host:${host}`)).map((a) => a.state)).toEqual(["raised", "resolved"]);
    expect((await recorded("binanceus")).map((a) => a.state)).toEqual(["raised", "resolved"]);
    // The API shows the same log (reading it evaluates nothing).
    const list = AlertList.parse(
      await (await call("/v1/admin/alerts", { token: await tokenFor("u-alerts-admin", ["admin"]) })).json(),
    );
    expect(list.active.filter((a) => a.subject === `host:${host}` || a.subject === "binanceus")).toEqual([]);
  });

  it("with redundant hosts, a silent standby is an alert for its host, not for the exchange the other serves; an exchange down on a live host is one", async () => {
    const start = Date.now();
    vi.useFakeTimers({ toFake: ["Date"], now: start });
    const standby = `ha-standby-${crypto.randomUUID().slice(0, 6)}`;
    const primary = `ha-primary-${crypto.randomUUID().slice(0, 6)}`;
    await report(standby, { kraken: { status: "live", lastMessageAt: new Date().toISOString() } });
    vi.setSystemTime(start + 35_000);
    await report(primary, {
      kraken: { status: "live", lastMessageAt: new Date().toISOString() },
      coinbase: { status: "down", lastMessageAt: new Date(Date.now() - 45_000).toISOString() },
    });
    await checkNow();
    expect((await recorded(`host:${standby}`)).map((a) => a.state)).toEqual(["raised"]);
    expect(await recorded(`host:${primary}`)).toEqual([]);
    expect(await recorded("kraken")).toEqual([]);
    expect((await recorded("coinbase")).map((a) => a.message)).toEqual([
      expect.stringMatching(/^coinbase: down, no exchange message for 4\d s$/),
    ]);
  });

  it("raises a payment alert from a rollup batch, then resolves it as the hour rolls on with no new orders", async () => {
    const start = Date.now();
    vi.useFakeTimers({ toFake: ["Date"], now: start });
    const declined = (): OrderEvent => {
      const event = orderEvent("order.cancelled", {
        id: `ord_${crypto.randomUUID()}`,
        userId: "u-alerts",
        status: "cancelled",
        items: [orderLine("p-al", "AL-1")],
      });
      return { ...event, order: { ...event.order, reason: "payment_declined" } } as OrderEvent;
    };
    await rollUpEvents(Array.from({ length: 12 }, declined), env);
    expect((await recorded("payments")).map((a) => a.state)).toEqual(["raised"]);
    expect((await recorded("orders")).map((a) => a.state)).toEqual(["raised"]);
    // The batch armed the monitor: the hour window holds outcomes. While it does, the checks
    // continue (and change nothing); two hours on, the window is empty and both resolve.
    await nextCheck();
    expect((await recorded("payments")).map((a) => a.state)).toEqual(["raised"]);
    vi.setSystemTime(start + 2 * 3_600_000 + 60_000);
    await nextCheck();
    expect((await recorded("payments")).map((a) => [a.state, a.message])).toEqual([
      ["raised", expect.stringMatching(/^0\.0 % of 12 payments succeeded in the last hour \(alert below 80 %\)$/)],
      ["resolved", "no payments in the last hour"],
    ]);
    expect((await recorded("orders")).map((a) => a.state)).toEqual(["raised", "resolved"]);
    expect(await dueAt()).toBeNull();
  });

  it("thresholds come from ALERT_* vars with defaults; a bad one fails /ready naming it", async () => {
    expect(parseAlertThresholds({})).toEqual(DEFAULT_ALERT_THRESHOLDS);
    expect(
      parseAlertThresholds({
        ALERT_PAYMENT_SUCCESS_MIN: "0.95",
        ALERT_ORDER_FAILURE_MAX: "0.1",
        ALERT_MIN_SAMPLE: "50",
        ALERT_COLLECTOR_DOWN_AFTER_S: "60",
        ALERT_CHECK_INTERVAL_S: "15",
      }),
    ).toEqual({
      paymentSuccessMin: 0.95,
      orderFailureMax: 0.1,
      minSample: 50,
      collectorDownAfterMs: 60_000,
      checkIntervalMs: 15_000,
    });
    for (const [vars, named] of [
      [{ ALERT_PAYMENT_SUCCESS_MIN: "80%" }, "ALERT_PAYMENT_SUCCESS_MIN"],
      [{ ALERT_ORDER_FAILURE_MAX: "1.5" }, "ALERT_ORDER_FAILURE_MAX"],
      [{ ALERT_MIN_SAMPLE: "0" }, "ALERT_MIN_SAMPLE"],
      [{ ALERT_CHECK_INTERVAL_S: "20" }, "ALERT_CHECK_INTERVAL_S"], // more than half of the 30 s threshold
    ] as const) {
      expect(() => parseAlertThresholds(vars)).toThrow(named);
      const ctx = createExecutionContext();
      vi.spyOn(console, "error").mockImplementation(() => {});
      const res = await app.fetch(new Request("http://edgepulse.test/ready"), { ...env, ...vars }, ctx);
      await waitOnExecutionContext(ctx);
      vi.restoreAllMocks();
      expect(res.status).toBe(503);
      const body = await res.json<{ checks: Record<string, string>; reasons: Record<string, string> }>();
      expect(body.checks).toMatchObject({ d1: "ok", payments: "ok", alerts: "failed" });
      expect(body.reasons.alerts).toContain(named);
    }
  });
});
