/**
 * Why a business rule refused: domain code throws this, never an HTTP error. The edge's one
 * `app.onError` maps each code to a status (see `workers/problem.ts`), so the same rule answers
 * the same way whether a route, a Durable Object call or a script reached it.
 */
export type DomainErrorCode =
  /** The input breaks a rule (400). */
  | "invalid"
  /** No or bad credentials (401). */
  | "unauthenticated"
  /** Authenticated, but not allowed (403). */
  | "forbidden"
  /** No such thing, or not the caller's (404). */
  | "not-found"
  /** The current state forbids it (409). */
  | "conflict"
  /** The caller's view of the resource is stale (412). */
  | "precondition-failed"
  /** Well-formed, but a business rule refuses it as it stands (422; e.g. a promotion code that does not apply). */
  | "unprocessable"
  /** A store or dependency cannot answer right now; retry (503). */
  | "unavailable";

/** One input field that broke a rule: where in the input (`items.0.sku`) and what is wrong. */
export interface FieldError {
  path: string;
  message: string;
}

export interface DomainErrorOptions {
  /** A narrower name for the problem than the code (`sku-taken`, `edit-conflict`); becomes the problem type. */
  kind?: string;
  fields?: FieldError[];
  /** For `unavailable`: when a retry may succeed. */
  retryAfterSeconds?: number;
}

/** A refused business operation; `code` says which kind of refusal, `message` says why. */
export class DomainError extends Error {
  override readonly name = "DomainError";
  readonly kind?: string;
  readonly fields?: FieldError[];
  readonly retryAfterSeconds?: number;

  constructor(
    readonly code: DomainErrorCode,
    message: string,
    options: DomainErrorOptions = {},
  ) {
    super(message);
    this.kind = options.kind;
    this.fields = options.fields;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/** Shorthand for the commonest refusal: invalid input, with the fields at fault. */
export function invalidInput(message: string, fields?: FieldError[]): DomainError {
  return new DomainError("invalid", message, { fields });
}

/** The thing does not exist, or is not the caller's to see. */
export function notFound(message: string): DomainError {
  return new DomainError("not-found", message);
}

/** The current state forbids the operation; `kind` names the clash (`sku-taken`, `edit-conflict`). */
export function conflict(message: string, kind?: string): DomainError {
  return new DomainError("conflict", message, { kind });
}
