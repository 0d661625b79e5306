import { createRoute, z } from "@hono/zod-openapi";
import { ApiKey, ApiKeyList, CreateApiKey, CreatedApiKey } from "../../contracts/api-keys";
import { createApiKey, listApiKeys, revokeApiKey } from "../../domain/identity/api-keys";
import { auditRequest } from "../audit";
import { authOf, requireAuth } from "../middleware/auth";
import { userWriteRateLimit } from "../middleware/rate-limit";
import { createRouter, problemResponses, bearerSecurity as security } from "../openapi";

const ApiKeySchema = ApiKey.openapi("ApiKey");
const CreatedApiKeySchema = CreatedApiKey.openapi("CreatedApiKey");
const ApiKeyListSchema = ApiKeyList.extend({ items: ApiKeySchema.array() }).openapi("ApiKeyList");
const CreateApiKeySchema = CreateApiKey.openapi("CreateApiKey");
const KeyId = z.string().regex(/^key_[0-9a-f]{24}$/, "not an API key id");

/**
 * `/v1/users/me/api-keys`: the caller's keys for third-party integrations. Managed with the
 * caller's own token only: a key can never create, list or revoke keys (apiKeyAuth refuses it
 * here), so a leaked key cannot mint itself a wider one.
 */
export const apiKeysRouter = createRouter();
apiKeysRouter.use("/*", requireAuth(), userWriteRateLimit());

apiKeysRouter
  .openapi(
    createRoute({
      method: "post",
      path: "/",
      operationId: "createApiKey",
      tags: ["Identity"],
      summary: "Create an API key with scopes; the key is in this answer only",
      description:
        "Send it as `X-API-Key`. It authenticates as you, limited to its scopes (`catalog:read`, " +
        "`orders:read`, `market:read`) and rate limited on its own budget; it is stored only as a hash.",
      security,
      request: { body: { required: true, content: { "application/json": { schema: CreateApiKeySchema } } } },
      responses: {
        201: {
          description: "Created; store the key now",
          content: { "application/json": { schema: CreatedApiKeySchema } },
        },
        ...problemResponses(
          400,
          401,
          [403, "API keys cannot manage keys"],
          [409, "Too many active keys"],
          413,
          415,
          429,
          503,
        ),
      },
    }),
    async (c) => {
      const { userId } = authOf(c);
      const created = await createApiKey(c.env, userId, c.req.valid("json"));
      await auditRequest(c, {
        action: "api_key.created",
        target: `api-key:${created.id}`,
        details: { keyId: created.id, scopes: created.scopes },
      });
      return c.json(created, 201, { "Cache-Control": "no-store" });
    },
  )
  .openapi(
    createRoute({
      method: "get",
      path: "/",
      operationId: "listApiKeys",
      tags: ["Identity"],
      summary: "The caller's API keys (never the secrets), with lastUsedAt",
      security,
      responses: {
        200: { description: "Keys, newest first", content: { "application/json": { schema: ApiKeyListSchema } } },
        ...problemResponses(401, [403, "API keys cannot manage keys"], 429, 503),
      },
    }),
    async (c) => c.json({ items: await listApiKeys(c.env, authOf(c).userId) }, 200),
  )
  .openapi(
    createRoute({
      method: "delete",
      path: "/{id}",
      operationId: "revokeApiKey",
      tags: ["Identity"],
      summary: "Revoke an API key: refused everywhere within a second",
      security,
      request: { params: z.object({ id: KeyId }) },
      responses: {
        204: { description: "Revoked (also when it already was)" },
        ...problemResponses(
          [400, "Not a key id"],
          401,
          [403, "API keys cannot manage keys"],
          [404, "No such key (or not yours)"],
          429,
          503,
        ),
      },
    }),
    async (c) => {
      const { id } = c.req.valid("param");
      const revoked = await revokeApiKey(c.env, authOf(c).userId, id);
      await auditRequest(c, { action: "api_key.revoked", target: `api-key:${id}`, details: { keyId: revoked.id } });
      return c.body(null, 204);
    },
  );
