import { createRoute, z } from "@hono/zod-openapi";
import { loadKeyRing } from "../../domain/identity/signing-keys";
import { createRouter, problemResponses, publicAccess } from "../openapi";

const Jwks = z
  .object({ keys: z.array(z.object({ kid: z.string(), kty: z.string(), alg: z.string() }).passthrough()) })
  .openapi("Jwks");

/** `/.well-known/jwks.json`: every public key that still verifies (current and not yet retired). */
export const wellKnown = createRouter().openapi(
  createRoute({
    method: "get",
    path: "/.well-known/jwks.json",
    operationId: "getJwks",
    security: publicAccess,
    tags: ["Health"],
    summary: "Public signing keys (JWKS) with kid",
    responses: {
      200: { description: "JWK set", content: { "application/json": { schema: Jwks } } },
      ...problemResponses(429),
    },
  }),
  async (c) => {
    const ring = await loadKeyRing(c.env);
    // Short cache: after a rotation verifiers pick up the new key within five minutes.
    c.header("Cache-Control", "public, max-age=300");
    return c.json(
      { keys: [...ring.byKid.values()].map((k) => ({ ...k.publicJwk, kid: k.kid, kty: "EC", alg: "ES256" })) },
      200,
    );
  },
);
