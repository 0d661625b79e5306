/** Routes each queue batch to its consumer by queue name (filled in by the order-saga work). */
export async function dispatchBatch(batch: MessageBatch<unknown>, _env: Env, _ctx: ExecutionContext): Promise<void> {
  // Until consumers exist, leave messages on the queue rather than dropping them.
  batch.retryAll({ delaySeconds: 30 });
}
