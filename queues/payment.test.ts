import { createExecutionContext, createMessageBatch, getQueueResult } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import type { OrderEvent } from "../contracts/saga-events";
import { recordLedger } from "../domain/payments";
import { reservedEvent } from "../test/order-fixtures";
import { dispatchBatch } from "./dispatch";

/** Runs the queue handler on one message; also reports the backoff it asked for. */
async function deliver(body: OrderEvent, attempts: number) {
  const batch = createMessageBatch("saga-events", [{ id: `m-${attempts}`, timestamp: new Date(), attempts, body }]);
  // getQueueResult() does not report delaySeconds, so watch the retry() call itself.
  const retry = vi.spyOn(batch.messages[0]!, "retry");
  const ctx = createExecutionContext();
  await dispatchBatch(batch, env, ctx);
  const result = await getQueueResult(batch, ctx);
  return { ...result, delays: retry.mock.calls.map(([options]) => options?.delaySeconds) };
}

const ledgerKinds = async (orderId: string) =>
  (
    await env.DB.prepare("SELECT kind FROM payment_ledger WHERE order_id = ? ORDER BY created_at, kind")
      .bind(orderId)
      .all<{ kind: string }>()
  ).results.map((r) => r.kind);

describe("payment consumer retry decisions", () => {
  it("retries a transient failure with exponential backoff, then charges once when the provider recovers", async () => {
    const event = reservedEvent("ord_unit_transient", "tok_sim_transient_0119");
    expect(await deliver(event, 1)).toMatchObject({ retryMessages: [{ msgId: "m-1" }], delays: [1] });
    expect(await deliver(event, 2)).toMatchObject({ retryMessages: [{ msgId: "m-2" }], delays: [2] });
    const third = await deliver(event, 3);
    expect(third.retryMessages).toEqual([]);
    expect(third.explicitAcks).toEqual(["m-3"]);
    expect(await ledgerKinds(event.orderId)).toEqual(["failure", "failure", "authorization", "capture"]);
    // A duplicate delivery afterwards is acked and books nothing new.
    expect((await deliver(event, 1)).explicitAcks).toEqual(["m-1"]);
    expect(await ledgerKinds(event.orderId)).toHaveLength(4);
  });

  it("on the last delivery it stops retrying (no dead letter) and books the failure", async () => {
    const event = reservedEvent("ord_unit_lastchance", "tok_sim_transient_0119");
    const result = await deliver(event, 4);
    expect(result.retryMessages).toEqual([]);
    expect(result.explicitAcks).toEqual(["m-4"]);
    expect(await ledgerKinds(event.orderId)).toEqual(["failure"]);
  });

  it("a decline is acked at once, never retried, and never charged", async () => {
    const event = reservedEvent("ord_unit_declined", "tok_sim_declined_0002");
    const result = await deliver(event, 1);
    expect(result).toMatchObject({ retryMessages: [], explicitAcks: ["m-1"] });
    expect(await ledgerKinds(event.orderId)).toEqual(["failure"]);
  });
});

it("books a ledger row once per idempotency key, with its optional fields and the time it was booked", async () => {
  const orderId = `ord_ledger_${crypto.randomUUID()}`;
  const base = { orderId, provider: "simulated", amount: 1999, currency: "USD" };
  await recordLedger(env, {
    ...base,
    kind: "authorization",
    providerRef: "sim_auth_1",
    idempotencyKey: `${orderId}:a`,
  });
  // A replay with the same key (even with other values) books nothing.
  await recordLedger(env, { ...base, amount: 1, kind: "authorization", idempotencyKey: `${orderId}:a` });
  await recordLedger(env, { ...base, kind: "failure", detail: "transient", idempotencyKey: `${orderId}:f` });
  const rows = await env.DB.prepare(
    "SELECT id, kind, amount, currency, provider, provider_ref, detail, created_at FROM payment_ledger WHERE order_id = ? ORDER BY kind",
  )
    .bind(orderId)
    .all<Record<string, string | number | null>>();
  expect(rows.results.map(({ id: _id, created_at: _at, ...row }) => row)).toEqual([
    {
      kind: "authorization",
      amount: 1999,
      currency: "USD",
      provider: "simulated",
      provider_ref: "sim_auth_1",
      detail: null,
    },
    { kind: "failure", amount: 1999, currency: "USD", provider: "simulated", provider_ref: null, detail: "transient" },
  ]);
  for (const row of rows.results) {
    expect(row.id).toMatch(/^[0-9a-f-]{36}$/);
    expect(new Date(String(row.created_at)).toISOString()).toBe(row.created_at);
  }
});
