import { dispatchBatch } from "../queues/dispatch";
import { app } from "./app";

export { AccountGuardObject } from "../durable-objects/account-guard";
export { AlertMonitorObject } from "../durable-objects/alert-monitor";
export { AuditLogObject } from "../durable-objects/audit-log";
export { CartObject } from "../durable-objects/cart";
export { CircuitBreakerObject } from "../durable-objects/circuit-breaker";
export { FraudVelocityObject } from "../durable-objects/fraud-velocity";
export { InventoryObject } from "../durable-objects/inventory";
export { LoginGuardObject } from "../durable-objects/login-guard";
export { MarketFeedObject } from "../durable-objects/market-feed";
export { MarketRegistryObject } from "../durable-objects/market-registry";
export { MarketRelayObject } from "../durable-objects/market-relay";
export { OrderObject } from "../durable-objects/order";
export { OrderShardObject } from "../durable-objects/order-shard";
export { PromotionObject } from "../durable-objects/promotion";

export default {
  fetch: app.fetch,
  queue: dispatchBatch,
} satisfies ExportedHandler<Env>;
