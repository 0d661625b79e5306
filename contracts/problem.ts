import { z } from "./zod.ts";

/** One entry of a validation failure: where in the input (`items.0.sku`), and what is wrong there. */
export const ProblemFieldError = z
  .object({
    path: z.string().openapi({ example: "items.0.quantity" }),
    message: z.string().openapi({ example: "Too big: expected number to be <=99" }),
  })
  .openapi("ProblemFieldError");
export type ProblemFieldError = z.infer<typeof ProblemFieldError>;

/** RFC 9457 problem details: the body of every error response, served as `application/problem+json`. */
export const Problem = z
  .object({
    type: z.string().openapi({
      description: "Names the kind of problem; the last segment is a stable slug clients can branch on",
      example: "https://edgepulse.dev/problems/not-found",
    }),
    title: z.string().openapi({ description: "The HTTP status's reason phrase", example: "Not Found" }),
    status: z.number().int().openapi({ example: 404 }),
    detail: z.string().optional().openapi({ example: "No such product" }),
    instance: z.string().optional().openapi({ description: "The request path", example: "/v1/products/p_123" }),
    errors: z.array(ProblemFieldError).optional().openapi({ description: "Validation failures, one per field" }),
  })
  .openapi("Problem");
export type Problem = z.infer<typeof Problem>;
