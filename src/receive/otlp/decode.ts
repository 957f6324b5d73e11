/**
 * OTLP export requests (protobuf or JSON) → one decoded shape, described in
 * decode_types.ts. Both transforms read only that shape.
 *
 * Protobuf is read by a wire reader of our own (decode_protobuf.ts), checked
 * in tests against the protobufjs root of @opentelemetry/otlp-transformer
 * (decode_protobufjs.ts), which is 3-5 times slower. JSON follows the OTLP
 * JSON encoding (decode_json.ts).
 *
 * @example
 * const traces = decodeTraces(body, "protobuf");
 * const { spans, rejected } = transformSpans(traces, { beyla, counters });
 */
import { decodeMetricsJson, decodeTracesJson } from "./decode_json.ts";
import {
  decodeMetricsProtobuf,
  decodeTracesProtobuf,
} from "./decode_protobuf.ts";
import type {
  DecodedMetrics,
  DecodedTraces,
  OtlpFormat,
} from "./decode_types.ts";

export * from "./decode_types.ts";

/**
 * Decodes an ExportTraceServiceRequest.
 * @throws {OtlpDecodeError} when the body is not a valid request.
 */
export function decodeTraces(
  body: Uint8Array,
  format: OtlpFormat,
): DecodedTraces {
  return format === "json"
    ? decodeTracesJson(body)
    : decodeTracesProtobuf(body);
}

/**
 * Decodes an ExportMetricsServiceRequest.
 * @throws {OtlpDecodeError} when the body is not a valid request.
 */
export function decodeMetrics(
  body: Uint8Array,
  format: OtlpFormat,
): DecodedMetrics {
  return format === "json"
    ? decodeMetricsJson(body)
    : decodeMetricsProtobuf(body);
}
