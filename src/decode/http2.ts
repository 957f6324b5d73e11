/**
 * HTTP/2 (RFC 9113) from the bytes of one connection: frames, header blocks
 * (HPACK, see {@linkcode HpackDecoder}) and one exchange per stream, for
 * gRPC and h2c. Nothing here throws on bad input; what cannot be known is
 * left out and counted.
 *
 * The capture may start mid-connection: then the client's first bytes are
 * not the preface, framing is found again on the first chunk that starts
 * with a plausible frame header, and the HPACK tables are unknown, so a
 * request whose `:method` or `:path` cannot be decoded for sure comes out
 * with `unnamed: true` (never a guessed name).
 *
 * @example
 * ```ts
 * const parser = createHttp2Parser();
 * for (const chunk of chunks) {
 *   for (const x of parser.push(chunk)) {
 *     console.log(x.streamId, x.method, x.path, x.status, x.grpcStatus);
 *   }
 * }
 * ```
 *
 * @module
 */

import { type HeaderField, HpackDecoder, type HpackResult } from "./hpack.ts";
import {
  emptyStreamStats,
  type StreamChunk,
  type StreamExchange,
  type StreamParser,
  type StreamParserStats,
} from "./stream.ts";

/** One HTTP/2 stream: its request and response. */
export interface Http2Exchange extends StreamExchange {
  /** The (odd, client-initiated) stream id. */
  streamId: number;
  /** Pseudo-headers and selected headers; undefined when the HEADERS block could not be decoded (unknown dynamic table). */
  method?: string;
  /** :path as sent, query included (gRPC: "/package.Service/Method"). */
  path?: string;
  /** :authority (or a Host header). */
  authority?: string;
  /** :scheme, "http" or "https". */
  scheme?: string;
  /** :status of the response (the final one, after any 1xx). */
  status?: number;
  /** The request's content-type, e.g. "application/grpc". */
  contentType?: string;
  /** From trailers (or a Trailers-Only response's headers). */
  grpcStatus?: number;
  /** grpc-message, percent-decoded. */
  grpcMessage?: string;
  /** Raw traceparent header value from the request. */
  traceparent?: string;
  /**
   * True when the request headers could not be decoded because the
   * connection's HPACK state is unknown (capture started mid-connection, or
   * a header block was lost): no method/path is given then, never a guess.
   * Precisely: the block was not decoded whole (unknown table entries, cut
   * or bad) and `:method` or `:path` is not among what was decoded for sure.
   */
  unnamed: boolean;
  /** The server ended the stream with a HEADERS block (trailers, as gRPC always does). */
  endedWithHeaders?: boolean;
  /** Some response header field could not be decoded (unknown HPACK table entries). */
  responseUndecoded?: boolean;
  /** RST_STREAM error code when the stream was reset, else undefined. */
  resetCode?: number;
}

/** The counters of an HTTP/2 parser. */
export interface Http2ParserStats extends StreamParserStats {
  /** Exchanges returned with `unnamed: true`. */
  unnamed: number;
  /** Times a direction's HPACK state was lost: a header block cut, bad, or possibly skipped by a resync. */
  hpackLost: number;
  /** Streams the server ended whose request HEADERS were never seen (capture started mid-stream, or lost). */
  unmatched: number;
}

/** An HTTP/2 connection parser. */
export interface Http2Parser extends StreamParser<Http2Exchange> {
  /** Counters, HTTP/2's included. */
  readonly stats: Http2ParserStats;
}

/** Bounds of {@linkcode createHttp2Parser}. */
export interface Http2ParserOptions {
  /** Open streams kept per connection; the oldest is dropped beyond. Default 1024. */
  maxStreams?: number;
  /** Header block bytes kept; a longer block is decoded up to there and breaks HPACK state. Default 65536. */
  maxHeaderBlock?: number;
  /** Header names and values are cut to this length. Default 4096. */
  maxValueLength?: number;
}

const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** The client connection preface "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n". */
export function startsWithHttp2Preface(bytes: Uint8Array): boolean {
  if (bytes.length < PREFACE.length) return false;
  for (let i = 0; i < PREFACE.length; i++) {
    if (bytes[i] !== PREFACE[i]) return false;
  }
  return true;
}

// Frame types and flags (RFC 9113 §6).
const DATA = 0;
const HEADERS = 1;
const PRIORITY = 2;
const RST_STREAM = 3;
const SETTINGS = 4;
const PUSH_PROMISE = 5;
const PING = 6;
const GOAWAY = 7;
const WINDOW_UPDATE = 8;
const CONTINUATION = 9;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY_FLAG = 0x20;
/** The flags each known type defines (for plausibility when resyncing). */
const DEFINED_FLAGS = [0x09, 0x2d, 0, 0, 0x01, 0x0c, 0x01, 0, 0, 0x04];

const EMPTY = new Uint8Array(0);
const DEFAULT_MAX_FRAME = 16384;
const MAX_FRAME_LIMIT = (1 << 24) - 1;
const DEFAULT_TABLE_SIZE = 4096;
/** Table size limit when SETTINGS were not seen, and the most we follow. */
const MAX_TABLE_SIZE = 65536;

// Where a side's reading is.
/** Client only, at the start: matching the connection preface. */
const PREFACE_MODE = 0;
/** Framing unknown: waiting for a chunk that starts with a frame header. */
const SEEK_MODE = 1;
/** At (or inside) a 9-byte frame header. */
const HEADER_MODE = 2;
/** Inside a frame's payload. */
const PAYLOAD_MODE = 3;

/** What a parser knows about one direction of the connection. */
class Side {
  mode: number;
  prefaceMatched = 0;
  /** While seeking: a chunk too short to judge, joined to the next one. */
  pending: Uint8Array | undefined;
  pendingNs = 0n;
  /** Whether seeking ever dropped bytes. */
  dropped = false;
  decoder: HpackDecoder;
  /** The table size limit the peer advertised for this side's encoder. */
  tableSizeLimit = DEFAULT_TABLE_SIZE;
  /** Largest frame this side may send (the peer's SETTINGS_MAX_FRAME_SIZE). */
  maxFrameSize = DEFAULT_MAX_FRAME;
  // The frame being read.
  header: Uint8Array = EMPTY;
  headerLength = 0;
  type = 0;
  flags = 0;
  streamId = 0;
  length = 0;
  remaining = 0;
  frameNs = 0n;
  /** Payload bytes wanted and kept in `payload`. */
  keep = 0;
  kept = 0;
  /** Payload bytes wanted were missing (or beyond `keep` for header blocks). */
  lost = false;
  payload: Uint8Array = EMPTY;
  // The header block being assembled from HEADERS/PUSH_PROMISE + CONTINUATION.
  blockActive = false;
  blockStream = 0;
  blockEndStream = false;
  blockPush = false;
  blockNs = 0n;
  blockLost = false;
  block: Uint8Array = EMPTY;
  blockLength = 0;

  constructor(readonly client: boolean, decoder: HpackDecoder) {
    this.mode = client ? PREFACE_MODE : SEEK_MODE;
    this.decoder = decoder;
  }
}

interface Stream {
  id: number;
  startNs: bigint;
  endNs?: bigint;
  requestBytes: number;
  responseBytes: number;
  responseStarted: boolean;
  unnamed: boolean;
  method?: string;
  path?: string;
  authority?: string;
  scheme?: string;
  contentType?: string;
  traceparent?: string;
  status?: number;
  grpcStatus?: number;
  grpcMessage?: string;
  endedWithHeaders?: boolean;
  responseUndecoded?: boolean;
}

/**
 * A parser for one HTTP/2 connection (cleartext, or the plaintext side of
 * TLS): one exchange per stream, emitted when the server's side of the
 * stream ends (END_STREAM) or either side resets it. `startNs` is the time
 * of the request HEADERS, `endNs` that of the response's first HEADERS (a
 * 1xx included; the time of the end or reset when there was none);
 * `requestBytes`/`responseBytes` add up the DATA payloads (padding
 * excluded) of the whole stream, so a streaming RPC is one exchange.
 */
export function createHttp2Parser(
  options: Http2ParserOptions = {},
): Http2Parser {
  return new Http2ConnectionParser(options);
}

class Http2ConnectionParser implements Http2Parser {
  readonly stats: Http2ParserStats = {
    ...emptyStreamStats(),
    unnamed: 0,
    hpackLost: 0,
    unmatched: 0,
  };
  readonly #client: Side;
  readonly #server: Side;
  readonly #streams = new Map<number, Stream>();
  readonly #maxStreams: number;
  readonly #maxBlock: number;
  readonly #maxValue: number;
  /** Header blocks decoded so far (a connection start after any is too late to trust). */
  #blocks = 0;
  #out: Http2Exchange[] = [];

  constructor(options: Http2ParserOptions) {
    this.#maxStreams = options.maxStreams ?? 1024;
    this.#maxBlock = options.maxHeaderBlock ?? 65536;
    this.#maxValue = options.maxValueLength ?? 4096;
    this.#client = new Side(true, this.#newDecoder(true, MAX_TABLE_SIZE));
    this.#server = new Side(false, this.#newDecoder(true, MAX_TABLE_SIZE));
  }

  push(chunk: StreamChunk): Http2Exchange[] {
    this.#out = [];
    const side = chunk.sender === "client" ? this.#client : this.#server;
    this.#consume(side, chunk);
    return this.#out;
  }

  #newDecoder(broken: boolean, limit: number): HpackDecoder {
    return new HpackDecoder({
      broken,
      tableSizeLimit: limit,
      maxStringLength: this.#maxValue,
    });
  }

  #consume(side: Side, chunk: StreamChunk): void {
    const bytes = chunk.bytes;
    const n = bytes.length;
    const ns = chunk.timeNs;
    let i = 0;
    if (side.mode === PREFACE_MODE) {
      const before = side.prefaceMatched;
      while (i < n && side.prefaceMatched < PREFACE.length) {
        if (bytes[i] !== PREFACE[side.prefaceMatched]) break;
        i++;
        side.prefaceMatched++;
      }
      if (side.prefaceMatched === PREFACE.length) {
        this.#connectionStart();
        side.mode = HEADER_MODE;
      } else if (i < n) {
        // Not the preface: the capture started mid-connection.
        side.mode = SEEK_MODE;
        if (before > 0 || i > 0) {
          this.stats.resyncs++;
          return; // this chunk does not start with a frame
        }
      } else {
        if (chunk.size > n) this.#loseFraming(side);
        return;
      }
    }
    if (side.mode === SEEK_MODE && !this.#seek(side, chunk)) return;
    while (i < n) {
      if (side.mode === HEADER_MODE) {
        let h: Uint8Array;
        let at: number;
        if (side.headerLength === 0 && n - i >= 9) {
          side.frameNs = ns;
          h = bytes;
          at = i;
          i += 9;
        } else {
          if (side.headerLength === 0) side.frameNs = ns;
          if (side.header.length === 0) side.header = new Uint8Array(9);
          const take = Math.min(9 - side.headerLength, n - i);
          side.header.set(bytes.subarray(i, i + take), side.headerLength);
          side.headerLength += take;
          i += take;
          if (side.headerLength < 9) break;
          h = side.header;
          at = 0;
        }
        side.headerLength = 0;
        if (!this.#startFrame(side, h, at)) {
          this.#loseFraming(side);
          return;
        }
        if (side.remaining === 0) {
          this.#finishFrame(side, EMPTY);
        } else if (n - i >= side.remaining) {
          const payload = bytes.subarray(i, i + side.keep);
          i += side.remaining;
          side.remaining = 0;
          this.#finishFrame(side, payload);
        } else {
          side.mode = PAYLOAD_MODE;
        }
      } else {
        const take = Math.min(side.remaining, n - i);
        if (!side.lost && side.kept < side.keep) {
          const copy = Math.min(take, side.keep - side.kept);
          side.payload.set(bytes.subarray(i, i + copy), side.kept);
          side.kept += copy;
        }
        side.remaining -= take;
        i += take;
        if (side.remaining === 0) {
          this.#finishFrame(side, side.payload.subarray(0, side.kept));
        }
      }
    }
    let missing = chunk.size - n;
    if (missing <= 0) return;
    if (side.mode === PAYLOAD_MODE) {
      const take = Math.min(side.remaining, missing);
      side.remaining -= take;
      missing -= take;
      if (side.kept < side.keep) side.lost = true;
      if (side.remaining === 0) {
        this.#finishFrame(side, side.payload.subarray(0, side.kept));
      }
    }
    if (missing > 0) this.#loseFraming(side);
  }

  /**
   * Whether framing is found at the start of this chunk (or of a short chunk
   * before it, whose bytes are then parsed first).
   */
  #seek(side: Side, chunk: StreamChunk): boolean {
    const bytes = chunk.bytes;
    const pending = side.pending;
    side.pending = undefined;
    if (pending !== undefined) {
      const joined = new Uint8Array(pending.length + bytes.length);
      joined.set(pending);
      joined.set(bytes, pending.length);
      if (joined.length < 9 && chunk.size === bytes.length) {
        side.pending = joined;
        return false;
      }
      if (plausibleStart(side, joined)) {
        this.#synced(side);
        this.#consume(side, {
          sender: chunk.sender,
          timeNs: side.pendingNs,
          bytes: pending,
          size: pending.length,
        });
        return true;
      }
      side.dropped = true;
    }
    if (bytes.length < 9 && chunk.size === bytes.length) {
      side.pending = bytes.slice();
      side.pendingNs = chunk.timeNs;
      return false;
    }
    if (plausibleStart(side, bytes)) {
      this.#synced(side);
      return true;
    }
    side.dropped = true;
    return false;
  }

  #synced(side: Side): void {
    side.mode = HEADER_MODE;
    side.headerLength = 0;
  }

  /**
   * Reads a frame header at h[at..at+9) and gets ready for its payload;
   * false when the header is not one a peer would send.
   */
  #startFrame(side: Side, h: Uint8Array, at: number): boolean {
    const length = (h[at]! << 16) | (h[at + 1]! << 8) | h[at + 2]!;
    const type = h[at + 3]!;
    const flags = h[at + 4]!;
    const streamId = ((h[at + 5]! & 0x7f) << 24 | (h[at + 6]! << 16) |
      (h[at + 7]! << 8) | h[at + 8]!) >>> 0;
    if (frameProblem(side, type, flags, length, streamId, false)) return false;
    side.type = type;
    side.flags = flags;
    side.streamId = streamId;
    side.length = length;
    side.remaining = length;
    side.kept = 0;
    side.lost = false;
    let keep: number;
    switch (type) {
      case DATA:
        keep = flags & PADDED ? 1 : 0;
        break;
      case HEADERS:
      case CONTINUATION:
      case PUSH_PROMISE:
        keep = this.#maxBlock;
        break;
      case SETTINGS:
        keep = 6 * 64;
        break;
      case RST_STREAM:
        keep = 4;
        break;
      case GOAWAY:
        keep = 8;
        break;
      default:
        keep = 0;
    }
    keep = Math.min(keep, length);
    side.keep = keep;
    if (side.payload.length < keep) {
      side.payload = new Uint8Array(
        Math.max(keep, 64, 2 * side.payload.length),
      );
    }
    return true;
  }

  /** A whole frame has gone by; `payload` holds the kept bytes. */
  #finishFrame(side: Side, payload: Uint8Array): void {
    side.mode = HEADER_MODE;
    const type = side.type;
    // A header block fragment is cut when bytes were missing or beyond the cap.
    const lost = side.lost || side.keep < side.length;
    if (side.blockActive && type !== CONTINUATION) {
      // A block interrupted by another frame: a protocol error; use its prefix.
      this.#endBlock(side, true);
    }
    switch (type) {
      case DATA:
        return this.#data(side, payload);
      case HEADERS:
      case PUSH_PROMISE:
        return this.#headers(side, payload, lost);
      case CONTINUATION:
        return this.#continuation(side, payload, lost);
      case RST_STREAM:
        return this.#reset(side, payload);
      case SETTINGS:
        return this.#settings(side, payload);
      case GOAWAY:
        return this.#goaway(side, payload);
    }
  }

  #data(side: Side, payload: Uint8Array): void {
    let body = side.length;
    if (side.flags & PADDED) {
      const pad = payload[0];
      body = Math.max(0, pad === undefined ? body - 1 : body - 1 - pad);
    }
    const stream = this.#streams.get(side.streamId);
    if (side.client) {
      if (stream !== undefined) stream.requestBytes += body;
      return;
    }
    if (stream !== undefined) stream.responseBytes += body;
    if (side.flags & END_STREAM) {
      this.#serverEnd(side.streamId, stream, side.frameNs);
    }
  }

  #headers(side: Side, payload: Uint8Array, lost: boolean): void {
    const flags = side.flags;
    let start = 0;
    let pad = 0;
    if (flags & PADDED) {
      pad = payload[0] ?? 0;
      start = 1;
    }
    if (side.type === PUSH_PROMISE) start += 4;
    else if (flags & PRIORITY_FLAG) start += 5;
    let end = side.length - pad;
    if (end < start) {
      // Padding longer than the payload: a protocol error, the block is lost.
      end = start;
      lost = true;
    }
    const fragment = payload.subarray(start, Math.min(end, payload.length));
    side.blockActive = true;
    side.blockStream = side.streamId;
    side.blockEndStream = (flags & END_STREAM) !== 0;
    side.blockPush = side.type === PUSH_PROMISE;
    side.blockNs = side.frameNs;
    side.blockLost = lost;
    if (flags & END_HEADERS) {
      this.#decodeBlock(side, fragment);
      return;
    }
    side.blockLength = 0;
    this.#append(side, fragment);
  }

  #continuation(side: Side, payload: Uint8Array, lost: boolean): void {
    if (!side.blockActive || side.streamId !== side.blockStream) {
      // A CONTINUATION without its HEADERS: a block was lost (or belongs to
      // another stream: a protocol error).
      if (side.blockActive) this.#endBlock(side, true);
      else this.#breakDecoder(side);
      return;
    }
    if (!side.blockLost) this.#append(side, payload);
    if (lost) side.blockLost = true;
    if (side.flags & END_HEADERS) this.#endBlock(side, side.blockLost);
  }

  /** Appends a fragment to the block being assembled, up to the cap. */
  #append(side: Side, fragment: Uint8Array): void {
    const room = this.#maxBlock - side.blockLength;
    let part = fragment;
    if (part.length > room) {
      part = part.subarray(0, room);
      side.blockLost = true;
    }
    const need = side.blockLength + part.length;
    if (side.block.length < need) {
      const grown = new Uint8Array(
        Math.min(this.#maxBlock, Math.max(need, 256, 2 * side.block.length)),
      );
      grown.set(side.block.subarray(0, side.blockLength));
      side.block = grown;
    }
    side.block.set(part, side.blockLength);
    side.blockLength = need;
  }

  #endBlock(side: Side, lost: boolean): void {
    side.blockLost ||= lost;
    this.#decodeBlock(side, side.block.subarray(0, side.blockLength));
  }

  /** Decodes the block (or, when lost, its prefix) and applies it to its stream. */
  #decodeBlock(side: Side, block: Uint8Array): void {
    side.blockActive = false;
    side.blockLength = 0;
    this.#blocks++;
    const result = side.decoder.decode(block);
    const lost = side.blockLost;
    if (lost) this.#breakDecoder(side);
    else if (result.error !== undefined) this.stats.hpackLost++;
    if (side.blockPush) return; // only kept for the HPACK state
    const sure = !lost && result.error === undefined && result.unknown === 0;
    if (side.client) this.#request(side, result, sure);
    else this.#response(side, result);
  }

  #request(side: Side, result: HpackResult, sure: boolean): void {
    const id = side.blockStream;
    if ((id & 1) === 0 || this.#streams.has(id)) return; // trailers, or not a request
    if (this.#streams.size >= this.#maxStreams) {
      for (const oldest of this.#streams.keys()) {
        this.#streams.delete(oldest);
        this.stats.unanswered++;
        break;
      }
    }
    const stream: Stream = {
      id,
      startNs: side.blockNs,
      requestBytes: 0,
      responseBytes: 0,
      responseStarted: false,
      unnamed: false,
    };
    let host: string | undefined;
    for (const { name, value } of result.headers) {
      switch (name) {
        case ":method":
          stream.method ??= value;
          break;
        case ":path":
          stream.path ??= value;
          break;
        case ":authority":
          stream.authority ??= value;
          break;
        case ":scheme":
          stream.scheme ??= value;
          break;
        case "content-type":
          stream.contentType ??= value;
          break;
        case "traceparent":
          stream.traceparent ??= value;
          break;
        case "host":
          host ??= value;
          break;
      }
    }
    stream.authority ??= host;
    if (!sure && (stream.method === undefined || stream.path === undefined)) {
      stream.unnamed = true;
      stream.method = undefined;
      stream.path = undefined;
    }
    this.#streams.set(id, stream);
  }

  #response(side: Side, result: HpackResult): void {
    const stream = this.#streams.get(side.blockStream);
    if (stream !== undefined) {
      if (!stream.responseStarted) {
        stream.responseStarted = true;
        stream.endNs = side.blockNs;
      }
      readResponseHeaders(stream, result.headers);
      if (side.blockEndStream) stream.endedWithHeaders = true;
      if (result.unknown > 0 || result.error !== undefined) {
        stream.responseUndecoded = true;
      }
    }
    if (side.blockEndStream) {
      this.#serverEnd(side.blockStream, stream, side.blockNs);
    }
  }

  /** The server ended its side of a stream (END_STREAM). */
  #serverEnd(id: number, stream: Stream | undefined, ns: bigint): void {
    if (stream === undefined) {
      if (id & 1) this.stats.unmatched++; // even: a pushed stream
      return;
    }
    this.#emit(stream, ns);
  }

  #reset(side: Side, payload: Uint8Array): void {
    const stream = this.#streams.get(side.streamId);
    if (stream === undefined) return; // may follow the stream's end
    const code = payload.length === 4 ? readUint32(payload, 0) : undefined;
    this.#emit(stream, side.frameNs, code);
  }

  #settings(side: Side, payload: Uint8Array): void {
    if (side.flags & 0x1) return; // ACK
    // This side's settings bound what its peer sends.
    const peer = side.client ? this.#server : this.#client;
    for (let at = 0; at + 6 <= payload.length; at += 6) {
      const id = (payload[at]! << 8) | payload[at + 1]!;
      const value = readUint32(payload, at + 2);
      if (id === 1) {
        // Raised only: which blocks the new limit applies to depends on
        // when the ACK arrives, and a broken decoder keeps the largest.
        peer.tableSizeLimit = Math.min(
          MAX_TABLE_SIZE,
          Math.max(peer.tableSizeLimit, value),
        );
        if (!peer.decoder.broken) {
          peer.decoder.setTableSizeLimit(peer.tableSizeLimit);
        }
      } else if (
        id === 5 && value >= DEFAULT_MAX_FRAME && value <= MAX_FRAME_LIMIT
      ) {
        peer.maxFrameSize = Math.max(peer.maxFrameSize, value);
      }
    }
  }

  #goaway(side: Side, payload: Uint8Array): void {
    if (side.client || payload.length < 4) return;
    // Client streams above the last one the server processed never will be.
    const last = readUint32(payload, 0) & 0x7fffffff;
    for (const id of [...this.#streams.keys()]) {
      if (id > last) {
        this.#streams.delete(id);
        this.stats.unanswered++;
      }
    }
  }

  #emit(stream: Stream, ns: bigint, resetCode?: number): void {
    this.#streams.delete(stream.id);
    const x: Http2Exchange = {
      startNs: stream.startNs,
      endNs: stream.endNs ?? ns,
      requestBytes: stream.requestBytes,
      responseBytes: stream.responseBytes,
      streamId: stream.id,
      unnamed: stream.unnamed,
    };
    if (stream.method !== undefined) x.method = stream.method;
    if (stream.path !== undefined) x.path = stream.path;
    if (stream.authority !== undefined) x.authority = stream.authority;
    if (stream.scheme !== undefined) x.scheme = stream.scheme;
    if (stream.status !== undefined) x.status = stream.status;
    if (stream.contentType !== undefined) x.contentType = stream.contentType;
    if (stream.grpcStatus !== undefined) x.grpcStatus = stream.grpcStatus;
    if (stream.grpcMessage !== undefined) x.grpcMessage = stream.grpcMessage;
    if (stream.traceparent !== undefined) x.traceparent = stream.traceparent;
    if (resetCode !== undefined) x.resetCode = resetCode;
    if (stream.endedWithHeaders) x.endedWithHeaders = true;
    if (stream.responseUndecoded) x.responseUndecoded = true;
    this.stats.exchanges++;
    if (stream.unnamed) this.stats.unnamed++;
    this.#out.push(x);
  }

  /** The client preface was seen: both HPACK tables start empty (unless blocks already went by). */
  #connectionStart(): void {
    if (this.#blocks > 0) return;
    for (const side of [this.#client, this.#server]) {
      side.decoder = this.#newDecoder(false, side.tableSizeLimit);
    }
    // The server's bytes start at the connection's start too: framed from
    // their first byte, unless some were dropped already.
    const server = this.#server;
    if (server.mode === SEEK_MODE && !server.dropped) {
      this.#synced(server);
      const pending = server.pending;
      server.pending = undefined;
      if (pending !== undefined) {
        this.#consume(server, {
          sender: "server",
          timeNs: server.pendingNs,
          bytes: pending,
          size: pending.length,
        });
      }
    }
  }

  /** Framing lost on one side: find it again on a later chunk; HPACK state is unknown. */
  #loseFraming(side: Side): void {
    this.stats.resyncs++;
    side.mode = SEEK_MODE;
    side.headerLength = 0;
    side.remaining = 0;
    side.blockActive = false;
    side.blockLength = 0;
    this.#breakDecoder(side);
  }

  #breakDecoder(side: Side): void {
    side.decoder.markBroken();
    side.decoder.setTableSizeLimit(MAX_TABLE_SIZE);
    this.stats.hpackLost++;
  }
}

function readUint32(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) |
    b[at + 3]!) >>> 0;
}

/**
 * Whether a frame header is one no peer would send. `strict` (when looking
 * for framing) also rejects unknown types, undefined flags, the reserved bit
 * and streams of the wrong parity.
 */
function frameProblem(
  side: Side,
  type: number,
  flags: number,
  length: number,
  streamId: number,
  strict: boolean,
): boolean {
  if (length > side.maxFrameSize) return true;
  const onStream = streamId !== 0;
  switch (type) {
    case DATA:
    case HEADERS:
      if (!onStream) return true;
      if (strict && side.client && (streamId & 1) === 0) return true;
      break;
    case CONTINUATION:
      if (!onStream) return true;
      break;
    case PRIORITY:
      if (!onStream || length !== 5) return true;
      break;
    case RST_STREAM:
      if (!onStream || length !== 4) return true;
      break;
    case SETTINGS:
      if (onStream || length % 6 !== 0 || (flags & 0x1 && length !== 0)) {
        return true;
      }
      break;
    case PUSH_PROMISE:
      if (!onStream || side.client || length < 4) return true;
      break;
    case PING:
      if (onStream || length !== 8) return true;
      break;
    case GOAWAY:
      if (onStream || length < 8) return true;
      break;
    case WINDOW_UPDATE:
      if (length !== 4) return true;
      break;
    default:
      return strict;
  }
  return strict && (flags & ~DEFINED_FLAGS[type]!) !== 0;
}

/**
 * Whether a chunk starts with a frame header and every frame header it
 * holds (by their lengths) is plausible: where framing is found again.
 */
function plausibleStart(side: Side, bytes: Uint8Array): boolean {
  let at = 0;
  let frames = 0;
  while (at + 9 <= bytes.length) {
    if (bytes[at + 5]! & 0x80) return false; // the reserved bit
    const length = (bytes[at]! << 16) | (bytes[at + 1]! << 8) | bytes[at + 2]!;
    const streamId = readUint32(bytes, at + 5);
    if (
      frameProblem(side, bytes[at + 3]!, bytes[at + 4]!, length, streamId, true)
    ) {
      return false;
    }
    frames++;
    at += 9 + length;
  }
  return frames > 0;
}

function readResponseHeaders(stream: Stream, headers: HeaderField[]): void {
  for (const { name, value } of headers) {
    switch (name) {
      case ":status": {
        const code = toInt(value);
        if (
          code !== undefined &&
          (stream.status === undefined || stream.status < 200)
        ) {
          stream.status = code;
        }
        break;
      }
      case "grpc-status": {
        const code = toInt(value);
        if (code !== undefined) stream.grpcStatus = code;
        break;
      }
      case "grpc-message":
        stream.grpcMessage = percentDecode(value);
        break;
    }
  }
}

/** A non-negative decimal of up to 9 digits, else undefined. */
function toInt(s: string): number | undefined {
  if (s.length === 0 || s.length > 9) return undefined;
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const d = s.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return undefined;
    n = n * 10 + d;
  }
  return n;
}

const utf8 = new TextDecoder();

/** gRPC's percent-encoding of grpc-message (UTF-8 octets as %XX); bad escapes stay as they are. */
function percentDecode(s: string): string {
  if (s.indexOf("%") === -1) return s;
  const out = new Uint8Array(s.length);
  let o = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x25 && i + 2 < s.length) {
      const hi = hexDigit(s.charCodeAt(i + 1));
      const lo = hexDigit(s.charCodeAt(i + 2));
      if (hi >= 0 && lo >= 0) {
        out[o++] = hi * 16 + lo;
        i += 2;
        continue;
      }
    }
    out[o++] = c & 0xff;
  }
  return utf8.decode(out.subarray(0, o));
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 70) return c - 55;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}
