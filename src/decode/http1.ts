/**
 * HTTP/1.x from the first bytes of a request or response, as the eBPF capture
 * copies them (a bounded prefix: the request line and the first headers, the
 * status line). Plain functions over bytes; nothing here throws on bad input:
 * what cannot be parsed comes back as undefined.
 *
 * @example
 * ```ts
 * const head = parseRequestHead(bytes);
 * // { method: "GET", target: "/users/42?x=1", path: "/users/42", version: "HTTP/1.1", … }
 * const status = parseStatusLine(responseBytes)?.statusCode; // 200
 * ```
 *
 * @module
 */

/** The methods of RFC 9110 and PATCH (RFC 5789); others are not HTTP here. */
export const HTTP_METHODS: ReadonlySet<string> = new Set([
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "DELETE",
  "CONNECT",
  "OPTIONS",
  "TRACE",
  "PATCH",
]);

/** A W3C Trace Context `traceparent` header. */
export interface Traceparent {
  /** 32 lowercase hex digits, not all zero. */
  traceId: string;
  /** The caller's span: 16 lowercase hex digits, not all zero. */
  parentSpanId: string;
  /** trace-flags, e.g. 1 = sampled. */
  flags: number;
}

/** What the first bytes of a request say. */
export interface RequestHead {
  method: string;
  /** The request target as sent: "/a?b", "http://host/a", "*", "host:443". */
  target: string;
  /** The target's path: no query or fragment, no scheme and authority; "" for "*" and CONNECT. */
  path: string;
  /** "HTTP/1.1" or "HTTP/1.0". */
  version: string;
  /** The Host header when it was within the copied bytes. */
  host?: string;
  /** A valid traceparent header within the copied bytes. */
  traceparent?: Traceparent;
  /** Whether the copied bytes reach the end of the headers (an empty line). */
  headersComplete: boolean;
}

/** What the first bytes of a response say. */
export interface StatusLine {
  version: string;
  statusCode: number;
}

const SP = 0x20;
const CR = 0x0d;
const LF = 0x0a;
const COLON = 0x3a;

/** Latin-1 text of bytes[start, end): header bytes are octets, not UTF-8. */
function text(bytes: Uint8Array, start: number, end: number): string {
  let out = "";
  for (let i = start; i < end; i++) out += String.fromCharCode(bytes[i]!);
  return out;
}

/** Index of the next LF at or after `from`, or -1. */
function lineEnd(bytes: Uint8Array, from: number): number {
  for (let i = from; i < bytes.length; i++) if (bytes[i] === LF) return i;
  return -1;
}

/** A line's end without its CR. */
function trimCr(bytes: Uint8Array, start: number, lf: number): number {
  return lf > start && bytes[lf - 1] === CR ? lf - 1 : lf;
}

function isVersion(v: string): boolean {
  return v === "HTTP/1.1" || v === "HTTP/1.0";
}

/** "/a/b?c#d" → "/a/b"; "http://h:1/a?b" → "/a"; "*" and authority-form → "". */
export function targetPath(target: string): string {
  let path = target;
  if (!path.startsWith("/")) {
    const scheme = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*/.exec(path);
    if (scheme === null) return "";
    path = path.slice(scheme[0].length) || "/";
  }
  const cut = path.search(/[?#]/);
  return cut === -1 ? path : path.slice(0, cut);
}

/**
 * Parses a request line and whatever headers were copied. Undefined when the
 * bytes do not start with "METHOD SP target SP HTTP/1.x" (the line must be
 * complete: a request line cut by the copy limit is unusable).
 */
export function parseRequestHead(bytes: Uint8Array): RequestHead | undefined {
  const lf = lineEnd(bytes, 0);
  if (lf === -1) return undefined;
  const end = trimCr(bytes, 0, lf);
  const sp1 = bytes.indexOf(SP);
  if (sp1 <= 0 || sp1 >= end) return undefined;
  const sp2 = bytes.lastIndexOf(SP, end - 1);
  if (sp2 <= sp1 + 1) return undefined;
  const method = text(bytes, 0, sp1);
  const version = text(bytes, sp2 + 1, end);
  if (!HTTP_METHODS.has(method) || !isVersion(version)) return undefined;
  const target = text(bytes, sp1 + 1, sp2);
  if (target.includes(" ")) return undefined;
  const head: RequestHead = {
    method,
    target,
    path: method === "CONNECT" ? "" : targetPath(target),
    version,
    headersComplete: false,
  };
  for (let start = lf + 1; start < bytes.length;) {
    const next = lineEnd(bytes, start);
    if (next === -1) break; // a header cut by the copy limit
    const stop = trimCr(bytes, start, next);
    if (stop === start) {
      head.headersComplete = true;
      break;
    }
    const colon = bytes.indexOf(COLON, start);
    if (colon > start && colon < stop) {
      const name = text(bytes, start, colon).toLowerCase();
      if (name === "host" || name === "traceparent") {
        const value = text(bytes, colon + 1, stop).trim();
        if (name === "host") head.host = value;
        else {
          const parsed = parseTraceparent(value);
          if (parsed !== undefined) head.traceparent = parsed;
        }
      }
    }
    start = next + 1;
  }
  return head;
}

/**
 * Parses "HTTP/1.x NNN reason": the version and the status code (100-999).
 * The reason phrase may be cut or missing.
 */
export function parseStatusLine(bytes: Uint8Array): StatusLine | undefined {
  if (bytes.length < 12) return undefined;
  const version = text(bytes, 0, 8);
  if (!isVersion(version) || bytes[8] !== SP) return undefined;
  let code = 0;
  for (let i = 9; i < 12; i++) {
    const c = bytes[i]! - 0x30;
    if (c < 0 || c > 9) return undefined;
    code = code * 10 + c;
  }
  if (code < 100) return undefined;
  const after = bytes[12];
  if (after !== undefined && after !== SP && after !== CR && after !== LF) {
    return undefined;
  }
  return { version, statusCode: code };
}

const HEX = /^[0-9a-f]+$/;

/**
 * Parses a traceparent value: "00-<32 hex trace id>-<16 hex parent id>-<2
 * hex flags>". Future versions (not "ff") are read by the same first four
 * fields, as the W3C spec asks. All-zero ids are invalid.
 */
export function parseTraceparent(value: string): Traceparent | undefined {
  const v = value.trim();
  if (v.length < 55) return undefined;
  const version = v.slice(0, 2);
  if (!HEX.test(version) || version === "ff") return undefined;
  if (version === "00" && v.length !== 55) return undefined;
  if (v[2] !== "-" || v[35] !== "-" || v[52] !== "-") return undefined;
  if (v.length > 55 && v[55] !== "-") return undefined;
  const traceId = v.slice(3, 35);
  const parentSpanId = v.slice(36, 52);
  const flags = v.slice(53, 55);
  if (!HEX.test(traceId) || !HEX.test(parentSpanId) || !HEX.test(flags)) {
    return undefined;
  }
  if (/^0+$/.test(traceId) || /^0+$/.test(parentSpanId)) return undefined;
  return { traceId, parentSpanId, flags: parseInt(flags, 16) };
}
