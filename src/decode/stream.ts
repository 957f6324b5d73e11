/**
 * What the connection-stream parsers (PostgreSQL, MySQL, Redis, HTTP/2) are
 * fed and what they give back. The eBPF capture hands each parser the bytes
 * one traced connection moved, chunk by chunk in the order the syscalls
 * returned; a parser keeps whatever state the protocol needs (partial
 * messages, prepared statements, HPACK tables) and returns the exchanges
 * (request + response) it completed.
 *
 * A chunk may be a prefix of what the syscall moved (`bytes.length <
 * size`): the capture copies a bounded number of bytes. A parser skips the
 * missing bytes using the protocol's own framing where it can, and
 * otherwise resynchronises and counts the loss in {@linkcode StreamParser.stats};
 * it never throws on bad input and never invents a name it did not see.
 *
 * @module
 */

/** Who sent a chunk: the client of the connection or its server. */
export type StreamSender = "client" | "server";

/** Bytes one syscall (or one SSL_read/SSL_write) moved on a connection. */
export interface StreamChunk {
  sender: StreamSender;
  /** Kernel monotonic time (ns) when the bytes were handed over or arrived. */
  timeNs: bigint;
  /** The captured bytes: the first `bytes.length` of the `size` that moved. */
  bytes: Uint8Array;
  /** Bytes the syscall moved (at least `bytes.length`). */
  size: number;
}

/** Counters every stream parser keeps (monotonic, per parser instance). */
export interface StreamParserStats {
  /** Exchanges returned. */
  exchanges: number;
  /** Times the parser lost the message framing and had to resynchronise. */
  resyncs: number;
  /** Requests dropped without a response (connection reset, resync, overflow). */
  unanswered: number;
}

/** A request and its response, as one parser saw them. */
export interface StreamExchange {
  /** Time of the chunk that carried the request's first byte. */
  startNs: bigint;
  /** Time of the chunk that carried the response's first byte (or its end, per protocol). */
  endNs: bigint;
  /** Bytes of the request and of the response, as far as known. */
  requestBytes: number;
  responseBytes: number;
}

/** A parser for one connection. */
export interface StreamParser<E extends StreamExchange> {
  /** Feeds one chunk; returns the exchanges it completed (often none). */
  push(chunk: StreamChunk): E[];
  readonly stats: StreamParserStats;
}

/** Fresh zeroed stats. */
export function emptyStreamStats(): StreamParserStats {
  return { exchanges: 0, resyncs: 0, unanswered: 0 };
}
