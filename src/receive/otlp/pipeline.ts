/**
 * The OTLP pipeline behind both transports: decode → transform → store.
 * An export resolves once what it accepted is durable.
 */
import type { BeylaConfig } from "../../config/schema.ts";
import type { Counters } from "../../model/counters.ts";
import { emptyBatch, type RecordSink } from "../../model/records.ts";
import { decodeMetrics, decodeTraces } from "./decode.ts";
import type {
  ExportHandler,
  ExportOutcome,
  OtlpFormat,
  OtlpSignal,
} from "./export_handler.ts";
import { MetricTransformer } from "./metric_transform.ts";
import { transformSpans } from "./span_transform.ts";

export interface OtlpPipelineOptions {
  beyla: BeylaConfig;
  counters: Counters;
  sink: RecordSink;
}

export class OtlpPipeline implements ExportHandler {
  readonly #metrics: MetricTransformer;

  constructor(private readonly options: OtlpPipelineOptions) {
    this.#metrics = new MetricTransformer({
      beyla: options.beyla,
      counters: options.counters,
      startTimeMs: Date.now(),
    });
  }

  async export(
    signal: OtlpSignal,
    body: Uint8Array,
    format: OtlpFormat,
  ): Promise<ExportOutcome> {
    if (signal === "traces") {
      const result = transformSpans(decodeTraces(body, format), {
        beyla: this.options.beyla,
        counters: this.options.counters,
      });
      if (result.spans.length > 0) {
        await this.options.sink.write({ ...emptyBatch(), spans: result.spans });
      }
      return {
        rejected: result.rejected,
        errorMessage: result.rejectReasons.join("; "),
      };
    }
    const result = this.#metrics.transform(decodeMetrics(body, format));
    try {
      await this.options.sink.write(result.batch);
    } catch (error) {
      result.undo();
      throw error;
    }
    return {
      rejected: result.rejectedDataPoints,
      errorMessage: result.errorMessage,
    };
  }
}
