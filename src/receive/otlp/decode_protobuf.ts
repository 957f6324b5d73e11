/**
 * OTLP/protobuf → decoded shape, read straight off the wire.
 *
 * A hand-written reader for the few OTLP messages we use, producing the
 * decoded shape directly: no intermediate message objects, no long.js
 * objects, short strings served from a small cache (attribute keys and most
 * values repeat in every item). It decodes the same as the protobufjs root of
 * @opentelemetry/otlp-transformer (decode_protobufjs.ts), which tests compare
 * it with, at several times its speed.
 *
 * Field numbers are those of opentelemetry-proto v1 (common, resource, trace,
 * metrics). Unknown fields, and known fields with an unexpected wire type,
 * are skipped, as protobuf parsers do; truncated or malformed input throws
 * OtlpDecodeError("invalid protobuf: …").
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
  bytesToBase64,
  int64PartsToValue,
  nanos,
  setAttribute,
  splitNanosParts,
} from "./decode_values.ts";

const TWO_POW_32 = 4294967296;

const utf8 = new TextDecoder();

// Direct-mapped cache of short strings, keyed by a hash of their bytes:
// slot i keeps its bytes at arena[i * CACHE_MAX_BYTES …] and its string.
const CACHE_SLOTS = 4096;
const CACHE_MAX_BYTES = 64;
const arena = new Uint8Array(CACHE_SLOTS * CACHE_MAX_BYTES);
const arenaView = new DataView(arena.buffer);
const cacheLengths = new Int32Array(CACHE_SLOTS).fill(-1);
const cacheStrings: string[] = new Array(CACHE_SLOTS).fill("");

const HEX_DIGITS = new TextEncoder().encode("0123456789abcdef");
/** Scratch char codes for 8- and 16-byte ids. */
const hexCodes8: number[] = new Array(16).fill(0);
const hexCodes16: number[] = new Array(32).fill(0);

/** Arrays and key-value lists inside attribute values, at most. */
const MAX_NESTING = 32;

/** Wire types. */
const VARINT = 0;
const FIXED64 = 1;
const LEN = 2;
const FIXED32 = 5;

class WireReader {
  readonly buf: Uint8Array;
  readonly view: DataView;
  pos = 0;
  /** Halves of the last 64-bit value read. */
  lo = 0;
  hi = 0;
  /** Items decoded (spans or data points). */
  items = 0;

  constructor(buf: Uint8Array) {
    this.buf = buf;
    this.view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  fail(detail: string): never {
    throw new OtlpDecodeError(`invalid protobuf: ${detail}`);
  }

  need(n: number): void {
    if (this.pos + n > this.buf.length) {
      this.fail(`index out of range: ${this.pos} + ${n} > ${this.buf.length}`);
    }
  }

  /** A varint's low 32 bits, unsigned (tags, lengths, enums, uint32). */
  uint32(): number {
    const b = this.buf;
    let p = this.pos;
    if (p >= b.length) this.need(1);
    let c = b[p++]!;
    if (c < 0x80) {
      this.pos = p;
      return c;
    }
    let v = c & 0x7f;
    for (let shift = 7; shift < 70; shift += 7) {
      if (p >= b.length) {
        this.pos = p;
        this.need(1);
      }
      c = b[p++]!;
      if (shift < 32) v |= (c & 0x7f) << shift;
      if (c < 0x80) {
        this.pos = p;
        return v >>> 0;
      }
    }
    this.pos = p;
    return this.fail(`varint longer than 10 bytes at offset ${p}`);
  }

  /** A 64-bit varint into `lo` and `hi`. */
  varint64(): void {
    const b = this.buf;
    let p = this.pos;
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (p >= b.length) {
        this.pos = p;
        this.need(1);
      }
      const c = b[p++]!;
      const bits = c & 0x7f;
      if (i < 4) {
        lo |= bits << (7 * i);
      } else if (i === 4) {
        lo |= bits << 28;
        hi = bits >>> 4;
      } else {
        hi |= bits << (7 * i - 32);
      }
      if (c < 0x80) {
        this.pos = p;
        this.lo = lo >>> 0;
        this.hi = hi >>> 0;
        return;
      }
    }
    this.pos = p;
    this.fail(`varint longer than 10 bytes at offset ${p}`);
  }

  /** An unsigned 64-bit varint as a number (exact below 2^53). */
  uint64Number(): number {
    this.varint64();
    return this.hi * TWO_POW_32 + this.lo;
  }

  fixed64(): void {
    this.need(8);
    this.lo = this.view.getUint32(this.pos, true);
    this.hi = this.view.getUint32(this.pos + 4, true);
    this.pos += 8;
  }

  fixed64Number(): number {
    this.fixed64();
    return this.hi * TWO_POW_32 + this.lo;
  }

  double(): number {
    this.need(8);
    const v = this.view.getFloat64(this.pos, true);
    this.pos += 8;
    return v;
  }

  /** Reads a length prefix; returns where the field ends. */
  end(): number {
    const n = this.uint32();
    this.need(n);
    return this.pos + n;
  }

  string(): string {
    const n = this.uint32();
    this.need(n);
    const b = this.buf;
    const start = this.pos;
    const end = start + n;
    this.pos = end;
    if (n === 0) return "";
    if (n > CACHE_MAX_BYTES) return utf8.decode(b.subarray(start, end));
    const view = this.view;
    let hash = n;
    let high = 0;
    let i = start;
    for (; i + 4 <= end; i += 4) {
      const word = view.getInt32(i, true);
      high |= word;
      hash = Math.imul(hash ^ word, 0x9e3779b1);
    }
    for (; i < end; i++) {
      const c = b[i]!;
      high |= c;
      hash = Math.imul(hash ^ c, 0x9e3779b1);
    }
    hash ^= hash >>> 15;
    const slot = hash & (CACHE_SLOTS - 1);
    const base = slot * CACHE_MAX_BYTES;
    if (cacheLengths[slot] === n) {
      let j = 0;
      let same = true;
      for (; j + 4 <= n; j += 4) {
        if (
          arenaView.getInt32(base + j, true) !== view.getInt32(start + j, true)
        ) {
          same = false;
          break;
        }
      }
      for (; same && j < n; j++) same = arena[base + j] === b[start + j];
      if (same) return cacheStrings[slot]!;
    }
    const bytes = b.subarray(start, end);
    const s = (high & 0x80808080) === 0
      ? String.fromCharCode.apply(null, bytes as unknown as number[])
      : utf8.decode(bytes);
    arena.set(bytes, base);
    cacheLengths[slot] = n;
    cacheStrings[slot] = s;
    return s;
  }

  /** Bytes as lowercase hex (trace and span ids). */
  bytesHex(): string {
    const n = this.uint32();
    this.need(n);
    const b = this.buf;
    const start = this.pos;
    this.pos += n;
    if (n === 0) return "";
    if (n > 64) {
      // Not an id of any valid length; the transforms reject it.
      let s = "";
      for (let i = start; i < start + n; i++) {
        const c = b[i]!;
        s += String.fromCharCode(HEX_DIGITS[c >> 4]!, HEX_DIGITS[c & 15]!);
      }
      return s;
    }
    const codes = n === 16
      ? hexCodes16
      : n === 8
      ? hexCodes8
      : new Array<number>(n * 2);
    for (let i = 0; i < n; i++) {
      const c = b[start + i]!;
      codes[2 * i] = HEX_DIGITS[c >> 4]!;
      codes[2 * i + 1] = HEX_DIGITS[c & 15]!;
    }
    return String.fromCharCode.apply(null, codes);
  }

  bytesBase64(): string {
    const n = this.uint32();
    this.need(n);
    const s = bytesToBase64(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }

  /** Skips the value of a field with tag `tag`. */
  skip(tag: number): void {
    switch (tag & 7) {
      case VARINT:
        this.varint64();
        return;
      case FIXED64:
        this.need(8);
        this.pos += 8;
        return;
      case LEN: {
        const n = this.uint32();
        this.need(n);
        this.pos += n;
        return;
      }
      case FIXED32:
        this.need(4);
        this.pos += 4;
        return;
      default:
        this.fail(`invalid wire type ${tag & 7} at offset ${this.pos}`);
    }
  }

  /** Checks that a message ended exactly at its length. */
  done(end: number): void {
    if (this.pos !== end) {
      this.fail(`message overruns its length at offset ${this.pos}`);
    }
  }
}

// ---- common.proto --------------------------------------------------------

/** Reads a KeyValue and sets it on `target`. */
function keyValue(r: WireReader, end: number, target: Attributes): void {
  let key = "";
  let value: AttributeValue = "";
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10 /* 1:len */) key = r.string();
    else if (tag === 18 /* 2:len */) value = anyValue(r, r.end());
    else r.skip(tag);
  }
  r.done(end);
  setAttribute(target, key, value);
}

function anyValue(r: WireReader, end: number): AttributeValue {
  let value: AttributeValue = "";
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 42 /* 5:len */ || tag === 50 /* 6:len */) {
      value = JSON.stringify(plainCollection(r, tag, r.end(), 1));
    } else {
      value = scalarValue(r, tag) ?? value;
    }
  }
  r.done(end);
  return value;
}

/** An AnyValue as a plain JS value, for arrays and lists made JSON text. */
function plainValue(r: WireReader, end: number, depth: number): unknown {
  let value: unknown = null;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 42 /* 5:len */ || tag === 50 /* 6:len */) {
      value = plainCollection(r, tag, r.end(), depth + 1);
    } else {
      value = scalarValue(r, tag) ?? value;
    }
  }
  r.done(end);
  return value;
}

/** The value of a scalar AnyValue field whose tag was just read, or null. */
function scalarValue(r: WireReader, tag: number): AttributeValue | null {
  switch (tag) {
    case 10 /* 1:len */:
      return r.string();
    case 16 /* 2:varint */:
      return r.uint32() !== 0;
    case 24 /* 3:varint */:
      r.varint64();
      return int64PartsToValue(r.lo, r.hi);
    case 33 /* 4:fixed64 */:
      return r.double();
    case 58 /* 7:len */:
      return r.bytesBase64();
    default:
      r.skip(tag);
      return null;
  }
}

/** ArrayValue (field 5) → array, KeyValueList (field 6) → object. */
function plainCollection(
  r: WireReader,
  tag: number,
  end: number,
  depth: number,
): unknown {
  if (depth > MAX_NESTING) {
    r.fail(`attribute values nested deeper than ${MAX_NESTING}`);
  }
  if (tag === 42 /* 5:len */) {
    const out: unknown[] = [];
    while (r.pos < end) {
      const inner = r.uint32();
      if (inner === 10 /* 1:len */) out.push(plainValue(r, r.end(), depth));
      else r.skip(inner);
    }
    r.done(end);
    return out;
  }
  const out: Record<string, unknown> = {};
  while (r.pos < end) {
    const inner = r.uint32();
    if (inner !== 10 /* 1:len */) {
      r.skip(inner);
      continue;
    }
    const kvEnd = r.end();
    let key = "";
    let value: unknown = null;
    while (r.pos < kvEnd) {
      const kvTag = r.uint32();
      if (kvTag === 10 /* 1:len */) key = r.string();
      else if (kvTag === 18 /* 2:len */) value = plainValue(r, r.end(), depth);
      else r.skip(kvTag);
    }
    r.done(kvEnd);
    out[key] = value;
  }
  r.done(end);
  return out;
}

/** Resource → its attributes. */
function resource(r: WireReader, end: number): Attributes {
  const attributes: Attributes = {};
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10 /* 1:len */) keyValue(r, r.end(), attributes);
    else r.skip(tag);
  }
  r.done(end);
  return attributes;
}

function scope(r: WireReader, end: number): DecodedScope {
  let name = "";
  let version = "";
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10 /* 1:len */) name = r.string();
    else if (tag === 18 /* 2:len */) version = r.string();
    else r.skip(tag);
  }
  r.done(end);
  return { name, version };
}

// ---- trace.proto ---------------------------------------------------------

function span(r: WireReader, end: number): DecodedSpan {
  let traceId = "";
  let spanId = "";
  let parentSpanId = "";
  let name = "";
  let kind = 0;
  let startTimeUs = 0;
  let startTimeExtraNs = 0;
  let endTimeUs = 0;
  let endTimeExtraNs = 0;
  let statusCode = 0;
  let statusMessage = "";
  const attributes: Attributes = {};
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case 10 /* 1:len */:
        traceId = r.bytesHex();
        break;
      case 18 /* 2:len */:
        spanId = r.bytesHex();
        break;
      case 34 /* 4:len */:
        parentSpanId = r.bytesHex();
        break;
      case 42 /* 5:len */:
        name = r.string();
        break;
      case 48 /* 6:varint */:
        kind = r.uint32() | 0;
        break;
      case 57 /* 7:fixed64 */:
        r.fixed64();
        splitNanosParts(r.lo, r.hi);
        startTimeUs = nanos.us;
        startTimeExtraNs = nanos.ns;
        break;
      case 65 /* 8:fixed64 */:
        r.fixed64();
        splitNanosParts(r.lo, r.hi);
        endTimeUs = nanos.us;
        endTimeExtraNs = nanos.ns;
        break;
      case 74 /* 9:len */:
        keyValue(r, r.end(), attributes);
        break;
      case 122 /* 15:len */: {
        const statusEnd = r.end();
        while (r.pos < statusEnd) {
          const inner = r.uint32();
          if (inner === 18 /* 2:len */) statusMessage = r.string();
          else if (inner === 24 /* 3:varint */) statusCode = r.uint32() | 0;
          else r.skip(inner);
        }
        r.done(statusEnd);
        break;
      }
      default:
        r.skip(tag);
    }
  }
  r.done(end);
  return {
    traceId,
    spanId,
    parentSpanId,
    name,
    kind,
    startTimeUs,
    startTimeExtraNs,
    endTimeUs,
    endTimeExtraNs,
    attributes,
    statusCode,
    statusMessage,
  };
}

/**
 * OTLP's nesting levels (Resource*, Scope*) share one shape: field 1 a
 * header message (resource or scope), field 2 the repeated items.
 */
function headerAndItems<H, T>(
  r: WireReader,
  end: number,
  readHeader: (r: WireReader, end: number) => H,
  readItem: (r: WireReader, end: number) => T,
): [H | null, T[]] {
  let header: H | null = null;
  const items: T[] = [];
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 18 /* 2:len */) items.push(readItem(r, r.end()));
    else if (tag === 10 /* 1:len */) header = readHeader(r, r.end());
    else r.skip(tag);
  }
  r.done(end);
  return [header, items];
}

/** An Export*ServiceRequest: field 1, the repeated Resource* messages. */
function requestItems<T>(
  r: WireReader,
  readItem: (r: WireReader, end: number) => T,
): T[] {
  const items: T[] = [];
  while (r.pos < r.buf.length) {
    const tag = r.uint32();
    if (tag === 10 /* 1:len */) items.push(readItem(r, r.end()));
    else r.skip(tag);
  }
  return items;
}

const NO_SCOPE: DecodedScope = { name: "", version: "" };

function scopeSpans(r: WireReader, end: number): DecodedScopeSpans {
  const [s, spans] = headerAndItems(r, end, scope, span);
  r.items += spans.length;
  return { scope: s ?? NO_SCOPE, spans };
}

function resourceSpans(r: WireReader, end: number): DecodedResourceSpans {
  const [attributes, list] = headerAndItems(r, end, resource, scopeSpans);
  return { resource: attributes ?? {}, scopeSpans: list };
}

/** Decodes an OTLP/protobuf ExportTraceServiceRequest. */
export function decodeTracesProtobuf(body: Uint8Array): DecodedTraces {
  const r = new WireReader(body);
  const resourceSpansList = requestItems(r, resourceSpans);
  return { resourceSpans: resourceSpansList, spanCount: r.items };
}

// ---- metrics.proto -------------------------------------------------------

/** Packed (or single) fixed64 counts appended to `out`. */
function fixed64Counts(r: WireReader, tag: number, out: number[]): void {
  if ((tag & 7) === FIXED64) {
    out.push(r.fixed64Number());
    return;
  }
  const end = r.end();
  if ((end - r.pos) % 8 !== 0) r.fail(`packed fixed64 length at ${r.pos}`);
  const view = r.view;
  for (let p = r.pos; p < end; p += 8) {
    out.push(
      view.getUint32(p + 4, true) * TWO_POW_32 + view.getUint32(p, true),
    );
  }
  r.pos = end;
}

const NO_NUMBERS: readonly number[] = Object.freeze([]);

/**
 * The last explicit bounds decoded: points of one metric nearly always share
 * them, so they share one array (treated as immutable everywhere).
 */
let lastBounds: number[] = [];

/** `previous` plus packed (or single) doubles, as a new or shared array. */
function boundsWith(
  r: WireReader,
  tag: number,
  previous: readonly number[],
): number[] {
  if ((tag & 7) === FIXED64) return [...previous, r.double()];
  const end = r.end();
  const n = (end - r.pos) / 8;
  if (!Number.isInteger(n)) r.fail(`packed double length at ${r.pos}`);
  const view = r.view;
  if (previous.length === 0 && n === lastBounds.length) {
    let same = true;
    for (let i = 0; i < n && same; i++) {
      same = view.getFloat64(r.pos + 8 * i, true) === lastBounds[i];
    }
    if (same) {
      r.pos = end;
      return lastBounds;
    }
  }
  const out = previous.slice();
  for (let p = r.pos; p < end; p += 8) out.push(view.getFloat64(p, true));
  r.pos = end;
  if (previous.length === 0) lastBounds = out;
  return out;
}

/** Packed (or single) uint64 varints appended to `out`. */
function varintCounts(r: WireReader, tag: number, out: number[]): void {
  if ((tag & 7) === VARINT) {
    out.push(r.uint64Number());
    return;
  }
  const end = r.end();
  while (r.pos < end) out.push(r.uint64Number());
  r.done(end);
}

function histogramPoint(r: WireReader, end: number): DecodedHistogramPoint {
  const attributes: Attributes = {};
  let startTimeUs = 0;
  let startTimeExtraNs = 0;
  let timeUs = 0;
  let timeExtraNs = 0;
  let count = 0;
  let sum: number | null = null;
  let min: number | null = null;
  let max: number | null = null;
  let flags = 0;
  const bucketCounts: number[] = [];
  let explicitBounds = NO_NUMBERS as number[];
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case 74 /* 9:len */:
        keyValue(r, r.end(), attributes);
        break;
      case 17 /* 2:fixed64 */:
        r.fixed64();
        splitNanosParts(r.lo, r.hi);
        startTimeUs = nanos.us;
        startTimeExtraNs = nanos.ns;
        break;
      case 25 /* 3:fixed64 */:
        r.fixed64();
        splitNanosParts(r.lo, r.hi);
        timeUs = nanos.us;
        timeExtraNs = nanos.ns;
        break;
      case 33 /* 4:fixed64 */:
        count = r.fixed64Number();
        break;
      case 41 /* 5:fixed64 */:
        sum = r.double();
        break;
      case 50 /* 6:len */:
      case 49 /* 6:fixed64 */:
        fixed64Counts(r, tag, bucketCounts);
        break;
      case 58 /* 7:len */:
      case 57 /* 7:fixed64 */:
        explicitBounds = boundsWith(r, tag, explicitBounds);
        break;
      case 80 /* 10:varint */:
        flags = r.uint32();
        break;
      case 89 /* 11:fixed64 */:
        min = r.double();
        break;
      case 97 /* 12:fixed64 */:
        max = r.double();
        break;
      default:
        r.skip(tag);
    }
  }
  r.done(end);
  return {
    attributes,
    startTimeUs,
    startTimeExtraNs,
    timeUs,
    timeExtraNs,
    count,
    sum,
    min,
    max,
    explicitBounds,
    bucketCounts,
    flags,
  };
}

function zigzag32(v: number): number {
  return (v >>> 1) ^ -(v & 1);
}

function buckets(
  r: WireReader,
  end: number,
  counts: number[],
): number {
  let offset = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 8 /* 1:varint */) offset = zigzag32(r.uint32());
    else if (tag === 18 /* 2:len */ || tag === 16 /* 2:varint */) {
      varintCounts(r, tag, counts);
    } else r.skip(tag);
  }
  r.done(end);
  return offset;
}

function exponentialPoint(
  r: WireReader,
  end: number,
): DecodedExponentialPoint {
  const attributes: Attributes = {};
  let startTimeUs = 0;
  let startTimeExtraNs = 0;
  let timeUs = 0;
  let timeExtraNs = 0;
  let count = 0;
  let sum: number | null = null;
  let min: number | null = null;
  let max: number | null = null;
  let flags = 0;
  let scale = 0;
  let zeroCount = 0;
  let zeroThreshold = 0;
  let positiveOffset = 0;
  let negativeOffset = 0;
  let positiveCounts: number[] = [];
  let negativeCounts: number[] = [];
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case 10 /* 1:len */:
        keyValue(r, r.end(), attributes);
        break;
      case 17 /* 2:fixed64 */:
        r.fixed64();
        splitNanosParts(r.lo, r.hi);
        startTimeUs = nanos.us;
        startTimeExtraNs = nanos.ns;
        break;
      case 25 /* 3:fixed64 */:
        r.fixed64();
        splitNanosParts(r.lo, r.hi);
        timeUs = nanos.us;
        timeExtraNs = nanos.ns;
        break;
      case 33 /* 4:fixed64 */:
        count = r.fixed64Number();
        break;
      case 41 /* 5:fixed64 */:
        sum = r.double();
        break;
      case 48 /* 6:varint */:
        scale = zigzag32(r.uint32());
        break;
      case 57 /* 7:fixed64 */:
        zeroCount = r.fixed64Number();
        break;
      case 66 /* 8:len */:
        positiveCounts = [];
        positiveOffset = buckets(r, r.end(), positiveCounts);
        break;
      case 74 /* 9:len */:
        negativeCounts = [];
        negativeOffset = buckets(r, r.end(), negativeCounts);
        break;
      case 80 /* 10:varint */:
        flags = r.uint32();
        break;
      case 97 /* 12:fixed64 */:
        min = r.double();
        break;
      case 105 /* 13:fixed64 */:
        max = r.double();
        break;
      case 113 /* 14:fixed64 */:
        zeroThreshold = r.double();
        break;
      default:
        r.skip(tag);
    }
  }
  r.done(end);
  return {
    attributes,
    startTimeUs,
    startTimeExtraNs,
    timeUs,
    timeExtraNs,
    count,
    sum,
    min,
    max,
    scale,
    zeroCount,
    zeroThreshold,
    positiveOffset,
    positiveCounts,
    negativeOffset,
    negativeCounts,
    flags,
  };
}

interface HistogramData<T> {
  temporality: number;
  points: T[];
}

/** Histogram or ExponentialHistogram: data points and temporality. */
function histogramData<T>(
  r: WireReader,
  end: number,
  point: (r: WireReader, end: number) => T,
): HistogramData<T> {
  let temporality = 0;
  const points: T[] = [];
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10 /* 1:len */) points.push(point(r, r.end()));
    else if (tag === 16 /* 2:varint */) temporality = r.uint32() | 0;
    else r.skip(tag);
  }
  r.done(end);
  return { temporality, points };
}

/** Gauge, Sum or Summary: only the number of data points (field 1). */
function countPoints(r: WireReader, end: number): number {
  let n = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 10 /* 1:len */) n++;
    r.skip(tag);
  }
  r.done(end);
  return n;
}

function metric(r: WireReader, end: number): DecodedMetric {
  let name = "";
  let unit = "";
  let type: DecodedMetric["type"] = "none";
  let histogram: HistogramData<DecodedHistogramPoint> | null = null;
  let exponential: HistogramData<DecodedExponentialPoint> | null = null;
  let pointCount = 0;
  while (r.pos < end) {
    const tag = r.uint32();
    switch (tag) {
      case 10 /* 1:len name */:
        name = r.string();
        break;
      case 26 /* 3:len unit */:
        unit = r.string();
        break;
      case 74 /* 9:len histogram */:
        type = "histogram";
        histogram = histogramData(r, r.end(), histogramPoint);
        break;
      case 82 /* 10:len exponential_histogram */:
        type = "exponentialHistogram";
        exponential = histogramData(r, r.end(), exponentialPoint);
        break;
      case 42 /* 5:len gauge */:
        type = "gauge";
        pointCount = countPoints(r, r.end());
        break;
      case 58 /* 7:len sum */:
        type = "sum";
        pointCount = countPoints(r, r.end());
        break;
      case 90 /* 11:len summary */:
        type = "summary";
        pointCount = countPoints(r, r.end());
        break;
      default:
        r.skip(tag);
    }
  }
  r.done(end);
  if (type === "histogram" && histogram !== null) {
    r.items += histogram.points.length;
    return { type, name, unit, ...histogram };
  }
  if (type === "exponentialHistogram" && exponential !== null) {
    r.items += exponential.points.length;
    return { type, name, unit, ...exponential };
  }
  if (type === "histogram" || type === "exponentialHistogram") type = "none";
  r.items += pointCount;
  return { type, name, unit, pointCount };
}

function scopeMetrics(r: WireReader, end: number): DecodedScopeMetrics {
  const [s, metrics] = headerAndItems(r, end, scope, metric);
  return { scope: s ?? NO_SCOPE, metrics };
}

function resourceMetrics(r: WireReader, end: number): DecodedResourceMetrics {
  const [attributes, list] = headerAndItems(r, end, resource, scopeMetrics);
  return { resource: attributes ?? {}, scopeMetrics: list };
}

/** Decodes an OTLP/protobuf ExportMetricsServiceRequest. */
export function decodeMetricsProtobuf(body: Uint8Array): DecodedMetrics {
  const r = new WireReader(body);
  const list = requestItems(r, resourceMetrics);
  return { resourceMetrics: list, dataPointCount: r.items };
}
