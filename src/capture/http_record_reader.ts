/**
 * The capture's hot path: one "http_events" record (ffi/bpf/http.h) to one
 * {@linkcode HttpExchange}, at tens of thousands of records per second.
 *
 * It gives the same answers as `decodeHttpEvent` + `parseRequestHead` +
 * `parseStatusLine` (http_record_reader_test.ts checks that), but allocates
 * next to nothing per record: times are read as 32-bit halves (no BigInt),
 * methods are constants, and paths and peer addresses are interned (a path
 * seen before is found by a hash of its bytes, not decoded again). Anything
 * unusual (absolute-form targets, odd bytes) goes the slow, general way.
 *
 * @module
 */
import {
  HTTP_METHODS,
  parseRequestHead,
  parseStatusLine,
  parseTraceparent,
  type Traceparent,
} from "../decode/http1.ts";
import type { CallSide } from "../model/records.ts";
import {
  formatAddress,
  HTTP_ENDPOINTS,
  HTTP_EVENT,
  HTTP_EVENT_MIN_SIZE,
  HTTP_RESPONSE_BYTES,
  HTTP_SIDE,
  recordRequestLength,
} from "./http_event_layout.ts";

/** Why a record was not turned into an exchange (the last part of its counter name). */
export type HttpRecordRejection =
  | "short_record"
  | "bad_side"
  | "unparsable_request"
  | "unparsable_response";

/** One record's content. Strings are interned: equal values are often the same string. */
export interface HttpRecord {
  pid: number;
  side: CallSide;
  method: string;
  /** Raw path, no query; "" for "*" and CONNECT. */
  path: string;
  statusCode: number;
  /** Kernel monotonic time of the request's start, in µs. */
  startUs: number;
  durationNs: number;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  requestBytes: number;
  traceparent?: Traceparent;
}

const F = HTTP_EVENT.fields;
const EP = F.endpoints.offset;
const EPF = HTTP_ENDPOINTS.fields;
const TWO_32 = 2 ** 32;
const SP = 0x20;
const CR = 0x0d;
const LF = 0x0a;
const SLASH = 0x2f;
const QUESTION = 0x3f;
const HASH = 0x23;
const AF_INET = 2;
/** Interned paths and addresses kept before the tables start over. */
const MAX_INTERNED = 10_000;
const TRACEPARENT = new TextEncoder().encode("traceparent:");

/** Methods by their first byte and length, so no string is built to know one. */
const METHODS_BY_FIRST = new Map<number, string[]>();
for (const method of HTTP_METHODS) {
  const first = method.charCodeAt(0);
  const list = METHODS_BY_FIRST.get(first) ?? [];
  list.push(method);
  METHODS_BY_FIRST.set(first, list);
}

/**
 * Reads http_event records. One per capture: it holds the intern tables.
 *
 * @example
 * ```ts
 * const reader = new HttpRecordReader();
 * const record = reader.read(view); // HttpRecord, or a rejection reason
 * if (typeof record === "string") counters.add(`ebpf.http.rejected.${record}`);
 * ```
 */
export class HttpRecordReader {
  /** FNV-1a of a path's bytes → the bytes and their string. */
  #paths = new Map<number, { bytes: Uint8Array; path: string }>();
  /** IPv4 address as a u32 → dotted text. */
  #ipv4 = new Map<number, string>();

  /** Decodes `view` (one ring-buffer record, read at once: it is reused). */
  read(view: DataView): HttpRecord | HttpRecordRejection {
    if (view.byteLength < HTTP_EVENT_MIN_SIZE) return "short_record";
    const sideCode = view.getUint8(F.side.offset);
    if (sideCode !== HTTP_SIDE.server && sideCode !== HTTP_SIDE.client) {
      return "bad_side";
    }
    const bytes = new Uint8Array(
      view.buffer,
      view.byteOffset,
      view.byteLength,
    );
    const requestLen = recordRequestLength(view);
    const request = bytes.subarray(
      F.request.offset,
      F.request.offset + requestLen,
    );
    const record = this.#requestLine(request) ??
      slowRequestLine(request);
    if (record === undefined) return "unparsable_request";
    const statusCode = this.#status(
      bytes,
      Math.min(view.getUint8(F.response_len.offset), HTTP_RESPONSE_BYTES),
    );
    if (statusCode === 0) return "unparsable_response";

    const startLow = view.getUint32(F.start_ns.offset, true);
    const startHigh = view.getUint32(F.start_ns.offset + 4, true);
    const endLow = view.getUint32(F.end_ns.offset, true);
    const endHigh = view.getUint32(F.end_ns.offset + 4, true);
    const durationNs = (endHigh - startHigh) * TWO_32 + (endLow - startLow);
    record.pid = view.getUint32(F.pid.offset, true);
    record.side = sideCode === HTTP_SIDE.server ? "server" : "client";
    record.statusCode = statusCode;
    record.startUs = Math.floor((startHigh * TWO_32 + startLow) / 1000);
    record.durationNs = durationNs > 0 ? durationNs : 0;
    record.localPort = view.getUint16(EP + EPF.local_port.offset, true);
    record.remotePort = view.getUint16(EP + EPF.remote_port.offset, true);
    record.remoteAddress = this.#address(view, bytes);
    record.requestBytes = readU53(view, F.request_bytes.offset);
    return record;
  }

  /** The status code of a response's first bytes; 0 when they are not a status line. */
  #status(bytes: Uint8Array, length: number): number {
    const o = F.response.offset;
    if (
      length < 12 || bytes[o] !== 0x48 || bytes[o + 4] !== SLASH ||
      bytes[o + 5] !== 0x31 || bytes[o + 6] !== 0x2e || bytes[o + 8] !== SP
    ) {
      return slowStatus(bytes.subarray(o, o + length));
    }
    const minor = bytes[o + 7];
    const after = length > 12 ? bytes[o + 12] : SP;
    if (
      (minor !== 0x30 && minor !== 0x31) ||
      (after !== SP && after !== CR && after !== LF)
    ) {
      return slowStatus(bytes.subarray(o, o + length));
    }
    let code = 0;
    for (let i = o + 9; i < o + 12; i++) {
      const digit = bytes[i]! - 0x30;
      if (digit < 0 || digit > 9) return 0;
      code = code * 10 + digit;
    }
    return code < 100 ? 0 : code;
  }

  /**
   * "METHOD /path[?query] HTTP/1.x" and a traceparent header, without
   * building strings for what was seen before; undefined sends the request
   * the general way (it may still be valid, e.g. an absolute-form target).
   */
  #requestLine(request: Uint8Array): HttpRecord | undefined {
    const method = methodAt(request);
    if (method === undefined) return undefined;
    const targetStart = method.length + 1;
    if (request[targetStart] !== SLASH) return undefined;
    let hash = 0x811c9dc5;
    let i = targetStart;
    let pathEnd = -1;
    const n = request.length;
    for (; i < n; i++) {
      const c = request[i]!;
      if (c === SP || c === CR || c === LF) break;
      if (pathEnd === -1) {
        if (c === QUESTION || c === HASH) pathEnd = i;
        else hash = Math.imul(hash ^ c, 0x01000193);
      }
    }
    if (pathEnd === -1) pathEnd = i;
    // " HTTP/1.0" or " HTTP/1.1", then the line's end.
    if (
      i + 9 > n || request[i] !== SP || request[i + 1] !== 0x48 ||
      request[i + 5] !== SLASH || request[i + 6] !== 0x31 ||
      request[i + 7] !== 0x2e ||
      (request[i + 8] !== 0x30 && request[i + 8] !== 0x31)
    ) {
      return undefined;
    }
    const lineEnd = i + 9;
    if (
      !(request[lineEnd] === LF ||
        (request[lineEnd] === CR && request[lineEnd + 1] === LF))
    ) {
      return undefined;
    }
    return blankRecord(
      method,
      this.#path(request, targetStart, pathEnd, hash),
      findTraceparent(request, lineEnd),
    );
  }

  #path(request: Uint8Array, start: number, end: number, hash: number): string {
    const bytes = request.subarray(start, end);
    const known = this.#paths.get(hash);
    if (known !== undefined && sameBytes(known.bytes, bytes)) return known.path;
    const path = latin1(bytes);
    if (known === undefined) {
      if (this.#paths.size >= MAX_INTERNED) this.#paths.clear();
      this.#paths.set(hash, { bytes: bytes.slice(), path });
    }
    return path;
  }

  #address(view: DataView, bytes: Uint8Array): string {
    const family = view.getUint16(EP + EPF.family.offset, true);
    const offset = EP + EPF.remote_addr.offset;
    if (family === AF_INET) {
      const key = view.getUint32(offset, false);
      let text = this.#ipv4.get(key);
      if (text === undefined) {
        text = formatAddress(family, bytes.subarray(offset, offset + 16));
        if (this.#ipv4.size >= MAX_INTERNED) this.#ipv4.clear();
        this.#ipv4.set(key, text);
      }
      return text;
    }
    return formatAddress(family, bytes.subarray(offset, offset + 16));
  }
}

function blankRecord(
  method: string,
  path: string,
  traceparent: Traceparent | undefined,
): HttpRecord {
  const record: HttpRecord = {
    pid: 0,
    side: "server",
    method,
    path,
    statusCode: 0,
    startUs: 0,
    durationNs: 0,
    localPort: 0,
    remoteAddress: "",
    remotePort: 0,
    requestBytes: 0,
  };
  if (traceparent !== undefined) record.traceparent = traceparent;
  return record;
}

/** The method the request starts with ("GET "), or undefined. */
function methodAt(request: Uint8Array): string | undefined {
  const candidates = METHODS_BY_FIRST.get(request[0] ?? 0);
  if (candidates === undefined) return undefined;
  for (const method of candidates) {
    if (request[method.length] !== SP) continue;
    let same = true;
    for (let i = 1; i < method.length; i++) {
      if (request[i] !== method.charCodeAt(i)) {
        same = false;
        break;
      }
    }
    if (same) return method;
  }
  return undefined;
}

/**
 * The last valid traceparent header among the complete header lines after the
 * request line (`from` is at its CR or LF); the name is matched without
 * building strings.
 */
function findTraceparent(
  request: Uint8Array,
  from: number,
): Traceparent | undefined {
  const n = request.length;
  let found: Traceparent | undefined;
  let start = request.indexOf(LF, from) + 1;
  while (start > 0 && start < n) {
    const next = request.indexOf(LF, start);
    if (next === -1) break; // a header cut by the copy limit
    if (next === start || (next === start + 1 && request[start] === CR)) {
      break; // end of the headers
    }
    if (
      next - start > TRACEPARENT.length && isTraceparentName(request, start)
    ) {
      const end = request[next - 1] === CR ? next - 1 : next;
      const value = latin1(request.subarray(start + TRACEPARENT.length, end));
      found = parseTraceparent(value) ?? found; // the last valid one, as parseRequestHead
    }
    start = next + 1;
  }
  return found;
}

function isTraceparentName(request: Uint8Array, start: number): boolean {
  for (let i = 0; i < TRACEPARENT.length; i++) {
    // ASCII letters compare case-insensitively with | 0x20; ':' is unchanged by it.
    if ((request[start + i]! | 0x20) !== (TRACEPARENT[i]! | 0x20)) {
      return false;
    }
  }
  return true;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Latin-1 text: header bytes are octets, not UTF-8. */
function latin1(bytes: Uint8Array): string {
  return String.fromCharCode.apply(null, bytes as unknown as number[]);
}

function readU53(view: DataView, offset: number): number {
  return view.getUint32(offset + 4, true) * TWO_32 +
    view.getUint32(offset, true);
}

function slowRequestLine(request: Uint8Array): HttpRecord | undefined {
  const head = parseRequestHead(request);
  return head === undefined
    ? undefined
    : blankRecord(head.method, head.path, head.traceparent);
}

function slowStatus(response: Uint8Array): number {
  return parseStatusLine(response)?.statusCode ?? 0;
}
