import assert from "node:assert/strict";
import {
  createPostgresParser,
  looksLikePostgresClient,
  type PostgresExchange,
  type PostgresParserOptions,
  type PostgresParserStats,
} from "./postgres.ts";
import type { StreamChunk, StreamSender } from "./stream.ts";

// --- Helpers ---------------------------------------------------------------

const enc = new TextEncoder();

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) {
    out.set(p, i);
    i += p.length;
  }
  return out;
}

function int32(v: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setInt32(0, v);
  return b;
}

function int16(v: number): Uint8Array {
  const b = new Uint8Array(2);
  new DataView(b.buffer).setInt16(0, v);
  return b;
}

const cstr = (s: string) => concat(enc.encode(s), new Uint8Array([0]));

/** A typed message: type byte, int32 length (self included), body. */
function msg(type: string, ...body: Uint8Array[]): Uint8Array {
  const b = concat(...body);
  return concat(enc.encode(type), int32(b.length + 4), b);
}

// Frontend messages.
const startup = () => {
  const body = concat(
    int32(196608),
    cstr("user"),
    cstr("app"),
    new Uint8Array([0]),
  );
  return concat(int32(body.length + 4), body);
};
const query = (sql: string) => msg("Q", cstr(sql));
const parse = (name: string, sql: string) =>
  msg("P", cstr(name), cstr(sql), int16(0));
const bind = (portal: string, statement: string) =>
  msg("B", cstr(portal), cstr(statement), int16(0), int16(0), int16(0));
const describe = (portal: string) => msg("D", enc.encode("P"), cstr(portal));
const execute = (portal: string) => msg("E", cstr(portal), int32(0));
const sync = () => msg("S");
const close = (statement: string) => msg("C", enc.encode("S"), cstr(statement));

// Backend messages.
const auth = () => concat(msg("R", int32(0)), msg("Z", enc.encode("I")));
const rowDesc = () =>
  msg(
    "T",
    int16(1),
    cstr("n"),
    int32(0),
    int16(0),
    int32(23),
    int16(4),
    int32(-1),
    int16(0),
  );
const dataRow = (value: string) =>
  msg("D", int16(1), int32(enc.encode(value).length), enc.encode(value));
const complete = (tag: string) => msg("C", cstr(tag));
const ready = (status = "I") => msg("Z", enc.encode(status));
const parseComplete = () => msg("1");
const bindComplete = () => msg("2");
const noData = () => msg("n");
const errorResponse = (code: string, message: string) =>
  msg(
    "E",
    enc.encode("S"),
    cstr("ERROR"),
    enc.encode("C"),
    cstr(code),
    enc.encode("M"),
    cstr(message),
    new Uint8Array([0]),
  );

let clock = 0n;
/** A chunk at the next tick (1000 ns apart), all bytes captured unless `size` says more moved. */
function chunk(
  sender: StreamSender,
  bytes: Uint8Array,
  size = bytes.length,
): StreamChunk {
  clock += 1000n;
  return { sender, timeNs: clock, bytes, size };
}
const c = (...parts: Uint8Array[]) => chunk("client", concat(...parts));
const s = (...parts: Uint8Array[]) => chunk("server", concat(...parts));

interface Run {
  exchanges: PostgresExchange[];
  stats: PostgresParserStats;
}

function run(chunks: StreamChunk[], options?: PostgresParserOptions): Run {
  const parser = createPostgresParser(options);
  const exchanges: PostgresExchange[] = [];
  for (const ch of chunks) exchanges.push(...parser.push(ch));
  return { exchanges, stats: { ...parser.stats } };
}

/** Chunks of a capture file in testdata/: one per line, 1000 ns apart. */
function fixture(file: string): StreamChunk[] {
  const textData = Deno.readTextFileSync(
    new URL(`./testdata/${file}`, import.meta.url),
  );
  const chunks: StreamChunk[] = [];
  for (const line of textData.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const [who, hex] = line.split(" ");
    const bytes = new Uint8Array(hex!.length / 2);
    for (let i = 0; i < bytes.length; i++) {
      bytes[i] = parseInt(hex!.slice(2 * i, 2 * i + 2), 16);
    }
    chunks.push({
      sender: who === "c" ? "client" : "server",
      timeNs: BigInt(chunks.length + 1) * 1000n,
      bytes,
      size: bytes.length,
    });
  }
  return chunks;
}

function exchange(fields: Partial<PostgresExchange>): PostgresExchange {
  return {
    startNs: 0n,
    endNs: 0n,
    requestBytes: 0,
    responseBytes: 0,
    query: "",
    protocol: "simple",
    statement: "",
    errorCode: "",
    errorMessage: "",
    rows: -1,
    commandTag: "",
    ...fields,
  };
}

function stats(fields: Partial<PostgresParserStats>): PostgresParserStats {
  return {
    exchanges: 0,
    resyncs: 0,
    unanswered: 0,
    statementsEvicted: 0,
    portalsEvicted: 0,
    ...fields,
  };
}

const FIXTURES = [
  "postgres_simple_query.hex",
  "postgres_simple_error.hex",
  "postgres_ssl_refused.hex",
  "postgres_multi_statement_error.hex",
  "postgres_pgbench_prepared.hex",
  "postgres_pgbench_extended.hex",
  "postgres_copy.hex",
  "postgres_extended_pipeline_error.hex",
];

// --- Real captures ---------------------------------------------------------

Deno.test("postgres: psql simple query", () => {
  const { exchanges, stats: st } = run(fixture("postgres_simple_query.hex"));
  assert.deepEqual(exchanges, [exchange({
    startNs: 3000n,
    endNs: 4000n,
    requestBytes: 38,
    responseBytes: 83,
    query: "SELECT generate_series(1,3) AS n",
    rows: 3,
    commandTag: "SELECT 3",
  })]);
  assert.deepEqual(st, stats({ exchanges: 1 }));
});

Deno.test("postgres: psql error, ReadyForQuery in its own chunk", () => {
  const { exchanges, stats: st } = run(fixture("postgres_simple_error.hex"));
  assert.deepEqual(exchanges, [exchange({
    startNs: 3000n,
    endNs: 4000n,
    requestBytes: 33,
    responseBytes: 113 + 6,
    query: "SELECT * FROM no_such_table",
    errorCode: "42P01",
    errorMessage: 'relation "no_such_table" does not exist',
  })]);
  assert.deepEqual(st, stats({ exchanges: 1 }));
});

Deno.test("postgres: SSLRequest refused with N, then two statements in one Query", () => {
  const { exchanges, stats: st } = run(fixture("postgres_ssl_refused.hex"));
  assert.deepEqual(exchanges, [exchange({
    startNs: 5000n,
    endNs: 6000n,
    requestBytes: 24,
    responseBytes: 126,
    query: "SELECT 1; SELECT 2",
    rows: 1,
    commandTag: "SELECT 1",
  })]);
  assert.deepEqual(st, stats({ exchanges: 1 }));
});

Deno.test("postgres: an error in the second of three statements", () => {
  const { exchanges, stats: st } = run(
    fixture("postgres_multi_statement_error.hex"),
  );
  assert.deepEqual(exchanges, [exchange({
    startNs: 3000n,
    endNs: 4000n,
    requestBytes: 36,
    responseBytes: 132,
    query: "SELECT 1; SELECT 1/0; SELECT 2",
    errorCode: "22012",
    errorMessage: "division by zero",
    rows: 1,
    commandTag: "SELECT 1",
  })]);
  assert.deepEqual(st, stats({ exchanges: 1 }));
});

const TPCB = [
  ["P_0", "BEGIN;", "BEGIN", -1],
  [
    "P_1",
    "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;",
    "UPDATE 1",
    1,
  ],
  [
    "P_2",
    "SELECT abalance FROM pgbench_accounts WHERE aid = $1;",
    "SELECT 1",
    1,
  ],
  [
    "P_3",
    "UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2;",
    "UPDATE 1",
    1,
  ],
  [
    "P_4",
    "UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2;",
    "UPDATE 1",
    1,
  ],
  [
    "P_5",
    "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP);",
    "INSERT 0 1",
    1,
  ],
  ["P_6", "END;", "COMMIT", -1],
] as const;

Deno.test("postgres: pgbench -M prepared reuses named statements with Bind/Execute/Sync", () => {
  const { exchanges, stats: st } = run(
    fixture("postgres_pgbench_prepared.hex"),
  );
  assert.equal(exchanges.length, 14);
  exchanges.forEach((ex, i) => {
    const [statement, sql, tag, rows] = TPCB[i % 7]!;
    assert.equal(ex.protocol, "extended");
    assert.equal(ex.statement, statement, `exchange ${i}`);
    assert.equal(ex.query, sql, `exchange ${i}`);
    assert.equal(ex.commandTag, tag, `exchange ${i}`);
    assert.equal(ex.rows, rows, `exchange ${i}`);
    assert.equal(ex.errorCode, "");
  });
  // First transaction: "P_0 BEGIN" was prepared by its own Parse/Sync round trip
  // (chunks 5-6); Bind/Describe/Execute/Sync came in chunk 7, the answer in 8.
  assert.deepEqual(
    exchanges[0],
    exchange({
      startNs: 7000n,
      endNs: 8000n,
      requestBytes: 18 + 7 + 10,
      responseBytes: 5 + 5 + 11,
      query: "BEGIN;",
      protocol: "extended",
      statement: "P_0",
      commandTag: "BEGIN",
    }),
  );
  // The SELECT: BindComplete, RowDescription, DataRow, CommandComplete.
  assert.equal(exchanges[2]!.responseBytes, 5 + 34 + 16 + 14);
  // Second transaction (chunks 33+): statements only bound, never parsed again.
  assert.equal(exchanges[7]!.startNs, 33000n);
  assert.deepEqual(st, stats({ exchanges: 14 }));
});

Deno.test("postgres: pgbench -M extended, Parse/Bind/Describe/Execute/Sync in one write", () => {
  const { exchanges, stats: st } = run(
    fixture("postgres_pgbench_extended.hex"),
  );
  assert.deepEqual(exchanges, [exchange({
    startNs: 5000n,
    endNs: 6000n,
    requestBytes: 108 - 5,
    responseBytes: 76 - 6,
    query: "SELECT abalance FROM pgbench_accounts WHERE aid = $1;",
    protocol: "extended",
    rows: 1,
    commandTag: "SELECT 1",
  })]);
  assert.deepEqual(st, stats({ exchanges: 1 }));
});

Deno.test("postgres: COPY FROM STDIN and COPY TO STDOUT keep the framing", () => {
  const { exchanges, stats: st } = run(fixture("postgres_copy.hex"));
  assert.deepEqual(exchanges, [
    exchange({
      startNs: 3000n,
      endNs: 4000n,
      requestBytes: 32,
      responseBytes: 24,
      query: "CREATE TEMP TABLE t(x int)",
      commandTag: "CREATE TABLE",
    }),
    exchange({
      startNs: 5000n,
      endNs: 6000n,
      requestBytes: 23 + 14, // the Query, then CopyData and CopyDone
      responseBytes: 10 + 18,
      query: "COPY t FROM STDIN",
      rows: 2,
      commandTag: "COPY 2",
    }),
    exchange({
      startNs: 9000n,
      endNs: 10000n,
      requestBytes: 22,
      responseBytes: 47,
      query: "COPY t TO STDOUT",
      rows: 2,
      commandTag: "COPY 2",
    }),
  ]);
  assert.deepEqual(st, stats({ exchanges: 3 }));
});

Deno.test("postgres: extended pipeline with an error, a skipped Execute, reuse and Close", () => {
  const { exchanges, stats: st } = run(
    fixture("postgres_extended_pipeline_error.hex"),
  );
  assert.deepEqual(exchanges, [
    exchange({
      startNs: 3000n,
      endNs: 4000n,
      requestBytes: 29 + 21 + 7 + 10,
      responseBytes: 5 + 5 + 34 + 13 + 14,
      query: "SELECT $1::int + 1",
      protocol: "extended",
      statement: "s1",
      rows: 1,
      commandTag: "SELECT 1",
    }),
    exchange({
      startNs: 3000n,
      endNs: 4000n,
      requestBytes: 19 + 13 + 10,
      responseBytes: 5 + 66,
      query: "SELECT 1/0",
      protocol: "extended",
      errorCode: "22012",
      errorMessage: "division by zero",
    }),
    // The third Execute ("SELECT 2") was skipped by the server: unanswered.
    exchange({
      startNs: 5000n,
      endNs: 6000n,
      requestBytes: 20 + 10,
      responseBytes: 5 + 12 + 14,
      query: "SELECT $1::int + 1",
      protocol: "extended",
      statement: "s1",
      rows: 1,
      commandTag: "SELECT 1",
    }),
    // After Close s1 the statement is forgotten: its name from Bind, no query.
    exchange({
      startNs: 9000n,
      endNs: 10000n,
      requestBytes: 20 + 10,
      responseBytes: 107,
      query: "",
      protocol: "extended",
      statement: "s1",
      errorCode: "26000",
      errorMessage: 'prepared statement "s1" does not exist',
    }),
  ]);
  assert.deepEqual(st, stats({ exchanges: 4, unanswered: 1 }));
});

// --- Chunk boundaries ------------------------------------------------------

Deno.test("postgres: every fixture gives the same result split at every byte boundary", () => {
  for (const file of FIXTURES) {
    const chunks = fixture(file);
    const whole = run(chunks);
    for (let k = 0; k < chunks.length; k++) {
      const ch = chunks[k]!;
      for (let at = 1; at < ch.bytes.length; at++) {
        const split = [
          ...chunks.slice(0, k),
          { ...ch, bytes: ch.bytes.subarray(0, at), size: at },
          { ...ch, bytes: ch.bytes.subarray(at), size: ch.bytes.length - at },
          ...chunks.slice(k + 1),
        ];
        assert.deepEqual(
          run(split),
          whole,
          `${file}: chunk ${k} split at ${at}`,
        );
      }
    }
  }
});

Deno.test("postgres: every fixture gives the same result fed one byte at a time", () => {
  for (const file of FIXTURES) {
    const chunks = fixture(file);
    const bytewise = chunks.flatMap((ch) =>
      Array.from(
        ch.bytes,
        (_, i) => ({ ...ch, bytes: ch.bytes.subarray(i, i + 1), size: 1 }),
      )
    );
    assert.deepEqual(run(bytewise), run(chunks), file);
  }
});

Deno.test("postgres: several Queries and their responses in single chunks", () => {
  clock = 0n;
  const { exchanges, stats: st } = run([
    c(startup()),
    s(auth()),
    c(query("SELECT 1"), query("SELECT 2")), // a pipelining client
    s(
      rowDesc(),
      dataRow("1"),
      complete("SELECT 1"),
      ready(),
      rowDesc(),
      dataRow("2"),
      complete("SELECT 1"),
      ready(),
    ),
  ]);
  assert.deepEqual(
    exchanges.map((e) => [e.query, e.startNs, e.endNs, e.commandTag]),
    [
      ["SELECT 1", 3000n, 4000n, "SELECT 1"],
      ["SELECT 2", 3000n, 4000n, "SELECT 1"],
    ],
  );
  assert.deepEqual(st, stats({ exchanges: 2 }));
});

// --- Truncated chunks ------------------------------------------------------

Deno.test("postgres: a megabyte DataRow over truncated chunks is skipped by its length", () => {
  clock = 0n;
  const value = "x".repeat(1 << 20);
  const response = concat(
    rowDesc(),
    dataRow(value),
    complete("SELECT 1"),
    ready(),
  );
  const chunks = [c(startup()), s(auth()), c(query("SELECT big"))];
  // The server writes 64 KiB at a time; the capture keeps 100 bytes of each.
  for (let i = 0; i < response.length; i += 65536) {
    const size = Math.min(65536, response.length - i);
    const last = i + size >= response.length;
    chunks.push(
      chunk("server", response.subarray(i, last ? i + size : i + 100), size),
    );
  }
  const { exchanges, stats: st } = run(chunks);
  assert.deepEqual(exchanges, [exchange({
    startNs: 3000n,
    endNs: 4000n,
    requestBytes: 16,
    responseBytes: response.length,
    query: "SELECT big",
    rows: 1,
    commandTag: "SELECT 1",
  })]);
  assert.deepEqual(st, stats({ exchanges: 1 }));
});

Deno.test("postgres: many rows with a cut across message boundaries recover at ReadyForQuery", () => {
  clock = 0n;
  const rows: Uint8Array[] = [];
  for (let i = 0; i < 5000; i++) rows.push(dataRow(String(i)));
  const response = concat(rowDesc(), ...rows, complete("SELECT 5000"), ready());
  const chunks = [
    c(startup()),
    s(auth()),
    c(query("SELECT generate_series(0, 4999)")),
  ];
  // 8 KiB writes, the capture keeping 4 KiB of each but the last.
  for (let i = 0; i < response.length; i += 8192) {
    const size = Math.min(8192, response.length - i);
    const last = i + size >= response.length;
    chunks.push(
      chunk("server", response.subarray(i, last ? i + size : i + 4096), size),
    );
  }
  // A truncated write that starts on a message boundary resynchronises, then loses it again.
  const starts = new Set<number>();
  for (
    let i = 0;
    i < response.length;
    i += 1 + new DataView(response.buffer).getInt32(i + 1)
  ) {
    starts.add(i);
  }
  let realigned = 0;
  for (let i = 8192; i + 8192 < response.length; i += 8192) {
    if (starts.has(i)) realigned++;
  }
  const next = [
    c(query("SELECT 1")),
    s(rowDesc(), dataRow("1"), complete("SELECT 1"), ready()),
  ];
  chunks.push(...next);
  const { exchanges, stats: st } = run(chunks);
  assert.deepEqual(
    exchanges[0],
    exchange({
      startNs: 3000n,
      endNs: 4000n,
      requestBytes: 37,
      responseBytes: response.length,
      query: "SELECT generate_series(0, 4999)",
      rows: 5000,
      commandTag: "SELECT 5000",
    }),
  );
  assert.deepEqual(
    exchanges[1],
    exchange({
      startNs: next[0]!.timeNs,
      endNs: next[1]!.timeNs,
      requestBytes: next[0]!.size,
      responseBytes: next[1]!.size,
      query: "SELECT 1",
      rows: 1,
      commandTag: "SELECT 1",
    }),
  );
  assert.deepEqual(st, stats({ exchanges: 2, resyncs: 1 + realigned }));
});

Deno.test("postgres: an error after a cut is read from the chunk's tail", () => {
  clock = 0n;
  const rows: Uint8Array[] = [];
  for (let i = 0; i < 400; i++) rows.push(dataRow(String(i)));
  const error = errorResponse("22012", "division by zero");
  const response = concat(rowDesc(), ...rows, error, ready());
  const { exchanges, stats: st } = run([
    c(startup()),
    s(auth()),
    c(query("SELECT 1/(200 - n) FROM t")),
    chunk("server", response.subarray(0, 1000), 4000), // cut across many rows
    chunk("server", response.subarray(4001)), // starts inside a row, ends the response
  ]);
  assert.deepEqual(exchanges, [exchange({
    startNs: 3000n,
    endNs: 4000n,
    requestBytes: 31,
    responseBytes: response.length - 1, // one byte was never seen by either chunk
    query: "SELECT 1/(200 - n) FROM t",
    errorCode: "22012",
    errorMessage: "division by zero",
  })]);
  assert.deepEqual(st, stats({ exchanges: 1, resyncs: 1 }));
});

Deno.test("postgres: a lost end of response is dropped when the client sends its next Query", () => {
  clock = 0n;
  const rows: Uint8Array[] = [];
  for (let i = 0; i < 100; i++) rows.push(dataRow(String(i)));
  const response = concat(rowDesc(), ...rows, complete("SELECT 100"), ready());
  const { exchanges, stats: st } = run([
    c(startup()),
    s(auth()),
    c(query("SELECT a")),
    // One write, cut: the end of the response, its ReadyForQuery included, is lost.
    chunk("server", response.subarray(0, 300), response.length),
    c(query("SELECT b")),
    s(rowDesc(), dataRow("1"), complete("SELECT 1"), ready()),
  ]);
  assert.deepEqual(exchanges.map((e) => [e.query, e.commandTag]), [[
    "SELECT b",
    "SELECT 1",
  ]]);
  assert.deepEqual(st, stats({ exchanges: 1, resyncs: 1, unanswered: 1 }));
});

Deno.test("postgres: a truncated Query keeps the captured prefix of its text", () => {
  clock = 0n;
  const sql = "SELECT '" + "é".repeat(50_000) + "'";
  const q = query(sql);
  const { exchanges, stats: st } = run([
    c(startup()),
    s(auth()),
    chunk("client", q.subarray(0, 4096), q.length), // cut inside a two-byte character
    s(complete("SELECT 1"), ready()),
  ]);
  assert.equal(exchanges.length, 1);
  assert.equal(exchanges[0]!.requestBytes, q.length);
  // 4096 bytes: 5 of header, 8 of "SELECT '", 2041 whole "é" and half of one.
  assert.equal(exchanges[0]!.query, "SELECT '" + "é".repeat(2041));
  assert.deepEqual(st, stats({ exchanges: 1 }));
});

Deno.test("postgres: query text is capped at maxQueryBytes", () => {
  clock = 0n;
  const sql = "SELECT " + "1+".repeat(40_000) + "1";
  const { exchanges } = run([c(query(sql)), s(complete("SELECT 1"), ready())]);
  assert.equal(exchanges[0]!.query, sql.slice(0, 65536));
  const small = run([c(query(sql)), s(complete("SELECT 1"), ready())], {
    maxQueryBytes: 10,
  });
  assert.equal(small.exchanges[0]!.query, "SELECT 1+1");
});

Deno.test("postgres: a client cut across Bind loses that batch, the next one is matched", () => {
  clock = 0n;
  const big = msg(
    "B",
    cstr(""),
    cstr("s1"),
    int16(0),
    int16(1),
    int32(10_000),
    new Uint8Array(10_000),
    int16(0),
  );
  const batch = concat(
    parse("s1", "INSERT INTO t VALUES ($1)"),
    big,
    execute(""),
    sync(),
  );
  const { exchanges, stats: st } = run([
    c(startup()),
    s(auth()),
    chunk("client", batch.subarray(0, 2000), batch.length),
    s(parseComplete(), bindComplete(), complete("INSERT 0 1"), ready()),
    c(parse("", "SELECT 1"), bind("", ""), execute(""), sync()),
    s(
      parseComplete(),
      bindComplete(),
      dataRow("1"),
      complete("SELECT 1"),
      ready(),
    ),
  ]);
  assert.deepEqual(exchanges.map((e) => [e.query, e.commandTag]), [[
    "SELECT 1",
    "SELECT 1",
  ]]);
  assert.deepEqual(st, stats({ exchanges: 1, resyncs: 1 }));
});

// --- Garbage ---------------------------------------------------------------

Deno.test("postgres: server garbage drops the pending Query and resyncs on the next message", () => {
  clock = 0n;
  const { exchanges, stats: st } = run([
    c(startup()),
    s(auth()),
    c(query("SELECT 1")),
    s(enc.encode("\x00\x01garbage that is not a message")),
    s(enc.encode("more garbage")),
    c(query("SELECT 2")),
    s(rowDesc(), dataRow("2"), complete("SELECT 1"), ready()),
  ]);
  assert.deepEqual(exchanges.map((e) => [e.query, e.commandTag]), [[
    "SELECT 2",
    "SELECT 1",
  ]]);
  assert.deepEqual(st, stats({ exchanges: 1, resyncs: 1, unanswered: 1 }));
});

Deno.test("postgres: client garbage is counted and the next Query works", () => {
  clock = 0n;
  const { exchanges, stats: st } = run([
    c(startup()),
    s(auth()),
    c(query("SELECT 1"), enc.encode("Q\xff\xff\xff\xffjunk")),
    s(rowDesc(), dataRow("1"), complete("SELECT 1"), ready()),
    c(enc.encode("!!!")),
    c(query("SELECT 2")),
    s(rowDesc(), dataRow("2"), complete("SELECT 1"), ready()),
  ]);
  // "SELECT 1" was pending when the garbage came: dropped; its answer is absorbed.
  assert.deepEqual(exchanges.map((e) => e.query), ["SELECT 2"]);
  assert.deepEqual(st, stats({ exchanges: 1, resyncs: 1, unanswered: 1 }));
});

Deno.test("postgres: impossible lengths are garbage", () => {
  for (
    const bad of [
      concat(enc.encode("Z"), int32(6), enc.encode("II")), // ReadyForQuery is 5
      concat(enc.encode("D"), int32(3)), // shorter than its own length field
      concat(enc.encode("D"), int32(0x7fffffff)),
      concat(enc.encode("C"), int32(-5)),
      concat(enc.encode("q"), int32(5), new Uint8Array(1)), // no such backend type
    ]
  ) {
    clock = 0n;
    const { stats: st } = run([
      c(startup()),
      s(auth()),
      c(query("SELECT 1")),
      s(bad),
    ]);
    assert.deepEqual(
      st,
      stats({ resyncs: 1, unanswered: 1 }),
      JSON.stringify([...bad]),
    );
  }
});

Deno.test("postgres: random bytes never throw", () => {
  let seed = 42;
  const random = () =>
    (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  const valid = fixture("postgres_pgbench_prepared.hex");
  for (let round = 0; round < 200; round++) {
    const parser = createPostgresParser({ maxPending: 4, maxStatements: 2 });
    for (let i = 0; i < 60; i++) {
      let bytes: Uint8Array;
      if (random() < 0.5) {
        const from = valid[Math.floor(random() * valid.length)]!.bytes;
        const at = Math.floor(random() * from.length);
        bytes = from.subarray(at, at + Math.floor(random() * 200));
      } else {
        bytes = Uint8Array.from(
          { length: Math.floor(random() * 64) },
          () =>
            random() < 0.3
              ? "QPBESZCDTdc12n"
                .charCodeAt(Math.floor(random() * 14))
              : Math.floor(random() * 256),
        );
      }
      const size = bytes.length +
        (random() < 0.2 ? Math.floor(random() * 100_000) : 0);
      parser.push({
        sender: random() < 0.5 ? "client" : "server",
        timeNs: BigInt(i),
        bytes,
        size,
      });
    }
    const st = parser.stats;
    assert.ok(st.exchanges >= 0 && st.resyncs >= 0 && st.unanswered >= 0);
  }
});

// --- Extended protocol -----------------------------------------------------

Deno.test("postgres: pipelined groups before one Sync are matched in order", () => {
  clock = 0n;
  const { exchanges, stats: st } = run([
    c(startup()),
    s(auth()),
    c(
      parse("a", "SELECT 1"),
      bind("", "a"),
      execute(""),
      parse("b", "UPDATE t SET x = 1"),
      bind("", "b"),
      execute(""),
      sync(),
      bind("p2", "a"),
      execute("p2"),
      sync(),
    ),
    s(
      parseComplete(),
      bindComplete(),
      dataRow("1"),
      complete("SELECT 1"),
      parseComplete(),
      bindComplete(),
      complete("UPDATE 7"),
      ready("I"),
    ),
    s(bindComplete(), dataRow("1"), complete("SELECT 1"), ready()),
  ]);
  assert.deepEqual(
    exchanges.map((e) => [e.statement, e.query, e.commandTag, e.rows, e.endNs]),
    [
      ["a", "SELECT 1", "SELECT 1", 1, 4000n],
      ["b", "UPDATE t SET x = 1", "UPDATE 7", 7, 4000n],
      ["a", "SELECT 1", "SELECT 1", 1, 5000n],
    ],
  );
  assert.deepEqual(st, stats({ exchanges: 3 }));
});

Deno.test("postgres: Executes sent after the server's error, before Sync, are unanswered", () => {
  clock = 0n;
  const { exchanges, stats: st } = run([
    c(startup()),
    s(auth()),
    c(parse("", "SELECT 1/0"), bind("", ""), execute(""), msg("H")), // Flush
    s(
      parseComplete(),
      bindComplete(),
      errorResponse("22012", "division by zero"),
    ),
    c(parse("", "SELECT 2"), bind("", ""), execute(""), execute(""), sync()),
    s(ready("I")),
    c(parse("", "SELECT 3"), bind("", ""), execute(""), sync()),
    s(
      parseComplete(),
      bindComplete(),
      dataRow("3"),
      complete("SELECT 1"),
      ready(),
    ),
  ]);
  assert.deepEqual(exchanges.map((e) => [e.query, e.errorCode, e.commandTag]), [
    ["SELECT 1/0", "22012", ""],
    ["SELECT 3", "", "SELECT 1"],
  ]);
  assert.deepEqual(st, stats({ exchanges: 2, unanswered: 2 }));
});

Deno.test("postgres: a Parse error fails the Execute of that batch", () => {
  clock = 0n;
  const request = [
    parse("", "SELEC 1"),
    bind("", ""),
    describe(""),
    execute(""),
  ];
  const error = errorResponse("42601", 'syntax error at or near "SELEC"');
  const { exchanges, stats: st } = run([
    c(...request, sync()),
    s(error, ready()),
  ]);
  assert.deepEqual(exchanges, [exchange({
    startNs: 1000n,
    endNs: 2000n,
    requestBytes: 16 + 13 + 7 + 10,
    responseBytes: error.length,
    query: "SELEC 1",
    protocol: "extended",
    errorCode: "42601",
    errorMessage: 'syntax error at or near "SELEC"',
  })]);
  assert.deepEqual(st, stats({ exchanges: 1 }));
});

Deno.test("postgres: EmptyQueryResponse, PortalSuspended and NoData", () => {
  clock = 0n;
  const { exchanges, stats: st } = run([
    c(query("")),
    s(msg("I"), ready()),
    c(
      parse("", "SELECT generate_series(1, 10)"),
      bind("c", ""),
      msg("E", cstr("c"), int32(2)),
      sync(),
    ),
    s(
      parseComplete(),
      bindComplete(),
      dataRow("1"),
      dataRow("2"),
      msg("s"),
      ready("T"),
    ),
    c(parse("", "SET x = 1"), bind("", ""), describe(""), execute(""), sync()),
    s(parseComplete(), bindComplete(), noData(), complete("SET"), ready()),
  ]);
  assert.deepEqual(
    exchanges.map((e) => [e.protocol, e.query, e.commandTag, e.rows]),
    [
      ["simple", "", "", -1],
      ["extended", "SELECT generate_series(1, 10)", "", -1],
      ["extended", "SET x = 1", "SET", -1],
    ],
  );
  assert.deepEqual(st, stats({ exchanges: 3 }));
});

Deno.test("postgres: each Parse replaces the unnamed statement; Close forgets a named one", () => {
  clock = 0n;
  const { exchanges } = run([
    c(
      parse("", "SELECT 1"),
      parse("n", "SELECT 'n'"),
      bind("", ""),
      execute(""),
      sync(),
    ),
    s(
      parseComplete(),
      parseComplete(),
      bindComplete(),
      complete("SELECT 1"),
      ready(),
    ),
    c(parse("", "SELECT 2"), bind("", ""), execute(""), sync()),
    s(parseComplete(), bindComplete(), complete("SELECT 1"), ready()),
    c(close("n"), bind("", "n"), execute(""), sync()),
    s(
      msg("3"),
      errorResponse("26000", 'prepared statement "n" does not exist'),
      ready(),
    ),
    c(bind("", "never_parsed"), execute(""), sync()),
    s(bindComplete(), complete("SELECT 1"), ready()),
  ]);
  assert.deepEqual(exchanges.map((e) => [e.statement, e.query, e.errorCode]), [
    ["", "SELECT 1", ""],
    ["", "SELECT 2", ""],
    ["n", "", "26000"],
    ["never_parsed", "", ""],
  ]);
});

// --- Bounds ----------------------------------------------------------------

Deno.test("postgres: the statement map evicts the least recently used", () => {
  clock = 0n;
  const { exchanges, stats: st } = run([
    c(
      parse("a", "SELECT 'a'"),
      parse("b", "SELECT 'b'"),
      bind("", "a"),
      sync(),
    ),
    s(parseComplete(), parseComplete(), bindComplete(), ready()),
    c(parse("c", "SELECT 'c'"), sync()), // evicts b: a was used more recently
    s(parseComplete(), ready()),
    c(
      bind("", "a"),
      execute(""),
      bind("", "b"),
      execute(""),
      bind("", "c"),
      execute(""),
      sync(),
    ),
    s(
      bindComplete(),
      complete("SELECT 1"),
      bindComplete(),
      complete("SELECT 1"),
      bindComplete(),
      complete("SELECT 1"),
      ready(),
    ),
  ], { maxStatements: 2 });
  assert.deepEqual(exchanges.map((e) => [e.statement, e.query]), [
    ["a", "SELECT 'a'"],
    ["b", ""],
    ["c", "SELECT 'c'"],
  ]);
  assert.deepEqual(st, stats({ exchanges: 3, statementsEvicted: 1 }));
});

Deno.test("postgres: Executes beyond maxPending are counted and their answers absorbed", () => {
  clock = 0n;
  const many = [];
  const answers = [];
  for (let i = 0; i < 5; i++) {
    many.push(parse("", `SELECT ${i}`), bind("", ""), execute(""));
    answers.push(parseComplete(), bindComplete(), complete("SELECT 1"));
  }
  const { exchanges, stats: st } = run([
    c(...many, sync()),
    s(...answers, ready()),
    c(parse("", "SELECT 'after'"), bind("", ""), execute(""), sync()),
    s(parseComplete(), bindComplete(), complete("SELECT 1"), ready()),
  ], { maxPending: 2 });
  assert.deepEqual(exchanges.map((e) => e.query), [
    "SELECT 0",
    "SELECT 1",
    "SELECT 'after'",
  ]);
  assert.deepEqual(st, stats({ exchanges: 3, unanswered: 3 }));
});

Deno.test("postgres: Queries beyond maxPending are counted and stay in step", () => {
  clock = 0n;
  const queries = [query("SELECT 0"), query("SELECT 1"), query("SELECT 2")];
  const answers = [0, 1, 2].map(() => concat(complete("SELECT 1"), ready()));
  const { exchanges, stats: st } = run([
    c(...queries),
    s(...answers),
    c(query("SELECT 3")),
    s(complete("SELECT 1"), ready()),
  ], { maxPending: 1 });
  assert.deepEqual(exchanges.map((e) => e.query), ["SELECT 0", "SELECT 3"]);
  assert.deepEqual(st, stats({ exchanges: 2, unanswered: 2 }));
});

// --- Startup and mid-stream --------------------------------------------------

Deno.test("postgres: a capture that starts mid-stream picks up at the next message", () => {
  const chunks = fixture("postgres_pgbench_prepared.hex");
  // From the second transaction on: no startup, no Parse seen.
  const { exchanges, stats: st } = run(chunks.slice(32));
  assert.deepEqual(exchanges.map((e) => [e.statement, e.query, e.commandTag]), [
    ["P_0", "", "BEGIN"],
    ["P_1", "", "UPDATE 1"],
    ["P_2", "", "SELECT 1"],
    ["P_3", "", "UPDATE 1"],
    ["P_4", "", "UPDATE 1"],
    ["P_5", "", "INSERT 0 1"],
    ["P_6", "", "COMMIT"],
  ]);
  assert.deepEqual(st, stats({ exchanges: 7 }));
});

Deno.test("postgres: a capture that starts inside a message waits for a chunk that starts one", () => {
  clock = 0n;
  const q = query("SELECT 'some long text'");
  const { exchanges, stats: st } = run([
    chunk("client", q.subarray(9)), // the end of a Query sent before the capture
    chunk(
      "server",
      concat(dataRow("x"), complete("SELECT 1"), ready()).subarray(3),
    ),
    c(query("SELECT 2")),
    s(rowDesc(), dataRow("2"), complete("SELECT 1"), ready()),
  ]);
  assert.deepEqual(exchanges.map((e) => [e.query, e.startNs, e.endNs]), [[
    "SELECT 2",
    3000n,
    4000n,
  ]]);
  assert.deepEqual(st, stats({ exchanges: 1 }));
});

Deno.test("postgres: accepted SSL or GSS encryption hides the rest of the connection", () => {
  for (const [code, answer] of [[80877103, "S"], [80877104, "G"]] as const) {
    clock = 0n;
    const tls = new Uint8Array([
      0x16,
      0x03,
      0x01,
      0x02,
      0x00,
      0x01,
      0x00,
      0x01,
      0xfc,
    ]);
    const { exchanges, stats: st } = run([
      c(int32(8), int32(code)),
      s(enc.encode(answer)),
      c(tls),
      s(new Uint8Array([0x16, 0x03, 0x03, 0x00, 0x7a, 0x02])),
      c(new Uint8Array([0x17, 0x03, 0x03, 0x00, 0x20, 0x51, 0x00])),
    ]);
    assert.deepEqual(exchanges, []);
    assert.deepEqual(st, stats({}));
  }
});

Deno.test("postgres: plaintext after accepted SSL (decrypted by SSL probes) is parsed", () => {
  clock = 0n;
  const { exchanges, stats: st } = run([
    c(int32(8), int32(80877103)),
    s(enc.encode("S")),
    c(startup()),
    s(auth()),
    c(query("SELECT 1")),
    s(complete("SELECT 1"), ready()),
  ]);
  assert.deepEqual(exchanges.map((e) => [e.query, e.rows]), [["SELECT 1", 1]]);
  assert.deepEqual(st, stats({ exchanges: 1 }));
});

Deno.test("postgres: GSSENCRequest refused, CancelRequest, and the authentication exchange", () => {
  clock = 0n;
  const { exchanges, stats: st } = run([
    c(int32(8), int32(80877104)),
    s(enc.encode("N")),
    c(startup()),
    s(msg("R", int32(10), cstr("SCRAM-SHA-256"), new Uint8Array([0]))),
    c(msg("p", cstr("SCRAM-SHA-256"), int32(4), enc.encode("n,,x"))),
    s(msg("R", int32(11), enc.encode("r=abc"))),
    c(msg("p", enc.encode("c=biws,r=abc,p=xyz"))),
    s(
      msg("R", int32(12), enc.encode("v=xyz")),
      msg("R", int32(0)),
      msg("S", cstr("a"), cstr("b")),
    ),
    s(msg("K", int32(1), int32(2)), ready()),
    c(query("SELECT 1")),
    s(complete("SELECT 1"), ready()),
  ]);
  assert.deepEqual(exchanges.map((e) => e.query), ["SELECT 1"]);
  assert.deepEqual(st, stats({ exchanges: 1 }));
  const cancel = run([c(int32(16), int32(80877102), int32(1), int32(2))]);
  assert.deepEqual(cancel, { exchanges: [], stats: stats({}) });
});

// --- Detection -------------------------------------------------------------

Deno.test("postgres: looksLikePostgresClient", () => {
  for (const file of FIXTURES) {
    assert.equal(looksLikePostgresClient(fixture(file)[0]!.bytes), true, file);
  }
  for (
    const yes of [
      concat(int32(8), int32(80877104)),
      concat(int32(16), int32(80877102), int32(1), int32(2)),
      query("SELECT 1"),
      query("  select 1").subarray(0, 8),
      parse("", "SELECT 1"),
      parse("stmt_1", "INSERT INTO t VALUES ($1)"),
      concat(startup(), query("SELECT 1")),
    ]
  ) {
    assert.equal(looksLikePostgresClient(yes), true, JSON.stringify([...yes]));
  }
  for (
    const no of [
      enc.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
      enc.encode("POST /a HTTP/1.1\r\n"),
      enc.encode("PUT /a HTTP/1.1\r\n"),
      enc.encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
      enc.encode("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"),
      new Uint8Array([
        0x16,
        0x03,
        0x01,
        0x02,
        0x00,
        0x01,
        0x00,
        0x01,
        0xfc,
        0x03,
      ]),
      concat(int32(8), int32(80877105)), // no such request code
      concat(int32(9), int32(80877103)),
      concat(int32(20000), int32(196608)), // startup packets are under 10000 bytes
      concat(enc.encode("Q"), int32(4), new Uint8Array([0])), // shorter than its NUL
      concat(enc.encode("Q"), int32(9), enc.encode("SELECT")), // not NUL-terminated
      concat(enc.encode("Q"), int32(7), new Uint8Array([1, 2, 0])),
      concat(enc.encode("P"), int32(20), enc.encode("name-without-end-xxxx")),
      enc.encode("Q\x00\x00"),
      new Uint8Array(0),
    ]
  ) {
    assert.equal(looksLikePostgresClient(no), false, JSON.stringify([...no]));
  }
});
