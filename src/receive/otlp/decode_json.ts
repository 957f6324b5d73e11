/**
 * OTLP/JSON → decoded shape, as the OTLP specification defines the JSON
 * encoding: lowerCamelCase field names (snake_case accepted too), trace and
 * span ids as hex, enums as integers or their names, 64-bit integers as
 * decimal strings or numbers, doubles also as "NaN", "Infinity", "-Infinity".
 *
 * A value of the wrong type is an OtlpDecodeError that names its path, e.g.
 * "resourceSpans[0].scopeSpans[1].spans[3].traceId: expected 32 hex digits".
 */
import type { Attributes, AttributeValue } from "../../model/records.ts";
import {
  type DecodedExponentialPoint,
  type DecodedHistogramPoint,
  type DecodedMetric,
  type DecodedMetrics,
  type DecodedResourceMetrics,
  type DecodedResourceSpans,
  type DecodedScope,
  type DecodedScopeMetrics,
  type DecodedScopeSpans,
  type DecodedSpan,
  type DecodedTraces,
  OtlpDecodeError,
} from "./decode_types.ts";
import {
  decimalToValue,
  nanos,
  normaliseHex,
  setAttribute,
  splitNanosDecimal,
  splitNanosNumber,
} from "./decode_values.ts";

type Json = Record<string, unknown>;

/** A wrong value somewhere; the path is filled in while unwinding. */
class ShapeError extends Error {
  readonly path: string[];
  constructor(field: string, detail: string) {
    super(detail);
    this.path = [field];
  }
}

function atIndex(e: unknown, field: string, i: number): unknown {
  if (e instanceof ShapeError) e.path.push(`${field}[${i}]`);
  return e;
}

function atField(e: unknown, field: string): unknown {
  if (e instanceof ShapeError) e.path.push(field);
  return e;
}

function describe(v: unknown): string {
  if (typeof v === "string") {
    return JSON.stringify(v.length > 40 ? v.slice(0, 40) + "…" : v);
  }
  if (Array.isArray(v)) return "an array";
  if (v === null) return "null";
  return typeof v === "object" ? "an object" : String(v);
}

/** `o[camel]`, else `o[snake]`. */
function field(o: Json, camel: string, snake: string): unknown {
  const v = o[camel];
  return v !== undefined ? v : o[snake];
}

function asObject(v: unknown, name: string): Json | null {
  if (v == null) return null;
  if (typeof v !== "object" || Array.isArray(v)) {
    throw new ShapeError(name, `expected an object, got ${describe(v)}`);
  }
  return v as Json;
}

const EMPTY: unknown[] = [];

function asArray(v: unknown, name: string): unknown[] {
  if (v == null) return EMPTY;
  if (!Array.isArray(v)) {
    throw new ShapeError(name, `expected an array, got ${describe(v)}`);
  }
  return v;
}

function asString(v: unknown, name: string): string {
  if (v == null) return "";
  if (typeof v !== "string") {
    throw new ShapeError(name, `expected a string, got ${describe(v)}`);
  }
  return v;
}

function asInteger(v: unknown, name: string): number {
  if (v == null) return 0;
  if (typeof v === "number" && Number.isInteger(v)) return v;
  if (typeof v === "string") {
    const n = decimalToValue(v);
    if (typeof n === "number") return n;
  }
  throw new ShapeError(name, `expected an integer, got ${describe(v)}`);
}

function asEnum(
  v: unknown,
  name: string,
  names: ReadonlyMap<string, number>,
): number {
  if (typeof v === "string") {
    const n = names.get(v);
    if (n !== undefined) return n;
    if (decimalToValue(v) === null) {
      throw new ShapeError(name, `unknown enum value ${describe(v)}`);
    }
  }
  return asInteger(v, name);
}

/**
 * A 64-bit count: a number or a decimal string. Anything numeric is
 * returned, even negative or NaN ("NaN"): the transforms reject the point.
 */
function asCount(v: unknown, name: string): number {
  if (v == null) return 0;
  if (typeof v === "number") return v;
  if (typeof v === "string") return v === "" ? NaN : Number(v);
  throw new ShapeError(name, `expected a number, got ${describe(v)}`);
}

function asDouble(v: unknown, name: string): number | null {
  if (v == null) return null;
  if (typeof v === "number") return v;
  if (typeof v === "string" && v !== "") {
    const n = Number(v);
    if (!Number.isNaN(n) || v === "NaN") return n;
  }
  throw new ShapeError(name, `expected a number, got ${describe(v)}`);
}

/** Sets `nanos` from a time field. */
function setTime(v: unknown, name: string): void {
  if (v == null) {
    nanos.us = 0;
    nanos.ns = 0;
    return;
  }
  if (typeof v === "string" && splitNanosDecimal(v)) return;
  if (typeof v === "number" && Number.isInteger(v) && v >= 0) {
    splitNanosNumber(v);
    return;
  }
  throw new ShapeError(
    name,
    `expected nanoseconds as a decimal string, got ${describe(v)}`,
  );
}

function hexId(v: unknown, name: string, digits: number): string {
  if (v == null) return "";
  if (typeof v === "string") {
    const hex = normaliseHex(v);
    if (hex !== null) return hex;
  }
  throw new ShapeError(
    name,
    `expected ${digits} hex digits, got ${describe(v)}`,
  );
}

/** Arrays and key-value lists inside attribute values, at most. */
const MAX_NESTING = 32;

function plainValue(v: unknown, depth: number): unknown {
  const o = asObject(v, "");
  if (o === null) return null;
  const list = field(o, "arrayValue", "array_value");
  if (list !== undefined) {
    try {
      return plainList(list, depth + 1);
    } catch (e) {
      throw atField(e, "arrayValue");
    }
  }
  const kvList = field(o, "kvlistValue", "kvlist_value");
  if (kvList !== undefined) {
    try {
      return plainKvList(kvList, depth + 1);
    } catch (e) {
      throw atField(e, "kvlistValue");
    }
  }
  return anyValue(o);
}

function tooDeep(depth: number): void {
  if (depth > MAX_NESTING) {
    throw new ShapeError("values", `nested deeper than ${MAX_NESTING}`);
  }
}

function plainList(list: unknown, depth: number): unknown[] {
  tooDeep(depth);
  const values = asArray(asObject(list, "values")?.values, "values");
  const out = new Array(values.length);
  for (let i = 0; i < values.length; i++) {
    try {
      out[i] = plainValue(values[i], depth);
    } catch (e) {
      throw atIndex(e, "values", i);
    }
  }
  return out;
}

function plainKvList(list: unknown, depth: number): Record<string, unknown> {
  tooDeep(depth);
  const values = asArray(asObject(list, "values")?.values, "values");
  const out: Record<string, unknown> = {};
  for (let i = 0; i < values.length; i++) {
    try {
      const kv = asObject(values[i], "");
      if (kv === null) continue;
      try {
        out[asString(kv.key, "key")] = plainValue(kv.value, depth);
      } catch (e) {
        throw atField(e, "value");
      }
    } catch (e) {
      throw atIndex(e, "values", i);
    }
  }
  return out;
}

function anyValue(o: Json): AttributeValue {
  let v = field(o, "stringValue", "string_value");
  if (v !== undefined) return asString(v, "stringValue");
  v = field(o, "intValue", "int_value");
  if (v !== undefined) {
    if (typeof v === "number" && Number.isInteger(v)) return v;
    const n = typeof v === "string" ? decimalToValue(v) : null;
    if (n === null) {
      throw new ShapeError(
        "intValue",
        `expected an integer, got ${describe(v)}`,
      );
    }
    return n;
  }
  v = field(o, "doubleValue", "double_value");
  if (v !== undefined) return asDouble(v, "doubleValue") ?? 0;
  v = field(o, "boolValue", "bool_value");
  if (v !== undefined) {
    if (typeof v !== "boolean") {
      throw new ShapeError(
        "boolValue",
        `expected a boolean, got ${describe(v)}`,
      );
    }
    return v;
  }
  v = field(o, "arrayValue", "array_value");
  if (v !== undefined) {
    try {
      return JSON.stringify(plainList(v, 1));
    } catch (e) {
      throw atField(e, "arrayValue");
    }
  }
  v = field(o, "kvlistValue", "kvlist_value");
  if (v !== undefined) {
    try {
      return JSON.stringify(plainKvList(v, 1));
    } catch (e) {
      throw atField(e, "kvlistValue");
    }
  }
  v = field(o, "bytesValue", "bytes_value");
  if (v !== undefined) return asString(v, "bytesValue"); // already base64
  return "";
}

function attributes(v: unknown): Attributes {
  const out: Attributes = {};
  const list = asArray(v, "attributes");
  for (let i = 0; i < list.length; i++) {
    try {
      const kv = asObject(list[i], "");
      if (kv === null) continue;
      const key = asString(kv.key, "key");
      let value: AttributeValue = "";
      const valueObject = asObject(kv.value, "value");
      if (valueObject !== null) {
        try {
          value = anyValue(valueObject);
        } catch (e) {
          throw atField(e, "value");
        }
      }
      setAttribute(out, key, value);
    } catch (e) {
      throw atIndex(e, "attributes", i);
    }
  }
  return out;
}

function resourceAttributes(v: unknown): Attributes {
  try {
    const resource = asObject(v, "resource");
    return resource === null ? {} : attributes(resource.attributes);
  } catch (e) {
    throw atField(e, "resource");
  }
}

function scope(v: unknown): DecodedScope {
  const s = asObject(v, "scope");
  if (s === null) return { name: "", version: "" };
  return {
    name: asString(s.name, "scope.name"),
    version: asString(s.version, "scope.version"),
  };
}

const SPAN_KIND_NAMES = new Map([
  ["SPAN_KIND_UNSPECIFIED", 0],
  ["SPAN_KIND_INTERNAL", 1],
  ["SPAN_KIND_SERVER", 2],
  ["SPAN_KIND_CLIENT", 3],
  ["SPAN_KIND_PRODUCER", 4],
  ["SPAN_KIND_CONSUMER", 5],
]);

const STATUS_CODE_NAMES = new Map([
  ["STATUS_CODE_UNSET", 0],
  ["STATUS_CODE_OK", 1],
  ["STATUS_CODE_ERROR", 2],
]);

const TEMPORALITY_NAMES = new Map([
  ["AGGREGATION_TEMPORALITY_UNSPECIFIED", 0],
  ["AGGREGATION_TEMPORALITY_DELTA", 1],
  ["AGGREGATION_TEMPORALITY_CUMULATIVE", 2],
]);

function span(v: unknown): DecodedSpan {
  const s = asObject(v, "") ?? {};
  setTime(
    field(s, "startTimeUnixNano", "start_time_unix_nano"),
    "startTimeUnixNano",
  );
  const startTimeUs = nanos.us;
  const startTimeExtraNs = nanos.ns;
  setTime(field(s, "endTimeUnixNano", "end_time_unix_nano"), "endTimeUnixNano");
  const endTimeUs = nanos.us;
  const endTimeExtraNs = nanos.ns;
  let statusCode = 0;
  let statusMessage = "";
  const status = asObject(s.status, "status");
  if (status !== null) {
    statusCode = asEnum(status.code, "status.code", STATUS_CODE_NAMES);
    statusMessage = asString(status.message, "status.message");
  }
  return {
    traceId: hexId(field(s, "traceId", "trace_id"), "traceId", 32),
    spanId: hexId(field(s, "spanId", "span_id"), "spanId", 16),
    parentSpanId: hexId(
      field(s, "parentSpanId", "parent_span_id"),
      "parentSpanId",
      16,
    ),
    name: asString(s.name, "name"),
    kind: s.kind == null ? 0 : asEnum(s.kind, "kind", SPAN_KIND_NAMES),
    startTimeUs,
    startTimeExtraNs,
    endTimeUs,
    endTimeExtraNs,
    attributes: attributes(s.attributes),
    statusCode,
    statusMessage,
  };
}

function scopeSpans(v: unknown): DecodedScopeSpans {
  const o = asObject(v, "") ?? {};
  const list = asArray(o.spans, "spans");
  const spans = new Array<DecodedSpan>(list.length);
  for (let i = 0; i < list.length; i++) {
    try {
      spans[i] = span(list[i]);
    } catch (e) {
      throw atIndex(e, "spans", i);
    }
  }
  return { scope: scope(o.scope), spans };
}

function resourceSpans(v: unknown): DecodedResourceSpans {
  const o = asObject(v, "") ?? {};
  const list = asArray(field(o, "scopeSpans", "scope_spans"), "scopeSpans");
  const out: DecodedScopeSpans[] = [];
  for (let i = 0; i < list.length; i++) {
    try {
      out.push(scopeSpans(list[i]));
    } catch (e) {
      throw atIndex(e, "scopeSpans", i);
    }
  }
  return { resource: resourceAttributes(o.resource), scopeSpans: out };
}

function pointTimes(p: Json) {
  setTime(
    field(p, "startTimeUnixNano", "start_time_unix_nano"),
    "startTimeUnixNano",
  );
  const startTimeUs = nanos.us;
  const startTimeExtraNs = nanos.ns;
  setTime(field(p, "timeUnixNano", "time_unix_nano"), "timeUnixNano");
  return {
    startTimeUs,
    startTimeExtraNs,
    timeUs: nanos.us,
    timeExtraNs: nanos.ns,
  };
}

function countList(v: unknown, name: string): number[] {
  const list = asArray(v, name);
  const out = new Array<number>(list.length);
  for (let i = 0; i < list.length; i++) {
    try {
      out[i] = asCount(list[i], name);
    } catch (e) {
      if (e instanceof ShapeError) e.path[0] = `${name}[${i}]`;
      throw e;
    }
  }
  return out;
}

function doubleList(v: unknown, name: string): number[] {
  const list = asArray(v, name);
  const out = new Array<number>(list.length);
  for (let i = 0; i < list.length; i++) {
    const d = list[i];
    if (typeof d === "number") {
      out[i] = d;
      continue;
    }
    try {
      out[i] = asDouble(d, name) ?? NaN;
    } catch (e) {
      if (e instanceof ShapeError) e.path[0] = `${name}[${i}]`;
      throw e;
    }
  }
  return out;
}

function histogramPoint(v: unknown): DecodedHistogramPoint {
  const p = asObject(v, "") ?? {};
  const times = pointTimes(p);
  return {
    attributes: attributes(p.attributes),
    startTimeUs: times.startTimeUs,
    startTimeExtraNs: times.startTimeExtraNs,
    timeUs: times.timeUs,
    timeExtraNs: times.timeExtraNs,
    count: asCount(p.count, "count"),
    sum: asDouble(p.sum, "sum"),
    min: asDouble(p.min, "min"),
    max: asDouble(p.max, "max"),
    explicitBounds: doubleList(
      field(p, "explicitBounds", "explicit_bounds"),
      "explicitBounds",
    ),
    bucketCounts: countList(
      field(p, "bucketCounts", "bucket_counts"),
      "bucketCounts",
    ),
    flags: asInteger(p.flags, "flags"),
  };
}

function buckets(v: unknown, name: string) {
  try {
    const b = asObject(v, name);
    if (b === null) return { offset: 0, counts: [] };
    return {
      offset: asInteger(b.offset, "offset"),
      counts: countList(
        field(b, "bucketCounts", "bucket_counts"),
        "bucketCounts",
      ),
    };
  } catch (e) {
    throw atField(e, name);
  }
}

function exponentialPoint(v: unknown): DecodedExponentialPoint {
  const p = asObject(v, "") ?? {};
  const times = pointTimes(p);
  const positive = buckets(p.positive, "positive");
  const negative = buckets(p.negative, "negative");
  return {
    attributes: attributes(p.attributes),
    startTimeUs: times.startTimeUs,
    startTimeExtraNs: times.startTimeExtraNs,
    timeUs: times.timeUs,
    timeExtraNs: times.timeExtraNs,
    count: asCount(p.count, "count"),
    sum: asDouble(p.sum, "sum"),
    min: asDouble(p.min, "min"),
    max: asDouble(p.max, "max"),
    scale: asInteger(p.scale, "scale"),
    zeroCount: asCount(field(p, "zeroCount", "zero_count"), "zeroCount"),
    zeroThreshold:
      asDouble(field(p, "zeroThreshold", "zero_threshold"), "zeroThreshold") ??
        0,
    positiveOffset: positive.offset,
    positiveCounts: positive.counts,
    negativeOffset: negative.offset,
    negativeCounts: negative.counts,
    flags: asInteger(p.flags, "flags"),
  };
}

function points<T>(
  data: Json,
  decode: (v: unknown) => T,
): T[] {
  const list = asArray(field(data, "dataPoints", "data_points"), "dataPoints");
  const out = new Array<T>(list.length);
  for (let i = 0; i < list.length; i++) {
    try {
      out[i] = decode(list[i]);
    } catch (e) {
      throw atIndex(e, "dataPoints", i);
    }
  }
  return out;
}

function temporality(data: Json): number {
  return asEnum(
    field(data, "aggregationTemporality", "aggregation_temporality") ?? 0,
    "aggregationTemporality",
    TEMPORALITY_NAMES,
  );
}

function metric(v: unknown): DecodedMetric {
  const m = asObject(v, "") ?? {};
  const name = asString(m.name, "name");
  const unit = asString(m.unit, "unit");
  let data = asObject(m.histogram, "histogram");
  if (data !== null) {
    try {
      return {
        type: "histogram",
        name,
        unit,
        temporality: temporality(data),
        points: points(data, histogramPoint),
      };
    } catch (e) {
      throw atField(e, "histogram");
    }
  }
  data = asObject(
    field(m, "exponentialHistogram", "exponential_histogram"),
    "exponentialHistogram",
  );
  if (data !== null) {
    try {
      return {
        type: "exponentialHistogram",
        name,
        unit,
        temporality: temporality(data),
        points: points(data, exponentialPoint),
      };
    } catch (e) {
      throw atField(e, "exponentialHistogram");
    }
  }
  for (const type of ["sum", "gauge", "summary"] as const) {
    data = asObject(m[type], type);
    if (data !== null) {
      const list = field(data, "dataPoints", "data_points");
      const pointCount = asArray(list, `${type}.dataPoints`).length;
      return { type, name, unit, pointCount };
    }
  }
  return { type: "none", name, unit, pointCount: 0 };
}

function scopeMetrics(v: unknown): DecodedScopeMetrics {
  const o = asObject(v, "") ?? {};
  const list = asArray(o.metrics, "metrics");
  const metrics = new Array<DecodedMetric>(list.length);
  for (let i = 0; i < list.length; i++) {
    try {
      metrics[i] = metric(list[i]);
    } catch (e) {
      throw atIndex(e, "metrics", i);
    }
  }
  return { scope: scope(o.scope), metrics };
}

function resourceMetrics(v: unknown): DecodedResourceMetrics {
  const o = asObject(v, "") ?? {};
  const list = asArray(
    field(o, "scopeMetrics", "scope_metrics"),
    "scopeMetrics",
  );
  const out: DecodedScopeMetrics[] = [];
  for (let i = 0; i < list.length; i++) {
    try {
      out.push(scopeMetrics(list[i]));
    } catch (e) {
      throw atIndex(e, "scopeMetrics", i);
    }
  }
  return { resource: resourceAttributes(o.resource), scopeMetrics: out };
}

const utf8 = new TextDecoder();

/** JSON.parse with errors as OtlpDecodeError("invalid JSON at position N: …"). */
function parseJson(body: Uint8Array): Json {
  let value: unknown;
  const text = utf8.decode(body);
  try {
    value = JSON.parse(text);
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    const at = / in JSON at position (\d+)(?: \(line \d+ column \d+\))?/.exec(
      message,
    );
    const position = at !== null ? Number(at[1]) : syntaxErrorPosition(text);
    const detail = at !== null ? message.replace(at[0], "") : message;
    throw new OtlpDecodeError(
      position < 0
        ? `invalid JSON: ${detail}`
        : `invalid JSON at position ${position}: ${detail}`,
      { cause: e },
    );
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new OtlpDecodeError(
      `invalid OTLP/JSON: expected an object at the top, got ${
        describe(value)
      }`,
    );
  }
  return value as Json;
}

/**
 * Where JSON text first goes wrong (V8 does not always say), or -1. Only
 * run on text JSON.parse rejected.
 */
export function syntaxErrorPosition(text: string): number {
  let i = 0;
  const n = text.length;
  const space = () => {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c !== 32 && c !== 9 && c !== 10 && c !== 13) break;
      i++;
    }
  };
  const literal = (word: string) => {
    if (text.startsWith(word, i)) {
      i += word.length;
      return true;
    }
    return false;
  };
  const string = (): boolean => {
    i++; // opening quote
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 34) {
        i++;
        return true;
      }
      if (c < 32) return false;
      if (c === 92) {
        const e = text[i + 1] ?? "";
        if (e === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 2, i + 6))) return false;
          i += 6;
        } else if ('"\\/bfnrt'.includes(e) && e !== "") {
          i += 2;
        } else {
          i++;
          return false;
        }
      } else {
        i++;
      }
    }
    return false;
  };
  const number = (): boolean => {
    const m = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/.exec(
      text.slice(i, i + 400),
    );
    if (m === null) return false;
    i += m[0].length;
    return true;
  };
  const value = (depth: number): boolean => {
    if (depth > 10_000) return false;
    space();
    const c = text[i];
    if (c === "{") {
      i++;
      space();
      if (text[i] === "}") {
        i++;
        return true;
      }
      for (;;) {
        space();
        if (text[i] !== '"' || !string()) return false;
        space();
        if (text[i] !== ":") return false;
        i++;
        if (!value(depth + 1)) return false;
        space();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "}") {
          i++;
          return true;
        }
        return false;
      }
    }
    if (c === "[") {
      i++;
      space();
      if (text[i] === "]") {
        i++;
        return true;
      }
      for (;;) {
        if (!value(depth + 1)) return false;
        space();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "]") {
          i++;
          return true;
        }
        return false;
      }
    }
    if (c === '"') return string();
    if (c === "t") return literal("true");
    if (c === "f") return literal("false");
    if (c === "n") return literal("null");
    return number();
  };
  if (!value(0)) return i;
  space();
  return i < n ? i : -1;
}

function topLevel<T>(
  root: Json,
  camel: string,
  snake: string,
  decode: (v: unknown) => T,
): T[] {
  const list = asArray(field(root, camel, snake), camel);
  const out = new Array<T>(list.length);
  for (let i = 0; i < list.length; i++) {
    try {
      out[i] = decode(list[i]);
    } catch (e) {
      throw atIndex(e, camel, i);
    }
  }
  return out;
}

function rethrow(e: unknown): never {
  if (e instanceof ShapeError) {
    const path = e.path.filter((part) => part !== "").reverse().join(".");
    throw new OtlpDecodeError(`${path}: ${e.message}`);
  }
  throw e;
}

/** Decodes an OTLP/JSON ExportTraceServiceRequest. */
export function decodeTracesJson(body: Uint8Array): DecodedTraces {
  const root = parseJson(body);
  try {
    const list = topLevel(
      root,
      "resourceSpans",
      "resource_spans",
      resourceSpans,
    );
    let spanCount = 0;
    for (const rs of list) {
      for (const ss of rs.scopeSpans) spanCount += ss.spans.length;
    }
    return { resourceSpans: list, spanCount };
  } catch (e) {
    rethrow(e);
  }
}

/** Decodes an OTLP/JSON ExportMetricsServiceRequest. */
export function decodeMetricsJson(body: Uint8Array): DecodedMetrics {
  const root = parseJson(body);
  try {
    const list = topLevel(
      root,
      "resourceMetrics",
      "resource_metrics",
      resourceMetrics,
    );
    let dataPointCount = 0;
    for (const rm of list) {
      for (const sm of rm.scopeMetrics) {
        for (const m of sm.metrics) {
          dataPointCount += "points" in m ? m.points.length : m.pointCount;
        }
      }
    }
    return { resourceMetrics: list, dataPointCount };
  } catch (e) {
    rethrow(e);
  }
}
