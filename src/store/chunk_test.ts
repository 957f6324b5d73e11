import assert from "node:assert/strict";
import { DuckDBInstance } from "@duckdb/node-api";
import {
  CHUNK_ROWS,
  ChunkWriter,
  Float64Column,
  Int32Column,
  Int64Column,
  NumberListColumn,
  StringColumn,
} from "./chunk.ts";

async function setup() {
  const instance = await DuckDBInstance.create(":memory:");
  const conn = await instance.connect();
  await conn.run(`CREATE TABLE t (
    i BIGINT, u UBIGINT, ts TIMESTAMP, n INTEGER, d DOUBLE, s VARCHAR,
    j JSON, b DOUBLE[], c UBIGINT[])`);
  const appender = await conn.createAppender("t");
  const cols = {
    i: new Int64Column(CHUNK_ROWS),
    u: new Int64Column(CHUNK_ROWS),
    ts: new Int64Column(CHUNK_ROWS),
    n: new Int32Column(CHUNK_ROWS),
    d: new Float64Column(CHUNK_ROWS),
    s: new StringColumn(CHUNK_ROWS),
    j: new StringColumn(CHUNK_ROWS),
    b: new NumberListColumn(CHUNK_ROWS, { unsigned: false }),
    c: new NumberListColumn(CHUNK_ROWS, { unsigned: true }),
  };
  const writer = new ChunkWriter(appender, Object.values(cols));
  const read = async (sql: string) =>
    (await conn.runAndReadAll(sql)).getRowsJson();
  const close = () => {
    appender.closeSync();
    conn.closeSync();
    instance.closeSync();
  };
  return { appender, cols, writer, read, close };
}

Deno.test("chunk writer round-trips every column kind exactly", async () => {
  const { appender, cols, writer, read, close } = await setup();
  try {
    const strings = [
      "",
      "GET",
      "twelve bytes",
      "thirteen byte",
      "ünïcödé",
      "ünïcödé-long", // 12 chars, 15 bytes
      "nul\0inside",
      "a much longer string that cannot be inlined at all",
    ];
    const ints = [0, -1, 2 ** 53, -(2 ** 53), 4294967296, 4294967295, 123456];
    const rows = strings.length;
    for (let r = 0; r < rows; r++) {
      const x = ints[r % ints.length]!;
      cols.i.set(r, x);
      cols.u.set(r, Math.abs(x));
      cols.ts.set(r, 1_700_000_000_123_456 + r);
      cols.n.set(r, 1 - r);
      cols.d.set(r, r % 3 === 0 ? null : r + 0.25);
      cols.s.set(r, strings[r]!);
      cols.j.set(r, JSON.stringify({ r, s: strings[r] }));
      cols.b.set(r, r % 2 ? [1.5, 2.5] : []);
      cols.c.set(r, [r, -5, 2 ** 40]);
    }
    writer.append(rows);
    appender.flushSync();
    const got = await read(
      `SELECT i::VARCHAR, u::VARCHAR, epoch_us(ts)::VARCHAR, n, d, s, j::VARCHAR, b, c::VARCHAR FROM t`,
    );
    assert.equal(got.length, rows);
    for (let r = 0; r < rows; r++) {
      const x = ints[r % ints.length]!;
      assert.deepEqual(got[r], [
        String(x),
        String(Math.abs(x)),
        String(1_700_000_000_123_456 + r),
        1 - r,
        r % 3 === 0 ? null : r + 0.25,
        strings[r],
        JSON.stringify({ r, s: strings[r] }),
        r % 2 ? [1.5, 2.5] : [],
        `[${r}, 0, ${2 ** 40}]`,
      ]);
    }
  } finally {
    close();
  }
});

Deno.test("chunk writer reuses its chunk: constant then varied columns", async () => {
  const { appender, cols, writer, read, close } = await setup();
  try {
    const fill = (rows: number, vary: boolean, base: number) => {
      for (let r = 0; r < rows; r++) {
        cols.i.set(r, base + r);
        cols.u.set(r, 1);
        cols.ts.set(r, 0);
        cols.n.set(r, 7);
        cols.d.set(r, vary && r === 1 ? null : 1);
        cols.s.set(r, vary ? `service-number-${r}` : "same-service-name");
        cols.j.set(r, "{}");
        cols.b.set(r, vary ? [r] : [5, 10]);
        cols.c.set(r, vary ? [r, r] : [1, 2, 3]);
      }
      writer.append(rows);
    };
    fill(CHUNK_ROWS, false, 0);
    fill(3, true, CHUNK_ROWS);
    fill(2, false, CHUNK_ROWS + 3);
    appender.flushSync();
    assert.deepEqual(
      await read(
        `SELECT count(*)::INT, count(DISTINCT i)::INT, count(d)::INT,
          count(*) FILTER (s = 'same-service-name')::INT,
          count(*) FILTER (b = [5, 10]::DOUBLE[])::INT,
          count(*) FILTER (c = [1, 2, 3]::UBIGINT[])::INT FROM t`,
      ),
      [[
        CHUNK_ROWS + 5,
        CHUNK_ROWS + 5,
        CHUNK_ROWS + 4,
        CHUNK_ROWS + 2,
        CHUNK_ROWS + 2,
        CHUNK_ROWS + 2,
      ]],
    );
    assert.deepEqual(
      await read(
        `SELECT i::INT, s, b, c::VARCHAR, d FROM t WHERE i >= ${CHUNK_ROWS} ORDER BY i`,
      ),
      [
        [CHUNK_ROWS, "service-number-0", [0], "[0, 0]", 1],
        [CHUNK_ROWS + 1, "service-number-1", [1], "[1, 1]", null],
        [CHUNK_ROWS + 2, "service-number-2", [2], "[2, 2]", 1],
        [CHUNK_ROWS + 3, "same-service-name", [5, 10], "[1, 2, 3]", 1],
        [CHUNK_ROWS + 4, "same-service-name", [5, 10], "[1, 2, 3]", 1],
      ],
    );
  } finally {
    close();
  }
});
