/**
 * TypeScript view of ffi/bpf/http.h. Kept in sync by hand:
 * http_event_layout_test.ts checks every offset and size here against the
 * BTF of the compiled http object, so a change to http.h that is not
 * mirrored here fails the tests.
 *
 * @module
 */

/** enum http_side. */
export const HTTP_SIDE = { server: 1, client: 2 } as const;

/** Bytes of the request / response prefixes the kernel copies. */
export const HTTP_REQUEST_BYTES = 512;
export const HTTP_RESPONSE_BYTES = 32;

const AF_INET = 2;
const AF_INET6 = 10;

/** struct http_event: one request/response pair. */
export interface HttpEvent {
  /** bpf_ktime_get_ns() (CLOCK_MONOTONIC) when the request started; see http.h. */
  startNs: bigint;
  /** bpf_ktime_get_ns() when the response started. */
  endNs: bigint;
  /** Bytes of the request, all chunks until the response. */
  requestBytes: number;
  /** Bytes of the response's first chunk. */
  responseBytes: number;
  /** tgid of the traced process. */
  pid: number;
  fd: number;
  side: "server" | "client";
  /** "127.0.0.1", "::1"; IPv4-mapped IPv6 addresses as IPv4. */
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  /** First bytes of the request (a copy, unless decoded with `copy: false`). */
  request: Uint8Array;
  /** First bytes of the response (a copy, unless decoded with `copy: false`). */
  response: Uint8Array;
}

/** Options of {@linkcode decodeHttpEvent}. */
export interface DecodeOptions {
  /**
   * Copy the request and response bytes (default true). With false they are
   * views of the record, valid only while the ring buffer handler runs: for
   * callers that parse them at once (a copy costs ~0.4 µs each).
   */
  copy?: boolean;
}

/** Layout of struct http_endpoints. */
export const HTTP_ENDPOINTS = {
  size: 40,
  fields: {
    local_addr: { offset: 0, size: 16 },
    remote_addr: { offset: 16, size: 16 },
    local_port: { offset: 32, size: 2 },
    remote_port: { offset: 34, size: 2 },
    family: { offset: 36, size: 2 },
    pad: { offset: 38, size: 2 },
  },
} as const;

/** Layout of struct http_event: size, and each C field's offset and size. */
export const HTTP_EVENT = {
  size: 632,
  fields: {
    start_ns: { offset: 0, size: 8 },
    end_ns: { offset: 8, size: 8 },
    request_bytes: { offset: 16, size: 8 },
    response_bytes: { offset: 24, size: 8 },
    pid: { offset: 32, size: 4 },
    fd: { offset: 36, size: 4 },
    endpoints: { offset: 40, size: 40 },
    side: { offset: 80, size: 1 },
    response_len: { offset: 81, size: 1 },
    request_len: { offset: 82, size: 2 },
    pad: { offset: 84, size: 4 },
    response: { offset: 88, size: HTTP_RESPONSE_BYTES },
    request: { offset: 120, size: HTTP_REQUEST_BYTES },
  },
} as const;

/**
 * The shortest http_event record: the kernel sends only the request_len
 * valid bytes of request[], the last field.
 */
export const HTTP_EVENT_MIN_SIZE = HTTP_EVENT.fields.request.offset;

/** Valid request bytes of a record: request_len, within what the record holds. */
export function recordRequestLength(view: DataView): number {
  return Math.max(
    0,
    Math.min(
      view.getUint16(HTTP_EVENT.fields.request_len.offset, true),
      HTTP_REQUEST_BYTES,
      view.byteLength - HTTP_EVENT.fields.request.offset,
    ),
  );
}

/** Why a record could not be decoded; also the last part of its counter name. */
export class HttpEventError extends RangeError {
  constructor(readonly reason: "short_record" | "bad_side", message: string) {
    super(message);
  }
}

/** Decodes one record of the "http_events" ring buffer (little-endian). */
export function decodeHttpEvent(
  view: DataView,
  options: DecodeOptions = {},
): HttpEvent {
  const f = HTTP_EVENT.fields;
  if (view.byteLength < HTTP_EVENT_MIN_SIZE) {
    throw new HttpEventError(
      "short_record",
      `http_event: ${view.byteLength} bytes, want at least ${HTTP_EVENT_MIN_SIZE}`,
    );
  }
  const sideCode = view.getUint8(f.side.offset);
  if (sideCode !== HTTP_SIDE.server && sideCode !== HTTP_SIDE.client) {
    throw new HttpEventError("bad_side", `http_event: side ${sideCode}`);
  }
  const e = f.endpoints.offset;
  const ep = HTTP_ENDPOINTS.fields;
  const family = view.getUint16(e + ep.family.offset, true);
  const bytes = new Uint8Array(
    view.buffer,
    view.byteOffset,
    view.byteLength,
  );
  const requestLen = recordRequestLength(view);
  const responseLen = Math.min(
    view.getUint8(f.response_len.offset),
    HTTP_RESPONSE_BYTES,
  );
  return {
    startNs: view.getBigUint64(f.start_ns.offset, true),
    endNs: view.getBigUint64(f.end_ns.offset, true),
    requestBytes: Number(view.getBigUint64(f.request_bytes.offset, true)),
    responseBytes: Number(view.getBigUint64(f.response_bytes.offset, true)),
    pid: view.getUint32(f.pid.offset, true),
    fd: view.getInt32(f.fd.offset, true),
    side: sideCode === HTTP_SIDE.server ? "server" : "client",
    localAddress: formatAddress(
      family,
      bytes.subarray(e + ep.local_addr.offset, e + ep.local_addr.offset + 16),
    ),
    localPort: view.getUint16(e + ep.local_port.offset, true),
    remoteAddress: formatAddress(
      family,
      bytes.subarray(e + ep.remote_addr.offset, e + ep.remote_addr.offset + 16),
    ),
    remotePort: view.getUint16(e + ep.remote_port.offset, true),
    request: take(bytes, f.request.offset, requestLen, options.copy),
    response: take(bytes, f.response.offset, responseLen, options.copy),
  };
}

function take(
  bytes: Uint8Array,
  offset: number,
  length: number,
  copy = true,
): Uint8Array {
  return copy
    ? bytes.slice(offset, offset + length)
    : bytes.subarray(offset, offset + length);
}

/** An address in network byte order as text; "" for an unknown family. */
export function formatAddress(family: number, addr: Uint8Array): string {
  if (family === AF_INET) return addr.subarray(0, 4).join(".");
  if (family !== AF_INET6 || addr.length < 16) return "";
  const mapped = addr.subarray(0, 10).every((b) => b === 0) &&
    addr[10] === 0xff && addr[11] === 0xff;
  if (mapped) return addr.subarray(12, 16).join(".");
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((addr[i]! << 8) | addr[i + 1]!);
  // RFC 5952: the longest run (≥ 2) of zero groups becomes "::".
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best === -1) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${
    hex.slice(best + bestLen).join(":")
  }`;
}

/** struct http_config: read-only settings, the `http_config` global in .rodata. */
export interface HttpConfig {
  /** max_entries of http_conns; beyond it the kernel counts conn_map_full. */
  maxConns: number;
}

/** Layout of struct http_config, and where the `http_config` global sits in .rodata. */
export const HTTP_CONFIG = {
  rodataOffset: 0,
  size: 8,
  fields: {
    max_conns: { offset: 0, size: 4 },
    pad: { offset: 4, size: 4 },
  },
} as const;

/** Writes `config` into the .rodata bytes (see BpfObject.editRodata). */
export function writeHttpConfig(rodata: DataView, config: HttpConfig): void {
  rodata.setUint32(
    HTTP_CONFIG.rodataOffset + HTTP_CONFIG.fields.max_conns.offset,
    config.maxConns,
    true,
  );
}

/** Indexes of the "http_counters" array map (enum http_counter), by counter name. */
export const HTTP_COUNTER = {
  events: 0,
  dropped: 1,
  conn_map_full: 2,
  conns_opened: 3,
  conns_closed: 4,
  unanswered: 5,
  unpaired_response: 6,
  unparsable: 7,
  not_inet: 8,
  stream_events: 9,
  stream_dropped: 10,
  stream_truncated: 11,
  forks_followed: 12,
  tls_no_socket: 13,
} as const;
export type HttpCounterName = keyof typeof HTTP_COUNTER;
/** HTTP_COUNTER_MAX: entries of the counters map. */
export const HTTP_COUNTER_MAX = 14;

/**
 * The PID filter bitmap: `__u64 http_pid_bits[HTTP_PID_WORDS]` (http.h),
 * alone in its own section, so it starts at the section's first byte (the
 * object file's BTF gives every variable offset 0; libbpf places them).
 */
export const HTTP_PID_BITS = {
  section: ".bss.pid_bits",
  variable: "http_pid_bits",
  offset: 0,
  size: (4194304 / 64) * 8,
} as const;

/** Names of the object's maps; every program's name starts with `programPrefix`. */
export const HTTP = {
  object: "http",
  programPrefix: "coral_http_",
  maps: {
    conns: "http_conns",
    args: "http_args",
    events: "http_events",
    streamEvents: "stream_events",
    counters: "http_counters",
  },
} as const;
