import pino from "pino";

/** Structured JSON logs (pino) for the main thread; exchange threads create their own with the same shape. */
export function createLogger(level: string) {
  return pino({ level, base: { service: "collector-host" } });
}
