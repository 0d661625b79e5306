import { z } from "./zod.ts";

/** What a third-party API key may be used for; a key never reaches anything else (API.md Additions). */
export const API_KEY_SCOPES = ["catalog:read", "orders:read", "market:read"] as const;
export const ApiKeyScope = z.enum(API_KEY_SCOPES);
export type ApiKeyScope = z.infer<typeof ApiKeyScope>;

export const CreateApiKey = z
  .object({
    name: z
      .string()
      .trim()
      .min(1)
      .max(100)
      .refine((s) => s.isWellFormed() && !/[\p{Cc}\u202A-\u202E\u2066-\u2069]/u.test(s), "Must be printable text"),
    scopes: z
      .array(ApiKeyScope)
      .min(1)
      .max(API_KEY_SCOPES.length)
      .refine((s) => new Set(s).size === s.length, "Scopes must not repeat"),
  })
  .strict();
export type CreateApiKey = z.infer<typeof CreateApiKey>;

/** A key as listed: never the secret, which exists only in the 201 of its creation. */
export const ApiKey = z.object({
  id: z.string(),
  name: z.string(),
  scopes: z.array(ApiKeyScope),
  createdAt: z.iso.datetime(),
  /** Minute precision: recorded at most once a minute per key. */
  lastUsedAt: z.iso.datetime().nullable(),
  revokedAt: z.iso.datetime().nullable(),
});
export type ApiKey = z.infer<typeof ApiKey>;

/** The 201 of POST /v1/users/me/api-keys: the only time `key` is ever shown. */
export const CreatedApiKey = ApiKey.extend({ key: z.string() });
export type CreatedApiKey = z.infer<typeof CreatedApiKey>;

export const ApiKeyList = z.object({ items: z.array(ApiKey) });
export type ApiKeyList = z.infer<typeof ApiKeyList>;
