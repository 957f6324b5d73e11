/**
 * Redis (RESP2 and RESP3) from the bytes a traced connection moved: one
 * {@linkcode RedisExchange} per command, replies matched to commands in
 * order (pipelining, MULTI/EXEC), pub/sub messages and RESP3 pushes left
 * unpaired.
 *
 * Bulk string bodies are skipped by their length, never buffered, so values
 * split over many chunks or cut by the capture's copy limit (`bytes.length <
 * size`) keep the framing. Only the command name, the first key (at most
 * {@linkcode REDIS_KEY_CAP} bytes) and the error line of a reply are copied.
 * When the framing is lost (garbage, or a cut that does not end inside a bulk
 * body) the parser counts a resync and waits for a chunk that starts a
 * message again.
 *
 * @example
 * ```ts
 * const parser = createRedisParser();
 * const enc = new TextEncoder();
 * parser.push({ sender: "client", timeNs: 1n, bytes: enc.encode("*2\r\n$3\r\nGET\r\n$4\r\nuser\r\n"), size: 23 });
 * const [exchange] = parser.push({ sender: "server", timeNs: 5n, bytes: enc.encode("$-1\r\n"), size: 5 });
 * // { command: "GET", key: "user", errorPrefix: "", startNs: 1n, endNs: 5n, … }
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

/** One Redis command and its reply. */
export interface RedisExchange extends StreamExchange {
  /**
   * Upper-case command name, e.g. "GET", "SET", "HGETALL"; container
   * commands with their subcommand, e.g. "CLIENT SETNAME", "CONFIG GET".
   */
  command: string;
  /**
   * The first key argument when the command has one (at most
   * {@linkcode REDIS_KEY_CAP} bytes, UTF-8 decoded); "" otherwise. Never a
   * value, a channel or a password.
   */
  key: string;
  /** First word of an error reply ("ERR", "WRONGTYPE", "NOAUTH"…); "" on success. */
  errorPrefix: string;
  /**
   * The error line without its "-" (at most 256 bytes, and without the
   * arguments Redis echoes after ", with args beginning with:"); "" on success.
   */
  errorMessage: string;
}

/** Options of {@linkcode createRedisParser}. */
export interface RedisParserOptions {
  /** Commands waiting for a reply at most; more are counted as unanswered. Default 1024. */
  maxPending?: number;
}

/** Bytes of a key kept in {@linkcode RedisExchange.key}. */
export const REDIS_KEY_CAP = 128;

const CR = 0x0d;
const LF = 0x0a;
const STAR = 0x2a; // *
const DOLLAR = 0x24; // $
const PLUS = 0x2b; // +
const MINUS = 0x2d; // -
const COLON = 0x3a; // :
const UNDERSCORE = 0x5f; // _
const COMMA = 0x2c; // ,
const HASH = 0x23; // #
const BANG = 0x21; // !
const EQUAL = 0x3d; // =
const LPAREN = 0x28; // (
const PERCENT = 0x25; // %
const TILDE = 0x7e; // ~
const GT = 0x3e; // >
const PIPE = 0x7c; // |
const SEMI = 0x3b; // ;
const DOT = 0x2e; // .
const QMARK = 0x3f; // ?

const NAME_CAP = 32;
const NUMKEYS_CAP = 12;
const TOKEN_CAP = 8;
const ERROR_CAP = 256;
const KIND_CAP = 16;
const INLINE_CAP = 1024;
/** Redis refuses longer inline commands (PROTO_INLINE_MAX_SIZE). */
const MAX_INLINE = 64 * 1024;
/** A simple-string or error line longer than this is not Redis. */
const MAX_LINE = 1024 * 1024;
const MAX_DEPTH = 64;
const MAX_ARGS = 0x7fffffff;
const DEFAULT_MAX_PENDING = 1024;
const ARGS_ECHO = ", with args beginning with:";

// Where a command's first key is (from COMMAND INFO of Redis 7.0, plus later
// key-at-1 commands). Unknown commands have no key, except module commands
// ("JSON.GET key …"), whose first argument is their key by convention.
const KEY_NONE = 0;
const KEY_1 = 1;
const KEY_2 = 2;
const KEY_3 = 3;
const NUMKEYS_1 = 4; // numkeys at 1, first key at 2
const NUMKEYS_2 = 5; // numkeys at 2, first key at 3
const AFTER_STREAMS = 6; // the argument after STREAMS
const CONTAINER = 7; // "NAME SUB", no key
const CONTAINER_KEY_2 = 8; // "NAME SUB key" (but NAME HELP)
const CONTAINER_MEMORY = 9; // MEMORY USAGE key

const COMMAND_KEYS: ReadonlyMap<string, number> = (() => {
  const m = new Map<string, number>();
  const add = (names: string, spec: number) => {
    for (const n of names.split(" ")) m.set(n, spec);
  };
  add(
    "APPEND BITCOUNT BITFIELD BITFIELD_RO BITPOS BLMOVE BLPOP BRPOP BRPOPLPUSH " +
      "BZPOPMAX BZPOPMIN COPY DECR DECRBY DEL DUMP EXISTS EXPIRE EXPIREAT " +
      "EXPIRETIME GEOADD GEODIST GEOHASH GEOPOS GEORADIUS GEORADIUSBYMEMBER " +
      "GEORADIUSBYMEMBER_RO GEORADIUS_RO GEOSEARCH GEOSEARCHSTORE GET GETBIT " +
      "GETDEL GETEX GETRANGE GETSET HDEL HEXISTS HGET HGETALL HINCRBY " +
      "HINCRBYFLOAT HKEYS HLEN HMGET HMSET HRANDFIELD HSCAN HSET HSETNX HSTRLEN " +
      "HVALS INCR INCRBY INCRBYFLOAT LCS LINDEX LINSERT LLEN LMOVE LPOP LPOS " +
      "LPUSH LPUSHX LRANGE LREM LSET LTRIM MGET MOVE MSET MSETNX PERSIST PEXPIRE " +
      "PEXPIREAT PEXPIRETIME PFADD PFCOUNT PFMERGE PSETEX PTTL RENAME RENAMENX " +
      "RESTORE RESTORE-ASKING RPOP RPOPLPUSH RPUSH RPUSHX SADD SCARD SDIFF " +
      "SDIFFSTORE SET SETBIT SETEX SETNX SETRANGE SINTER SINTERSTORE SISMEMBER " +
      "SMEMBERS SMISMEMBER SMOVE SORT SORT_RO SPOP SRANDMEMBER SREM SSCAN STRLEN " +
      "SUBSTR SUNION SUNIONSTORE TOUCH TTL TYPE UNLINK WATCH XACK XADD " +
      "XAUTOCLAIM XCLAIM XDEL XLEN XPENDING XRANGE XREVRANGE XSETID XTRIM ZADD " +
      "ZCARD ZCOUNT ZDIFFSTORE ZINCRBY ZINTERSTORE ZLEXCOUNT ZMSCORE ZPOPMAX " +
      "ZPOPMIN ZRANDMEMBER ZRANGE ZRANGEBYLEX ZRANGEBYSCORE ZRANGESTORE ZRANK " +
      "ZREM ZREMRANGEBYLEX ZREMRANGEBYRANK ZREMRANGEBYSCORE ZREVRANGE " +
      "ZREVRANGEBYLEX ZREVRANGEBYSCORE ZREVRANK ZSCAN ZSCORE ZUNIONSTORE " +
      // Redis 7.4 and 8
      "HEXPIRE HPEXPIRE HEXPIREAT HPEXPIREAT HTTL HPTTL HEXPIRETIME " +
      "HPEXPIRETIME HPERSIST HGETDEL HGETEX HSETEX XACKDEL XDELEX VADD VCARD " +
      "VDIM VEMB VGETATTR VINFO VISMEMBER VLINKS VRANDMEMBER VREM VSETATTR VSIM",
    KEY_1,
  );
  add(
    "ASKING AUTH BGREWRITEAOF BGSAVE DBSIZE DEBUG DISCARD ECHO EXEC FAILOVER " +
      "FLUSHALL FLUSHDB HELLO INFO KEYS LASTSAVE LOLWUT MONITOR MULTI " +
      "PFSELFTEST PING PSUBSCRIBE PSYNC PUBLISH PUNSUBSCRIBE QUIT RANDOMKEY " +
      "READONLY READWRITE REPLCONF REPLICAOF RESET ROLE SAVE SCAN SELECT " +
      "SHUTDOWN SLAVEOF SUBSCRIBE SWAPDB SYNC TIME UNSUBSCRIBE UNWATCH WAIT " +
      "WAITAOF SPUBLISH SSUBSCRIBE SUNSUBSCRIBE",
    KEY_NONE,
  );
  add("BITOP PFDEBUG", KEY_2);
  add("MIGRATE", KEY_3);
  add("LMPOP SINTERCARD ZDIFF ZINTER ZINTERCARD ZMPOP ZUNION", NUMKEYS_1);
  add(
    "BLMPOP BZMPOP EVAL EVALSHA EVAL_RO EVALSHA_RO FCALL FCALL_RO",
    NUMKEYS_2,
  );
  add("XREAD XREADGROUP", AFTER_STREAMS);
  add(
    "ACL CLIENT CLUSTER COMMAND CONFIG FUNCTION LATENCY MODULE PUBSUB SCRIPT SLOWLOG",
    CONTAINER,
  );
  add("OBJECT XGROUP XINFO", CONTAINER_KEY_2);
  add("MEMORY", CONTAINER_MEMORY);
  return m;
})();

// Pub/sub commands and the first element of the replies they cause.
const SUB_SUBSCRIBE = 1;
const SUB_PSUBSCRIBE = 2;
const SUB_SSUBSCRIBE = 3;
const SUB_UNSUBSCRIBE = 4;
const SUB_PUNSUBSCRIBE = 5;
const SUB_SUNSUBSCRIBE = 6;
const SUB_MESSAGE = 7; // message, pmessage, smessage: never a reply
const SUB_KINDS = 7;

const SUBSCRIBE_COMMANDS: ReadonlyMap<string, number> = new Map([
  ["SUBSCRIBE", SUB_SUBSCRIBE],
  ["PSUBSCRIBE", SUB_PSUBSCRIBE],
  ["SSUBSCRIBE", SUB_SSUBSCRIBE],
  ["UNSUBSCRIBE", SUB_UNSUBSCRIBE],
  ["PUNSUBSCRIBE", SUB_PUNSUBSCRIBE],
  ["SUNSUBSCRIBE", SUB_SUNSUBSCRIBE],
]);

const PUSH_KINDS: ReadonlyMap<string, number> = new Map([
  ["subscribe", SUB_SUBSCRIBE],
  ["psubscribe", SUB_PSUBSCRIBE],
  ["ssubscribe", SUB_SSUBSCRIBE],
  ["unsubscribe", SUB_UNSUBSCRIBE],
  ["punsubscribe", SUB_PUNSUBSCRIBE],
  ["sunsubscribe", SUB_SUNSUBSCRIBE],
  ["message", SUB_MESSAGE],
  ["pmessage", SUB_MESSAGE],
  ["smessage", SUB_MESSAGE],
]);

const utf8 = new TextDecoder();

/** ASCII upper case of bytes (which are at most NAME_CAP long). */
function upperAscii(bytes: Uint8Array, scratch: Uint8Array): string {
  const n = bytes.length;
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    scratch[i] = b >= 0x61 && b <= 0x7a ? b - 0x20 : b;
  }
  return String.fromCharCode.apply(
    null,
    scratch.subarray(0, n) as unknown as number[],
  );
}

/** Latin-1 text of a few bytes (reply kinds such as "subscribe"). */
function latin1(bytes: Uint8Array): string {
  return String.fromCharCode.apply(null, bytes as unknown as number[]);
}

/** A subcommand worth naming: letters, digits, "-" and "_". */
function isToken(bytes: Uint8Array): boolean {
  if (bytes.length === 0) return false;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]! | 0x20;
    if (!((b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b === 0x2d)) {
      if (bytes[i] !== UNDERSCORE) return false;
    }
  }
  return true;
}

/** A non-negative decimal of at most a few digits, or -1. */
function smallInt(bytes: Uint8Array): number {
  if (bytes.length === 0 || bytes.length > 9) return -1;
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const d = bytes[i]! - 0x30;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}

/** Whether bytes spell "STREAMS" in any case. */
function isStreamsToken(bytes: Uint8Array): boolean {
  if (bytes.length !== 7) return false;
  const word = "STREAMS";
  for (let i = 0; i < 7; i++) {
    if ((bytes[i]! & 0xdf) !== word.charCodeAt(i)) return false;
  }
  return true;
}

/** Whether b can start an inline command (Redis-cli never sends one; humans and health checks do). */
function isLetter(b: number): boolean {
  const l = b | 0x20;
  return l >= 0x61 && l <= 0x7a;
}

/** Whether b starts a RESP value at the top level of a reply. */
function isReplyStart(b: number): boolean {
  switch (b) {
    case PLUS:
    case MINUS:
    case COLON:
    case DOLLAR:
    case STAR:
    case UNDERSCORE:
    case COMMA:
    case HASH:
    case BANG:
    case EQUAL:
    case LPAREN:
    case PERCENT:
    case TILDE:
    case GT:
      return true;
  }
  return false;
}

/** "-ERR unknown command 'x', with args beginning with: 'secret'" → prefix and message without the echoed arguments. */
function splitError(line: string): [string, string] {
  const echo = line.indexOf(ARGS_ECHO);
  const message = echo === -1 ? line : line.slice(0, echo);
  const sp = message.indexOf(" ");
  return [sp === -1 ? message : message.slice(0, sp), message];
}

/** Incremental reader of a RESP length line: digits, "-1", or "?", then CRLF. */
class LengthReader {
  value = 0;
  negative = false;
  streamed = false;
  private digits = 0;
  private cr = false;

  reset(): void {
    this.value = 0;
    this.negative = false;
    this.streamed = false;
    this.digits = 0;
    this.cr = false;
  }

  /**
   * Reads on from bytes[pos]. Returns the position after the LF when the
   * line is complete, `bytes.length + 1` when it goes on in the next chunk,
   * -1 when it is no length line.
   */
  feed(bytes: Uint8Array, pos: number): number {
    const len = bytes.length;
    for (; pos < len; pos++) {
      const b = bytes[pos]!;
      if (this.cr) return b === LF ? pos + 1 : -1;
      if (b >= 0x30 && b <= 0x39) {
        if (this.streamed || this.digits >= 15) return -1;
        this.value = this.value * 10 + (b - 0x30);
        this.digits++;
      } else if (b === CR) {
        if (this.digits === 0 && !this.streamed) return -1;
        this.cr = true;
      } else if (this.digits !== 0 || this.negative || this.streamed) {
        return -1;
      } else if (b === MINUS) this.negative = true;
      else if (b === QMARK) this.streamed = true;
      else return -1;
    }
    return len + 1;
  }
}

/** A command waiting for its reply. */
interface Pending {
  command: string;
  key: string;
  startNs: bigint;
  bytes: number;
  /** False when the command's name was not seen whole (cut by the capture). */
  known: boolean;
  /** SUB_* of a pub/sub command, 0 otherwise. */
  subKind: number;
  /** Channels named by a pub/sub command (each gets its own confirmation). */
  channels: number;
  /** Replies to skip before this command's (commands dropped on overflow). */
  skipBefore: number;
}

// Client states.
const C_IDLE = 0;
const C_COUNT = 1;
const C_ARG_TYPE = 2;
const C_ARG_LEN = 3;
const C_ARG_BODY = 4;
const C_INLINE = 5;
const C_LOST = 6;

// Server states.
const S_TYPE = 0;
const S_HEADER = 1;
const S_LINE = 2;
const S_BODY = 3;
const S_LOST = 4;

// What the server side copies of the value being read.
const CAP_NONE = 0;
const CAP_ERROR = 1;
const CAP_KIND = 2;
const CAP_COUNT = 3;

/**
 * A parser for one Redis connection. Feed it both directions in order; it
 * returns an exchange when a command's reply is complete.
 *
 * - Pipelined commands are answered in order; MULTI's commands each get
 *   their "+QUEUED", EXEC its array.
 * - SUBSCRIBE/PSUBSCRIBE/SSUBSCRIBE (and the UNSUBSCRIBE family) are
 *   answered by their first confirmation; the other confirmations, published
 *   messages and RESP3 pushes ('>') are not replies and pair with nothing.
 *   RESP3 attributes ('|') are counted in the reply they precede.
 * - On garbage the pending commands are dropped (counted as unanswered) and
 *   the side that lost the framing waits for a chunk that starts with '*'
 *   (client) or a reply type byte (server), sent after the other side spoke.
 * - A cut (`bytes.length < size`) that does not end inside a bulk body also
 *   loses the framing: a command cut so still waits for its reply (the server
 *   got it whole); a reply cut so still completes its exchange, and the
 *   commands after it are dropped.
 */
export function createRedisParser(
  options: RedisParserOptions = {},
): StreamParser<RedisExchange> {
  return new RedisParser(options.maxPending ?? DEFAULT_MAX_PENDING);
}

class RedisParser implements StreamParser<RedisExchange> {
  readonly stats: StreamParserStats = emptyStreamStats();
  private readonly maxPending: number;
  private out: RedisExchange[] = [];

  // Commands waiting for replies: queue[head..].
  private queue: Pending[] = [];
  private head = 0;
  /** Commands dropped on overflow after the last queued one. */
  private tailSkip = 0;
  /** Pub/sub confirmations still due to an answered command, per SUB_*. */
  private readonly extraConfirms = new Int32Array(SUB_KINDS + 1);
  /** RESP2 subscribed mode: arrays may be published messages. */
  private subscribed = false;
  private clientSpoke = false;
  private serverSpoke = false;

  // Client side.
  private cState = C_IDLE;
  private readonly cLen = new LengthReader();
  private cStart = 0; // where the current command began in this chunk
  private cStartNs = 0n;
  private cBytes = 0;
  private cArgs = 0;
  private cArgIndex = 0;
  private cArgLen = 0;
  private cBodyLeft = 0;
  private cCapWant = 0;
  private cCapLen = 0;
  private readonly cCap = new Uint8Array(INLINE_CAP);
  private readonly scratch = new Uint8Array(NAME_CAP);
  private cInlineLen = 0;
  private cName = "";
  private cKnown = false;
  private cKey = "";
  private cSpec = KEY_NONE;
  private cKeyAt = -1;
  private cNumkeysAt = -1;
  private cSubKind = 0;

  // Server side.
  private sState = S_TYPE;
  private readonly sLen = new LengthReader();
  private sType = 0; // type byte of the value being read
  private readonly sLeft = new Float64Array(MAX_DEPTH); // elements left, -1 = streamed
  private readonly sTotal = new Float64Array(MAX_DEPTH);
  private readonly sAttr = new Uint8Array(MAX_DEPTH);
  private sDepth = 0;
  private sStreamedString = false;
  private sBodyLeft = 0;
  private sBodyLen = 0;
  private sLineLen = 0;
  private sCapTarget = CAP_NONE;
  private sCapWant = 0;
  private sCapLen = 0;
  private readonly sCap = new Uint8Array(ERROR_CAP);
  // The reply being read.
  private rActive = false;
  private rStart = 0;
  private rStartNs = 0n;
  private rBytes = 0;
  private rType = 0; // type byte of the reply proper (0 while only an attribute was read)
  private rClassify = false; // may be a pub/sub message or confirmation
  private rKind = 0;
  private rCountZero = false;
  private rError = "";

  constructor(maxPending: number) {
    this.maxPending = Math.max(1, maxPending);
  }

  push(chunk: StreamChunk): RedisExchange[] {
    const out: RedisExchange[] = [];
    this.out = out;
    const size = Math.max(chunk.size, chunk.bytes.length);
    try {
      if (chunk.sender === "client") {
        this.clientSpoke = true;
        this.pushClient(chunk.bytes, size - chunk.bytes.length, chunk.timeNs);
      } else {
        this.serverSpoke = true;
        this.pushServer(chunk.bytes, size - chunk.bytes.length, chunk.timeNs);
      }
    } catch {
      // Not expected; the bytes are untrusted, so start over rather than throw.
      this.stats.resyncs++;
      this.dropPending();
      this.resetClient(C_LOST);
      this.resetServer(S_LOST);
      this.clientSpoke = false;
      this.serverSpoke = false;
    }
    return out;
  }

  // ---- pending queue ------------------------------------------------------

  private enqueue(p: Pending): void {
    if (this.queue.length - this.head >= this.maxPending) {
      this.stats.unanswered++;
      this.tailSkip++;
      return;
    }
    p.skipBefore = this.tailSkip;
    this.tailSkip = 0;
    this.queue.push(p);
  }

  private peek(): Pending | undefined {
    const p = this.queue[this.head];
    return p !== undefined && p.skipBefore === 0 ? p : undefined;
  }

  /** Takes the command the next reply answers; undefined when it answers a dropped one or none. */
  private take(): Pending | undefined {
    const p = this.queue[this.head];
    if (p === undefined) {
      if (this.tailSkip > 0) this.tailSkip--;
      return undefined;
    }
    if (p.skipBefore > 0) {
      p.skipBefore--;
      return undefined;
    }
    this.head++;
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    } else if (this.head >= 1024) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
    return p;
  }

  private dropPending(): void {
    this.stats.unanswered += this.queue.length - this.head;
    this.queue.length = 0;
    this.head = 0;
    this.tailSkip = 0;
    this.extraConfirms.fill(0);
  }

  private emit(p: Pending, errorLine: string, endNs: bigint, bytes: number) {
    if (!p.known) {
      this.stats.unanswered++;
      return;
    }
    const [errorPrefix, errorMessage] = errorLine === ""
      ? ["", ""]
      : splitError(errorLine);
    this.stats.exchanges++;
    this.out.push({
      startNs: p.startNs,
      endNs,
      requestBytes: p.bytes,
      responseBytes: bytes,
      command: p.command,
      key: p.key,
      errorPrefix,
      errorMessage,
    });
  }

  // ---- client side --------------------------------------------------------

  private resetClient(state: number): void {
    this.cState = state;
    this.cName = "";
    this.cKnown = false;
    this.cKey = "";
    this.cSpec = KEY_NONE;
    this.cKeyAt = -1;
    this.cNumkeysAt = -1;
    this.cSubKind = 0;
    this.cBytes = 0;
    this.cArgs = 0;
    this.cArgIndex = 0;
  }

  private beginCommand(pos: number, timeNs: bigint, state: number): void {
    this.resetClient(state);
    this.cStart = pos;
    this.cStartNs = timeNs;
  }

  private endCommand(end: number): void {
    this.cBytes += end - this.cStart;
    this.enqueue({
      command: this.cName,
      key: this.cKey,
      startNs: this.cStartNs,
      bytes: this.cBytes,
      known: this.cKnown,
      subKind: this.cSubKind,
      channels: this.cArgs - 1,
      skipBefore: 0,
    });
    this.resetClient(C_IDLE);
  }

  /** The client lost the framing; a command cut by the capture still waits for its reply. */
  private clientLost(cut: boolean): void {
    this.stats.resyncs++;
    if (!cut) this.dropPending();
    else if (this.cState !== C_IDLE) {
      if (this.cState === C_INLINE) this.cKnown = false;
      this.endCommand(this.cStart);
    }
    this.resetClient(C_LOST);
    this.serverSpoke = false;
  }

  private pushClient(bytes: Uint8Array, gap: number, timeNs: bigint): void {
    const len = bytes.length;
    let pos = 0;
    if (this.cState === C_LOST) {
      if (len === 0 || bytes[0] !== STAR || !this.serverSpoke) return;
      this.cState = C_IDLE;
    }
    this.cStart = 0;
    while (pos < len) {
      switch (this.cState) {
        case C_IDLE: {
          const b = bytes[pos]!;
          if (b === STAR) {
            this.beginCommand(pos, timeNs, C_COUNT);
            this.cLen.reset();
            pos++;
          } else if (b === CR || b === LF) pos++;
          else if (isLetter(b)) {
            this.beginCommand(pos, timeNs, C_INLINE);
            this.cInlineLen = 0;
          } else return this.clientLost(false);
          break;
        }
        case C_COUNT: {
          pos = this.cLen.feed(bytes, pos);
          if (pos < 0) return this.clientLost(false);
          if (pos > len) break;
          const n = this.cLen.value;
          if (this.cLen.streamed || n > MAX_ARGS) return this.clientLost(false);
          if (this.cLen.negative || n === 0) {
            this.resetClient(C_IDLE); // "*0" and "*-1" are no command
            break;
          }
          this.cArgs = n;
          this.cState = C_ARG_TYPE;
          break;
        }
        case C_ARG_TYPE:
          if (bytes[pos] !== DOLLAR) return this.clientLost(false);
          pos++;
          this.cLen.reset();
          this.cState = C_ARG_LEN;
          break;
        case C_ARG_LEN: {
          pos = this.cLen.feed(bytes, pos);
          if (pos < 0) return this.clientLost(false);
          if (pos > len) break;
          if (this.cLen.negative || this.cLen.streamed) {
            return this.clientLost(false);
          }
          this.cArgLen = this.cLen.value;
          this.cBodyLeft = this.cArgLen + 2;
          this.cCapWant = Math.min(
            this.captureWant(this.cArgIndex),
            this.cArgLen,
          );
          this.cCapLen = 0;
          this.cState = C_ARG_BODY;
          break;
        }
        case C_ARG_BODY: {
          const take = Math.min(this.cBodyLeft, len - pos);
          const done = this.cArgLen + 2 - this.cBodyLeft;
          if (this.cCapLen === done && this.cCapLen < this.cCapWant) {
            const n = Math.min(take, this.cCapWant - this.cCapLen);
            this.cCap.set(bytes.subarray(pos, pos + n), this.cCapLen);
            this.cCapLen += n;
          }
          const cr = pos + this.cArgLen - done; // where the body's CRLF is
          const end = pos + take;
          if (
            (cr >= pos && cr < end && bytes[cr] !== CR) ||
            (cr + 1 >= pos && cr + 1 < end && bytes[cr + 1] !== LF)
          ) return this.clientLost(false);
          pos = end;
          this.cBodyLeft -= take;
          if (this.cBodyLeft === 0) this.argDone(pos);
          break;
        }
        case C_INLINE: {
          const lf = bytes.indexOf(LF, pos);
          const end = lf === -1 ? len : lf;
          if (this.cInlineLen < INLINE_CAP) {
            const n = Math.min(end - pos, INLINE_CAP - this.cInlineLen);
            this.cCap.set(bytes.subarray(pos, pos + n), this.cInlineLen);
          }
          this.cInlineLen += end - pos;
          if (this.cInlineLen > MAX_INLINE) return this.clientLost(false);
          if (lf === -1) {
            pos = len;
            break;
          }
          pos = lf + 1;
          if (!this.inlineDone()) return this.clientLost(false);
          if (this.cArgs === 0) this.resetClient(C_IDLE); // an empty line
          else this.endCommand(pos);
          break;
        }
      }
    }
    if (this.cState === C_IDLE || this.cState === C_LOST) {
      if (gap > 0 && this.cState === C_IDLE) this.clientLost(true);
      return;
    }
    this.cBytes += len - this.cStart;
    this.cStart = len;
    if (gap === 0) return;
    if (this.cState !== C_ARG_BODY || this.cBodyLeft < gap) {
      return this.clientLost(true);
    }
    this.cBytes += gap;
    this.cBodyLeft -= gap;
    if (this.cBodyLeft === 0) this.argDone(len);
  }

  /** Bytes of argument `index` worth copying. */
  private captureWant(index: number): number {
    if (index === 0) return NAME_CAP + 1; // one more: a longer name is no name
    if (index === 1 && this.cSpec >= CONTAINER) return NAME_CAP + 1;
    if (index === this.cKeyAt) return REDIS_KEY_CAP;
    if (index === this.cNumkeysAt) return NUMKEYS_CAP;
    if (this.cSpec === AFTER_STREAMS && this.cKeyAt < 0) return TOKEN_CAP;
    return 0;
  }

  private argDone(end: number): void {
    if (this.cCapWant > 0) {
      const whole = this.cCapLen === this.cCapWant;
      this.onArg(this.cArgIndex, this.cCap.subarray(0, this.cCapLen), whole);
    }
    this.cArgIndex++;
    if (this.cArgIndex === this.cArgs) this.endCommand(end);
    else this.cState = C_ARG_TYPE;
  }

  /** An argument's first bytes; `whole` when they were all seen (up to the cap). */
  private onArg(index: number, arg: Uint8Array, whole: boolean): void {
    if (index === 0) {
      if (!whole || arg.length === 0 || arg.length > NAME_CAP) return;
      const name = upperAscii(arg, this.scratch);
      this.cName = name;
      this.cKnown = true;
      const spec = COMMAND_KEYS.get(name) ??
        (name.includes(".") ? KEY_1 : KEY_NONE);
      this.cSpec = spec;
      this.cKeyAt = spec <= KEY_3 && spec !== KEY_NONE ? spec : -1;
      this.cNumkeysAt = spec === NUMKEYS_1 ? 1 : spec === NUMKEYS_2 ? 2 : -1;
      this.cSubKind = SUBSCRIBE_COMMANDS.get(name) ?? 0;
      return;
    }
    if (index === 1 && this.cSpec >= CONTAINER) {
      if (!whole || arg.length > NAME_CAP || !isToken(arg)) return;
      const sub = upperAscii(arg, this.scratch);
      if (this.cKnown) this.cName = `${this.cName} ${sub}`;
      if (
        (this.cSpec === CONTAINER_KEY_2 && sub !== "HELP") ||
        (this.cSpec === CONTAINER_MEMORY && sub === "USAGE")
      ) this.cKeyAt = 2;
      return;
    }
    if (index === this.cKeyAt) {
      this.cKey = utf8.decode(arg.subarray(0, REDIS_KEY_CAP));
      return;
    }
    if (index === this.cNumkeysAt) {
      if (whole && smallInt(arg) > 0) this.cKeyAt = index + 1;
      return;
    }
    if (
      this.cSpec === AFTER_STREAMS && this.cKeyAt < 0 && isStreamsToken(arg)
    ) {
      this.cKeyAt = index + 1;
    }
  }

  /** Splits a complete inline line (its first INLINE_CAP bytes) into arguments; false if it is binary. */
  private inlineDone(): boolean {
    const kept = Math.min(this.cInlineLen, INLINE_CAP);
    const line = this.cCap;
    let end = kept;
    if (kept === this.cInlineLen && end > 0 && line[end - 1] === CR) end--;
    let index = 0;
    let i = 0;
    while (i < end) {
      const b = line[i]!;
      if (b === 0x20 || b === 0x09) {
        i++;
        continue;
      }
      let start = i;
      let stop: number;
      if (b === 0x22 || b === 0x27) { // a quoted argument
        start = ++i;
        while (i < end && line[i] !== b) i += line[i] === 0x5c ? 2 : 1;
        stop = Math.min(i, end);
        i++;
      } else {
        while (i < end && line[i] !== 0x20 && line[i] !== 0x09) i++;
        stop = i;
      }
      for (let j = start; j < stop; j++) {
        if (line[j]! < 0x20 && line[j] !== 0x09) return false;
      }
      const arg = line.subarray(start, stop);
      const whole = stop < kept || kept === this.cInlineLen;
      this.onArg(index, arg.subarray(0, this.captureWant(index)), whole);
      index++;
    }
    this.cArgs = index;
    return true;
  }

  // ---- server side --------------------------------------------------------

  private resetServer(state: number): void {
    this.sState = state;
    this.sDepth = 0;
    this.sStreamedString = false;
    this.sCapTarget = CAP_NONE;
    this.rActive = false;
  }

  /** The server lost the framing: a reply cut by the capture still completes; the rest is dropped. */
  private serverLost(cut: boolean): void {
    this.stats.resyncs++;
    if (cut && this.rActive && this.rType !== 0) this.replyDone();
    this.dropPending();
    this.resetServer(S_LOST);
    this.clientSpoke = false;
  }

  private pushServer(bytes: Uint8Array, gap: number, timeNs: bigint): void {
    const len = bytes.length;
    let pos = 0;
    if (this.sState === S_LOST) {
      if (len === 0 || !isReplyStart(bytes[0]!) || !this.clientSpoke) return;
      this.sState = S_TYPE;
    }
    this.rStart = 0;
    while (pos < len) {
      switch (this.sState) {
        case S_TYPE: {
          const b = bytes[pos]!;
          if (!this.typeByte(b, pos, timeNs)) {
            return this.serverLost(false);
          }
          pos++;
          break;
        }
        case S_HEADER: {
          pos = this.sLen.feed(bytes, pos);
          if (pos < 0 || (pos <= len && !this.headerDone(pos))) {
            return this.serverLost(false);
          }
          break;
        }
        case S_LINE: {
          const lf = bytes.indexOf(LF, pos);
          const end = lf === -1 ? len : lf;
          this.capture(bytes, pos, end);
          this.sLineLen += end - pos;
          if (this.sLineLen > MAX_LINE) return this.serverLost(false);
          if (lf === -1) {
            pos = len;
            break;
          }
          pos = lf + 1;
          if (this.sCapLen > 0 && this.sCapLen === this.sLineLen) {
            if (this.sCap[this.sCapLen - 1] === CR) this.sCapLen--;
          }
          if (this.sType === DOT) {
            this.sDepth--; // the end of a streamed aggregate
            this.valueDone(pos);
          } else {
            this.captured();
            this.valueDone(pos);
          }
          break;
        }
        case S_BODY: {
          const take = Math.min(this.sBodyLeft, len - pos);
          const done = this.sBodyLen + 2 - this.sBodyLeft;
          const data = this.sBodyLen - done;
          if (data > 0 && this.sCapLen === done) {
            this.capture(bytes, pos, pos + Math.min(take, data));
          }
          const cr = pos + this.sBodyLen - done;
          const end = pos + take;
          if (
            (cr >= pos && cr < end && bytes[cr] !== CR) ||
            (cr + 1 >= pos && cr + 1 < end && bytes[cr + 1] !== LF)
          ) return this.serverLost(false);
          pos = end;
          this.sBodyLeft -= take;
          if (this.sBodyLeft === 0) this.bodyDone(pos);
          break;
        }
      }
    }
    if (this.rActive) {
      this.rBytes += len - this.rStart;
      this.rStart = len;
    }
    if (gap === 0 || this.sState === S_LOST) return;
    if (this.sState !== S_BODY || this.sBodyLeft < gap) {
      if (this.rActive) this.rBytes += gap;
      return this.serverLost(true);
    }
    this.rBytes += gap;
    this.sBodyLeft -= gap;
    if (this.sBodyLeft === 0) this.bodyDone(len);
  }

  /** Copies bytes[from, to) of the current value, up to the capture's want. */
  private capture(bytes: Uint8Array, from: number, to: number): void {
    if (this.sCapTarget === CAP_NONE || this.sCapLen >= this.sCapWant) return;
    const n = Math.min(to - from, this.sCapWant - this.sCapLen);
    if (n <= 0) return;
    this.sCap.set(bytes.subarray(from, from + n), this.sCapLen);
    this.sCapLen += n;
  }

  /** Starts capturing the value that begins now, if the reply needs it. */
  private startCapture(isError: boolean, kindOk: boolean, countOk: boolean) {
    this.sCapTarget = CAP_NONE;
    this.sCapLen = 0;
    if (this.sDepth === 0) {
      if (isError) {
        this.sCapTarget = CAP_ERROR;
        this.sCapWant = ERROR_CAP;
      }
      return;
    }
    if (!this.rClassify || this.sDepth !== 1 || this.sAttr[0] === 1) return;
    const index = this.sTotal[0]! - this.sLeft[0]!;
    if (index === 0 && kindOk) {
      this.sCapTarget = CAP_KIND;
      this.sCapWant = KIND_CAP;
    } else if (index === 2 && countOk) {
      this.sCapTarget = CAP_COUNT;
      this.sCapWant = 4;
    }
  }

  /** Uses what was captured of the value that just ended. */
  private captured(): void {
    const cap = this.sCap.subarray(0, this.sCapLen);
    switch (this.sCapTarget) {
      case CAP_ERROR:
        this.rError = utf8.decode(cap);
        break;
      case CAP_KIND:
        this.rKind = this.sCapLen < KIND_CAP
          ? PUSH_KINDS.get(latin1(cap)) ?? 0
          : 0;
        break;
      case CAP_COUNT:
        this.rCountZero = this.sCapLen === 1 && cap[0] === 0x30;
        break;
    }
    this.sCapTarget = CAP_NONE;
  }

  /** Handles a value's type byte; false if it cannot be one here. */
  private typeByte(b: number, pos: number, timeNs: bigint): boolean {
    if (this.sStreamedString !== (b === SEMI)) return false;
    if (!this.rActive) {
      this.rActive = true;
      this.rStart = pos;
      this.rStartNs = timeNs;
      this.rBytes = 0;
      this.rType = 0;
      this.rKind = 0;
      this.rCountZero = false;
      this.rError = "";
      this.rClassify = false;
    }
    if (this.sDepth === 0 && b !== PIPE && b !== SEMI) {
      this.rType = b;
      this.rClassify = b === GT ||
        (b === STAR && (this.subscribed || (this.peek()?.subKind ?? 0) !== 0));
    }
    this.sType = b;
    switch (b) {
      case PLUS:
      case MINUS:
      case COLON:
      case UNDERSCORE:
      case COMMA:
      case HASH:
      case LPAREN:
        this.startCapture(b === MINUS, b === PLUS, b === COLON);
        this.sLineLen = 0;
        this.sState = S_LINE;
        return true;
      case DOT:
        if (this.sDepth === 0 || this.sLeft[this.sDepth - 1] !== -1) {
          return false;
        }
        this.sCapTarget = CAP_NONE;
        this.sLineLen = 0;
        this.sState = S_LINE;
        return true;
      case DOLLAR:
      case BANG:
      case EQUAL:
      case SEMI:
      case STAR:
      case PERCENT:
      case TILDE:
      case GT:
      case PIPE:
        this.sLen.reset();
        this.sState = S_HEADER;
        return true;
    }
    return false;
  }

  /** A length line ended at `pos`; false if it makes no sense. */
  private headerDone(pos: number): boolean {
    const t = this.sType;
    const { value, negative, streamed } = this.sLen;
    this.sState = S_TYPE;
    if (negative && value !== 1) return false;
    if (t === DOLLAR || t === BANG || t === EQUAL || t === SEMI) {
      if (streamed) {
        if (t !== DOLLAR) return false;
        this.sStreamedString = true; // ";<len>" parts follow, ";0" ends
        return true;
      }
      if (negative) {
        if (t === SEMI) return false;
        this.valueDone(pos); // null bulk string
        return true;
      }
      if (t === SEMI && value === 0) {
        this.sStreamedString = false;
        this.valueDone(pos);
        return true;
      }
      if (t !== SEMI) this.startCapture(t === BANG, t === DOLLAR, false);
      else this.sCapTarget = CAP_NONE;
      this.sBodyLen = value;
      this.sBodyLeft = value + 2;
      this.sState = S_BODY;
      return true;
    }
    // An aggregate: * % ~ > |
    if (negative) {
      if (t === PIPE) return false;
      this.valueDone(pos); // null array
      return true;
    }
    if (streamed && t === PIPE) return false;
    const n = streamed ? -1 : t === PERCENT || t === PIPE ? value * 2 : value;
    if (n === 0) {
      if (t !== PIPE) this.valueDone(pos);
      return true;
    }
    if (this.sDepth === MAX_DEPTH) return false;
    this.sLeft[this.sDepth] = n;
    this.sTotal[this.sDepth] = n;
    this.sAttr[this.sDepth] = t === PIPE ? 1 : 0;
    this.sDepth++;
    return true;
  }

  private bodyDone(pos: number): void {
    this.sState = S_TYPE;
    if (this.sType === SEMI) return; // a part of a streamed string
    this.captured();
    this.valueDone(pos);
  }

  /** A value ended at `pos`: count it in its aggregates, and end the reply at the top. */
  private valueDone(pos: number): void {
    this.sState = S_TYPE;
    while (this.sDepth > 0) {
      const d = this.sDepth - 1;
      const left = this.sLeft[d]!;
      if (left < 0) return; // streamed: until "."
      if (left > 1) {
        this.sLeft[d] = left - 1;
        return;
      }
      this.sDepth = d; // the aggregate is complete
      if (this.sAttr[d] === 1) return; // an attribute is no value of its own
    }
    if (this.rType === 0) return; // an attribute before the reply
    this.rBytes += pos - this.rStart;
    this.rStart = pos;
    this.replyDone();
  }

  /** A whole reply (or push) was read: pair it with its command. */
  private replyDone(): void {
    this.rActive = false;
    const bytes = this.rBytes;
    if (this.rClassify) {
      const kind = this.rKind;
      if (kind === SUB_MESSAGE) return;
      if (kind !== 0) return this.confirmation(kind, bytes);
      if (this.rType === GT) return; // another push (invalidate, …)
    }
    const p = this.take();
    if (p === undefined) return;
    this.emit(
      p,
      this.rType === MINUS || this.rType === BANG ? this.rError : "",
      this.rStartNs,
      bytes,
    );
    if (p.command === "RESET") this.subscribed = false;
  }

  /** A pub/sub confirmation: answers the first matching command, once. */
  private confirmation(kind: number, bytes: number): void {
    if (this.rType === STAR) { // RESP2: subscribed mode until the count is 0
      if (kind <= SUB_SSUBSCRIBE) this.subscribed = true;
      else if (this.rCountZero) this.subscribed = false;
    }
    if (this.extraConfirms[kind]! > 0) {
      this.extraConfirms[kind]!--;
      return;
    }
    const p = this.peek();
    if (p === undefined || p.subKind !== kind) return;
    this.take();
    if (p.channels > 1) this.extraConfirms[kind]! += p.channels - 1;
    this.emit(p, "", this.rStartNs, bytes);
  }
}

/**
 * Whether the first bytes a client sent look like a Redis command: a RESP
 * array of bulk strings ("*<n>\r\n$<len>\r\n", the name printable when it
 * was copied) or an inline command of a known name ("PING\r\n"), but not an
 * HTTP request line.
 */
export function looksLikeRedisCommand(bytes: Uint8Array): boolean {
  const len = bytes.length;
  if (len === 0) return false;
  if (bytes[0] === STAR) {
    let i = 1;
    const digits = (): number => {
      const start = i;
      let n = 0;
      while (
        i < len && i - start < 10 && bytes[i]! >= 0x30 && bytes[i]! <= 0x39
      ) {
        n = n * 10 + bytes[i]! - 0x30;
        i++;
      }
      return i === start ? -1 : n;
    };
    const crlf = (): boolean => {
      if (bytes[i] !== CR || bytes[i + 1] !== LF) return false;
      i += 2;
      return true;
    };
    if (digits() < 1 || !crlf() || bytes[i++] !== DOLLAR) return false;
    const nameLen = digits();
    if (nameLen < 1 || nameLen > NAME_CAP || !crlf()) return false;
    for (let j = i; j < Math.min(len, i + nameLen); j++) {
      if (bytes[j]! <= 0x20 || bytes[j]! >= 0x7f) return false;
    }
    return true;
  }
  let end = 0;
  while (end < len && end <= NAME_CAP && isNameByte(bytes[end]!)) end++;
  if (end === 0 || end > NAME_CAP || end === len) return false;
  const after = bytes[end];
  if (after !== 0x20 && after !== CR && after !== LF) return false;
  const name = upperAscii(bytes.subarray(0, end), new Uint8Array(NAME_CAP));
  if (!COMMAND_KEYS.has(name)) return false;
  // "GET /index.html HTTP/1.1" is HTTP.
  const lf = bytes.indexOf(LF);
  const line = lf === -1 ? bytes : bytes.subarray(0, lf);
  for (let j = end; j + 5 <= line.length; j++) {
    if (
      line[j] === 0x48 && line[j + 1] === 0x54 && line[j + 2] === 0x54 &&
      line[j + 3] === 0x50 && line[j + 4] === 0x2f
    ) return false;
  }
  return true;
}

function isNameByte(b: number): boolean {
  return isLetter(b) || b === UNDERSCORE || b === MINUS ||
    (b >= 0x30 && b <= 0x39);
}
