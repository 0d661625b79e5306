import type { MiddlewareHandler } from "hono";
import { randomHex } from "../../domain/encoding";
import type { AppEnv } from "../env";

/** W3C trace context for this request: the caller's trace id (or a new one) and our own span id. */
export interface Trace {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  sampled: boolean;
  /** `traceparent` to send downstream (queues, fetches, Durable Object calls). */
  traceparent: string;
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const ALL_ZERO = /^0+$/;

/** Parses an incoming `traceparent`; an invalid header starts a new trace, as the spec says. */
export function continueTrace(header: string | undefined | null): Trace {
  const match = header ? TRACEPARENT.exec(header.trim().toLowerCase()) : null;
  const spanId = randomHex(8);
  if (match && !ALL_ZERO.test(match[1]!) && !ALL_ZERO.test(match[2]!)) {
    const flags = match[3]!;
    return {
      traceId: match[1]!,
      parentSpanId: match[2]!,
      spanId,
      sampled: (Number.parseInt(flags, 16) & 1) === 1,
      traceparent: `00-${match[1]}-${spanId}-${flags}`,
    };
  }
  const traceId = randomHex(16);
  return { traceId, spanId, sampled: true, traceparent: `00-${traceId}-${spanId}-01` };
}

/** Sets `c.var.trace` and answers with our span's `traceparent` so clients can correlate. */
export const traceContext = (): MiddlewareHandler<AppEnv> => async (c, next) => {
  const trace = continueTrace(c.req.header("traceparent"));
  c.set("trace", trace);
  await next();
  c.res.headers.set("traceparent", trace.traceparent);
};
