import { extendZodWithOpenApi } from "@asteasolutions/zod-to-openapi";
import { z } from "zod";

// Every contract schema is built from this `z`, so each one carries `.openapi()` whatever the
// import order: the edge documents the very schemas the objects return and the tests parse with.
// zod-to-openapi is documentation metadata only; nothing here depends on HTTP or Hono.
extendZodWithOpenApi(z);

export { z };
