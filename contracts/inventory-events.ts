import { z } from "./zod.ts";

/**
 * Events the per-SKU InventoryObject emits through its SQLite outbox onto the `saga-events` queue.
 * Runtime-neutral: the read-model consumer parses them with these schemas.
 *
 * `inventory.changed` is a state-transfer event: it carries the SKU's full level after the change,
 * so a consumer only ever needs the newest one. `revision` increases by 1 with every stock change
 * of that SKU; a consumer that sees events out of order keeps the highest revision and ignores
 * older ones. An unsent `inventory.changed` may be superseded (dropped) by a newer one in the
 * outbox, so revisions can skip; `inventory.low_stock` events are never dropped.
 */

export const INVENTORY_EVENT_VERSION = 1 as const;

/** SKU codes: letters, digits, `.`, `_`, `-`; 1–64 characters, starting with a letter or digit. */
export const SkuCode = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, "a SKU is 1-64 letters, digits, '.', '_' or '-'");

/** A SKU's stock counters. `available = onHand - reserved - sold`. */
export const InventoryLevel = z.object({
  sku: SkuCode,
  onHand: z.number().int().nonnegative(),
  reserved: z.number().int().nonnegative(),
  available: z.number().int().nonnegative(),
  sold: z.number().int().nonnegative(),
});
export type InventoryLevel = z.infer<typeof InventoryLevel>;

const InventoryEventBase = z.object({
  id: z.uuid(),
  version: z.literal(INVENTORY_EVENT_VERSION),
  sku: SkuCode,
  onHand: z.number().int().nonnegative(),
  reserved: z.number().int().nonnegative(),
  available: z.number().int().nonnegative(),
  sold: z.number().int().nonnegative(),
  /** Per-SKU stock revision (see above). */
  revision: z.number().int().nonnegative(),
  occurredAt: z.iso.datetime(),
  /** The order id (or admin request id) whose action caused the change, when there is one. */
  correlationId: z.string().max(255).optional(),
  /** W3C traceparent of the request that caused the change, when it carried one. */
  traceparent: z.string().max(55).optional(),
});

/** The SKU's stock changed (reserve, release, commit, expiry, admin adjustment, shipment or a cancelled sale). */
export const InventoryChanged = InventoryEventBase.extend({
  type: z.literal("inventory.changed"),
  /** What caused it. */
  cause: z.enum(["reserved", "released", "committed", "expired", "adjusted", "shipped", "returned"]),
});
export type InventoryChanged = z.infer<typeof InventoryChanged>;

/** `available` dropped below the SKU's low-stock threshold (emitted once per crossing). */
export const InventoryLowStock = InventoryEventBase.extend({
  type: z.literal("inventory.low_stock"),
  threshold: z.number().int().nonnegative(),
});
export type InventoryLowStock = z.infer<typeof InventoryLowStock>;

export const InventoryEvent = z.discriminatedUnion("type", [InventoryChanged, InventoryLowStock]);
export type InventoryEvent = z.infer<typeof InventoryEvent>;

/** Result of `InventoryObject.reserve` (idempotent by orderId). */
export type ReserveResult =
  | { ok: true; sku: string; quantity: number; expiresAt: string }
  | { ok: false; reason: "out_of_stock"; available: number };

/** Input of `InventoryObject.reserve`; `ttlMs` defaults to 15 minutes. */
export const ReserveInput = z.object({
  orderId: z.string().min(1).max(255),
  quantity: z.number().int().min(1).max(100_000),
  ttlMs: z
    .number()
    .int()
    .min(1_000)
    .max(7 * 24 * 3600 * 1000)
    .optional(),
  /** Optional tracing context copied into the events this reservation emits. */
  traceparent: z.string().max(55).optional(),
});
export type ReserveInput = z.infer<typeof ReserveInput>;
