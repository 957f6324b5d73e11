/**
 * TypeScript view of `struct stream_event` and its enums in ffi/bpf/http.h:
 * one chunk of a stream-protocol connection (HTTP/2, PostgreSQL, MySQL,
 * Redis), header then data. stream_event_layout_test.ts checks the offsets
 * against the BTF of the compiled object.
 *
 * @module
 */
import type { CallSide } from "../model/records.ts";
import {
  formatAddress,
  HTTP_ENDPOINTS,
  HTTP_SIDE,
} from "./http_event_layout.ts";

/** enum l7_protocol: what the kernel decided a connection speaks. */
export const L7_PROTOCOL = {
  unknown: 0,
  http1: 1,
  http2: 2,
  postgres: 3,
  mysql: 4,
  redis: 5,
} as const;
export type L7ProtocolName = keyof typeof L7_PROTOCOL;

/** enum stream_event_kind. */
export const STREAM_EVENT_KIND = { data: 1, close: 2, fork: 3 } as const;
/** enum stream_sender: self/peer where the kernel could not tell the side. */
export const STREAM_SENDER = {
  client: 1,
  server: 2,
  self: 3,
  peer: 4,
} as const;
export type StreamSenderName = keyof typeof STREAM_SENDER;
/** STREAM_DATA_BYTES: the most data one stream_event carries. */
export const STREAM_DATA_BYTES = 4096;

/** Layout of struct stream_event (the header; `len` data bytes follow it). */
export const STREAM_EVENT = {
  size: 80,
  fields: {
    conn_id: { offset: 0, size: 8 },
    time_ns: { offset: 8, size: 8 },
    pid: { offset: 16, size: 4 },
    fd: { offset: 20, size: 4 },
    size: { offset: 24, size: 4 },
    len: { offset: 28, size: 2 },
    kind: { offset: 30, size: 1 },
    protocol: { offset: 31, size: 1 },
    side: { offset: 32, size: 1 },
    sender: { offset: 33, size: 1 },
    tls: { offset: 34, size: 1 },
    pad: { offset: 35, size: 5 },
    endpoints: { offset: 40, size: 40 },
  },
} as const;

const PROTOCOL_NAMES = new Map<number, L7ProtocolName>(
  Object.entries(L7_PROTOCOL).map(([name, id]) => [id, name as L7ProtocolName]),
);

/** One decoded stream_event. */
export interface StreamEvent {
  /** Unique per connection the kernel tracked (fds are reused). */
  connId: number;
  timeNs: bigint;
  pid: number;
  fd: number;
  /** "fork": a traced process forked; `pid` is the child, `connId` its parent. */
  kind: "data" | "close" | "fork";
  protocol: L7ProtocolName;
  /** The traced process's side of the connection; undefined when the kernel could not tell. */
  side: CallSide | undefined;
  /** Who sent `data`; "self"/"peer" (the traced process or the other end) when the side is unknown. */
  sender: StreamSenderName;
  /** Plaintext from the SSL uprobes. */
  tls: boolean;
  /** Bytes the call moved; `data` holds the first of them. */
  size: number;
  /** A copy of the captured bytes (parsers may keep them). */
  data: Uint8Array;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
}

/** Why a record is not a stream event; the last part of its counter name. */
export type StreamEventRejection =
  | "short_record"
  | "bad_kind"
  | "bad_protocol"
  | "bad_side"
  | "bad_sender";

const SENDER_NAMES = new Map<number, StreamSenderName>(
  Object.entries(STREAM_SENDER).map((
    [name, id],
  ) => [id, name as StreamSenderName]),
);

const KIND_NAMES = new Map<number, StreamEvent["kind"]>(
  Object.entries(STREAM_EVENT_KIND).map((
    [name, id],
  ) => [id, name as StreamEvent["kind"]]),
);

const F = STREAM_EVENT.fields;
const FORMAT = { address: formatAddress };
const EP = F.endpoints.offset;
const EPF = HTTP_ENDPOINTS.fields;
const TWO_32 = 2 ** 32;

/** Bytes per slab of {@linkcode StreamEventReader}: data copies are carved from it. */
const SLAB_BYTES = 1 << 20;
/** Interned IPv4 peers kept before the table starts over. */
const MAX_ADDRESSES = 10_000;

/**
 * Reads "stream_events" records. The data is copied out of the ring (the
 * parsers may keep it) into views of large shared slabs, not into an
 * ArrayBuffer of its own per record (each of those is a native allocation);
 * IPv4 peers are interned. One reader per capture.
 */
export class StreamEventReader {
  #slab = new ArrayBuffer(SLAB_BYTES);
  #offset = 0;
  readonly #ipv4 = new Map<number, string>();

  /** Decodes one record (little-endian); read it at once: the view is reused. */
  read(view: DataView): StreamEvent | StreamEventRejection {
    return decodeStreamEvent(view, this);
  }

  /** A copy of `bytes` that lives as long as the caller keeps it. */
  copy(bytes: Uint8Array): Uint8Array {
    const n = bytes.length;
    if (n > SLAB_BYTES / 4) return bytes.slice();
    if (this.#offset + n > SLAB_BYTES) {
      this.#slab = new ArrayBuffer(SLAB_BYTES); // the old one lives while views of it do
      this.#offset = 0;
    }
    const out = new Uint8Array(this.#slab, this.#offset, n);
    out.set(bytes);
    this.#offset += (n + 7) & ~7;
    return out;
  }

  /** The peer address as text, interned for IPv4. */
  address(family: number, raw: Uint8Array): string {
    if (family !== 2) return formatAddress(family, raw);
    const key =
      ((raw[0]! << 24) | (raw[1]! << 16) | (raw[2]! << 8) | raw[3]!) >>> 0;
    let text = this.#ipv4.get(key);
    if (text === undefined) {
      text = formatAddress(family, raw);
      if (this.#ipv4.size >= MAX_ADDRESSES) this.#ipv4.clear();
      this.#ipv4.set(key, text);
    }
    return text;
  }
}

/** Decodes one "stream_events" record (little-endian). */
export function decodeStreamEvent(
  view: DataView,
  reader?: StreamEventReader,
): StreamEvent | StreamEventRejection {
  if (view.byteLength < STREAM_EVENT.size) return "short_record";
  const kindCode = view.getUint8(F.kind.offset);
  const kind = KIND_NAMES.get(kindCode);
  if (kind === undefined) return "bad_kind";
  const protocol = PROTOCOL_NAMES.get(view.getUint8(F.protocol.offset));
  if (protocol === undefined) return "bad_protocol";
  const sideCode = view.getUint8(F.side.offset);
  if (
    sideCode !== 0 && sideCode !== HTTP_SIDE.server &&
    sideCode !== HTTP_SIDE.client
  ) {
    return "bad_side";
  }
  // Close and fork records carry no data, so no sender.
  const sender = kind !== "data"
    ? "client"
    : SENDER_NAMES.get(view.getUint8(F.sender.offset));
  if (sender === undefined) return "bad_sender";
  const len = Math.min(
    view.getUint16(F.len.offset, true),
    view.byteLength - STREAM_EVENT.size,
  );
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  return {
    connId: view.getUint32(F.conn_id.offset + 4, true) * TWO_32 +
      view.getUint32(F.conn_id.offset, true),
    timeNs: view.getBigUint64(F.time_ns.offset, true),
    pid: view.getUint32(F.pid.offset, true),
    fd: view.getInt32(F.fd.offset, true),
    kind,
    protocol,
    side: sideCode === 0
      ? undefined
      : sideCode === HTTP_SIDE.server
      ? "server"
      : "client",
    sender,
    tls: view.getUint8(F.tls.offset) !== 0,
    size: view.getUint32(F.size.offset, true),
    data: reader === undefined
      ? bytes.slice(STREAM_EVENT.size, STREAM_EVENT.size + len)
      : reader.copy(
        bytes.subarray(STREAM_EVENT.size, STREAM_EVENT.size + len),
      ),
    localPort: view.getUint16(EP + EPF.local_port.offset, true),
    remoteAddress: (reader ?? FORMAT).address(
      view.getUint16(EP + EPF.family.offset, true),
      bytes.subarray(
        EP + EPF.remote_addr.offset,
        EP + EPF.remote_addr.offset + 16,
      ),
    ),
    remotePort: view.getUint16(EP + EPF.remote_port.offset, true),
  };
}
