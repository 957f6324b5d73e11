/**
 * Decoded OTLP spans → SpanRecords.
 *
 * Each span keeps its own name, kind, status, parent and typed attributes.
 * Invalid spans are rejected one by one (the rest of the request is kept)
 * and counted as `otlp.spans.rejected.<reason>`; sampled-out spans as
 * `otlp.spans.sampled_out`; every span seen as `otlp.spans.received`.
 */
import type { BeylaConfig } from "../../config/schema.ts";
import type { Counters } from "../../model/counters.ts";
import {
  type Attributes,
  SPAN_KINDS,
  type SpanKind,
  type SpanRecord,
} from "../../model/records.ts";
import { keepTrace } from "../../aggregate/sampling.ts";
import type { DecodedSpan, DecodedTraces } from "./decode_types.ts";

export interface SpanTransformOptions {
  beyla: BeylaConfig;
  counters: Counters;
}

export interface SpanTransformResult {
  spans: SpanRecord[];
  /** Spans rejected as invalid: OTLP partial_success.rejected_spans. */
  rejected: number;
  /** Distinct reasons of the rejections, in order of first occurrence. */
  rejectReasons: string[];
}

/** Why a span was rejected; also the last part of its counter name. */
export type SpanRejectReason =
  | "invalid_trace_id"
  | "invalid_span_id"
  | "invalid_parent_span_id"
  | "missing_time"
  | "negative_duration";

const ZERO_TRACE_ID = "0".repeat(32);
const ZERO_SPAN_ID = "0".repeat(16);
const STATUS_ERROR = 2;

function check(s: DecodedSpan): SpanRejectReason | null {
  if (s.traceId.length !== 32 || s.traceId === ZERO_TRACE_ID) {
    return "invalid_trace_id";
  }
  if (s.spanId.length !== 16 || s.spanId === ZERO_SPAN_ID) {
    return "invalid_span_id";
  }
  if (s.parentSpanId.length !== 0 && s.parentSpanId.length !== 16) {
    return "invalid_parent_span_id";
  }
  if (
    (s.startTimeUs === 0 && s.startTimeExtraNs === 0) ||
    (s.endTimeUs === 0 && s.endTimeExtraNs === 0)
  ) return "missing_time";
  if (
    s.endTimeUs < s.startTimeUs ||
    (s.endTimeUs === s.startTimeUs && s.endTimeExtraNs < s.startTimeExtraNs)
  ) return "negative_duration";
  return null;
}

function serviceName(resource: Attributes): string {
  const name = resource["service.name"];
  return typeof name === "string" && name !== "" ? name : "unknown_service";
}

function processPid(resource: Attributes): number {
  const pid = resource["process.pid"];
  if (typeof pid === "number") return Number.isSafeInteger(pid) ? pid : 0;
  if (typeof pid === "string") {
    const n = Number(pid);
    return Number.isSafeInteger(n) && n > 0 ? n : 0;
  }
  return 0;
}

/**
 * Turns decoded spans into records, applying `beyla.attributes` (a span's own
 * value wins) and `beyla.sampling.rate` (by trace id; error spans are always
 * kept). Takes ownership of `req`: attribute objects are extended in place
 * and reused by the records; `resourceAttributes` is shared by the spans of
 * one resource.
 */
export function transformSpans(
  req: DecodedTraces,
  options: SpanTransformOptions,
): SpanTransformResult {
  const { beyla, counters } = options;
  const rate = beyla.sampling.rate;
  const extra = Object.entries(beyla.attributes);
  const spans: SpanRecord[] = [];
  const rejectReasons: string[] = [];
  let rejected = 0;
  let sampledOut = 0;
  counters.add("otlp.spans.received", req.spanCount);

  for (const rs of req.resourceSpans) {
    const resource = rs.resource;
    const service = serviceName(resource);
    const pid = processPid(resource);
    for (const ss of rs.scopeSpans) {
      for (const s of ss.spans) {
        const reason = check(s);
        if (reason !== null) {
          rejected++;
          counters.add(`otlp.spans.rejected.${reason}`);
          if (!rejectReasons.includes(reason)) rejectReasons.push(reason);
          continue;
        }
        if (
          rate < 1 && s.statusCode !== STATUS_ERROR &&
          !keepTrace(s.traceId, rate)
        ) {
          sampledOut++;
          continue;
        }
        const attributes = s.attributes;
        for (let i = 0; i < extra.length; i++) {
          const [key, value] = extra[i]!;
          if (!Object.hasOwn(attributes, key)) attributes[key] = value;
        }
        const durationNs = (s.endTimeUs - s.startTimeUs) * 1000 +
          (s.endTimeExtraNs - s.startTimeExtraNs);
        spans.push({
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId === ZERO_SPAN_ID ? "" : s.parentSpanId,
          serviceName: service,
          name: s.name,
          kind: (SPAN_KINDS[s.kind] ?? "unspecified") as SpanKind,
          startTimeUs: s.startTimeUs,
          durationUs: Math.floor(durationNs / 1000),
          statusCode: s.statusCode,
          statusMessage: s.statusMessage,
          attributes,
          resourceAttributes: resource,
          processPid: pid,
          source: "otlp",
        });
      }
    }
  }
  counters.add("otlp.spans.sampled_out", sampledOut);
  return { spans, rejected, rejectReasons };
}
