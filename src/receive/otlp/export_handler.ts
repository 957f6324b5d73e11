/**
 * The contract between the OTLP transports (HTTP, gRPC) and the pipeline
 * behind them: a transport hands over the raw request body, the handler
 * decodes, transforms and stores it, and says what was rejected.
 */

export type OtlpSignal = "traces" | "metrics";
export type OtlpFormat = "protobuf" | "json";

/** What an accepted export answers: the OTLP partial-success fields. */
export interface ExportOutcome {
  /** Spans or data points refused (OTLP `rejected_spans`/`rejected_data_points`). */
  rejected: number;
  /** Why, when `rejected > 0`; "" otherwise. */
  errorMessage: string;
}

export interface ExportHandler {
  /**
   * Resolves once everything accepted from `body` is durable. Throws
   * `OtlpRequestError` (or `OtlpDecodeError`) for a request that cannot
   * be used, `StoreFullError` when the store cannot take more now.
   */
  export(
    signal: OtlpSignal,
    body: Uint8Array,
    format: OtlpFormat,
  ): Promise<ExportOutcome>;
}
