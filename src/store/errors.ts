/**
 * Errors the store hands across its boundary. Each says whether retrying
 * the same write later can succeed (`retryable`), so receivers can answer
 * "try again" (HTTP 503 / gRPC UNAVAILABLE) or "give up" (HTTP 400 / 500).
 *
 * @module
 */

/** Base class: every store error says whether a retry can help. */
export class StoreError extends Error {
  override readonly name: string = "StoreError";

  constructor(
    message: string,
    readonly retryable: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/**
 * The write queue holds too many uncommitted rows; nothing of the batch was
 * stored. Retryable, unless the batch alone is larger than the queue
 * (then `retryable` is false).
 */
export class StoreFullError extends StoreError {
  override readonly name = "StoreFullError";
}

/** The store is closing or closed. Retryable (against the next agent). */
export class StoreClosedError extends StoreError {
  override readonly name = "StoreClosedError";

  constructor(path: string) {
    super(`Cannot write to ${path}: the store is closed`, true);
  }
}

/** The transaction holding the batch failed and was rolled back. */
export class StoreWriteError extends StoreError {
  override readonly name = "StoreWriteError";
}

/** Another process has the database file open for writing. */
export class StoreLockedError extends Error {
  override readonly name = "StoreLockedError";
}
