import { z } from "./zod.ts";

/**
 * Fencing a collector host (POST /v1/market/collectors/{host}/fence): the edge stops following
 * it for a while, so every symbol it leads fails over to its hot standby, as if the host had been
 * killed, but from the operator console instead of a shell on the host.
 */
export const FENCE_DEFAULT_SECONDS = 60;
export const FENCE_MAX_SECONDS = 3600;

/** Collector identities, as the service token's subject (workers/routes/auth.ts). */
export const CollectorHostId = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, "a collector id: 1–64 of A–Z a–z 0–9 . _ -");

export const CollectorFenceRequest = z
  .object({
    /** How long the host's publish sockets and reports are refused; it rejoins as a standby afterwards. */
    seconds: z.number().int().min(5).max(FENCE_MAX_SECONDS).default(FENCE_DEFAULT_SECONDS),
    reason: z.string().trim().min(1).max(200).optional(),
    /** Fence even if a symbol it leads has no standby (that symbol's books stop updating until it returns). */
    force: z.boolean().default(false),
  })
  .strict();
export type CollectorFenceRequest = z.infer<typeof CollectorFenceRequest>;

export const CollectorFence = z.object({
  host: z.string(),
  fencedUntil: z.iso.datetime(),
  /** Symbols it led: each fails over to its standby within about a second. */
  primaryFor: z.array(z.string()),
  standbyFor: z.array(z.string()),
  /** Symbols it led with no standby (fenced only with `force`): no publisher until the fence ends. */
  withoutStandby: z.array(z.string()),
});
export type CollectorFence = z.infer<typeof CollectorFence>;
