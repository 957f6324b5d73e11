/**
 * PostgreSQL frontend/backend protocol v3, one parser per connection: both
 * directions in, one {@linkcode PostgresExchange} out per simple Query ('Q')
 * and per extended-protocol Execute ('E').
 *
 * Messages are a type byte and an int32 length that counts itself; bodies
 * are skipped by that length without buffering, except the few prefixes a
 * parser needs (query text up to a cap, statement and portal names, error
 * fields, command tags). The untagged startup packets (StartupMessage,
 * SSLRequest, GSSENCRequest, CancelRequest) and the server's one-byte answer
 * to SSLRequest are understood; a connection whose capture starts mid-stream
 * is picked up at the first chunk that starts with plausible messages.
 *
 * Responses are matched to requests in order: a Query waits for its
 * ReadyForQuery, an Execute for its CommandComplete, EmptyQueryResponse,
 * PortalSuspended or ErrorResponse, and a Sync for its ReadyForQuery. After an
 * ErrorResponse the server skips to Sync, so the Executes it skipped are
 * counted as unanswered.
 *
 * Lost bytes: when a chunk was cut by the capture (`bytes.length < size`) in
 * the middle of a message body, framing continues by length. When the cut
 * covers a message boundary, framing is lost and counted as a resync: the
 * requests already seen stay pending, and the server side is picked up again
 * at a chunk that ends with ReadyForQuery (the usual last write of a big
 * result; the CommandComplete or ErrorResponse just before it is read too) or
 * at the next chunk that starts with plausible messages. Garbage (an unknown
 * type byte or an impossible length) also counts a resync and drops whatever
 * was pending.
 *
 * @example
 * ```ts
 * const parser = createPostgresParser();
 * for (const chunk of chunks) {
 *   for (const ex of parser.push(chunk)) {
 *     // { query: "SELECT 1", protocol: "simple", commandTag: "SELECT 1", rows: 1, … }
 *   }
 * }
 * parser.stats; // { exchanges, resyncs, unanswered, statementsEvicted, portalsEvicted }
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

/** One query as the client sent it and the server answered it. */
export interface PostgresExchange extends StreamExchange {
  /** The SQL text as sent (raw; obfuscation happens elsewhere). "" when unknown (e.g. Execute of a statement prepared before capture started). */
  query: string;
  /** "simple" (Query 'Q') or "extended" (Parse/Bind/Execute). */
  protocol: "simple" | "extended";
  /** Name of the prepared statement ("" = unnamed). */
  statement: string;
  /** SQLSTATE of an ErrorResponse ('E', field 'C'), "" on success. */
  errorCode: string;
  /** Message of the ErrorResponse (field 'M'), "" on success. */
  errorMessage: string;
  /** Rows reported by CommandComplete's tag ("SELECT 3" → 3, "INSERT 0 1" → 1), -1 when none. */
  rows: number;
  /** The CommandComplete tag, e.g. "SELECT 3", "" when none. */
  commandTag: string;
}

/** Counters of a PostgreSQL parser: the common ones and what its bounded maps evicted. */
export interface PostgresParserStats extends StreamParserStats {
  /** Prepared statements forgotten because the connection's statement map was full. */
  statementsEvicted: number;
  /** Portals forgotten because the connection's portal map was full. */
  portalsEvicted: number;
}

/** Bounds of one connection's state. */
export interface PostgresParserOptions {
  /** Prepared statements remembered (least recently used evicted). Default 1024. */
  maxStatements?: number;
  /** Queries and Executes awaiting a response; more are counted unanswered. Default 256. */
  maxPending?: number;
  /** Bytes of query text kept per Query or Parse. Default 65536. */
  maxQueryBytes?: number;
}

/** A PostgreSQL connection parser; its stats add the evictions. */
export interface PostgresParser extends StreamParser<PostgresExchange> {
  readonly stats: PostgresParserStats;
}

/**
 * A parser for one PostgreSQL connection (both directions).
 *
 * @example
 * ```ts
 * const parser = createPostgresParser({ maxStatements: 256 });
 * const exchanges = parser.push({ sender: "client", timeNs: 1n, bytes, size: bytes.length });
 * ```
 */
export function createPostgresParser(
  options: PostgresParserOptions = {},
): PostgresParser {
  return new Parser(options);
}

/** No message is larger than PostgreSQL's MaxAllocSize (1 GiB). */
const MAX_LEN = 0x40000000;
/** The 64 KiB cap for name-only messages (names are at most 63 bytes in practice). */
const NAME_MSG_MAX = 0x10000;
const STARTUP_MAX = 10000; // MAX_STARTUP_PACKET_LENGTH
const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const CANCEL_REQUEST = 80877102;
const PROTOCOL_3 = 3;

/** Bytes of a name-bearing body kept (two names of up to NAMEDATALEN and more). */
const NAMES_CAPTURE = 320;
const ERROR_CAPTURE = 8192;
const TAG_CAPTURE = 256;
/** How far back from a trailing ReadyForQuery the message before it is looked for. */
const TAIL_SCAN = 8192;
const MAX_PORTALS = 64;

// Type bytes.
const B_ = 0x42, C_ = 0x43, D_ = 0x44, E_ = 0x45, F_ = 0x46, G_ = 0x47;
const H_ = 0x48, I_ = 0x49, N_ = 0x4e, P_ = 0x50, Q_ = 0x51, S_ = 0x53;
const T_ = 0x54, Z_ = 0x5a, A_ = 0x41, M_ = 0x4d;
const c_ = 0x63, d_ = 0x64, f_ = 0x66, s_ = 0x73;

/** Valid length (self included) per type byte: min 0 means not a type of that direction. */
interface LengthTable {
  min: Int32Array;
  max: Int32Array;
}

function lengthTable(spec: Record<string, [number, number]>): LengthTable {
  const min = new Int32Array(256);
  const max = new Int32Array(256);
  for (const [type, [lo, hi]] of Object.entries(spec)) {
    min[type.charCodeAt(0)] = lo;
    max[type.charCodeAt(0)] = hi;
  }
  return { min, max };
}

const FRONTEND = lengthTable({
  B: [12, MAX_LEN], // Bind: portal, statement, format and parameter counts
  C: [6, NAME_MSG_MAX], // Close
  D: [6, NAME_MSG_MAX], // Describe
  E: [9, NAME_MSG_MAX], // Execute: portal, max rows
  F: [14, MAX_LEN], // FunctionCall
  H: [4, 4], // Flush
  P: [8, MAX_LEN], // Parse: name, query, parameter type count
  Q: [5, MAX_LEN], // Query
  S: [4, 4], // Sync
  X: [4, 4], // Terminate
  c: [4, 4], // CopyDone
  d: [4, MAX_LEN], // CopyData
  f: [5, MAX_LEN], // CopyFail
  p: [4, MAX_LEN], // Password, SASL and GSS responses
});

const BACKEND = lengthTable({
  R: [8, MAX_LEN], // Authentication*
  K: [12, 268], // BackendKeyData (3.2 allows a key of up to 256 bytes)
  S: [6, MAX_LEN], // ParameterStatus
  Z: [5, 5], // ReadyForQuery
  T: [6, MAX_LEN], // RowDescription
  D: [6, MAX_LEN], // DataRow
  C: [5, NAME_MSG_MAX], // CommandComplete
  E: [5, MAX_LEN], // ErrorResponse
  N: [5, MAX_LEN], // NoticeResponse
  I: [4, 4], // EmptyQueryResponse
  "1": [4, 4], // ParseComplete
  "2": [4, 4], // BindComplete
  "3": [4, 4], // CloseComplete
  n: [4, 4], // NoData
  s: [4, 4], // PortalSuspended
  t: [6, MAX_LEN], // ParameterDescription
  G: [7, MAX_LEN], // CopyInResponse
  H: [7, MAX_LEN], // CopyOutResponse
  W: [7, MAX_LEN], // CopyBothResponse
  d: [4, MAX_LEN], // CopyData
  c: [4, 4], // CopyDone
  A: [10, MAX_LEN], // NotificationResponse
  V: [8, MAX_LEN], // FunctionCallResponse
  v: [12, MAX_LEN], // NegotiateProtocolVersion
});

const EMPTY = new Uint8Array(0);
const utf8 = new TextDecoder();

function int32(b: Uint8Array, i: number): number {
  return (b[i]! << 24) | (b[i + 1]! << 16) | (b[i + 2]! << 8) | b[i + 3]!;
}

function validLength(table: LengthTable, type: number, len: number): boolean {
  const min = table.min[type]!;
  return min !== 0 && len >= min && len <= table.max[type]!;
}

/** Whether an untagged packet (int32 length, int32 code) is a startup-phase request. */
function validUntagged(len: number, code: number): boolean {
  if (code === SSL_REQUEST || code === GSSENC_REQUEST) return len === 8;
  if (code === CANCEL_REQUEST) return len >= 16 && len <= 268;
  return code >>> 16 === PROTOCOL_3 && len >= 8 && len <= STARTUP_MAX;
}

/**
 * Whether `bytes` starts with valid message headers up to its end (the last
 * message may run past it): the test for a chunk to resynchronise on. A chunk
 * shorter than a header passes on its type byte alone; its header is checked
 * once complete.
 */
function startsWithMessages(bytes: Uint8Array, table: LengthTable): boolean {
  const n = bytes.length;
  let i = 0;
  while (i + 5 <= n) {
    if (!validLength(table, bytes[i]!, int32(bytes, i + 1))) return false;
    i += 1 + int32(bytes, i + 1);
  }
  return i >= n || table.min[bytes[i]!] !== 0;
}

/** Whether a complete chunk ends with ReadyForQuery ('Z', 5, status I/T/E). */
function endsWithReady(b: Uint8Array, from: number): boolean {
  const n = b.length;
  if (n - from < 6 || b[n - 6] !== Z_ || int32(b, n - 5) !== 5) return false;
  const status = b[n - 1];
  return status === I_ || status === T_ || status === E_;
}

/**
 * Start of the CommandComplete, ErrorResponse or EmptyQueryResponse that ends
 * exactly at `end` (where a trailing ReadyForQuery starts), or -1.
 */
function messageBefore(b: Uint8Array, from: number, end: number): number {
  const stop = Math.max(from, end - TAIL_SCAN);
  for (let k = end - 5; k >= stop; k--) {
    const t = b[k];
    if (t !== C_ && t !== E_ && t !== I_) continue;
    const len = int32(b, k + 1);
    if (k + 1 + len !== end) continue;
    if (t === I_ ? len === 4 : len >= 5 && b[end - 1] === 0) return k;
  }
  return -1;
}

/** UTF-8 text of bytes[start, end), a cut multi-byte character at the end dropped. */
function text(b: Uint8Array, start: number, end: number, cut: boolean): string {
  if (start >= end) return "";
  let stop = end;
  if (cut) {
    // Back off to the start of a trailing incomplete sequence.
    let k = end - 1;
    while (k > start && k > end - 4 && (b[k]! & 0xc0) === 0x80) k--;
    const lead = b[k]!;
    const size = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    if (k + size > end) stop = k;
  }
  return utf8.decode(b.subarray(start, stop));
}

/** The NUL-terminated name at `from`, or undefined when its end was not captured. */
function name(b: Uint8Array, from: number): string | undefined {
  if (from >= b.length) return undefined;
  if (b[from] === 0) return "";
  const end = b.indexOf(0, from);
  return end === -1 ? undefined : utf8.decode(b.subarray(from, end));
}

/** Rows of a command tag: its last word when that is a number ("INSERT 0 5" → 5), else -1. */
function tagRows(b: Uint8Array, start: number, end: number): number {
  let rows = 0;
  let k = end - 1;
  for (; k >= start && b[k] !== 0x20; k--) {
    const digit = b[k]! - 0x30;
    if (digit < 0 || digit > 9) return -1;
  }
  if (k === end - 1 || k < start) return -1;
  for (let i = k + 1; i < end; i++) rows = rows * 10 + b[i]! - 0x30;
  return rows;
}

/**
 * Whether the first bytes a client sent look like PostgreSQL: a
 * StartupMessage (protocol 3.x), SSLRequest, GSSENCRequest or CancelRequest,
 * or a Query ('Q') or Parse ('P') message with a plausible length.
 *
 * @example
 * ```ts
 * looksLikePostgresClient(new Uint8Array([0, 0, 0, 8, 4, 210, 22, 47])); // SSLRequest: true
 * ```
 */
export function looksLikePostgresClient(bytes: Uint8Array): boolean {
  const n = bytes.length;
  if (n < 6) return false;
  if (bytes[0] === 0) {
    return n >= 8 && validUntagged(int32(bytes, 0), int32(bytes, 4));
  }
  const type = bytes[0];
  if (type !== Q_ && type !== P_) return false;
  const len = int32(bytes, 1);
  if (!validLength(FRONTEND, type, len)) return false;
  let sql = 5;
  if (type === P_) {
    const end = bytes.indexOf(0, 5);
    if (end === -1 || end >= 1 + len) {
      return end === -1 && n < Math.min(1 + len, 5 + NAMES_CAPTURE);
    }
    sql = end + 1;
  }
  if (sql < n && sql < 1 + len) {
    const first = bytes[sql]!;
    if (first < 0x20 && first !== 0x09 && first !== 0x0a && first !== 0x0d) {
      return false;
    }
  }
  return type !== Q_ || n < 1 + len || bytes[len] === 0;
}

// Framing modes of one direction.
/** At a message boundary where the next packet may be an untagged startup one. */
const START = 0;
/** Following the framing. */
const TYPED = 1;
/** No framing: waiting for a chunk that starts with messages. */
const LOST = 2;
/** After an accepted SSLRequest/GSSENCRequest: bytes are encrypted. */
const ENCRYPTED = 3;

/** The framing state of one direction. */
class Direction {
  mode: number;
  readonly table: LengthTable;
  /** A header cut by a chunk boundary (5 bytes, 8 for untagged). */
  readonly head = new Uint8Array(8);
  headLen = 0;
  headNeed = 5;
  inBody = false;
  /** Type byte of the current message, 0 for an untagged packet. */
  type = 0;
  /** Message length (self included) of the current message. */
  len = 0;
  remaining = 0;
  /** Body bytes to keep for the current message. */
  want = 0;
  kept = 0;
  /** The kept body when it sits whole in the current chunk (no copy). */
  view: Uint8Array | undefined;
  /** The kept body when it spans chunks. */
  scratch: Uint8Array | undefined;
  /** Whether body bytes were lost to a cut chunk (the kept part is a prefix). */
  cut = false;
  /** Time of the chunk with the current message's first byte. */
  startNs = 0n;
  /** Just resynchronised: a bad first header means still lost, not garbage. */
  tentative = false;
  /** Whether a valid header was ever seen (LOST then means framing was lost, not never found). */
  synced = false;

  constructor(mode: number, table: LengthTable) {
    this.mode = mode;
    this.table = table;
  }

  resetFraming(): void {
    this.headLen = 0;
    this.inBody = false;
    this.remaining = 0;
    this.want = 0;
    this.kept = 0;
    this.view = undefined;
    this.cut = false;
    this.tentative = false;
  }

  keep(b: Uint8Array, i: number, take: number): void {
    const k = Math.min(take, this.want - this.kept);
    if (k <= 0) return;
    if (this.kept === 0 && take === this.remaining) {
      this.view = b.subarray(i, i + k);
    } else {
      const need = this.kept + k;
      if (this.scratch === undefined || this.scratch.length < need) {
        const grown = new Uint8Array(
          Math.min(
            this.want,
            Math.max(need, 2 * (this.scratch?.length ?? 256)),
          ),
        );
        if (this.scratch !== undefined) {
          grown.set(this.scratch.subarray(0, this.kept));
        }
        this.scratch = grown;
      }
      this.scratch.set(b.subarray(i, i + k), this.kept);
    }
    this.kept += k;
  }

  body(): Uint8Array {
    if (this.view !== undefined) return this.view;
    return this.scratch === undefined
      ? EMPTY
      : this.scratch.subarray(0, this.kept);
  }
}

// Kinds of pending items.
/** A simple Query: an exchange and a sync point (ReadyForQuery ends it). */
const SIMPLE = 0;
/** An Execute: an exchange ended by CommandComplete & co. */
const EXECUTE = 1;
/** A Sync (or FunctionCall, or a request lost to a cut chunk): ended by ReadyForQuery. */
const SYNC = 2;
/** Executes beyond maxPending, kept as a count so that responses stay in step. */
const OVERFLOW = 3;

interface Pending {
  kind: number;
  ex: PostgresExchange | undefined;
  answered: boolean;
  count: number;
}

interface Portal {
  statement: string;
  query: string;
}

class Parser implements PostgresParser {
  readonly stats: PostgresParserStats = {
    ...emptyStreamStats(),
    statementsEvicted: 0,
    portalsEvicted: 0,
  };
  readonly #maxStatements: number;
  readonly #maxPending: number;
  readonly #maxQuery: number;
  readonly #client = new Direction(START, FRONTEND);
  readonly #server = new Direction(LOST, BACKEND);
  /** SSLRequest or GSSENCRequest code awaiting the server's one-byte answer, else 0. */
  #awaitingAnswer = 0;
  /** Pending requests, oldest first, from #first on. */
  #queue: Pending[] = [];
  #first = 0;
  #executes = 0;
  #syncPoints = 0;
  /** After an ErrorResponse, before the client's Sync: its Executes go unanswered. */
  #skipExecutes = false;
  #statements = new Map<string, string>();
  #portals = new Map<string, Portal>();
  /** Parse/Bind/Describe/Close since the last Execute or Sync: part of the next Execute's request. */
  #batchOpen = false;
  #batchStartNs = 0n;
  #batchBytes = 0;
  #out: PostgresExchange[] = [];

  constructor(options: PostgresParserOptions) {
    this.#maxStatements = Math.max(1, options.maxStatements ?? 1024);
    this.#maxPending = Math.max(1, options.maxPending ?? 256);
    this.#maxQuery = Math.max(1, options.maxQueryBytes ?? 65536);
  }

  push(chunk: StreamChunk): PostgresExchange[] {
    const out: PostgresExchange[] = [];
    this.#out = out;
    const missing = Math.max(0, chunk.size - chunk.bytes.length);
    if (chunk.sender === "client") this.#pushClient(chunk, missing);
    else this.#pushServer(chunk, missing);
    return out;
  }

  #pushClient(chunk: StreamChunk, missing: number): void {
    const d = this.#client;
    const b = chunk.bytes;
    if (d.mode === ENCRYPTED) {
      // Plaintext again only if decrypted bytes (SSL uprobes) restart the connection.
      if (
        b.length < 8 || b[0] !== 0 || !validUntagged(int32(b, 0), int32(b, 4))
      ) {
        return;
      }
      d.mode = START;
      d.resetFraming();
      this.#server.mode = LOST;
      this.#server.resetFraming();
    }
    if (
      d.mode === START && d.headLen === 0 && !d.inBody && b.length > 0 &&
      b[0] !== 0
    ) {
      d.mode = LOST; // capture started mid-stream
    }
    if (d.mode === LOST) {
      if (b.length === 0 || !startsWithMessages(b, d.table)) return;
      d.mode = TYPED;
      d.tentative = true;
    }
    this.#frame(d, chunk, 0, missing);
  }

  #pushServer(chunk: StreamChunk, missing: number): void {
    const d = this.#server;
    const b = chunk.bytes;
    let from = 0;
    if (this.#awaitingAnswer !== 0 && b.length > 0) {
      const request = this.#awaitingAnswer;
      this.#awaitingAnswer = 0;
      const answer = b[0];
      if (answer === N_) from = 1;
      else if (
        (answer === S_ && request === SSL_REQUEST) ||
        (answer === G_ && request === GSSENC_REQUEST)
      ) {
        d.mode = ENCRYPTED;
        this.#client.mode = ENCRYPTED;
        return;
      }
      // Anything else is an ErrorResponse from a server that refused the request.
    }
    if (d.mode === ENCRYPTED) return;
    if (d.mode === LOST) {
      if (from < b.length && startsWithMessages(b.subarray(from), d.table)) {
        d.mode = TYPED;
        d.tentative = true;
      } else {
        this.#serverLostChunk(chunk, from, missing);
        return;
      }
    }
    this.#frame(d, chunk, from, missing);
  }

  /**
   * A server chunk while its framing is lost: its bytes go to the request in
   * flight; a complete chunk that ends with ReadyForQuery ends that request
   * (with the CommandComplete or ErrorResponse before it) and restores the
   * framing.
   */
  #serverLostChunk(chunk: StreamChunk, from: number, missing: number): void {
    const b = chunk.bytes;
    if (missing === 0 && endsWithReady(b, from)) {
      const ready = b.length - 6;
      const tail = messageBefore(b, from, ready);
      const at = tail === -1 ? ready : tail;
      this.#answer(chunk.timeNs, at - from);
      this.#server.mode = TYPED;
      this.#server.resetFraming();
      this.#frame(this.#server, chunk, at, 0);
      return;
    }
    this.#answer(chunk.timeNs, chunk.size - from);
  }

  /** Feeds bytes[from…] through the message framing of `d`, then skips what the capture cut. */
  #frame(
    d: Direction,
    chunk: StreamChunk,
    from: number,
    missing: number,
  ): void {
    const b = chunk.bytes;
    const n = b.length;
    const client = d === this.#client;
    let i = from;
    while (i < n) {
      if (!d.inBody) {
        if (d.headLen === 0) {
          d.startNs = chunk.timeNs;
          d.headNeed = d.mode === START && b[i] === 0 ? 8 : 5;
        }
        let h: Uint8Array;
        let at: number;
        if (d.headLen === 0 && n - i >= d.headNeed) {
          h = b;
          at = i;
          i += d.headNeed;
        } else {
          const k = Math.min(d.headNeed - d.headLen, n - i);
          d.head.set(b.subarray(i, i + k), d.headLen);
          d.headLen += k;
          i += k;
          if (d.headLen < d.headNeed) break;
          h = d.head;
          at = 0;
          d.headLen = 0;
        }
        if (!this.#begin(d, h, at, client)) return;
        if (d.remaining === 0) {
          this.#finish(d, client);
          continue;
        }
      }
      const take = Math.min(d.remaining, n - i);
      if (d.want > d.kept && !d.cut) d.keep(b, i, take);
      i += take;
      d.remaining -= take;
      if (d.remaining === 0) this.#finish(d, client);
    }
    if (missing === 0) return;
    if (d.inBody && d.remaining >= missing) {
      d.remaining -= missing;
      d.cut = true;
      if (d.remaining === 0) this.#finish(d, client);
      return;
    }
    // The cut covers a message boundary: framing is lost.
    if (d.inBody) {
      missing -= d.remaining; // the rest of this message was counted at its header
      d.cut = true;
      d.remaining = 0;
      this.#finish(d, client);
    }
    this.stats.resyncs++;
    // Requests in the cut were not seen; their answers end with a ReadyForQuery.
    if (client) this.#enqueue(SYNC, undefined);
    else this.#answer(chunk.timeNs, missing + d.headLen);
    d.mode = LOST;
    d.resetFraming();
  }

  /** Validates a header at h[at…] and starts its message; false when it is garbage. */
  #begin(d: Direction, h: Uint8Array, at: number, client: boolean): boolean {
    if (d.headNeed === 8) {
      const len = int32(h, at);
      const code = int32(h, at + 4);
      if (!validUntagged(len, code)) {
        d.mode = LOST; // not a connection start after all: wait for framing
        d.resetFraming();
        return false;
      }
      if (code === SSL_REQUEST || code === GSSENC_REQUEST) {
        this.#awaitingAnswer = code;
      } else d.mode = TYPED;
      this.#startBody(d, 0, len, len - 8, 0);
      return true;
    }
    const type = h[at]!;
    const len = int32(h, at + 1);
    if (!validLength(d.table, type, len)) {
      if (d.tentative) {
        d.mode = LOST; // a short chunk looked like a message start; it was not
        d.resetFraming();
      } else this.#garbage(d);
      return false;
    }
    d.tentative = false;
    d.synced = true;
    if (d.mode === START) d.mode = TYPED;
    if (client) {
      const want = type === Q_
        ? this.#maxQuery + 1
        : type === P_
        ? this.#maxQuery + NAMES_CAPTURE
        : type === B_ || type === E_ || type === C_
        ? NAMES_CAPTURE
        : 0;
      this.#startBody(d, type, len, len - 4, want);
    } else {
      if (type !== A_) this.#answer(d.startNs, 1 + len);
      const want = type === E_ ? ERROR_CAPTURE : type === C_ ? TAG_CAPTURE : 0;
      this.#startBody(d, type, len, len - 4, want);
    }
    return true;
  }

  #startBody(
    d: Direction,
    type: number,
    len: number,
    body: number,
    want: number,
  ): void {
    d.type = type;
    d.len = len;
    d.remaining = body;
    d.want = Math.min(want, body);
    d.kept = 0;
    d.view = undefined;
    d.cut = false;
    d.inBody = true;
  }

  #finish(d: Direction, client: boolean): void {
    const body = d.body();
    d.inBody = false;
    d.view = undefined;
    if (client) this.#clientMessage(d.type, body, d.len, d.startNs);
    else this.#serverMessage(d.type, body, d.startNs);
    // An idle connection keeps no big buffer (a long query needed it once).
    if (d.scratch !== undefined && d.scratch.length > 4096) {
      d.scratch = undefined;
    }
  }

  /** Framing broke on garbage: count it, drop what was pending, wait for a message start. */
  #garbage(d: Direction): void {
    this.stats.resyncs++;
    d.mode = LOST;
    d.resetFraming();
    const hadPending = this.#queue.length > this.#first;
    this.#dropAll();
    // The server may still answer what the client sent before the garbage.
    if (d === this.#client && hadPending) this.#enqueue(SYNC, undefined);
  }

  // --- Frontend messages ---------------------------------------------------

  #clientMessage(
    type: number,
    body: Uint8Array,
    len: number,
    startNs: bigint,
  ): void {
    switch (type) {
      case Q_: {
        this.#batchOpen = false;
        const end = body.indexOf(0);
        const cut = end === -1 || end > this.#maxQuery;
        const query = text(
          body,
          0,
          cut ? Math.min(body.length, this.#maxQuery) : end,
          cut,
        );
        this.#enqueueExchange(SIMPLE, startNs, 1 + len, query, "");
        return;
      }
      case P_: {
        this.#addToBatch(startNs, len);
        const statement = name(body, 0);
        if (statement === undefined) return;
        const from = body.indexOf(0) + 1;
        const end = body.indexOf(0, from);
        const cut = end === -1 || end - from > this.#maxQuery;
        const stop = cut ? Math.min(body.length, from + this.#maxQuery) : end;
        this.#setStatement(statement, text(body, from, stop, cut));
        return;
      }
      case B_: {
        this.#addToBatch(startNs, len);
        const portal = name(body, 0);
        if (portal === undefined) return;
        const statement = name(body, body.indexOf(0) + 1);
        if (statement === undefined) return;
        const query = this.#statements.get(statement);
        if (query !== undefined) {
          this.#statements.delete(statement); // least recently used goes first
          this.#statements.set(statement, query);
        }
        this.#setPortal(portal, { statement, query: query ?? "" });
        return;
      }
      case E_: {
        const startedNs = this.#batchOpen ? this.#batchStartNs : startNs;
        const bytes = (this.#batchOpen ? this.#batchBytes : 0) + 1 + len;
        this.#batchOpen = false;
        if (this.#skipExecutes) {
          this.stats.unanswered++;
          return;
        }
        const portalName = name(body, 0);
        const portal = portalName === undefined
          ? undefined
          : this.#portals.get(portalName);
        this.#enqueueExchange(
          EXECUTE,
          startedNs,
          bytes,
          portal?.query ?? "",
          portal?.statement ?? "",
        );
        return;
      }
      case S_:
        this.#batchOpen = false;
        this.#skipExecutes = false;
        this.#enqueueSyncPoint(SYNC, undefined);
        return;
      case C_: {
        this.#addToBatch(startNs, len);
        const which = body[0];
        const target = name(body, 1);
        if (target === undefined) return;
        if (which === S_) this.#statements.delete(target);
        else if (which === P_) this.#portals.delete(target);
        return;
      }
      case D_:
      case H_:
        this.#addToBatch(startNs, len);
        return;
      case F_:
        this.#enqueueSyncPoint(SYNC, undefined);
        return;
      case d_:
      case c_:
      case f_: {
        const head = this.#head();
        if (head?.ex !== undefined) head.ex.requestBytes += 1 + len;
        return;
      }
    }
  }

  #addToBatch(startNs: bigint, len: number): void {
    if (!this.#batchOpen) {
      this.#batchOpen = true;
      this.#batchStartNs = startNs;
      this.#batchBytes = 0;
    }
    this.#batchBytes += 1 + len;
  }

  #setStatement(statement: string, query: string): void {
    const map = this.#statements;
    if (!map.delete(statement) && map.size >= this.#maxStatements) {
      const oldest = map.keys().next();
      if (!oldest.done) map.delete(oldest.value);
      this.stats.statementsEvicted++;
    }
    map.set(statement, query);
  }

  #setPortal(portal: string, entry: Portal): void {
    const map = this.#portals;
    if (!map.delete(portal) && map.size >= MAX_PORTALS) {
      const oldest = map.keys().next();
      if (!oldest.done) map.delete(oldest.value);
      this.stats.portalsEvicted++;
    }
    map.set(portal, entry);
  }

  // --- Backend messages ----------------------------------------------------

  #serverMessage(type: number, body: Uint8Array, timeNs: bigint): void {
    switch (type) {
      case C_: {
        const end = body.indexOf(0);
        const stop = end === -1 ? body.length : end;
        this.#complete(
          utf8.decode(body.subarray(0, stop)),
          tagRows(body, 0, stop),
        );
        return;
      }
      case I_:
      case s_:
        this.#complete("", -1);
        return;
      case E_:
        this.#error(body);
        return;
      case Z_:
        this.#ready(timeNs);
        return;
    }
  }

  /** CommandComplete (or EmptyQueryResponse, PortalSuspended) for the request in front. */
  #complete(tag: string, rows: number): void {
    const head = this.#head();
    if (head === undefined) return;
    if (head.kind === SIMPLE) {
      // Several statements in one Query: the last tag wins.
      head.ex!.commandTag = tag;
      head.ex!.rows = rows;
    } else if (head.kind === EXECUTE) {
      head.ex!.commandTag = tag;
      head.ex!.rows = rows;
      this.#shift();
      this.#emit(head.ex!);
    } else if (head.kind === OVERFLOW) {
      if (--head.count === 0) this.#shift();
    }
  }

  #error(body: Uint8Array): void {
    const head = this.#head();
    if (head === undefined || head.kind === SYNC) return;
    let code = "";
    let message = "";
    for (let i = 0; i < body.length && body[i] !== 0;) {
      const field = body[i]!;
      const end = body.indexOf(0, i + 1);
      if (end === -1) {
        if (field === M_) message = text(body, i + 1, body.length, true);
        break;
      }
      if (field === C_) code = utf8.decode(body.subarray(i + 1, end));
      else if (field === M_) message = text(body, i + 1, end, false);
      i = end + 1;
    }
    if (head.kind === SIMPLE) {
      if (head.ex!.errorCode === "" && head.ex!.errorMessage === "") {
        head.ex!.errorCode = code;
        head.ex!.errorMessage = message;
      }
      return;
    }
    if (head.kind === EXECUTE) {
      head.ex!.errorCode = code;
      head.ex!.errorMessage = message;
      this.#shift();
      this.#emit(head.ex!);
    } else if (--head.count === 0) this.#shift();
    // The server now skips everything up to the client's Sync.
    for (let next = this.#head(); next !== undefined; next = this.#head()) {
      if (next.kind === EXECUTE) this.stats.unanswered++;
      else if (next.kind !== OVERFLOW) return;
      this.#shift();
    }
    this.#skipExecutes = true;
  }

  #ready(timeNs: bigint): void {
    if (this.#syncPoints === 0) return; // after authentication, or nothing seen
    for (let head = this.#shift(); head !== undefined; head = this.#shift()) {
      if (head.kind === SIMPLE) {
        if (!head.answered) head.ex!.endNs = timeNs;
        this.#emit(head.ex!);
        return;
      }
      if (head.kind === SYNC) return;
      if (head.kind === EXECUTE) this.stats.unanswered++;
    }
  }

  /** Response bytes for the request in front; the first ones set its endNs. */
  #answer(timeNs: bigint, bytes: number): void {
    const head = this.#head();
    if (head?.ex === undefined || bytes <= 0) return;
    if (!head.answered) {
      head.answered = true;
      head.ex.endNs = timeNs;
    }
    head.ex.responseBytes += bytes;
  }

  #emit(ex: PostgresExchange): void {
    this.stats.exchanges++;
    this.#out.push(ex);
  }

  // --- The pending queue ---------------------------------------------------

  #head(): Pending | undefined {
    return this.#queue[this.#first];
  }

  #shift(): Pending | undefined {
    const item = this.#queue[this.#first];
    if (item === undefined) return undefined;
    this.#first++;
    if (this.#first === this.#queue.length) {
      this.#queue.length = 0;
      this.#first = 0;
    } else if (this.#first >= 64 && this.#first * 2 >= this.#queue.length) {
      this.#queue = this.#queue.slice(this.#first);
      this.#first = 0;
    }
    if (item.kind === SIMPLE || item.kind === EXECUTE) this.#executes--;
    if (item.kind === SIMPLE || item.kind === SYNC) this.#syncPoints--;
    return item;
  }

  #enqueueExchange(
    kind: number,
    startNs: bigint,
    requestBytes: number,
    query: string,
    statement: string,
  ): void {
    if (this.#executes >= this.#maxPending) {
      this.stats.unanswered++;
      // Keep the place of its answer so that the ones after it stay in step.
      if (kind === SIMPLE) return this.#enqueueSyncPoint(SYNC, undefined);
      const tail = this.#queue[this.#queue.length - 1];
      if (
        tail !== undefined && this.#queue.length > this.#first &&
        tail.kind === OVERFLOW
      ) {
        tail.count++;
      } else this.#enqueue(OVERFLOW, undefined);
      return;
    }
    const ex: PostgresExchange = {
      startNs,
      endNs: startNs,
      requestBytes,
      responseBytes: 0,
      query,
      protocol: kind === SIMPLE ? "simple" : "extended",
      statement,
      errorCode: "",
      errorMessage: "",
      rows: -1,
      commandTag: "",
    };
    if (kind === SIMPLE) this.#enqueueSyncPoint(SIMPLE, ex);
    else this.#enqueue(EXECUTE, ex);
  }

  /**
   * A Query or Sync from the client. If the server side has lost the framing
   * it had, a new sync point means the client saw the end of the earlier ones
   * (unless it pipelines): they are dropped as unanswered.
   */
  #enqueueSyncPoint(kind: number, ex: PostgresExchange | undefined): void {
    const server = this.#server;
    if (server.mode === LOST && server.synced && this.#syncPoints > 0) {
      while (this.#syncPoints > 0) {
        const item = this.#shift()!;
        if (item.kind === SIMPLE || item.kind === EXECUTE) {
          this.stats.unanswered++;
        }
      }
    }
    this.#enqueue(kind, ex);
  }

  #enqueue(kind: number, ex: PostgresExchange | undefined): void {
    if (this.#queue.length - this.#first >= 4 * this.#maxPending) {
      this.#dropAll();
    }
    this.#queue.push({ kind, ex, answered: false, count: 1 });
    if (kind === SIMPLE || kind === EXECUTE) this.#executes++;
    if (kind === SIMPLE || kind === SYNC) this.#syncPoints++;
  }

  #dropAll(): void {
    for (let i = this.#first; i < this.#queue.length; i++) {
      const kind = this.#queue[i]!.kind;
      if (kind === SIMPLE || kind === EXECUTE) this.stats.unanswered++;
    }
    this.#queue = [];
    this.#first = 0;
    this.#executes = 0;
    this.#syncPoints = 0;
    this.#skipExecutes = false;
  }
}
