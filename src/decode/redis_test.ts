import assert from "node:assert/strict";
import {
  createRedisParser,
  looksLikeRedisCommand,
  REDIS_KEY_CAP,
  type RedisExchange,
  type RedisParserOptions,
} from "./redis.ts";
import type { StreamChunk, StreamParserStats } from "./stream.ts";

// Fixtures in testdata/redis/ are real redis-cli / redis-benchmark traffic
// with redis-server 7.0.15; each file's header says how it was captured.

const enc = new TextEncoder();

/** A fixture's chunks; chunk i (0-based) has timeNs i + 1. */
function fixture(name: string): StreamChunk[] {
  const text = Deno.readTextFileSync(
    new URL(`./testdata/redis/${name}.hex`, import.meta.url),
  );
  const chunks: StreamChunk[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const [sender, size, hex] = line.split(" ") as [string, string, string];
    const bytes = new Uint8Array(hex.length / 2);
    for (let i = 0; i < bytes.length; i++) {
      bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
    }
    chunks.push({
      sender: sender === "c" ? "client" : "server",
      timeNs: BigInt(chunks.length + 1),
      bytes,
      size: Number(size),
    });
  }
  return chunks;
}

const FIXTURES = [
  "basic",
  "multi",
  "resp3",
  "bench_set",
  "bench_get",
  "pubsub_resp2",
  "pubsub_resp3",
  "large_set",
  "large_get",
];

function chunk(
  sender: "client" | "server",
  timeNs: number,
  text: string | Uint8Array,
  size?: number,
): StreamChunk {
  const bytes = typeof text === "string" ? enc.encode(text) : text;
  return { sender, timeNs: BigInt(timeNs), bytes, size: size ?? bytes.length };
}
const c = (t: number, text: string | Uint8Array, size?: number) =>
  chunk("client", t, text, size);
const s = (t: number, text: string | Uint8Array, size?: number) =>
  chunk("server", t, text, size);

/** A RESP command as clients send it. */
function cmd(...args: string[]): string {
  return `*${args.length}\r\n` +
    args.map((a) => `$${enc.encode(a).length}\r\n${a}\r\n`).join("");
}

interface Run {
  exchanges: RedisExchange[];
  stats: StreamParserStats;
}

function run(chunks: StreamChunk[], options?: RedisParserOptions): Run {
  const parser = createRedisParser(options);
  const exchanges: RedisExchange[] = [];
  for (const ch of chunks) exchanges.push(...parser.push(ch));
  return { exchanges, stats: { ...parser.stats } };
}

/** [command, key, errorPrefix, startNs, endNs, requestBytes, responseBytes] */
type Row = [string, string, string, number, number, number, number];

function rows(exchanges: RedisExchange[]): Row[] {
  return exchanges.map((e) => [
    e.command,
    e.key,
    e.errorPrefix,
    Number(e.startNs),
    Number(e.endNs),
    e.requestBytes,
    e.responseBytes,
  ]);
}

/** Chunk i split in two at k; the second part carries what the capture missed. */
function splitAt(chunks: StreamChunk[], i: number, k: number): StreamChunk[] {
  const ch = chunks[i]!;
  const first = { ...ch, bytes: ch.bytes.subarray(0, k), size: k };
  const second = { ...ch, bytes: ch.bytes.subarray(k), size: ch.size - k };
  return [...chunks.slice(0, i), first, second, ...chunks.slice(i + 1)];
}

/** Every chunk cut into one-byte chunks (the last one carries the missing bytes). */
function byteByByte(chunks: StreamChunk[]): StreamChunk[] {
  const out: StreamChunk[] = [];
  for (const ch of chunks) {
    const n = ch.bytes.length;
    if (n === 0) out.push(ch);
    for (let k = 0; k < n; k++) {
      const last = k === n - 1;
      out.push({
        ...ch,
        bytes: ch.bytes.subarray(k, k + 1),
        size: last ? ch.size - k : 1,
      });
    }
  }
  return out;
}

/** All client bytes in one chunk, then all server bytes in one (full chunks only). */
function oneChunkEach(chunks: StreamChunk[]): StreamChunk[] {
  const join = (sender: string) => {
    const parts = chunks.filter((ch) => ch.sender === sender);
    const bytes = new Uint8Array(parts.reduce((n, p) => n + p.bytes.length, 0));
    let at = 0;
    for (const p of parts) {
      bytes.set(p.bytes, at);
      at += p.bytes.length;
    }
    return bytes;
  };
  return [c(1, join("client")), s(2, join("server"))];
}

Deno.test("redis: redis-cli commands, errors and a cut COMMAND DOCS reply", () => {
  const { exchanges, stats } = run(fixture("basic"));
  assert.deepEqual(rows(exchanges), [
    // The 170 KB reply lost its framing at the first cut: it still answers
    // COMMAND DOCS; the next two chunks (mid-reply) are skipped.
    ["COMMAND DOCS", "", "", 1, 2, 27, 65536],
    ["SET", "user:1", "", 5, 6, 36, 5],
    ["GET", "user:1", "", 7, 8, 25, 11],
    ["INCR", "user:1", "ERR", 9, 10, 26, 46],
    ["LPUSH", "user:1", "WRONGTYPE", 11, 12, 34, 68],
    ["GET", "missing", "", 13, 14, 26, 5],
    ["HSET", "h:1", "", 15, 16, 55, 4],
    ["HGETALL", "h:1", "", 17, 18, 26, 36],
    ["DEL", "user:1", "", 19, 20, 34, 4],
  ]);
  assert.equal(
    exchanges[3]!.errorMessage,
    "ERR value is not an integer or out of range",
  );
  assert.equal(
    exchanges[4]!.errorMessage,
    "WRONGTYPE Operation against a key holding the wrong kind of value",
  );
  assert.equal(exchanges[1]!.errorMessage, "");
  assert.deepEqual(stats, { exchanges: 9, resyncs: 1, unanswered: 0 });
});

Deno.test("redis: without the cut reply nothing resyncs, pipelined or not", () => {
  const chunks = fixture("basic").slice(4);
  const { exchanges, stats } = run(chunks);
  assert.equal(exchanges.length, 8);
  assert.deepEqual(stats, { exchanges: 8, resyncs: 0, unanswered: 0 });
  // The same bytes as one pipeline: one client chunk, one server chunk.
  const joined = run(oneChunkEach(chunks));
  assert.deepEqual(
    rows(joined.exchanges),
    rows(exchanges).map((r) => [r[0], r[1], r[2], 1, 2, r[5], r[6]]),
  );
  assert.deepEqual(joined.stats, stats);
});

Deno.test("redis: MULTI/EXEC pairs each +QUEUED and the EXEC array in order", () => {
  const { exchanges, stats } = run(fixture("multi"));
  assert.deepEqual(rows(exchanges), [
    ["COMMAND DOCS", "", "", 1, 2, 27, 65536],
    ["MULTI", "", "", 5, 6, 15, 5],
    ["SET", "t:1", "", 7, 8, 29, 9],
    ["INCR", "t:1", "", 9, 10, 23, 9],
    ["LPUSH", "t:1", "", 11, 12, 31, 9],
    // The WRONGTYPE inside EXEC's array is not an error reply of EXEC.
    ["EXEC", "", "", 13, 14, 14, 81],
    ["PING", "", "", 15, 16, 14, 7],
  ]);
  assert.deepEqual(stats, { exchanges: 7, resyncs: 1, unanswered: 0 });
});

Deno.test("redis: RESP3 after HELLO 3 (maps, sets, doubles, nulls, errors)", () => {
  const { exchanges, stats } = run(fixture("resp3"));
  assert.deepEqual(rows(exchanges), [
    ["HELLO", "", "", 1, 2, 22, 146],
    ["COMMAND DOCS", "", "", 3, 4, 27, 65536],
    ["HSET", "h:3", "", 7, 8, 39, 4],
    ["HGETALL", "h:3", "", 9, 10, 26, 20], // %1
    ["SADD", "s:3", "", 11, 12, 30, 4],
    ["SMEMBERS", "s:3", "", 13, 14, 27, 11], // ~1
    ["ZADD", "z:3", "", 15, 16, 39, 4],
    ["ZSCORE", "z:3", "", 17, 18, 32, 6], // ,1.5
    ["GET", "missing", "", 19, 20, 26, 3], // _
    ["EXISTS", "h:3", "", 21, 22, 25, 4],
    ["INCR", "h:3", "WRONGTYPE", 23, 24, 23, 68],
    ["DEL", "h:3", "", 25, 26, 40, 4],
  ]);
  assert.deepEqual(stats, { exchanges: 12, resyncs: 1, unanswered: 0 });
});

Deno.test("redis: redis-benchmark -P 16 pipelines pair in order", () => {
  for (
    const [name, command, requestBytes, responseBytes] of [
      ["bench_set", "SET", 45, 5], // +OK
      ["bench_get", "GET", 36, 9], // $3 VXK
    ] as const
  ) {
    const { exchanges, stats } = run(fixture(name));
    const want: Row[] = [];
    for (let i = 0; i < 64; i++) {
      const batch = Math.floor(i / 16); // client chunk 2b, server chunk 2b+1
      want.push([
        command,
        "key:__rand_int__",
        "",
        2 * batch + 1,
        2 * batch + 2,
        requestBytes,
        responseBytes,
      ]);
    }
    assert.deepEqual(rows(exchanges), want, name);
    assert.deepEqual(stats, { exchanges: 64, resyncs: 0, unanswered: 0 });
  }
});

Deno.test("redis: 100 KB values cut by the copy limit are skipped by length", () => {
  // SET big:1 <100000 bytes>: two client chunks of 65536 and 34499 bytes, 64 copied of each.
  const set = run(fixture("large_set"));
  assert.deepEqual(rows(set.exchanges), [[
    "SET",
    "big:1",
    "",
    1,
    3,
    100035,
    5,
  ]]);
  assert.deepEqual(set.stats, { exchanges: 1, resyncs: 0, unanswered: 0 });
  const get = run(fixture("large_get"));
  assert.deepEqual(rows(get.exchanges), [
    ["GET", "big:1", "", 1, 2, 24, 9 + 100000 + 2],
  ]);
  assert.deepEqual(get.stats, { exchanges: 1, resyncs: 0, unanswered: 0 });
  // Whole (uncut) and in 1000-byte writes: the same.
  const value = "v".repeat(10000);
  const bytes = enc.encode(cmd("SET", "k", value));
  const chunks = [];
  for (let at = 0; at < bytes.length; at += 1000) {
    chunks.push(c(1, bytes.subarray(at, at + 1000)));
  }
  chunks.push(s(2, "+OK\r\n"));
  assert.deepEqual(rows(run(chunks).exchanges), [
    ["SET", "k", "", 1, 2, bytes.length, 5],
  ]);
});

Deno.test("redis: fixtures give the same exchanges split at every byte", () => {
  let runs = 0;
  for (const name of FIXTURES) {
    const chunks = fixture(name);
    const want = run(chunks);
    for (let i = 0; i < chunks.length; i++) {
      for (let k = 1; k < chunks[i]!.bytes.length; k++) {
        assert.deepEqual(run(splitAt(chunks, i, k)), want, `${name} ${i}@${k}`);
        runs++;
      }
    }
    assert.deepEqual(run(byteByByte(chunks)), want, `${name} byte by byte`);
  }
  assert.equal(runs, 8674); // every split point of every fixture chunk
});

Deno.test("redis: RESP2 pub/sub: SUBSCRIBE answered once, messages unpaired", () => {
  const chunks = fixture("pubsub_resp2");
  // The fixture: SUBSCRIBE news alerts; both confirmations in one chunk;
  // then two published messages.
  const { exchanges, stats } = run(chunks);
  assert.deepEqual(rows(exchanges), [["SUBSCRIBE", "", "", 1, 2, 41, 33]]);
  assert.deepEqual(stats, { exchanges: 1, resyncs: 0, unanswered: 0 });

  // Continued: PING in subscribed mode, UNSUBSCRIBE back to normal mode, and
  // an array reply that merely looks like a message.
  const more = [
    ...chunks,
    c(10, cmd("PING")),
    s(11, "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$2\r\nhi\r\n"), // still a message
    s(12, "*2\r\n$4\r\npong\r\n$0\r\n\r\n"),
    c(13, cmd("UNSUBSCRIBE", "news", "alerts")),
    s(
      14,
      "*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:1\r\n" +
        "*3\r\n$11\r\nunsubscribe\r\n$6\r\nalerts\r\n:0\r\n",
    ),
    c(15, cmd("LRANGE", "list", "0", "-1")),
    s(16, "*2\r\n$7\r\nmessage\r\n$1\r\nx\r\n"),
    c(17, cmd("GET", "k")),
    s(18, "$1\r\nv\r\n"),
  ];
  const after = run(more);
  assert.deepEqual(rows(after.exchanges), [
    ["SUBSCRIBE", "", "", 1, 2, 41, 33],
    ["PING", "", "", 10, 12, 14, 20],
    ["UNSUBSCRIBE", "", "", 13, 14, 44, 36],
    ["LRANGE", "list", "", 15, 16, 41, 24],
    ["GET", "k", "", 17, 18, 20, 7],
  ]);
  assert.deepEqual(after.stats, { exchanges: 5, resyncs: 0, unanswered: 0 });
});

Deno.test("redis: RESP3 pushes are out of band", () => {
  const chunks = fixture("pubsub_resp3");
  const { exchanges, stats } = run(chunks);
  assert.deepEqual(rows(exchanges), [
    ["HELLO", "", "", 1, 2, 22, 146],
    ["SUBSCRIBE", "", "", 3, 4, 29, 33],
  ]);
  assert.deepEqual(stats, { exchanges: 2, resyncs: 0, unanswered: 0 });

  // Client-side caching: an invalidate push between a GET and its reply;
  // a message push; then a reply array starting with "message" is a reply.
  const { exchanges: more, stats: moreStats } = run([
    c(1, cmd("HELLO", "3")),
    s(2, "%1\r\n$5\r\nproto\r\n:3\r\n"),
    c(3, cmd("GET", "a") + cmd("LRANGE", "l", "0", "1")),
    s(4, ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\na\r\n"),
    s(5, "$1\r\n1\r\n>3\r\n$7\r\nmessage\r\n$1\r\nc\r\n$1\r\nm\r\n"),
    s(6, "*2\r\n$7\r\nmessage\r\n$1\r\nx\r\n"),
  ]);
  assert.deepEqual(rows(more), [
    ["HELLO", "", "", 1, 2, 22, 19],
    ["GET", "a", "", 3, 5, 20, 7],
    ["LRANGE", "l", "", 3, 6, 37, 24],
  ]);
  assert.deepEqual(moreStats, { exchanges: 3, resyncs: 0, unanswered: 0 });
});

Deno.test("redis: RESP3 types, attributes and streamed values keep the framing", () => {
  const replies = [
    // An attribute, then the reply it describes.
    "|1\r\n+key-popularity\r\n%2\r\n$1\r\na\r\n,0.19\r\n$1\r\nb\r\n,0.08\r\n" +
    "*2\r\n:2039123\r\n:9543892\r\n",
    "$?\r\n;4\r\nHell\r\n;5\r\no wor\r\n;1\r\nd\r\n;0\r\n", // streamed string
    "*?\r\n:1\r\n$?\r\n;2\r\nab\r\n;0\r\n%?\r\n+a\r\n#t\r\n.\r\n.\r\n",
    "!21\r\nSYNTAX invalid syntax\r\n", // blob error
    "=15\r\ntxt:Some string\r\n",
    "(3492890328409238509324850943850943825024385\r\n",
    "#f\r\n",
    "_\r\n",
    ",-inf\r\n",
    "*3\r\n*1\r\n%1\r\n+a\r\n~2\r\n:1\r\n|1\r\n+x\r\n+y\r\n:2\r\n$-1\r\n*-1\r\n",
    "*0\r\n",
    "%0\r\n",
    "*1\r\n-ERR nested errors are values\r\n",
    "-NOSCRIPT No matching script. Please use EVAL.\r\n",
    "+OK\r\n",
  ];
  const chunks = [
    c(1, replies.map((_, i) => cmd("GET", `k${i}`)).join("")),
    s(2, replies.join("")),
  ];
  const want = run(chunks);
  assert.deepEqual(
    want.exchanges.map((e) => [e.key, e.errorPrefix, e.responseBytes]),
    replies.map((r, i) => [
      `k${i}`,
      i === 3 ? "SYNTAX" : i === 13 ? "NOSCRIPT" : "",
      enc.encode(r).length,
    ]),
  );
  assert.equal(want.exchanges[3]!.errorMessage, "SYNTAX invalid syntax");
  assert.equal(
    want.exchanges[13]!.errorMessage,
    "NOSCRIPT No matching script. Please use EVAL.",
  );
  assert.deepEqual(want.stats, { exchanges: 15, resyncs: 0, unanswered: 0 });
  for (let k = 1; k < chunks[1]!.bytes.length; k++) {
    assert.deepEqual(run(splitAt(chunks, 1, k)), want, `split at ${k}`);
  }
});

Deno.test("redis: command names and first keys", () => {
  const cases: [string[], string, string][] = [
    [["get", "user:1"], "GET", "user:1"],
    [["SET", "k", "secret-value", "EX", "10"], "SET", "k"],
    [["AUTH", "user", "password"], "AUTH", ""],
    [["HELLO", "3", "AUTH", "user", "password"], "HELLO", ""],
    [["PUBLISH", "channel", "message"], "PUBLISH", ""],
    [["ECHO", "hello"], "ECHO", ""],
    [["EVAL", "return 1", "2", "ka", "kb", "arg"], "EVAL", "ka"],
    [["EVALSHA", "abc", "0", "arg"], "EVALSHA", ""],
    [["FCALL", "f", "1", "fk"], "FCALL", "fk"],
    [["ZUNION", "2", "z1", "z2"], "ZUNION", "z1"],
    [["BLMPOP", "0", "1", "l1", "LEFT"], "BLMPOP", "l1"],
    [["XREAD", "COUNT", "2", "streams", "s1", "s2", "0", "0"], "XREAD", "s1"],
    [
      ["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s1", ">"],
      "XREADGROUP",
      "s1",
    ],
    [["BITOP", "AND", "dest", "a", "b"], "BITOP", "dest"],
    [["MIGRATE", "host", "6379", "mk", "0", "5000"], "MIGRATE", "mk"],
    [["CLIENT", "setname", "app"], "CLIENT SETNAME", ""],
    [["CONFIG", "GET", "maxmemory"], "CONFIG GET", ""],
    [["COMMAND"], "COMMAND", ""],
    [["CLUSTER", "KEYSLOT", "k"], "CLUSTER KEYSLOT", ""],
    [["OBJECT", "ENCODING", "ok"], "OBJECT ENCODING", "ok"],
    [["OBJECT", "HELP"], "OBJECT HELP", ""],
    [["MEMORY", "USAGE", "mem"], "MEMORY USAGE", "mem"],
    [["MEMORY", "STATS"], "MEMORY STATS", ""],
    [["XINFO", "STREAM", "xs"], "XINFO STREAM", "xs"],
    [["XGROUP", "CREATE", "xs", "g", "$"], "XGROUP CREATE", "xs"],
    [["SCRIPT", "LOAD", "return 1"], "SCRIPT LOAD", ""],
    [["ACL", "SETUSER", "u", "on", ">pw"], "ACL SETUSER", ""],
    [["CLIENT", "bad sub"], "CLIENT", ""],
    [["JSON.GET", "doc", "$"], "JSON.GET", "doc"],
    [["MYCOMMAND", "arg"], "MYCOMMAND", ""],
    [["SET", "ключ", "v"], "SET", "ключ"],
    [["GET", "k".repeat(300)], "GET", "k".repeat(REDIS_KEY_CAP)],
  ];
  for (const [args, command, key] of cases) {
    const { exchanges } = run([c(1, cmd(...args)), s(2, "+OK\r\n")]);
    assert.deepEqual(
      exchanges.map((e) => [e.command, e.key]),
      [[command, key]],
      args.join(" "),
    );
  }
});

Deno.test("redis: inline commands", () => {
  const { exchanges, stats } = run([
    c(1, "PING\r\n"),
    s(2, "+PONG\r\n"),
    c(3, "\r\nset foo bar\n"),
    s(4, "+OK\r\n"),
    c(5, 'GET "my key"\r\nconfig get maxmemory\r\n'),
    s(6, "$1\r\nv\r\n*2\r\n$9\r\nmaxmemory\r\n$1\r\n0\r\n"),
  ]);
  assert.deepEqual(rows(exchanges), [
    ["PING", "", "", 1, 2, 6, 7],
    ["SET", "foo", "", 3, 4, 12, 5],
    ["GET", "my key", "", 5, 6, 14, 7],
    ["CONFIG GET", "", "", 5, 6, 22, 26],
  ]);
  assert.deepEqual(stats, { exchanges: 4, resyncs: 0, unanswered: 0 });
});

Deno.test("redis: client garbage drops the pending and resyncs after a reply", () => {
  const { exchanges, stats } = run([
    c(1, cmd("GET", "a") + cmd("GET", "b")),
    c(2, "\x00\x01\x02 not redis\r\n"), // garbage: GET a and GET b dropped
    c(3, cmd("GET", "z")), // the server did not speak since the loss: still lost
    s(4, "$1\r\n1\r\n$1\r\n2\r\n$1\r\nz\r\n"), // nothing pending
    c(5, "more garbage"), // still lost: no '*'
    c(6, cmd("GET", "c")), // '*' after the server spoke: back
    s(7, "$1\r\n3\r\n"),
  ]);
  assert.deepEqual(rows(exchanges), [["GET", "c", "", 6, 7, 20, 7]]);
  assert.deepEqual(stats, { exchanges: 1, resyncs: 1, unanswered: 2 });
  // Bad lengths and types are garbage too, never exceptions.
  for (
    const bad of [
      "*x\r\n",
      "*2\r\n+GET\r\n",
      "*1\r\n$-1\r\n",
      "*1\r\n$3\r\nGETxx",
      "*1\r\n$?\r\n",
      "*1\n",
      "*99999999999999999\r\n",
    ]
  ) {
    const r = run([c(1, cmd("PING")), c(2, bad), s(3, "+PONG\r\n")]);
    assert.deepEqual(r.stats, { exchanges: 0, resyncs: 1, unanswered: 1 }, bad);
  }
});

Deno.test("redis: server garbage drops the pending and resyncs on a type byte", () => {
  const { exchanges, stats } = run([
    c(1, cmd("GET", "a") + cmd("GET", "b")),
    s(2, "$1\r\n1\r\n"),
    s(3, "?what\r\n"), // GET b dropped
    c(4, cmd("GET", "c")),
    s(5, "garbage\r\n"), // not a type byte: still lost
    s(6, "$1\r\n3\r\n"),
  ]);
  assert.deepEqual(rows(exchanges), [
    ["GET", "a", "", 1, 2, 20, 7],
    ["GET", "c", "", 4, 6, 20, 7],
  ]);
  assert.deepEqual(stats, { exchanges: 2, resyncs: 1, unanswered: 1 });
  for (
    const bad of [
      "$x\r\n",
      "$3\r\nabcde",
      "*1\r\n;2\r\n",
      ".\r\n",
      "|-1\r\n",
      "$-2\r\n",
      "\r\n",
      "*1\r\n" + "*1\r\n".repeat(70),
    ]
  ) {
    const r = run([c(1, cmd("PING")), s(2, bad), s(3, "+PONG\r\n")]);
    assert.deepEqual(r.stats, { exchanges: 0, resyncs: 1, unanswered: 1 }, bad);
  }
});

Deno.test("redis: pipelined commands cut by the copy limit keep what was seen", () => {
  // redis-benchmark SET batches of 16 × 45 bytes with only 100 bytes copied:
  // two whole commands and "*3\r\n$3\r\nSE" (a command without a name).
  const cut = fixture("bench_set").map((ch) =>
    ch.sender === "client" ? { ...ch, bytes: ch.bytes.subarray(0, 100) } : ch
  );
  const { exchanges, stats } = run(cut);
  assert.deepEqual(
    rows(exchanges).map((r) => [r[0], r[3], r[4]]),
    [1, 3, 5, 7].flatMap((t) => [["SET", t, t + 1], ["SET", t, t + 1]]),
  );
  // Per batch: the nameless command's reply is unanswered, 13 replies go to
  // commands never seen, and the next batch resyncs.
  assert.deepEqual(stats, { exchanges: 8, resyncs: 4, unanswered: 4 });
});

Deno.test("redis: pipelined replies cut by the copy limit complete the cut one", () => {
  // redis-benchmark GET batches: 16 replies of 9 bytes, only 40 bytes copied:
  // four whole replies and "$3\r\n" of the fifth.
  const cut = fixture("bench_get").map((ch) =>
    ch.sender === "server" ? { ...ch, bytes: ch.bytes.subarray(0, 40) } : ch
  );
  const { exchanges, stats } = run(cut);
  assert.equal(exchanges.length, 20);
  assert.deepEqual(
    exchanges.slice(0, 5).map((e) => e.responseBytes),
    [9, 9, 9, 9, 4 + 104],
  );
  assert.deepEqual(stats, { exchanges: 20, resyncs: 4, unanswered: 44 });
});

Deno.test("redis: the pending queue is bounded and keeps the order", () => {
  const chunks = [
    c(1, ["a", "b", "c", "d", "e", "f"].map((k) => cmd("GET", k)).join("")),
    s(2, "$1\r\n1\r\n$1\r\n2\r\n$1\r\n3\r\n"),
    s(3, "$1\r\n4\r\n$1\r\n5\r\n$1\r\n6\r\n"),
    c(4, cmd("GET", "g")),
    s(5, "$1\r\n7\r\n"),
  ];
  const { exchanges, stats } = run(chunks, { maxPending: 4 });
  assert.deepEqual(exchanges.map((e) => [e.key, Number(e.endNs)]), [
    ["a", 2],
    ["b", 2],
    ["c", 2],
    ["d", 3],
    ["g", 5],
  ]);
  assert.deepEqual(stats, { exchanges: 5, resyncs: 0, unanswered: 2 });
  // Room freed before the overflow is answered: e's and f's replies are
  // skipped although g was queued behind them.
  const interleaved = run([
    c(1, ["a", "b", "c", "d", "e", "f"].map((k) => cmd("GET", k)).join("")),
    s(2, "$1\r\n1\r\n"),
    c(3, cmd("GET", "g")),
    s(4, "$1\r\n2\r\n$1\r\n3\r\n$1\r\n4\r\n$1\r\n5\r\n$1\r\n6\r\n$1\r\n7\r\n"),
  ], { maxPending: 4 });
  assert.deepEqual(interleaved.exchanges.map((e) => e.key), [
    "a",
    "b",
    "c",
    "d",
    "g",
  ]);
  assert.deepEqual(interleaved.stats, {
    exchanges: 5,
    resyncs: 0,
    unanswered: 2,
  });
});

Deno.test("redis: error replies keep their prefix, not the echoed arguments", () => {
  const { exchanges } = run([
    c(1, cmd("FOO", "secret")),
    s(2, "-ERR unknown command 'FOO', with args beginning with: 'secret' \r\n"),
    c(3, cmd("GET", "k")),
    s(4, "-NOAUTH Authentication required.\r\n"),
    c(5, cmd("GET", "k")),
    s(6, `-ERR ${"x".repeat(400)}\r\n`),
  ]);
  assert.deepEqual(exchanges.map((e) => [e.errorPrefix, e.errorMessage]), [
    ["ERR", "ERR unknown command 'FOO'"],
    ["NOAUTH", "NOAUTH Authentication required."],
    ["ERR", `ERR ${"x".repeat(252)}`],
  ]);
});

Deno.test("redis: replies with nothing pending and empty commands are ignored", () => {
  const { exchanges, stats } = run([
    s(1, "+OK\r\n:1\r\n"),
    c(2, "*0\r\n*-1\r\n\r\n"),
    s(3, "+OK\r\n"),
    c(4, new Uint8Array(0), 0),
    s(5, new Uint8Array(0), 0),
  ]);
  assert.deepEqual(exchanges, []);
  assert.deepEqual(stats, { exchanges: 0, resyncs: 0, unanswered: 0 });
});

Deno.test("redis: a command name cut by the copy limit is no name", () => {
  const full = enc.encode(cmd("HGETALL", "h") + cmd("GET", "k"));
  const { exchanges, stats } = run([
    c(1, full.subarray(0, 10), full.length), // "*2\r\n$7\r\nHG"
    s(2, "*0\r\n$1\r\nv\r\n"),
    c(3, cmd("GET", "j")),
    s(4, "$-1\r\n"),
  ]);
  // HGETALL (nameless) is answered but unreported; GET k was never seen.
  assert.deepEqual(rows(exchanges), [["GET", "j", "", 3, 4, 20, 5]]);
  assert.deepEqual(stats, { exchanges: 1, resyncs: 1, unanswered: 1 });
});

Deno.test("redis: random bytes never throw", () => {
  let seed = 42;
  const rand = (n: number) => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const pieces = [
    "*",
    "$",
    "+OK",
    "-ERR x",
    ":1",
    "\r\n",
    "3",
    "-1",
    "?",
    ";",
    ".",
    "%",
    "~",
    ">",
    "|",
    "_",
    "GET",
    "subscribe",
    "message",
    "!",
    "=",
  ];
  for (let round = 0; round < 300; round++) {
    const parser = createRedisParser({ maxPending: 8 });
    let returned = 0;
    for (let i = 0; i < 40; i++) {
      let text = "";
      const n = rand(12);
      for (let j = 0; j < n; j++) {
        text += rand(4) === 0
          ? String.fromCharCode(rand(256))
          : pieces[rand(pieces.length)]!;
      }
      const bytes = enc.encode(text);
      const sender = rand(2) === 0 ? "client" : "server";
      returned += parser.push({
        sender,
        timeNs: BigInt(i),
        bytes: bytes.subarray(0, rand(bytes.length + 1)),
        size: bytes.length + rand(3) * rand(100),
      }).length;
    }
    assert.equal(parser.stats.exchanges, returned);
  }
});

Deno.test("redis: looksLikeRedisCommand", () => {
  const yes = [
    cmd("PING"),
    cmd("SET", "k", "v"),
    "*3\r\n$3\r\nSET\r\n", // the name may be beyond the copied bytes
    "*1\r\n$4\r\nPI", // …or cut
    "PING\r\n",
    "ping\n",
    "SET a b\r\n",
    "info\r\n",
  ];
  const no = [
    "",
    "*",
    "*3\r\n",
    "*3\r\n$3",
    "*0\r\n$3\r\nGET\r\n",
    "*1\r\n$40\r\n",
    "*1\r\n$3\r\nG T\r\n",
    "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "PING", // no line end yet
    "HELLOTHERE\r\n",
    "POST /x HTTP/1.1\r\n",
    "\x16\x03\x01\x02\x00", // TLS
    "SSH-2.0-OpenSSH_9.2\r\n",
  ];
  for (const text of yes) {
    assert.equal(looksLikeRedisCommand(enc.encode(text)), true, text);
  }
  for (const text of no) {
    assert.equal(looksLikeRedisCommand(enc.encode(text)), false, text);
  }
  assert.equal(
    looksLikeRedisCommand(fixture("bench_set")[0]!.bytes),
    true,
  );
});
