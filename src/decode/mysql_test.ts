import assert from "node:assert/strict";
import {
  createMysqlParser,
  looksLikeMysqlCommand,
  looksLikeMysqlServerGreeting,
  type MysqlExchange,
  type MysqlParser,
  type MysqlParserOptions,
} from "./mysql.ts";
import type { StreamChunk, StreamSender } from "./stream.ts";

// ---- Real captures ------------------------------------------------------
// testdata/mysql_*.hex: a private MariaDB 10.11.19 (mariadbd from Debian 12)
// behind a Deno TCP proxy (Deno.listen + Deno.connect) that wrote one line
// per read(): "c <hex>" for client → server, "s <hex>" for server → client.
// Clients: the mariadb CLI, npm:mysql2 and npm:mariadb run from Deno. Each
// file's header says what was run. Chunk i gets timeNs = i.

function fixture(name: string): StreamChunk[] {
  const file = new URL(`./testdata/${name}`, import.meta.url);
  const chunks: StreamChunk[] = [];
  for (const line of Deno.readTextFileSync(file).split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const [who, hex] = line.split(" ");
    const bytes = new Uint8Array(hex!.length / 2);
    for (let i = 0; i < bytes.length; i++) {
      bytes[i] = parseInt(hex!.slice(2 * i, 2 * i + 2), 16);
    }
    chunks.push({
      sender: who === "c" ? "client" : "server",
      timeNs: BigInt(chunks.length),
      bytes,
      size: bytes.length,
    });
  }
  return chunks;
}

function run(
  chunks: StreamChunk[],
  parser: MysqlParser = createMysqlParser(),
): MysqlExchange[] {
  const out: MysqlExchange[] = [];
  for (const chunk of chunks) out.push(...parser.push(chunk));
  return out;
}

/** An exchange with the defaults of a successful one. */
function ex(
  fields: Partial<MysqlExchange> & {
    startNs: bigint;
    endNs: bigint;
    requestBytes: number;
    responseBytes: number;
    command: string;
  },
): MysqlExchange {
  return {
    query: "",
    errorCode: 0,
    sqlState: "",
    errorMessage: "",
    rows: -1,
    ...fields,
  };
}

const FIXTURES: Record<string, MysqlExchange[]> = {
  "mysql_cli.hex": [
    ex({
      startNs: 3n,
      endNs: 4n,
      requestBytes: 61,
      responseBytes: 11,
      command: "COM_QUERY",
      query: "create table users(id int primary key, name varchar(20))",
      rows: 0,
    }),
    ex({
      startNs: 5n,
      endNs: 6n,
      requestBytes: 58,
      responseBytes: 50,
      command: "COM_QUERY",
      query: "insert into users values (1,'ann'),(2,'bob'),(3,'cy')",
      rows: 3,
    }),
    ex({
      startNs: 7n,
      endNs: 8n,
      requestBytes: 43,
      responseBytes: 141,
      command: "COM_QUERY",
      query: "select id, name from users order by id",
      rows: 3,
    }),
    ex({
      startNs: 9n,
      endNs: 10n,
      requestBytes: 32,
      responseBytes: 50,
      command: "COM_QUERY",
      query: "select * from missing_table",
      errorCode: 1146,
      sqlState: "42S02",
      errorMessage: "Table 't.missing_table' doesn't exist",
    }),
  ],
  "mysql_mysql2.hex": [
    ex({
      startNs: 3n,
      endNs: 4n,
      requestBytes: 44,
      responseBytes: 150,
      command: "COM_STMT_PREPARE",
      query: "SELECT id, name FROM users WHERE id > ?",
    }),
    ex({
      startNs: 5n,
      endNs: 6n,
      requestBytes: 26,
      responseBytes: 138,
      command: "COM_STMT_EXECUTE",
      query: "SELECT id, name FROM users WHERE id > ?",
      rows: 2,
    }),
    ex({
      startNs: 7n,
      endNs: 8n,
      requestBytes: 26,
      responseBytes: 124,
      command: "COM_STMT_EXECUTE",
      query: "SELECT id, name FROM users WHERE id > ?",
      rows: 1,
    }),
    ex({
      startNs: 9n,
      endNs: 10n,
      requestBytes: 40,
      responseBytes: 46,
      command: "COM_STMT_PREPARE",
      query: "SELECT nope FROM users WHERE id = ?",
      errorCode: 1054,
      sqlState: "42S22",
      errorMessage: "Unknown column 'nope' in 'SELECT'",
    }),
    ex({
      // OK (1 affected, SERVER_MORE_RESULTS_EXISTS) then a 1-row result set.
      startNs: 11n,
      endNs: 12n,
      requestBytes: 80,
      responseBytes: 109,
      command: "COM_QUERY",
      query:
        "UPDATE users SET name = 'zed' WHERE id = 3; SELECT COUNT(*) AS n FROM users",
      rows: 2,
    }),
  ],
  "mysql_mariadb_node.hex": [
    ex({
      startNs: 3n,
      endNs: 4n,
      requestBytes: 22,
      responseBytes: 111,
      command: "COM_QUERY",
      query: "SET NAMES utf8mb4",
      rows: 0,
    }),
    // Prepare and execute(-1) pipelined; the response to both spans two reads.
    ex({
      startNs: 5n,
      endNs: 7n,
      requestBytes: 40,
      responseBytes: 90,
      command: "COM_STMT_PREPARE",
      query: "SELECT name FROM users WHERE id = ?",
    }),
    ex({
      startNs: 6n,
      endNs: 8n,
      requestBytes: 22,
      responseBytes: 27,
      command: "COM_STMT_EXECUTE",
      query: "SELECT name FROM users WHERE id = ?",
      rows: 1,
    }),
    ex({
      startNs: 9n,
      endNs: 10n,
      requestBytes: 22,
      responseBytes: 27,
      command: "COM_STMT_EXECUTE",
      query: "SELECT name FROM users WHERE id = ?",
      rows: 1,
    }),
    // Three pipelined queries: two client reads, one server read for two
    // result sets, another for the OK.
    ex({
      startNs: 11n,
      endNs: 13n,
      requestBytes: 18,
      responseBytes: 51,
      command: "COM_QUERY",
      query: "SELECT 1 AS a",
      rows: 1,
    }),
    ex({
      startNs: 12n,
      endNs: 13n,
      requestBytes: 18,
      responseBytes: 51,
      command: "COM_QUERY",
      query: "SELECT 2 AS b",
      rows: 1,
    }),
    ex({
      startNs: 12n,
      endNs: 14n,
      requestBytes: 36,
      responseBytes: 11,
      command: "COM_QUERY",
      query: "DELETE FROM users WHERE id = 99",
      rows: 0,
    }),
    ex({
      startNs: 15n,
      endNs: 16n,
      requestBytes: 12,
      responseBytes: 168,
      command: "COM_QUERY",
      query: "SELEC 1",
      errorCode: 1064,
      sqlState: "42000",
      errorMessage:
        "You have an error in your SQL syntax; check the manual that corresponds to your MariaDB server version for the right syntax to use near 'SELEC 1' at line 1",
    }),
  ],
  "mysql_mysql2_extra.hex": [
    ex({
      startNs: 3n,
      endNs: 4n,
      requestBytes: 5,
      responseBytes: 11,
      command: "COM_PING",
      rows: 0,
    }),
    // Auth switch request, the client's answer, then OK.
    ex({
      startNs: 5n,
      endNs: 6n,
      requestBytes: 83,
      responseBytes: 69,
      command: "COM_CHANGE_USER",
      rows: 0,
    }),
    ex({
      startNs: 9n,
      endNs: 10n,
      requestBytes: 10,
      responseBytes: 17,
      command: "COM_QUERY",
      query: "USE t",
      rows: 0,
    }),
    // 0xfb request, the file (18 bytes) and its empty end packet, then OK.
    ex({
      startNs: 11n,
      endNs: 12n,
      requestBytes: 74,
      responseBytes: 69,
      command: "COM_QUERY",
      query: "LOAD DATA LOCAL INFILE 'x.tsv' INTO TABLE users",
      rows: 2,
    }),
    ex({
      startNs: 16n,
      endNs: 17n,
      requestBytes: 40,
      responseBytes: 108,
      command: "COM_STMT_PREPARE",
      query: "SELECT name FROM users WHERE id = ?",
    }),
    ex({
      startNs: 18n,
      endNs: 19n,
      requestBytes: 26,
      responseBytes: 79,
      command: "COM_STMT_EXECUTE",
      query: "SELECT name FROM users WHERE id = ?",
      rows: 1,
    }),
    // Two COM_STMT_CLOSE: no exchange.
    ex({
      startNs: 22n,
      endNs: 23n,
      requestBytes: 37,
      responseBytes: 11,
      command: "COM_QUERY",
      query: "DELETE FROM users WHERE id >= 10",
      rows: 2,
    }),
  ],
};

for (const [name, expected] of Object.entries(FIXTURES)) {
  Deno.test(`mysql: real capture ${name}`, () => {
    const parser = createMysqlParser();
    assert.deepEqual(run(fixture(name), parser), expected);
    assert.deepEqual(parser.stats, {
      exchanges: expected.length,
      resyncs: 0,
      unanswered: 0,
      evictedStatements: 0,
    });
  });
}

Deno.test("mysql: every split point of every captured chunk", () => {
  for (const [name, expected] of Object.entries(FIXTURES)) {
    const chunks = fixture(name);
    for (let c = 0; c < chunks.length; c++) {
      const { bytes, timeNs, sender } = chunks[c]!;
      for (let k = 1; k < bytes.length; k++) {
        const split = [
          ...chunks.slice(0, c),
          { sender, timeNs, bytes: bytes.subarray(0, k), size: k },
          {
            sender,
            timeNs,
            bytes: bytes.subarray(k),
            size: bytes.length - k,
          },
          ...chunks.slice(c + 1),
        ];
        const parser = createMysqlParser();
        assert.deepEqual(run(split, parser), expected, `${name} ${c}/${k}`);
        assert.equal(parser.stats.resyncs, 0);
      }
    }
  }
});

Deno.test("mysql: one byte per chunk", () => {
  for (const [name, expected] of Object.entries(FIXTURES)) {
    const bytewise: StreamChunk[] = [];
    for (const { sender, timeNs, bytes } of fixture(name)) {
      for (let i = 0; i < bytes.length; i++) {
        bytewise.push({
          sender,
          timeNs,
          bytes: bytes.subarray(i, i + 1),
          size: 1,
        });
      }
    }
    assert.deepEqual(run(bytewise), expected, name);
  }
});

Deno.test("mysql: consecutive chunks of one sender merged into one", () => {
  for (const [name, expected] of Object.entries(FIXTURES)) {
    const merged: StreamChunk[] = [];
    for (const chunk of fixture(name)) {
      const last = merged.at(-1);
      if (last?.sender === chunk.sender) {
        const bytes = new Uint8Array(last.bytes.length + chunk.bytes.length);
        bytes.set(last.bytes);
        bytes.set(chunk.bytes, last.bytes.length);
        merged[merged.length - 1] = { ...last, bytes, size: bytes.length };
      } else merged.push(chunk);
    }
    const strip = (e: MysqlExchange) => ({ ...e, startNs: 0n, endNs: 0n });
    assert.deepEqual(run(merged).map(strip), expected.map(strip), name);
  }
});

// ---- Synthetic packets --------------------------------------------------

const te = new TextEncoder();
type Part = Uint8Array | number[] | string;

function cat(...parts: Part[]): Uint8Array {
  const arrays = parts.map((p) =>
    typeof p === "string" ? te.encode(p) : Uint8Array.from(p)
  );
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

function pkt(seq: number, ...payload: Part[]): Uint8Array {
  const p = cat(...payload);
  const n = p.length;
  return cat([n & 0xff, (n >> 8) & 0xff, n >> 16, seq], p);
}

function lenenc(n: number): number[] {
  if (n < 251) return [n];
  if (n < 0x10000) return [0xfc, n & 0xff, n >> 8];
  return [0xfd, n & 0xff, (n >> 8) & 0xff, n >> 16];
}

function str(s: string): Uint8Array {
  const b = te.encode(s);
  return cat(lenenc(b.length), b);
}

const le16 = (n: number) => [n & 0xff, n >> 8];
const le32 = (
  n: number,
) => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24];
const AUTOCOMMIT = 0x0002;
const MORE_RESULTS = 0x0008;
const CURSOR_EXISTS = 0x0040;
const ok = (affected = 0, status = AUTOCOMMIT, header = 0x00) => [
  header,
  ...lenenc(affected),
  0,
  ...le16(status),
  0,
  0,
];
const eof = (status = AUTOCOMMIT) => [0xfe, 0, 0, ...le16(status)];
const err = (code: number, state: string, message: string) =>
  cat([0xff, ...le16(code)], "#", state, message);
const colDef = (name: string) =>
  cat(
    str("def"),
    str("t"),
    str("users"),
    str("users"),
    str(name),
    str(name),
    [0x0c, 0x21, 0, 0x3c, 0, 0, 0, 0xfd, 0, 0, 0, 0, 0],
  );
const row = (...values: string[]) => cat(...values.map(str));

const query = (sql: string) => pkt(0, [0x03], sql);
const prepare = (sql: string) => pkt(0, [0x16], sql);
const execute = (id: number, flags = 0) =>
  pkt(0, [0x17], le32(id), [flags], le32(1), [0]);
const PING = pkt(0, [0x0e]);
const OK_1 = pkt(1, ok());

/** A text result set from sequence id `seq`; `deprecateEof`: no middle EOF, OK-terminated. */
function resultSet(
  columns: string[],
  rows: string[][],
  options: { seq?: number; deprecateEof?: boolean; status?: number } = {},
): { bytes: Uint8Array; seq: number } {
  let seq = options.seq ?? 1;
  const status = options.status ?? AUTOCOMMIT;
  const parts: Uint8Array[] = [pkt(seq++, lenenc(columns.length))];
  for (const c of columns) parts.push(pkt(seq++, colDef(c)));
  if (!options.deprecateEof) parts.push(pkt(seq++, eof()));
  for (const r of rows) parts.push(pkt(seq++, row(...r)));
  parts.push(
    pkt(seq++, options.deprecateEof ? ok(0, status, 0xfe) : eof(status)),
  );
  return { bytes: cat(...parts), seq };
}

/** A COM_STMT_PREPARE_OK response from sequence id 1. */
function prepareOk(
  id: number,
  params: number,
  columns: number,
  deprecateEof: boolean,
): Uint8Array {
  let seq = 1;
  const parts = [
    pkt(seq++, [0], le32(id), le16(columns), le16(params), [0, 0, 0]),
  ];
  for (let i = 0; i < params; i++) parts.push(pkt(seq++, colDef("?")));
  if (params > 0 && !deprecateEof) parts.push(pkt(seq++, eof()));
  for (let i = 0; i < columns; i++) parts.push(pkt(seq++, colDef(`c${i}`)));
  if (columns > 0 && !deprecateEof) parts.push(pkt(seq++, eof()));
  return cat(...parts);
}

const CLIENT_PROTOCOL_41 = 0x200;
const CLIENT_SSL = 0x800;
const CLIENT_COMPRESS = 0x20;
const CLIENT_DEPRECATE_EOF = 0x01000000;
const CLIENT_QUERY_ATTRIBUTES = 0x08000000;
const BASE_CAPS = CLIENT_PROTOCOL_41 | 0x8000 | 0x80000 | 0x20000 | 0x10000;

function greeting(caps: number): Uint8Array {
  return pkt(
    0,
    [0x0a],
    "8.0.36\0",
    le32(7),
    "abcdefgh\0",
    le16(caps & 0xffff),
    [0x21, 2, 0],
    le16(caps >>> 16),
    [21],
    new Array(10).fill(0),
    "ijklmnopqrst\0",
    "caching_sha2_password\0",
  );
}

function handshakeResponse(caps: number, seq = 1): Uint8Array {
  return pkt(
    seq,
    le32(caps),
    le32(1 << 24),
    [0x21],
    new Array(23).fill(0),
    "app\0",
    [0],
    "caching_sha2_password\0",
  );
}

/** A parser plus a clock: each push is one tick later than the last. */
function session(options?: MysqlParserOptions) {
  const parser = createMysqlParser(options);
  const exchanges: MysqlExchange[] = [];
  let t = 0n;
  const push = (sender: StreamSender, bytes: Uint8Array, size?: number) => {
    t++;
    const got = parser.push({
      sender,
      timeNs: t,
      bytes,
      size: size ?? bytes.length,
    });
    exchanges.push(...got);
    return got;
  };
  return {
    parser,
    exchanges,
    push,
    client: (...parts: Part[]) => push("client", cat(...parts)),
    server: (...parts: Part[]) => push("server", cat(...parts)),
    /** Sends `bytes` in writes of `write` bytes of which only `captured` are copied. */
    cut: (
      sender: StreamSender,
      bytes: Uint8Array,
      write: number,
      captured: number,
    ) => {
      for (let at = 0; at < bytes.length; at += write) {
        const piece = bytes.subarray(at, Math.min(at + write, bytes.length));
        push(sender, piece.subarray(0, captured), piece.length);
      }
    },
  };
}

/** A connection whose handshake the parser saw, with these client capabilities. */
function connected(caps: number, options?: MysqlParserOptions) {
  const s = session(options);
  s.server(greeting(0xffffffff));
  s.client(handshakeResponse(caps));
  s.server(pkt(2, ok()));
  return s;
}

// ---- Protocol cases ------------------------------------------------------

Deno.test("mysql: a handshake, then OK, EOF-terminated and empty result sets", () => {
  const s = connected(BASE_CAPS);
  s.client(query("SELECT id, name FROM users"));
  const rs = resultSet(["id", "name"], [["1", "ann"], ["2", "bob"]]);
  s.server(rs.bytes);
  s.client(query("SELECT 1 FROM dual WHERE 0"));
  s.server(resultSet(["1"], []).bytes);
  s.client(query("UPDATE users SET name = 'x'"));
  s.server(pkt(1, ok(7)));
  assert.deepEqual(s.exchanges, [
    ex({
      startNs: 4n,
      endNs: 5n,
      requestBytes: 31,
      responseBytes: rs.bytes.length,
      command: "COM_QUERY",
      query: "SELECT id, name FROM users",
      rows: 2,
    }),
    ex({
      startNs: 6n,
      endNs: 7n,
      requestBytes: 31,
      responseBytes: resultSet(["1"], []).bytes.length,
      command: "COM_QUERY",
      query: "SELECT 1 FROM dual WHERE 0",
      rows: 0,
    }),
    ex({
      startNs: 8n,
      endNs: 9n,
      requestBytes: 32,
      responseBytes: 11,
      command: "COM_QUERY",
      query: "UPDATE users SET name = 'x'",
      rows: 7,
    }),
  ]);
});

Deno.test("mysql: CLIENT_DEPRECATE_EOF result sets and prepares end without EOF", () => {
  const s = connected(BASE_CAPS | CLIENT_DEPRECATE_EOF);
  s.client(query("SELECT a FROM t"));
  s.server(resultSet(["a"], [["1"]], { deprecateEof: true }).bytes);
  s.client(query("SELECT a FROM t WHERE 0"));
  s.server(resultSet(["a"], [], { deprecateEof: true }).bytes);
  s.client(prepare("DO ?"));
  assert.equal(s.server(prepareOk(9, 1, 0, true)).length, 1);
  s.client(execute(9));
  s.server(OK_1);
  assert.deepEqual(
    s.exchanges.map((e) => [e.command, e.query, e.rows]),
    [
      ["COM_QUERY", "SELECT a FROM t", 1],
      ["COM_QUERY", "SELECT a FROM t WHERE 0", 0],
      ["COM_STMT_PREPARE", "DO ?", -1],
      ["COM_STMT_EXECUTE", "DO ?", 0],
    ],
  );
  assert.equal(s.parser.stats.resyncs, 0);
});

Deno.test("mysql: captured mid-stream, EOF style learnt from the first result set", () => {
  const s = session();
  // The tail of some earlier response, then a half command: both ignored.
  s.server(pkt(7, row("x", "y")), pkt(8, eof()));
  s.client([0x41, 0x42, 0x43]);
  s.client(query("SELECT a, b FROM t"));
  const rs = resultSet(["a", "b"], [["1", "2"], ["3", "4"], ["5", "6"]]);
  s.server(rs.bytes);
  // EOFs were seen: the prepare waits for its closing EOF.
  s.client(prepare("DO ?"));
  assert.equal(s.server(prepareOk(3, 1, 0, false)).length, 1);
  s.client(execute(3));
  s.server(OK_1);
  s.client(execute(77)); // prepared before the capture started
  s.server(resultSet(["a"], [["1"]]).bytes);
  assert.deepEqual(
    s.exchanges.map((e) => [e.command, e.query, e.rows, e.responseBytes]),
    [
      ["COM_QUERY", "SELECT a, b FROM t", 3, rs.bytes.length],
      ["COM_STMT_PREPARE", "DO ?", -1, 16 + 39 + 9],
      ["COM_STMT_EXECUTE", "DO ?", 0, 11],
      ["COM_STMT_EXECUTE", "", 1, resultSet(["a"], [["1"]]).bytes.length],
    ],
  );
  assert.deepEqual(s.parser.stats, {
    exchanges: 4,
    resyncs: 0,
    unanswered: 0,
    evictedStatements: 0,
  });
});

Deno.test("mysql: captured mid-stream, OK-terminated result sets and prepares", () => {
  for (const rows of [[["1"], ["2"]], []]) {
    const s = session();
    s.client(query("SELECT a FROM t"));
    s.server(resultSet(["a"], rows, { deprecateEof: true }).bytes);
    s.client(prepare("SELECT ? FROM t"));
    s.server(prepareOk(5, 1, 1, true));
    s.client(prepare("DO ?"));
    s.server(prepareOk(6, 1, 0, true));
    s.client(execute(6));
    s.server(OK_1);
    assert.deepEqual(
      s.exchanges.map((e) => [e.command, e.query, e.rows]),
      [
        ["COM_QUERY", "SELECT a FROM t", rows.length],
        ["COM_STMT_PREPARE", "SELECT ? FROM t", -1],
        ["COM_STMT_PREPARE", "DO ?", -1],
        ["COM_STMT_EXECUTE", "DO ?", 0],
      ],
    );
    assert.equal(s.parser.stats.resyncs, 0);
  }
  // A prepare first: whether EOFs follow is learnt from its own packets.
  for (const deprecateEof of [false, true]) {
    const s = session();
    s.client(prepare("SELECT a FROM t WHERE b = ?"));
    s.server(prepareOk(1, 1, 1, deprecateEof));
    s.client(execute(1));
    s.server(OK_1);
    assert.deepEqual(s.exchanges.map((e) => [e.command, e.responseBytes]), [
      ["COM_STMT_PREPARE", prepareOk(1, 1, 1, deprecateEof).length],
      ["COM_STMT_EXECUTE", 11],
    ]);
  }
});

Deno.test("mysql: multiple result sets of one CALL are one exchange", () => {
  const s = connected(BASE_CAPS);
  s.client(query("CALL report()"));
  const first = resultSet(["a"], [["1"], ["2"]], { status: MORE_RESULTS });
  const second = resultSet(["b"], [["3"]], {
    seq: first.seq,
    status: MORE_RESULTS,
  });
  const end = pkt(second.seq, ok(0));
  s.server(first.bytes);
  assert.equal(s.exchanges.length, 0);
  s.server(second.bytes, end);
  assert.deepEqual(s.exchanges, [
    ex({
      startNs: 4n,
      endNs: 5n,
      requestBytes: 18,
      responseBytes: first.bytes.length + second.bytes.length + end.length,
      command: "COM_QUERY",
      query: "CALL report()",
      rows: 3,
    }),
  ]);
});

Deno.test("mysql: ERR packets, also in the middle of rows", () => {
  const s = connected(BASE_CAPS);
  s.client(query("SELECT * FROM nope"));
  s.server(pkt(1, err(1146, "42S02", "Table 'd.nope' doesn't exist")));
  s.client(query("SELECT SLEEP(10), a FROM t"));
  s.server(
    pkt(1, [2]),
    pkt(2, colDef("s")),
    pkt(3, colDef("a")),
    pkt(4, eof()),
    pkt(5, row("0", "1")),
    pkt(6, err(1317, "70100", "Query execution was interrupted")),
  );
  assert.deepEqual(
    s.exchanges.map((e) => [e.errorCode, e.sqlState, e.errorMessage, e.rows]),
    [
      [1146, "42S02", "Table 'd.nope' doesn't exist", -1],
      [1317, "70100", "Query execution was interrupted", -1],
    ],
  );
});

Deno.test("mysql: LOCAL INFILE, progress reports, PING, INIT_DB, STATISTICS, FIELD_LIST", () => {
  const s = connected(BASE_CAPS);
  s.client(query("LOAD DATA LOCAL INFILE 'f' INTO TABLE t"));
  s.server(pkt(1, [0xfb], "f"));
  s.client(pkt(2, "1\n2\n"), pkt(3));
  s.server(pkt(4, ok(2)));
  s.client(query("ALTER TABLE t ADD c INT"));
  // MariaDB progress reports: ERR-shaped, code 0xffff.
  s.server(pkt(1, [0xff, 0xff, 0xff, 1, 1, 1, 0x10, 0x27, 0], "stage"));
  s.server(pkt(2, ok(0)));
  s.client(PING);
  s.server(OK_1);
  s.client(pkt(0, [0x02], "shop"));
  s.server(pkt(1, err(1049, "42000", "Unknown database 'shop'")));
  s.client(pkt(0, [0x09]));
  s.server(pkt(1, "Uptime: 5  Threads: 1"));
  s.client(pkt(0, [0x04], "users\0"));
  s.server(pkt(1, colDef("id")), pkt(2, colDef("name")), pkt(3, eof()));
  s.client(pkt(0, [0x01])); // COM_QUIT: no response
  assert.deepEqual(
    s.exchanges.map((
      e,
    ) => [e.command, e.requestBytes, e.responseBytes, e.rows, e.errorCode]),
    [
      ["COM_QUERY", 44 + 8 + 4, 6 + 11, 2, 0],
      ["COM_QUERY", 28, 18 + 11, 0, 0],
      ["COM_PING", 5, 11, 0, 0],
      ["COM_INIT_DB", 9, 36, -1, 1049],
      ["COM_STATISTICS", 5, 25, -1, 0],
      ["COM_FIELD_LIST", 11, 41 + 45 + 9, -1, 0],
    ],
  );
  assert.deepEqual(s.parser.stats, {
    exchanges: 6,
    resyncs: 0,
    unanswered: 0,
    evictedStatements: 0,
  });
});

Deno.test("mysql: statements are remembered, closed, reset and evicted", () => {
  const s = connected(BASE_CAPS, { maxStatements: 2 });
  for (
    const [id, sql] of [[1, "SELECT 1"], [2, "SELECT 2"], [
      3,
      "SELECT 3",
    ]] as const
  ) {
    s.client(prepare(sql));
    s.server(prepareOk(id, 0, 1, false));
  }
  assert.equal(s.parser.stats.evictedStatements, 1);
  const rs = resultSet(["c0"], [["x"]]).bytes;
  s.client(execute(1)); // evicted
  s.server(rs);
  s.client(execute(2));
  s.server(rs);
  s.client(pkt(0, [0x19], le32(2))); // COM_STMT_CLOSE: no response
  s.client(execute(2));
  s.server(rs);
  s.client(pkt(0, [0x1a], le32(3))); // COM_STMT_RESET
  s.server(OK_1);
  s.client(pkt(0, [0x18], le32(3), le16(0), "data")); // SEND_LONG_DATA: no response
  s.client(execute(3));
  s.server(rs);
  assert.deepEqual(
    s.exchanges.slice(3).map((e) => [e.command, e.query, e.rows]),
    [
      ["COM_STMT_EXECUTE", "", 1],
      ["COM_STMT_EXECUTE", "SELECT 2", 1],
      ["COM_STMT_EXECUTE", "", 1],
      ["COM_STMT_RESET", "SELECT 3", 0],
      ["COM_STMT_EXECUTE", "SELECT 3", 1],
    ],
  );
  // COM_RESET_CONNECTION forgets every statement.
  s.client(pkt(0, [0x1f]));
  s.server(OK_1);
  s.client(execute(3));
  s.server(rs);
  assert.equal(s.exchanges.at(-1)?.query, "");
  assert.deepEqual(s.parser.stats, {
    exchanges: 10,
    resyncs: 0,
    unanswered: 0,
    evictedStatements: 1,
  });
});

Deno.test("mysql: a cursor: execute ends after the metadata, FETCH returns rows", () => {
  const s = connected(BASE_CAPS);
  s.client(prepare("SELECT a FROM t"));
  s.server(prepareOk(4, 0, 1, false));
  s.client(execute(4, 1)); // CURSOR_TYPE_READ_ONLY
  s.server(pkt(1, [1]), pkt(2, colDef("a")), pkt(3, eof(CURSOR_EXISTS)));
  s.client(pkt(0, [0x1c], le32(4), le32(100)));
  s.server(
    pkt(1, [0, 0], str("1")),
    pkt(2, [0, 0], str("2")),
    pkt(3, eof(CURSOR_EXISTS | 0x80)),
  );
  assert.deepEqual(
    s.exchanges.map((e) => [e.command, e.query, e.rows]),
    [
      ["COM_STMT_PREPARE", "SELECT a FROM t", -1],
      ["COM_STMT_EXECUTE", "SELECT a FROM t", 0],
      ["COM_STMT_FETCH", "SELECT a FROM t", 2],
    ],
  );
});

Deno.test("mysql: several commands and responses in one chunk (pipelining)", () => {
  const s = connected(BASE_CAPS | CLIENT_DEPRECATE_EOF);
  s.client(
    query("SELECT 1"),
    query("SELECT 2"),
    PING,
    prepare("SELECT ?"),
    execute(0xffffffff),
  );
  assert.equal(s.exchanges.length, 0);
  s.server(
    resultSet(["1"], [["1"]], { deprecateEof: true }).bytes,
    resultSet(["2"], [["2"]], { deprecateEof: true }).bytes,
    OK_1,
    prepareOk(8, 1, 1, true),
    resultSet(["?"], [["x"]], { deprecateEof: true }).bytes,
  );
  assert.deepEqual(
    s.exchanges.map((e) => [e.command, e.query, e.rows, e.startNs, e.endNs]),
    [
      ["COM_QUERY", "SELECT 1", 1, 4n, 5n],
      ["COM_QUERY", "SELECT 2", 1, 4n, 5n],
      ["COM_PING", "", 0, 4n, 5n],
      ["COM_STMT_PREPARE", "SELECT ?", -1, 4n, 5n],
      ["COM_STMT_EXECUTE", "SELECT ?", 1, 4n, 5n],
    ],
  );
  // Statement 8 is known by its id too.
  s.client(execute(8));
  s.server(OK_1);
  assert.equal(s.exchanges.at(-1)?.query, "SELECT ?");
});

Deno.test("mysql: payloads of 16 MiB continue in the next packet", () => {
  const s = connected(BASE_CAPS);
  const big = 0xffffff;
  const head = cat([0xff, 0xff, 0xff, 0, 0x03], "INSERT INTO t VALUES ('");
  s.push("client", head, 4 + big); // the capture copied only the start
  s.client(pkt(1, "')"));
  s.server(pkt(2, ok(1)));
  // A row of exactly 16 MiB - 1 + 3 bytes: two packets, one row.
  s.client(query("SELECT blob FROM t"));
  s.server(pkt(1, [1]), pkt(2, colDef("blob")), pkt(3, eof()));
  s.push("server", cat([0xff, 0xff, 0xff, 4, 0xfe]), 4 + big);
  s.server(pkt(5, "abc"), pkt(6, eof()));
  assert.deepEqual(
    s.exchanges.map((e) => [e.query, e.requestBytes, e.responseBytes, e.rows]),
    [
      ["INSERT INTO t VALUES ('", 4 + big + 6, 11, 1],
      ["SELECT blob FROM t", 23, 5 + 45 + 9 + 4 + big + 7 + 9, 1],
    ],
  );
  assert.equal(s.parser.stats.resyncs, 0);
});

Deno.test("mysql: cut chunks inside one large row are skipped by length", () => {
  const s = connected(BASE_CAPS);
  s.client(query("SELECT doc FROM t"));
  const doc = "d".repeat(16384 * 4);
  const response = cat(
    pkt(1, [1]),
    pkt(2, colDef("doc")),
    pkt(3, eof()),
    pkt(4, row(doc)),
    pkt(5, row("small")),
    pkt(6, row("other")),
    pkt(7, eof()),
  );
  assert.ok(response.length % 16384 < 4096); // the last write is copied whole
  s.cut("server", response, 16384, 4096);
  assert.deepEqual(s.exchanges, [
    ex({
      startNs: 4n,
      endNs: 5n,
      requestBytes: 22,
      responseBytes: response.length,
      command: "COM_QUERY",
      query: "SELECT doc FROM t",
      rows: 3,
    }),
  ]);
  assert.equal(s.parser.stats.resyncs, 0);
});

Deno.test("mysql: a long query cut by the copy limit keeps its start", () => {
  const s = connected(BASE_CAPS);
  const sql = "INSERT INTO t VALUES " + "(1),".repeat(50000) + "(1)";
  const packet = query(sql);
  s.push("client", packet.subarray(0, 4096), packet.length);
  s.server(pkt(1, ok(50001)));
  assert.deepEqual(s.exchanges, [
    ex({
      startNs: 4n,
      endNs: 5n,
      requestBytes: packet.length,
      responseBytes: 13,
      command: "COM_QUERY",
      query: sql.slice(0, 4096 - 5),
      rows: 50001,
    }),
  ]);
  // maxQueryBytes cuts on a character boundary.
  const t = connected(BASE_CAPS, { maxQueryBytes: 12 });
  t.client(query("SELECT 'ééé'"));
  t.server(OK_1);
  assert.equal(t.exchanges[0]?.query, "SELECT 'éé");
});

Deno.test("mysql: a result set whose end was cut is returned at the next command", () => {
  const s = connected(BASE_CAPS);
  s.client(query("SELECT n FROM seq_1_to_2000"));
  const rows = Array.from({ length: 2000 }, (_, i) => [String(i)]);
  const response = resultSet(["n"], rows).bytes;
  s.cut("server", response, 16384, 1024);
  assert.equal(s.exchanges.length, 0);
  assert.equal(s.parser.stats.resyncs, 1);
  const got = s.client(PING);
  assert.deepEqual(got, [
    ex({
      startNs: 4n,
      endNs: 5n,
      requestBytes: 32,
      responseBytes: response.length,
      command: "COM_QUERY",
      query: "SELECT n FROM seq_1_to_2000",
      rows: -1,
    }),
  ]);
  s.server(OK_1);
  assert.deepEqual(s.exchanges.at(-1)?.command, "COM_PING");
  assert.deepEqual(s.parser.stats, {
    exchanges: 2,
    resyncs: 1,
    unanswered: 0,
    evictedStatements: 0,
  });
});

Deno.test("mysql: garbage is counted, pending commands dropped, parsing goes on", () => {
  const s = connected(BASE_CAPS);
  s.client(query("SELECT 1"));
  // An unknown command byte with sequence id 0: not MySQL framing.
  s.client(pkt(0, [0x60], "zzz"));
  assert.deepEqual(s.parser.stats, {
    exchanges: 0,
    resyncs: 1,
    unanswered: 1,
    evictedStatements: 0,
  });
  s.server(resultSet(["1"], [["1"]]).bytes); // answers a dropped command
  s.client([0x13, 0x37, 0x00]); // still not a command
  s.client(query("SELECT 2"));
  // A response with the wrong sequence id.
  s.server(pkt(5, ok()));
  assert.equal(s.parser.stats.resyncs, 2);
  s.client(query("SELECT 3"));
  s.server(resultSet(["3"], [["3"]]).bytes);
  assert.deepEqual(s.exchanges.map((e) => [e.query, e.rows]), [[
    "SELECT 3",
    1,
  ]]);
  assert.deepEqual(s.parser.stats, {
    exchanges: 1,
    resyncs: 2,
    unanswered: 2,
    evictedStatements: 0,
  });
});

Deno.test("mysql: random and mangled bytes never throw", () => {
  let seed = 0x9e3779b9;
  const random = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
  const chunks = Object.keys(FIXTURES).flatMap(fixture);
  for (let round = 0; round < 300; round++) {
    const parser = createMysqlParser({ maxStatements: 2, maxPending: 2 });
    let returned = 0;
    for (const chunk of chunks) {
      const bytes = chunk.bytes.slice();
      for (let k = 0; k < 3; k++) {
        if (random() < 0.3) {
          bytes[Math.floor(random() * bytes.length)] = Math.floor(
            random() * 256,
          );
        }
      }
      const cut = random() < 0.1
        ? Math.floor(random() * bytes.length)
        : bytes.length;
      const sender: StreamSender = random() < 0.05
        ? (chunk.sender === "client" ? "server" : "client")
        : chunk.sender;
      returned += parser.push({
        sender,
        timeNs: chunk.timeNs,
        bytes: bytes.subarray(0, cut),
        size: bytes.length + (random() < 0.05 ? 100 : 0),
      }).length;
    }
    for (let k = 0; k < 20; k++) {
      const bytes = new Uint8Array(Math.floor(random() * 64));
      for (let i = 0; i < bytes.length; i++) {
        bytes[i] = Math.floor(random() * 256);
      }
      returned += parser.push({
        sender: random() < 0.5 ? "client" : "server",
        timeNs: 0n,
        bytes,
        size: bytes.length + Math.floor(random() * 3) * 1000,
      }).length;
    }
    assert.equal(parser.stats.exchanges, returned);
  }
});

Deno.test("mysql: compressed and TLS connections are left alone", () => {
  const compressed = connected(BASE_CAPS | CLIENT_COMPRESS);
  compressed.client(query("SELECT 1"));
  compressed.server(OK_1);
  assert.equal(compressed.exchanges.length, 0);

  const tls = session();
  tls.server(greeting(0xffffffff));
  tls.client(
    pkt(
      1,
      le32(BASE_CAPS | CLIENT_SSL),
      le32(1 << 24),
      [0x21],
      new Array(23).fill(0),
    ),
  );
  tls.client([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5]);
  tls.server([0x16, 0x03, 0x03, 0x00, 0x02, 1, 2]);
  tls.client([0x17, 0x03, 0x03, 0x00, 0x09], query("SELECT"));
  assert.equal(tls.exchanges.length, 0);
  assert.equal(tls.parser.stats.resyncs, 0);

  // SSLRequest, then the plaintext the TLS library handed over.
  const plain = session();
  plain.server(greeting(0xffffffff));
  plain.client(
    pkt(
      1,
      le32(BASE_CAPS | CLIENT_SSL),
      le32(1 << 24),
      [0x21],
      new Array(23).fill(0),
    ),
  );
  plain.client(handshakeResponse(BASE_CAPS | CLIENT_SSL, 2));
  plain.server(pkt(3, ok()));
  plain.client(query("SELECT 1"));
  plain.server(resultSet(["1"], [["1"]]).bytes);
  assert.deepEqual(plain.exchanges.map((e) => e.rows), [1]);
});

Deno.test("mysql: query attributes before the SQL text", () => {
  const attribute = cat(
    [1, 1, 0, 1], // 1 parameter, 1 set, null bitmap, new_params_bind_flag
    [0xfe, 0], // MYSQL_TYPE_STRING
    str("traceparent"),
    str("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
  );
  const s = connected(BASE_CAPS | CLIENT_QUERY_ATTRIBUTES);
  s.client(pkt(0, [0x03, 0, 1], "SELECT 1"));
  s.server(OK_1);
  s.client(pkt(0, [0x03], attribute, "SELECT 2"));
  s.server(OK_1);
  // Mid-stream, recognised by the counts in front of the text.
  const m = session();
  m.client(pkt(0, [0x03], attribute, "SELECT 3"));
  m.server(OK_1);
  m.client(query("SELECT 4"));
  m.server(OK_1);
  assert.deepEqual(
    [...s.exchanges, ...m.exchanges].map((e) => e.query),
    ["SELECT 1", "SELECT 2", "SELECT 3", "SELECT 4"],
  );
});

Deno.test("mysql: a real pipelining client captured from its prepare on", () => {
  // Connector/Node, no handshake seen: CLIENT_DEPRECATE_EOF and the skipped
  // metadata are inferred, the pipelined prepare + execute(-1) both matched.
  const chunks = fixture("mysql_mariadb_node.hex").slice(5);
  const parser = createMysqlParser();
  assert.deepEqual(
    run(chunks, parser),
    FIXTURES["mysql_mariadb_node.hex"]!.slice(1),
  );
  assert.deepEqual(parser.stats, {
    exchanges: 7,
    resyncs: 0,
    unanswered: 0,
    evictedStatements: 0,
  });
});

Deno.test("mysql: a prepare's closing EOF when CLIENT_DEPRECATE_EOF is unknown", () => {
  for (const deprecateEof of [false, true]) {
    const s = session();
    s.client(prepare("DO ?"));
    // Returned at its last definition: whether an EOF follows is not known.
    const got = s.server(prepareOk(3, 1, 0, deprecateEof));
    assert.deepEqual(got.map((e) => [e.query, e.responseBytes]), [[
      "DO ?",
      16 + 39,
    ]]);
    s.client(execute(3));
    s.server(OK_1);
    s.client(prepare("SELECT ?"));
    s.server(prepareOk(4, 1, 1, deprecateEof));
    assert.deepEqual(
      s.exchanges.map((e) => [e.command, e.query, e.rows]),
      [
        ["COM_STMT_PREPARE", "DO ?", -1],
        ["COM_STMT_EXECUTE", "DO ?", 0],
        ["COM_STMT_PREPARE", "SELECT ?", -1],
      ],
    );
    assert.equal(
      s.exchanges[2]?.responseBytes,
      prepareOk(4, 1, 1, deprecateEof).length,
    );
    assert.equal(s.parser.stats.resyncs, 0);
  }
});

Deno.test("mysql: mid-stream, peers that read a header at a time", () => {
  // mysqld reads a command's 4-byte header, then its body: the capture on
  // the server side sees two syscalls per packet.
  const s = session();
  const headerThenBody = (sender: StreamSender, bytes: Uint8Array) => {
    for (let at = 0; at < bytes.length;) {
      const len = bytes[at]! | bytes[at + 1]! << 8 | bytes[at + 2]! << 16;
      s.push(sender, bytes.subarray(at, at + 4));
      if (len > 0) s.push(sender, bytes.subarray(at + 4, at + 4 + len));
      at += 4 + len;
    }
  };
  headerThenBody("client", query("SELECT a FROM t"));
  headerThenBody("server", resultSet(["a"], [["1"], ["2"]]).bytes);
  headerThenBody("client", PING);
  headerThenBody("server", OK_1);
  assert.deepEqual(
    s.exchanges.map((e) => [e.command, e.rows, e.startNs, e.endNs]),
    [["COM_QUERY", 2, 1n, 3n], ["COM_PING", 0, 15n, 17n]],
  );
  assert.deepEqual(s.parser.stats, {
    exchanges: 2,
    resyncs: 0,
    unanswered: 0,
    evictedStatements: 0,
  });
});

Deno.test("mysql: what the first bytes of a connection look like", () => {
  const cli = fixture("mysql_cli.hex");
  assert.equal(looksLikeMysqlServerGreeting(cli[0]!.bytes), true);
  assert.equal(looksLikeMysqlServerGreeting(greeting(0xffffffff)), true);
  assert.equal(looksLikeMysqlServerGreeting(greeting(0).subarray(0, 12)), true);
  for (
    const bad of [
      cli[1]!.bytes,
      pkt(0, err(1040, "08004", "Too many connections")),
      pkt(0, [0x0a], "x.0\0"),
      pkt(1, [0x0a], "8.0.36\0", new Array(40).fill(0)),
      te.encode("HTTP/1.1 200 OK\r\n\r\n"),
      new Uint8Array([0x0a, 0, 0, 0, 0x0a]),
    ]
  ) assert.equal(looksLikeMysqlServerGreeting(bad), false);

  for (const name of Object.keys(FIXTURES)) {
    const commands = fixture(name).filter((c) =>
      c.sender === "client" && c.bytes[3] === 0
    );
    assert.ok(commands.length >= 5);
    for (const c of commands) {
      assert.equal(looksLikeMysqlCommand(c.bytes), true);
    }
  }
  assert.equal(looksLikeMysqlCommand(PING), true);
  assert.equal(looksLikeMysqlCommand(execute(1)), true);
  assert.equal(looksLikeMysqlCommand(query("SELECT 1").subarray(0, 6)), true);
  for (
    const bad of [
      te.encode("GET / HTTP/1.1\r\n\r\n"),
      te.encode("*1\r\n$4\r\nPING\r\n"),
      new Uint8Array([0, 0, 0, 8, 4, 0xd2, 0x16, 0x2f]), // PostgreSQL SSLRequest
      pkt(1, [0x03], "SELECT 1"), // sequence id 1
      pkt(0, [0x0e], [0]), // COM_PING is one byte
      pkt(0, [0x19], le32(1), [0]), // COM_STMT_CLOSE is five
      pkt(0, [0x17], le32(1), [0], le32(2)), // iteration count 2
      pkt(0, [0x60], "x"),
      pkt(0, [0x03], [0x01, 0x02], "x"),
      pkt(0, [0x03]).subarray(0, 4),
    ]
  ) assert.equal(looksLikeMysqlCommand(bad), false, String(bad));
});
