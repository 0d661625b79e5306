import { createRoute, z } from "@hono/zod-openapi";
import { CollectorFence, CollectorFenceRequest, CollectorHostId } from "../../contracts/collector-fence";
import { fenceCollector } from "../../domain/market/collector-fence";
import { marketRegistry } from "../../durable-objects/market-registry";
import { auditRequest } from "../audit";
import { requireAuth, requireRole } from "../middleware/auth";
import { userWriteRateLimit } from "../middleware/rate-limit";
import { bearerSecurity, createRouter, problemResponses } from "../openapi";

/** `/v1/market/collectors/{host}/fence` (mounted beside the market routes): the console's "kill" for a collector host. */
export const collectorFence = createRouter();

collectorFence.openapi(
  createRoute({
    method: "post",
    path: "/collectors/{host}/fence",
    operationId: "fenceCollectorHost",
    tags: ["Market data"],
    summary: "Fence a collector host: its symbols fail over to their standbys (admin only)",
    description:
      "The edge stops accepting the host's collector identity for `seconds` (default 60, at most 3600): each of its " +
      "publish sockets is closed (4401) at its next frame, within about a second, and every symbol it led is taken " +
      "over at once by its hot standby, which is asked for snapshots: subscribers see no seq gap (an in-band " +
      "replacement only if the two books differ). Its reconnects and health reports are refused (401) until the " +
      "fence ends; then it rejoins as a standby. 409 when a symbol it leads has no standby, unless `force: true`. " +
      "Audited as `collector.fenced`.",
    security: bearerSecurity,
    middleware: [requireAuth(), requireRole("admin"), userWriteRateLimit()] as const,
    request: {
      params: z.object({ host: CollectorHostId.openapi({ param: { name: "host", in: "path" }, example: "local-a" }) }),
      body: {
        required: false,
        content: { "application/json": { schema: CollectorFenceRequest.openapi("CollectorFenceRequest") } },
      },
    },
    responses: {
      200: {
        description: "Fenced; the symbols it led are failing over",
        content: { "application/json": { schema: CollectorFence.openapi("CollectorFence") } },
      },
      ...problemResponses(
        400,
        401,
        [403, "Not an admin"],
        [404, "No collector host with this id has reported"],
        [409, "A symbol it leads has no standby (send force: true)"],
        413,
        415,
        429,
        503,
      ),
    },
  }),
  async (c) => {
    const { host } = c.req.valid("param");
    // The body is optional: no body means the defaults.
    const request = CollectorFenceRequest.parse(c.req.valid("json") ?? {});
    const view = await marketRegistry(c.env).collectorHealth();
    const fence = await fenceCollector(c.env, view, host, request);
    await auditRequest(c, {
      action: "collector.fenced",
      target: `collector:${host}`,
      details: {
        seconds: request.seconds,
        fencedUntil: fence.fencedUntil,
        primaryFor: fence.primaryFor,
        withoutStandby: fence.withoutStandby,
        ...(request.reason ? { reason: request.reason } : {}),
      },
    });
    return c.json(fence, 200);
  },
);
