/**
 * MySQL / MariaDB client/server protocol, one connection at a time: commands
 * (COM_QUERY, COM_STMT_PREPARE, COM_STMT_EXECUTE, …) and their responses (OK,
 * ERR, result sets) become {@linkcode MysqlExchange}s.
 *
 * Each direction is framed by the protocol's 4-byte packet header (3-byte
 * little-endian payload length, 1-byte sequence id); a packet body is skipped
 * by its length, so chunks cut by the capture (`bytes.length < size`) only
 * cost framing when the cut reaches past the current packet. Only a bounded
 * prefix of each packet is kept: the command text (up to `maxQueryBytes`),
 * the fields of ERR and OK packets, the first byte of a row.
 *
 * What is known is used, what is not is inferred: the handshake's capability
 * flags when the connection was seen from its start; otherwise result sets
 * are read so that both endings work (an EOF packet or, under
 * CLIENT_DEPRECATE_EOF, an OK packet with a 0xfe header).
 *
 * When framing is lost the parser resynchronises on the next client packet
 * that looks like a command, and on the server's next chunk after it.
 * A response whose end was lost is still returned (its first byte, and so
 * its latency, are known) once the client sends its next command, with
 * `rows` -1. Compressed connections, replication streams and TLS seen as
 * ciphertext are ignored from the point they are recognised.
 *
 * @example
 * ```ts
 * const parser = createMysqlParser();
 * for (const chunk of chunks) {
 *   for (const ex of parser.push(chunk)) {
 *     console.log(ex.command, ex.query, ex.errorCode, ex.rows);
 *   }
 * }
 * ```
 *
 * @module
 */

import {
  emptyStreamStats,
  type StreamChunk,
  type StreamExchange,
  type StreamParser,
  type StreamParserStats,
} from "./stream.ts";

/** One command and its response. */
export interface MysqlExchange extends StreamExchange {
  /**
   * "COM_QUERY", "COM_STMT_PREPARE", "COM_STMT_EXECUTE", … (COM_STMT_CLOSE,
   * COM_STMT_SEND_LONG_DATA and COM_QUIT have no response and give no
   * exchange).
   */
  command: string;
  /**
   * SQL text: COM_QUERY's and COM_STMT_PREPARE's text; for COM_STMT_EXECUTE
   * (and COM_STMT_FETCH, COM_STMT_RESET) the text of the prepared statement,
   * remembered per connection by statement id from COM_STMT_PREPARE's
   * response; "" when unknown (prepared before the capture started) or when
   * the command carries no SQL.
   */
  query: string;
  /** Error code of an ERR packet (e.g. 1146), 0 on success, -1 for an ERR whose code was not captured. */
  errorCode: number;
  /** SQL state of the ERR packet ("42S02"), "" when none. */
  sqlState: string;
  errorMessage: string;
  /**
   * Affected rows of an OK packet, or rows of a result set (summed over the
   * results of a multi-result response); -1 when unknown, after an ERR, and
   * for responses without rows (COM_STMT_PREPARE, COM_STATISTICS).
   */
  rows: number;
}

/** The counters of {@linkcode StreamParserStats} and the MySQL-specific ones. */
export interface MysqlParserStats extends StreamParserStats {
  /** Prepared statements forgotten because the per-connection map was full. */
  evictedStatements: number;
}

/** Bounds of the per-connection state. */
export interface MysqlParserOptions {
  /** Prepared statements remembered per connection (default 1024). */
  maxStatements?: number;
  /** Bytes of SQL text kept per command (default 65536). */
  maxQueryBytes?: number;
  /** Commands awaiting their response (pipelining) per connection (default 64). */
  maxPending?: number;
}

/** A MySQL stream parser; its stats include the statement-map evictions. */
export interface MysqlParser extends StreamParser<MysqlExchange> {
  readonly stats: MysqlParserStats;
}

/** Payload length of a packet that continues in the next packet. */
const MAX_PAYLOAD = 0xffffff;

const CLIENT_COMPRESS = 0x20;
const CLIENT_PROTOCOL_41 = 0x200;
const CLIENT_SSL = 0x800;
const CLIENT_DEPRECATE_EOF = 0x01000000;
const CLIENT_ZSTD_COMPRESSION = 0x04000000;
const CLIENT_QUERY_ATTRIBUTES = 0x08000000;

const SERVER_MORE_RESULTS_EXISTS = 0x0008;
const SERVER_STATUS_CURSOR_EXISTS = 0x0040;

/** Statement id MariaDB clients use for "the statement just prepared" when pipelining. */
const LAST_STATEMENT = 0xffffffff;

/** Bytes of a server payload kept: enough for an ERR message, OK, greeting. */
const SERVER_WANT = 1024;

/** Bytes judged when looking for a packet start (a command's fixed fields). */
const PROBE_CAP = 16;
const NO = 0;
const YES = 1;
const WAIT = 2;

const COM_QUERY = 0x03;
const COM_CHANGE_USER = 0x11;
const COM_BINLOG_DUMP = 0x12;
const COM_STMT_PREPARE = 0x16;
const COM_STMT_EXECUTE = 0x17;
const COM_STMT_CLOSE = 0x19;
const COM_RESET_CONNECTION = 0x1f;
const COM_BINLOG_DUMP_GTID = 0x1e;

// What a command's response looks like.
const R_NONE = 0; // no response
const R_GENERIC = 1; // OK, ERR, result set(s), LOCAL INFILE
const R_PREPARE = 2; // COM_STMT_PREPARE_OK + definitions
const R_SINGLE = 3; // exactly one packet (OK, ERR, EOF, a string)
const R_FIELDS = 4; // column definitions until EOF (COM_FIELD_LIST)
const R_FETCH = 5; // rows until EOF (COM_STMT_FETCH)
const R_AUTH = 6; // auth exchange until OK or ERR (COM_CHANGE_USER)

interface CommandInfo {
  name: string;
  reply: number;
  /** Payload length bounds, command byte included. */
  min: number;
  max: number;
  /** The payload carries a statement id at offset 1. */
  statement: boolean;
}

const COMMANDS: (CommandInfo | undefined)[] = new Array(256);
function command(
  code: number,
  name: string,
  reply: number,
  min: number,
  max = MAX_PAYLOAD,
  statement = false,
): void {
  COMMANDS[code] = { name, reply, min, max, statement };
}
command(0x01, "COM_QUIT", R_NONE, 1, 1);
command(0x02, "COM_INIT_DB", R_SINGLE, 1);
command(0x03, "COM_QUERY", R_GENERIC, 1);
command(0x04, "COM_FIELD_LIST", R_FIELDS, 2);
command(0x05, "COM_CREATE_DB", R_SINGLE, 1);
command(0x06, "COM_DROP_DB", R_SINGLE, 1);
command(0x07, "COM_REFRESH", R_SINGLE, 2, 2);
command(0x08, "COM_SHUTDOWN", R_SINGLE, 1, 2);
command(0x09, "COM_STATISTICS", R_SINGLE, 1, 1);
command(0x0a, "COM_PROCESS_INFO", R_GENERIC, 1, 1);
command(0x0c, "COM_PROCESS_KILL", R_SINGLE, 5, 5);
command(0x0d, "COM_DEBUG", R_SINGLE, 1, 1);
command(0x0e, "COM_PING", R_SINGLE, 1, 1);
command(0x11, "COM_CHANGE_USER", R_AUTH, 2);
command(0x12, "COM_BINLOG_DUMP", R_NONE, 11);
command(0x15, "COM_REGISTER_SLAVE", R_SINGLE, 1);
command(0x16, "COM_STMT_PREPARE", R_PREPARE, 1);
command(0x17, "COM_STMT_EXECUTE", R_GENERIC, 10, MAX_PAYLOAD, true);
command(0x18, "COM_STMT_SEND_LONG_DATA", R_NONE, 7, MAX_PAYLOAD, true);
command(0x19, "COM_STMT_CLOSE", R_NONE, 5, 5, true);
command(0x1a, "COM_STMT_RESET", R_SINGLE, 5, 5, true);
command(0x1b, "COM_SET_OPTION", R_SINGLE, 3, 3);
command(0x1c, "COM_STMT_FETCH", R_FETCH, 9, 9, true);
command(0x1e, "COM_BINLOG_DUMP_GTID", R_NONE, 1);
command(0x1f, "COM_RESET_CONNECTION", R_SINGLE, 1, 1);
command(0xfa, "COM_STMT_BULK_EXECUTE", R_GENERIC, 7, MAX_PAYLOAD, true);

// Where a response is.
const S_FIRST = 0; // first packet of a (next) result
const S_COLDEFS = 1; // column definitions, `left` to go
const S_AFTER_COLDEFS = 2; // EOF (no CLIENT_DEPRECATE_EOF), a row or the end
const S_ROWS = 3; // rows until EOF/OK
const S_PREP_FIRST = 4; // COM_STMT_PREPARE_OK
const S_PREP_PARAMS = 5; // parameter definitions, `left` to go
const S_PREP_MID_EOF = 6; // EOF after the parameters, or the first column
const S_PREP_COLS = 7; // column definitions, `left` to go
const S_PREP_END_EOF = 8; // the closing EOF (no CLIENT_DEPRECATE_EOF)
const S_SINGLE = 9;
const S_FIELDS = 10;
const S_AUTH = 11;
const S_LOST = 12; // framing or content lost after the response began

// Connection phase.
const P_UNKNOWN = 0; // nothing recognised yet (capture started mid-stream)
const P_HANDSHAKE = 1;
const P_COMMAND = 2;

/** A command waiting for (the rest of) its response. */
interface Pending {
  command: string;
  reply: number;
  query: string;
  startNs: bigint;
  endNs: bigint;
  requestBytes: number;
  responseBytes: number;
  /** Whether a response packet was seen (endNs is set). */
  started: boolean;
  /** Sequence id the next server packet must have; -1 when unknown. */
  nextSeq: number;
  state: number;
  /** Definitions still to come. */
  left: number;
  /** COM_STMT_PREPARE: columns announced by the PREPARE_OK. */
  columns: number;
  /** Whether the current result set sent column definitions. */
  meta: boolean;
  rows: number;
  setRows: number;
  errorCode: number;
  sqlState: string;
  errorMessage: string;
}

/** Framing state of one direction. */
interface Direction {
  isServer: boolean;
  synced: boolean;
  hdr: Uint8Array;
  hdrLen: number;
  inBody: boolean;
  len: number;
  seq: number;
  /** Body bytes still to come. */
  left: number;
  /** Body bytes to keep. */
  want: number;
  buf: Uint8Array;
  bufLen: number;
  /** The kept bytes when the whole body lay in the current chunk. */
  direct: Uint8Array | undefined;
  /** Time of the chunk with the packet's first header byte. */
  pktNs: bigint;
  /** The previous packet had a 0xffffff payload: this one continues it. */
  continuing: boolean;
  /** While not synced: the first bytes of short chunks, judged with what follows. */
  probe: Uint8Array;
  probeLen: number;
  probeNs: bigint;
}

const utf8 = new TextDecoder();

function u16(b: Uint8Array, i: number): number {
  return b[i]! | b[i + 1]! << 8;
}

function u24(b: Uint8Array, i: number): number {
  return b[i]! | b[i + 1]! << 8 | b[i + 2]! << 16;
}

function u32(b: Uint8Array, i: number): number {
  return (b[i]! | b[i + 1]! << 8 | b[i + 2]! << 16 | b[i + 3]! << 24) >>> 0;
}

/** Bytes of a length-encoded integer from its first byte; 0 when invalid (0xfb NULL, 0xff). */
function lenencSize(first: number): number {
  if (first < 0xfb) return 1;
  if (first === 0xfc) return 3;
  if (first === 0xfd) return 4;
  if (first === 0xfe) return 9;
  return 0;
}

/** A length-encoded integer at `i`; -1 when invalid or cut. */
function lenenc(b: Uint8Array, i: number): number {
  const first = b[i];
  if (first === undefined) return -1;
  const size = lenencSize(first);
  if (size === 0 || i + size > b.length) return -1;
  if (size === 1) return first;
  if (size === 3) return u16(b, i + 1);
  if (size === 4) return u24(b, i + 1);
  return u32(b, i + 1) + u32(b, i + 5) * 0x100000000;
}

/** UTF-8 text of b[start, end); when `cut`, an incomplete last character is dropped. */
function text(b: Uint8Array, start: number, end: number, cut: boolean): string {
  if (start >= end) return "";
  if (cut) {
    // Back up over continuation bytes to the last lead byte; drop it when
    // its character does not fit.
    let lead = end - 1;
    while (lead > start && (b[lead]! & 0xc0) === 0x80) lead--;
    const c = b[lead]!;
    const need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
    if (end - lead < need) end = lead;
  }
  return utf8.decode(b.subarray(start, end));
}

/** Bytes of a binary-protocol value of `type` at `i`; -1 when cut or unknown. */
function binaryValueSize(b: Uint8Array, i: number, type: number): number {
  switch (type) {
    case 6: // NULL
      return 0;
    case 1: // TINY
      return 1;
    case 2: // SHORT
    case 13: // YEAR
      return 2;
    case 3: // LONG
    case 4: // FLOAT
    case 9: // INT24
      return 4;
    case 5: // DOUBLE
    case 8: // LONGLONG
      return 8;
    case 7: // TIMESTAMP
    case 10: // DATE
    case 11: // TIME
    case 12: { // DATETIME
      const n = b[i];
      return n === undefined ? -1 : 1 + n;
    }
    default: {
      if (type !== 0 && type !== 15 && type !== 16 && type < 245) return -1;
      const n = lenenc(b, i);
      return n < 0 ? -1 : lenencSize(b[i]!) + n;
    }
  }
}

/**
 * Offset of the SQL text in a COM_QUERY payload that starts with query
 * attributes (CLIENT_QUERY_ATTRIBUTES); -1 when they cannot be read.
 */
function skipQueryAttributes(p: Uint8Array): number {
  const count = lenenc(p, 1);
  if (count < 0) return -1;
  let i = 1 + lenencSize(p[1]!);
  if (lenenc(p, i) < 0) return -1; // parameter_set_count (always 1)
  i += lenencSize(p[i]!);
  if (count === 0) return i;
  if (count > 0xffff) return -1;
  const bitmap = i;
  i += (count + 7) >> 3;
  if (i >= p.length) return -1;
  if (p[i++] !== 1) return -1; // new_params_bind_flag: types and names follow
  const types: number[] = [];
  for (let k = 0; k < count; k++) {
    if (i + 2 > p.length) return -1;
    types.push(p[i]!);
    i += 2;
    const nameLen = lenenc(p, i);
    if (nameLen < 0) return -1;
    i += lenencSize(p[i]!) + nameLen;
  }
  for (let k = 0; k < count; k++) {
    if ((p[bitmap + (k >> 3)]! >> (k & 7)) & 1) continue; // NULL: no value
    const size = binaryValueSize(p, i, types[k]!);
    if (size < 0) return -1;
    i += size;
  }
  return i <= p.length ? i : -1;
}

/** Whether the byte at `i` can start SQL text (or query attributes). */
function plausibleQueryStart(b: Uint8Array, i: number): boolean {
  const c = b[i];
  if (c === undefined) return true;
  if ((c >= 0x20 && c !== 0x7f) || c === 0x09 || c === 0x0a || c === 0x0d) {
    return true;
  }
  // Query attributes: parameter_count, then parameter_set_count = 1.
  const next = b[i + 1];
  return next === undefined || next === 1;
}

/**
 * Whether the first bytes a client sent look like a command packet: sequence
 * id 0, a known command byte and a payload length that command can have
 * (COM_QUERY, COM_STMT_PREPARE/EXECUTE/CLOSE/RESET/FETCH, COM_PING, …).
 */
export function looksLikeMysqlCommand(bytes: Uint8Array): boolean {
  if (bytes.length < 5 || bytes[3] !== 0) return false;
  const len = u24(bytes, 0);
  const info = COMMANDS[bytes[4]!];
  if (info === undefined || len < info.min || len > info.max) return false;
  switch (bytes[4]) {
    case COM_QUERY:
    case COM_STMT_PREPARE:
      return plausibleQueryStart(bytes, 5);
    case COM_STMT_EXECUTE:
      // iteration_count is always 1.
      return bytes.length < 14 ||
        (bytes[10] === 1 && bytes[11] === 0 && bytes[12] === 0 &&
          bytes[13] === 0);
  }
  return true;
}

/**
 * Whether the first bytes a server sent look like a MySQL initial handshake
 * packet (protocol 10): sequence id 0, a plausible length, 0x0a and a
 * printable server version starting with a digit ("8.0.36", "5.5.5-10.11.6-MariaDB").
 */
export function looksLikeMysqlServerGreeting(bytes: Uint8Array): boolean {
  if (bytes.length < 6 || bytes[3] !== 0 || bytes[4] !== 0x0a) return false;
  const len = u24(bytes, 0);
  if (len < 20 || len > 4096) return false;
  const first = bytes[5]!;
  if (first < 0x30 || first > 0x39) return false;
  const end = Math.min(bytes.length, 4 + len);
  for (let i = 6; i < end; i++) {
    const c = bytes[i]!;
    // After the version: connection id (4), scramble (8), filler, capabilities.
    if (c === 0) return i + 16 <= 4 + len;
    if (c < 0x20 || c > 0x7e) return false;
  }
  return end < 4 + len;
}

function newDirection(isServer: boolean): Direction {
  return {
    isServer,
    synced: false,
    hdr: new Uint8Array(4),
    hdrLen: 0,
    inBody: false,
    len: 0,
    seq: 0,
    left: 0,
    want: 0,
    buf: new Uint8Array(0),
    bufLen: 0,
    direct: undefined,
    pktNs: 0n,
    continuing: false,
    probe: new Uint8Array(PROBE_CAP),
    probeLen: 0,
    probeNs: 0n,
  };
}

function resetFraming(d: Direction): void {
  d.hdrLen = 0;
  d.inBody = false;
  d.left = 0;
  d.bufLen = 0;
  d.direct = undefined;
  d.continuing = false;
}

class MysqlStreamParser implements MysqlParser {
  readonly stats: MysqlParserStats = {
    ...emptyStreamStats(),
    evictedStatements: 0,
  };
  readonly #maxStatements: number;
  readonly #maxQueryBytes: number;
  readonly #maxPending: number;
  readonly #client = newDirection(false);
  readonly #server = newDirection(true);
  #phase = P_UNKNOWN;
  /** Nothing more is parsed (compression, replication, TLS ciphertext). */
  #off = false;
  #serverCaps = -1;
  #clientCaps = -1;
  #sslRequested = false;
  /** CLIENT_DEPRECATE_EOF: known from the handshake or learnt from a result set. */
  #deprecateEof: boolean | undefined = undefined;
  #queryAttributes: boolean | undefined = undefined;
  readonly #pending: Pending[] = [];
  /** The last command with a response: where continuation packets go. */
  #lastCommand: Pending | undefined = undefined;
  readonly #statements = new Map<number, string>();
  #lastPrepareQuery = "";
  #lastPreparedId = -1;
  /** The server's framing was lost (not merely never found): pending commands cannot be matched. */
  #serverLost = false;
  /** Sequence id of an EOF that may close the last COM_STMT_PREPARE response; -1 when none. */
  #trailingEofSeq = -1;
  // OK packet fields, set by #readOk.
  #okAffected = -1;
  #okStatus = 0;

  constructor(options: MysqlParserOptions) {
    this.#maxStatements = Math.max(1, options.maxStatements ?? 1024);
    this.#maxQueryBytes = Math.max(1, options.maxQueryBytes ?? 65536);
    this.#maxPending = Math.max(1, options.maxPending ?? 64);
  }

  push(chunk: StreamChunk): MysqlExchange[] {
    const out: MysqlExchange[] = [];
    if (this.#off) return out;
    const bytes = chunk.bytes;
    if (
      this.#phase === P_HANDSHAKE && this.#sslRequested &&
      bytes[0] === 0x16 && bytes[1] === 0x03
    ) {
      this.#off = true; // a TLS record: the rest is ciphertext
      return out;
    }
    const d = chunk.sender === "server" ? this.#server : this.#client;
    if (d.synced) this.#frame(d, chunk, out);
    else this.#hunt(d, chunk, out);
    return out;
  }

  /**
   * Looks for a packet start at this chunk (or at the short chunks kept in
   * the probe just before it, for peers that read a header at a time).
   */
  #hunt(d: Direction, chunk: StreamChunk, out: MysqlExchange[]): void {
    const bytes = chunk.bytes;
    const whole = bytes.length === chunk.size;
    if (d.isServer && this.#phase === P_COMMAND) {
      const head = this.#pending[0];
      if (head === undefined || head.state === S_LOST) {
        if (head !== undefined) head.responseBytes += chunk.size;
        d.probeLen = 0;
        return;
      }
    }
    if (d.probeLen > 0) {
      if (whole) {
        const k = Math.min(bytes.length, PROBE_CAP - d.probeLen);
        d.probe.set(bytes.subarray(0, k), d.probeLen);
        const view = d.probe.subarray(0, d.probeLen + k);
        const verdict = this.#judge(d, view);
        if (verdict === WAIT) {
          d.probeLen += k; // k === bytes.length: WAIT needs a short view
          return;
        }
        if (verdict === YES) {
          const kept = d.probe.slice(0, d.probeLen);
          d.probeLen = 0;
          this.#startFraming(d);
          this.#frame(d, {
            sender: chunk.sender,
            timeNs: d.probeNs,
            bytes: kept,
            size: kept.length,
          }, out);
          if (d.synced && !this.#off) this.#frame(d, chunk, out);
          return;
        }
      }
      d.probeLen = 0; // not a packet start, or not contiguous with this chunk
    }
    const view = bytes.subarray(0, Math.min(bytes.length, PROBE_CAP));
    const verdict = this.#judge(d, view);
    if (verdict === WAIT) {
      if (whole) {
        d.probe.set(view);
        d.probeLen = view.length;
        d.probeNs = chunk.timeNs;
      }
      return;
    }
    if (verdict === YES) {
      this.#startFraming(d);
      if (d.synced && !this.#off) this.#frame(d, chunk, out);
    }
  }

  /** Whether `view` (the first bytes seen) starts a packet this direction can resume at. */
  #judge(d: Direction, view: Uint8Array): number {
    const n = view.length;
    const complete = n >= 4 && 4 + u24(view, 0) <= n;
    if (n < 6 && !complete) return WAIT;
    if (!d.isServer) return looksLikeMysqlCommand(view) ? YES : NO;
    if (this.#phase === P_UNKNOWN) {
      return looksLikeMysqlServerGreeting(view) ? YES : NO;
    }
    const head = this.#pending[0];
    if (head === undefined || n < 5) return NO;
    if (head.nextSeq >= 0 && view[3] !== head.nextSeq) return NO;
    return plausibleResponseStart(head.reply, view[4]!, u24(view, 0))
      ? YES
      : NO;
  }

  /** Framing resumes at the next byte of `d`. */
  #startFraming(d: Direction): void {
    if (d.isServer && this.#phase === P_UNKNOWN) {
      this.#phase = P_HANDSHAKE; // the server greeting
      this.#client.synced = true;
      this.#client.probeLen = 0;
      resetFraming(this.#client);
    } else if (!d.isServer) {
      this.#enterCommandPhase();
    }
    if (d.isServer) this.#serverLost = false;
    d.synced = true;
    resetFraming(d);
  }

  /** Splits a chunk into packets and hands each to its handler. */
  #frame(d: Direction, chunk: StreamChunk, out: MysqlExchange[]): void {
    const bytes = chunk.bytes;
    const n = bytes.length;
    let i = 0;
    while (i < n && d.synced && !this.#off) {
      if (!d.inBody) {
        if (d.hdrLen === 0) {
          d.pktNs = chunk.timeNs;
          if (n - i >= 4) {
            d.len = u24(bytes, i);
            d.seq = bytes[i + 3]!;
            i += 4;
          } else {
            d.hdr[d.hdrLen++] = bytes[i++]!;
            continue;
          }
        } else {
          d.hdr[d.hdrLen++] = bytes[i++]!;
          if (d.hdrLen < 4) continue;
          d.len = u24(d.hdr, 0);
          d.seq = d.hdr[3]!;
        }
        d.hdrLen = 4;
        d.inBody = true;
        d.left = d.len;
        d.want = Math.min(d.len, this.#want(d));
        d.bufLen = 0;
        d.direct = undefined;
        if (d.len === 0) this.#endPacket(d, out);
        continue;
      }
      const take = Math.min(d.left, n - i);
      if (d.bufLen < d.want) {
        if (d.left === d.len && take === d.left) {
          d.direct = bytes.subarray(i, i + d.want); // the whole body is here
        } else {
          const k = Math.min(d.want - d.bufLen, take);
          if (d.buf.length < d.want) {
            const grown = new Uint8Array(Math.max(d.want, 64));
            grown.set(d.buf.subarray(0, d.bufLen));
            d.buf = grown;
          }
          d.buf.set(bytes.subarray(i, i + k), d.bufLen);
          d.bufLen += k;
        }
      }
      i += take;
      d.left -= take;
      if (d.left === 0) this.#endPacket(d, out);
    }
    const missing = chunk.size - n;
    if (missing <= 0 || !d.synced || this.#off) return;
    if (d.inBody && d.left >= missing) {
      d.left -= missing; // the cut ends inside this packet: skip by length
      if (d.left === 0) this.#endPacket(d, out);
      return;
    }
    const partial = d.inBody ? 4 + d.len - d.left : d.hdrLen;
    if (d.isServer) this.#loseServer(partial + missing);
    else this.#loseClient(false, out);
  }

  /** Body bytes worth keeping for the packet whose header was just read. */
  #want(d: Direction): number {
    if (d.continuing) return 0;
    if (d.isServer) return SERVER_WANT;
    if (d.seq === 0) return 1 + this.#maxQueryBytes;
    return this.#phase === P_COMMAND ? 0 : 64;
  }

  #endPacket(d: Direction, out: MysqlExchange[]): void {
    const p = d.direct ?? d.buf.subarray(0, d.bufLen);
    d.inBody = false;
    d.hdrLen = 0;
    d.direct = undefined;
    const continuation = d.continuing;
    d.continuing = d.len === MAX_PAYLOAD;
    if (d.isServer) this.#serverPacket(p, continuation, out);
    else this.#clientPacket(p, continuation, out);
  }

  #clientPacket(p: Uint8Array, continuation: boolean, out: MysqlExchange[]) {
    const d = this.#client;
    const size = 4 + d.len;
    if (continuation) {
      const last = this.#lastCommand;
      if (last !== undefined) {
        last.requestBytes += size;
        if (!last.started) last.nextSeq = (d.seq + 1) & 0xff;
      }
      return;
    }
    if (d.seq !== 0) {
      if (this.#phase !== P_COMMAND) {
        this.#handshakeResponse(p, d.len);
        return;
      }
      // LOCAL INFILE contents, auth data of COM_CHANGE_USER.
      const head = this.#pending[0];
      if (head !== undefined) {
        head.requestBytes += size;
        head.nextSeq = (d.seq + 1) & 0xff;
      }
      return;
    }
    const code = p[0];
    const info = code === undefined ? undefined : COMMANDS[code];
    if (info === undefined || d.len < info.min || d.len > info.max) {
      this.#loseClient(true, out);
      return;
    }
    this.#enterCommandPhase();
    if (this.#off) return;
    const head = this.#pending[0];
    if (
      head !== undefined &&
      (head.state === S_LOST || (this.#serverLost && !this.#server.synced))
    ) {
      this.#flush(out);
    }
    const cut = d.len > p.length;
    let query = "";
    if (code === COM_QUERY) {
      query = this.#queryText(p, cut);
    } else if (code === COM_STMT_PREPARE) {
      query = this.#text(p, 1, cut);
      this.#lastPrepareQuery = query;
    } else if (info.statement && p.length >= 5) {
      let id = u32(p, 1);
      if (id === LAST_STATEMENT) {
        // MariaDB pipelining: the statement the client prepared last.
        query = this.#lastPrepareQuery;
        id = this.#lastPreparedId;
      } else {
        const known = this.#statements.get(id);
        if (known !== undefined) {
          query = known;
          this.#statements.delete(id); // most recently used last
          this.#statements.set(id, known);
        }
      }
      if (code === COM_STMT_CLOSE) this.#statements.delete(id);
    }
    if (code === COM_RESET_CONNECTION || code === COM_CHANGE_USER) {
      this.#statements.clear();
    }
    if (info.reply === R_NONE) {
      this.#lastCommand = undefined;
      if (code === COM_BINLOG_DUMP || code === COM_BINLOG_DUMP_GTID) {
        this.#off = true; // a replication stream follows
      }
      return;
    }
    const pending: Pending = {
      command: info.name,
      reply: info.reply,
      query,
      startNs: d.pktNs,
      endNs: 0n,
      requestBytes: size,
      responseBytes: 0,
      started: false,
      nextSeq: 1,
      state: initialState(info.reply),
      left: 0,
      columns: 0,
      meta: false,
      rows: -1,
      setRows: 0,
      errorCode: 0,
      sqlState: "",
      errorMessage: "",
    };
    if (this.#pending.length >= this.#maxPending) {
      this.#pending.shift();
      this.stats.unanswered++;
    }
    this.#pending.push(pending);
    this.#lastCommand = pending;
  }

  /** SQL text of a COM_QUERY payload, after query attributes when present. */
  #queryText(p: Uint8Array, cut: boolean): string {
    let start = 1;
    const second = p[1];
    const attributes = this.#queryAttributes ??
      (second !== undefined && !plausibleText(second));
    if (attributes && second !== undefined) {
      start = skipQueryAttributes(p);
      if (start < 0) return "";
    }
    return this.#text(p, start, cut);
  }

  #text(p: Uint8Array, start: number, cut: boolean): string {
    const end = Math.min(p.length, start + this.#maxQueryBytes);
    return text(p, start, end, cut || end < p.length);
  }

  /** A client packet of the connection phase: HandshakeResponse or SSLRequest. */
  #handshakeResponse(p: Uint8Array, len: number): void {
    if (this.#clientCaps >= 0 && !this.#sslRequested) return;
    if (p.length < 4) return;
    let caps = u32(p, 0);
    if ((caps & CLIENT_PROTOCOL_41) === 0) caps &= 0xffff;
    this.#clientCaps = caps;
    this.#sslRequested = (caps & CLIENT_SSL) !== 0 && len === 32;
  }

  #enterCommandPhase(): void {
    if (this.#phase === P_COMMAND) return;
    this.#phase = P_COMMAND;
    if (this.#clientCaps < 0) return;
    const caps = this.#serverCaps < 0
      ? this.#clientCaps
      : this.#clientCaps & this.#serverCaps;
    if ((caps & (CLIENT_COMPRESS | CLIENT_ZSTD_COMPRESSION)) !== 0) {
      this.#off = true; // compressed packets: not parsed
      return;
    }
    this.#deprecateEof = (caps & CLIENT_DEPRECATE_EOF) !== 0;
    this.#queryAttributes = (caps & CLIENT_QUERY_ATTRIBUTES) !== 0;
  }

  #serverPacket(p: Uint8Array, continuation: boolean, out: MysqlExchange[]) {
    const d = this.#server;
    const size = 4 + d.len;
    if (this.#phase !== P_COMMAND) {
      this.#handshakeServer(p, d.seq);
      return;
    }
    const head = this.#pending[0];
    if (head !== undefined && head.state === S_LOST) {
      head.responseBytes += size;
      return;
    }
    if (continuation) {
      if (head === undefined || !head.started) return;
      if (head.nextSeq >= 0 && d.seq !== head.nextSeq) {
        this.#loseServer(0);
        return;
      }
      head.nextSeq = (d.seq + 1) & 0xff;
      head.responseBytes += size;
      return;
    }
    if (this.#trailingEofSeq >= 0) {
      const seq = this.#trailingEofSeq;
      this.#trailingEofSeq = -1;
      if (p[0] === 0xfe && d.len < 9 && d.seq === seq) {
        this.#deprecateEof = false;
        return;
      }
    }
    if (head === undefined) return; // unsolicited: nothing asked for it
    if (head.nextSeq >= 0 && d.seq !== head.nextSeq) {
      this.#loseServer(0);
      return;
    }
    if (!head.started) {
      head.started = true;
      head.endNs = d.pktNs;
    }
    head.nextSeq = (d.seq + 1) & 0xff;
    head.responseBytes += size;
    this.#respond(head, p, d.len, out);
  }

  /** A server packet of the connection phase. */
  #handshakeServer(p: Uint8Array, seq: number): void {
    const b0 = p[0];
    if (seq === 0 && b0 === 0x0a) {
      this.#serverCaps = greetingCapabilities(p);
    } else if (seq !== 0 && (b0 === 0x00 || b0 === 0xff)) {
      this.#enterCommandPhase(); // auth OK (or the connection fails)
    }
  }

  /** Advances `head`'s response by one packet (not a continuation). */
  #respond(
    head: Pending,
    p: Uint8Array,
    len: number,
    out: MysqlExchange[],
  ): void {
    const b0 = p.length > 0 ? p[0]! : -1;
    if (b0 === 0xff) {
      // MariaDB progress report: an ERR-shaped packet with code 0xffff.
      if (p.length >= 3 && p[1] === 0xff && p[2] === 0xff) return;
      this.#readErr(head, p);
      head.rows = -1;
      this.#finish(out);
      return;
    }
    if (b0 < 0 && len === 0) {
      this.#loseServer(0);
      return;
    }
    switch (head.state) {
      case S_FIRST:
        if (b0 < 0) break;
        if (b0 === 0x00 || b0 === 0xfe) {
          this.#readOk(p, len);
          if (this.#okAffected >= 0) {
            head.rows = Math.max(head.rows, 0) + this.#okAffected;
          }
          if ((this.#okStatus & SERVER_MORE_RESULTS_EXISTS) === 0) {
            this.#finish(out);
          }
          return;
        }
        if (b0 === 0xfb) return; // LOCAL INFILE: the client sends the file, then OK/ERR
        {
          const columns = lenenc(p, 0);
          const size = lenencSize(b0);
          if (columns < 0 && size > p.length && len >= size) break; // cut
          if (columns <= 0 || len > size + 1) {
            this.#loseServer(0);
            return;
          }
          head.setRows = 0;
          // A trailing 0 byte: "metadata follows" is off (cached metadata).
          head.meta = !(len === size + 1 && p[size] === 0);
          if (head.meta) {
            head.state = S_COLDEFS;
            head.left = columns;
          } else {
            head.state = S_AFTER_COLDEFS;
          }
        }
        return;
      case S_COLDEFS:
        if (--head.left === 0) head.state = S_AFTER_COLDEFS;
        return;
      case S_AFTER_COLDEFS:
        if (b0 < 0) break;
        if (b0 === 0xfe && len < 7) {
          if (head.meta && this.#deprecateEof === undefined) {
            this.#deprecateEof = false;
          }
          if ((eofStatus(p) & SERVER_STATUS_CURSOR_EXISTS) !== 0) {
            this.#endResultSet(head, 0, out);
          } else {
            head.state = S_ROWS;
          }
          return;
        }
        if (head.meta && this.#deprecateEof === undefined) {
          this.#deprecateEof = true;
        }
        if (b0 === 0xfe && len < MAX_PAYLOAD) {
          this.#readOk(p, len);
          this.#endResultSet(head, this.#okStatus, out);
          return;
        }
        head.setRows++;
        head.state = S_ROWS;
        return;
      case S_ROWS:
        if (b0 < 0) break;
        if (b0 === 0xfe && len < MAX_PAYLOAD) {
          let status = 0;
          if (len < 7) status = eofStatus(p);
          else {
            this.#readOk(p, len);
            status = this.#okStatus;
          }
          if (head.reply === R_FETCH) status &= ~SERVER_MORE_RESULTS_EXISTS;
          this.#endResultSet(head, status, out);
          return;
        }
        head.setRows++;
        return;
      case S_PREP_FIRST: {
        if (b0 !== 0x00 || len < 12) {
          this.#loseServer(0);
          return;
        }
        if (p.length < 9) break;
        const id = u32(p, 1);
        head.columns = u16(p, 5);
        const params = u16(p, 7);
        this.#remember(id, head.query);
        this.#lastPreparedId = id;
        if (params > 0) {
          head.state = S_PREP_PARAMS;
          head.left = params;
        } else this.#prepareParamsDone(head, false, out);
        return;
      }
      case S_PREP_PARAMS:
        if (--head.left === 0) this.#prepareParamsDone(head, true, out);
        return;
      case S_PREP_MID_EOF:
        if (b0 === 0xfe && len < 9) {
          this.#deprecateEof ??= false;
          head.state = S_PREP_COLS;
          head.left = head.columns;
          return;
        }
        this.#deprecateEof ??= true; // no EOF: this is the first column
        head.left = head.columns;
        if (--head.left === 0) this.#prepareColumnsDone(head, out);
        else head.state = S_PREP_COLS;
        return;
      case S_PREP_COLS:
        if (--head.left === 0) this.#prepareColumnsDone(head, out);
        return;
      case S_PREP_END_EOF:
        if (b0 === 0xfe && len < 9) this.#finish(out);
        else this.#loseServer(0);
        return;
      case S_SINGLE:
        if (b0 === 0x00) {
          this.#readOk(p, len);
          head.rows = this.#okAffected;
        }
        this.#finish(out);
        return;
      case S_FIELDS:
        if (b0 < 0) break;
        if (b0 === 0xfe && len < MAX_PAYLOAD) this.#finish(out);
        return;
      case S_AUTH:
        if (b0 < 0) break;
        if (b0 === 0x00) {
          this.#readOk(p, len);
          head.rows = this.#okAffected;
          this.#finish(out);
        }
        return;
    }
    // The packet's first byte was not captured: how the response goes on is unknown.
    head.state = S_LOST;
    head.rows = -1;
  }

  #prepareParamsDone(
    head: Pending,
    hadParams: boolean,
    out: MysqlExchange[],
  ): void {
    if (hadParams && this.#deprecateEof !== true) {
      if (head.columns > 0) head.state = S_PREP_MID_EOF;
      else this.#prepareEnd(head, out);
      return;
    }
    if (head.columns > 0) {
      head.state = S_PREP_COLS;
      head.left = head.columns;
    } else this.#finish(out);
  }

  #prepareColumnsDone(head: Pending, out: MysqlExchange[]): void {
    if (this.#deprecateEof === true) this.#finish(out);
    else this.#prepareEnd(head, out);
  }

  /** After the last definition of a COM_STMT_PREPARE response without CLIENT_DEPRECATE_EOF (or unknown). */
  #prepareEnd(head: Pending, out: MysqlExchange[]): void {
    if (this.#deprecateEof === false) {
      head.state = S_PREP_END_EOF;
      return;
    }
    // Unknown: done, unless the next packet is the closing EOF.
    const seq = head.nextSeq;
    this.#finish(out);
    this.#trailingEofSeq = seq;
  }

  #endResultSet(head: Pending, status: number, out: MysqlExchange[]): void {
    head.rows = Math.max(head.rows, 0) + head.setRows;
    head.setRows = 0;
    if ((status & SERVER_MORE_RESULTS_EXISTS) !== 0) head.state = S_FIRST;
    else this.#finish(out);
  }

  /** Reads an OK packet (0x00 or 0xfe header) into #okAffected and #okStatus. */
  #readOk(p: Uint8Array, len: number): void {
    this.#okAffected = -1;
    this.#okStatus = 0;
    if (len < 7 && p[0] === 0xfe) {
      this.#okStatus = eofStatus(p); // an EOF packet
      return;
    }
    const affected = lenenc(p, 1);
    if (affected < 0) return;
    this.#okAffected = affected;
    let i = 1 + lenencSize(p[1]!);
    const id = p[i];
    if (id === undefined) return;
    i += lenencSize(id);
    if (i + 2 <= p.length) this.#okStatus = u16(p, i);
  }

  #readErr(head: Pending, p: Uint8Array): void {
    head.errorCode = p.length >= 3 ? u16(p, 1) : -1;
    let start = 3;
    if (p.length >= 9 && p[3] === 0x23) {
      head.sqlState = String.fromCharCode(p[4]!, p[5]!, p[6]!, p[7]!, p[8]!);
      start = 9;
    }
    const cut = this.#server.len > p.length;
    head.errorMessage = p.length > start ? text(p, start, p.length, cut) : "";
  }

  #remember(id: number, query: string): void {
    const map = this.#statements;
    map.delete(id);
    map.set(id, query);
    if (map.size > this.#maxStatements) {
      const oldest = map.keys().next();
      if (!oldest.done) map.delete(oldest.value);
      this.stats.evictedStatements++;
    }
  }

  /** Completes the head exchange. */
  #finish(out: MysqlExchange[]): void {
    const head = this.#pending.shift();
    if (head === undefined) return;
    if (this.#lastCommand === head) this.#lastCommand = undefined;
    out.push(exchangeOf(head));
    this.stats.exchanges++;
  }

  /** Returns a head whose response end was lost; drops the other pending commands. */
  #flush(out: MysqlExchange[]): void {
    const head = this.#pending[0];
    if (head !== undefined && head.state === S_LOST) this.#finish(out);
    this.stats.unanswered += this.#pending.length;
    this.#pending.length = 0;
    this.#lastCommand = undefined;
  }

  /** Server framing lost; the head's response, if begun, ends at the next command. */
  #loseServer(extraBytes: number): void {
    const d = this.#server;
    this.stats.resyncs++;
    d.synced = false;
    this.#serverLost = true;
    this.#trailingEofSeq = -1;
    const head = this.#pending[0];
    if (head === undefined) return;
    if (
      !head.started && d.inBody &&
      (head.nextSeq < 0 || d.seq === head.nextSeq)
    ) {
      head.started = true; // its first packet was cut
      head.endNs = d.pktNs;
    }
    if (head.started) {
      head.state = S_LOST;
      head.rows = -1;
      head.responseBytes += extraBytes;
    }
  }

  /**
   * Client framing lost: by a cut chunk (pending commands stay, their
   * responses are still framed) or by garbage (pending commands dropped).
   */
  #loseClient(garbage: boolean, out: MysqlExchange[]): void {
    this.stats.resyncs++;
    this.#client.synced = false;
    this.#lastCommand = undefined;
    if (garbage) this.#flush(out);
    else {
      const head = this.#pending[0];
      if (head !== undefined && head.started) head.nextSeq = -1; // LOCAL INFILE data lost
    }
  }
}

function initialState(reply: number): number {
  switch (reply) {
    case R_PREPARE:
      return S_PREP_FIRST;
    case R_SINGLE:
      return S_SINGLE;
    case R_FIELDS:
      return S_FIELDS;
    case R_FETCH:
      return S_ROWS;
    case R_AUTH:
      return S_AUTH;
  }
  return S_FIRST;
}

/** Whether a response to a command of this kind can start with this packet. */
function plausibleResponseStart(reply: number, b0: number, len: number) {
  if (b0 === 0xff) return len >= 3;
  switch (reply) {
    case R_PREPARE:
      return b0 === 0x00 && (len === 12 || len === 13);
    case R_FETCH:
      return b0 === 0x00 || (b0 === 0xfe && len < 9);
    case R_FIELDS:
      return b0 === 0x03 || (b0 === 0xfe && len < 9);
    case R_AUTH:
      return b0 === 0x00 || b0 === 0xfe || b0 === 0x01;
    case R_SINGLE:
      return b0 === 0x00 || b0 === 0xfe || plausibleText(b0);
  }
  if (b0 === 0x00) return len >= 7;
  if (b0 === 0xfb) return len >= 1;
  const size = lenencSize(b0);
  return size > 0 && size < 9 && len >= size && len <= size + 1;
}

function plausibleText(c: number): boolean {
  return (c >= 0x20 && c !== 0x7f) || c === 0x09 || c === 0x0a || c === 0x0d;
}

/** Status flags of an EOF packet (0xfe, warnings, status). */
function eofStatus(p: Uint8Array): number {
  return p.length >= 5 ? u16(p, 3) : 0;
}

/** Capability flags of an initial handshake packet; -1 when cut. */
function greetingCapabilities(p: Uint8Array): number {
  const nul = p.indexOf(0, 1);
  if (nul < 0) return -1;
  const low = nul + 1 + 4 + 8 + 1; // connection id, scramble part 1, filler
  if (low + 2 > p.length) return -1;
  const high = low + 2 + 1 + 2; // charset, status flags
  if (high + 2 > p.length) return u16(p, low);
  return (u16(p, low) | u16(p, high) << 16) >>> 0;
}

function exchangeOf(head: Pending): MysqlExchange {
  return {
    startNs: head.startNs,
    endNs: head.endNs,
    requestBytes: head.requestBytes,
    responseBytes: head.responseBytes,
    command: head.command,
    query: head.query,
    errorCode: head.errorCode,
    sqlState: head.sqlState,
    errorMessage: head.errorMessage,
    rows: head.rows,
  };
}

/**
 * A parser for one MySQL or MariaDB connection (client/server protocol,
 * uncompressed). Feed it every chunk of the connection in order.
 */
export function createMysqlParser(
  options: MysqlParserOptions = {},
): MysqlParser {
  return new MysqlStreamParser(options);
}
