import { z } from "./zod.ts";

export const FlagName = z.string().regex(/^[a-z][a-z0-9-]{0,63}$/, "lower-case letters, digits and dashes");

/** PUT /v1/admin/flags/{name}. Without `rolloutPercent` a flag is on (or off) for everyone. */
export const FlagUpdate = z
  .object({ enabled: z.boolean(), rolloutPercent: z.number().int().min(0).max(100).optional() })
  .strict();
export type FlagUpdate = z.infer<typeof FlagUpdate>;

export const Flag = z.object({
  name: FlagName,
  enabled: z.boolean(),
  rolloutPercent: z.number().int().min(0).max(100),
  version: z.number().int().nonnegative(),
  updatedAt: z.iso.datetime().nullable(),
});
export type Flag = z.infer<typeof Flag>;

/** GET /v1/flags: every flag evaluated for the caller. */
export const EvaluatedFlags = z.object({ flags: z.record(z.string(), z.boolean()) });
export type EvaluatedFlags = z.infer<typeof EvaluatedFlags>;
