import assert from "node:assert/strict";
import { join } from "node:path";
import { Counters } from "../model/counters.ts";
import { emptyBatch, type RecordBatch } from "../model/records.ts";
import {
  StoreClosedError,
  StoreFullError,
  StoreLockedError,
  StoreWriteError,
} from "./errors.ts";
import { DuckDbStore, type StoreOptions } from "./store.ts";
import { grpcRecord, httpRecord, span, sqlRecord } from "./testdata/records.ts";

const T0 = Date.UTC(2024, 0, 1, 12, 0, 0);

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "coral-store-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function open(path: string, options: Partial<StoreOptions> = {}) {
  const counters = options.counters ?? new Counters();
  return DuckDbStore.open(path, { agentId: "agent-1", counters, ...options });
}

function batch(parts: Partial<RecordBatch>): RecordBatch {
  return { ...emptyBatch(), ...parts };
}

async function rows(store: DuckDbStore, sql: string): Promise<unknown[][]> {
  return (await store.connection.runAndReadAll(sql)).getRowsJson();
}

Deno.test("open creates the file, its directory, schema and meta", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "nested", "deeper", "agent.duckdb");
    const store = await open(path);
    try {
      assert.match(store.sessionId, /^[0-9a-f-]{36}$/);
      assert.deepEqual(
        await rows(
          store,
          `SELECT key, value FROM agent_meta WHERE key = 'schema_version'`,
        ),
        [["schema_version", "1"]],
      );
      assert.deepEqual(
        await rows(
          store,
          `SELECT table_name FROM duckdb_tables() WHERE NOT temporary ORDER BY 1`,
        ),
        [
          ["agent_meta"],
          ["beyla_grpc_metrics"],
          ["beyla_http_metrics"],
          ["beyla_sql_metrics"],
          ["beyla_traces"],
        ],
      );
      assert.deepEqual(
        await rows(
          store,
          `SELECT view_name FROM duckdb_views() WHERE NOT internal ORDER BY 1`,
        ),
        [
          ["beyla_grpc_metrics_buckets"],
          ["beyla_http_metrics_buckets"],
          ["beyla_sql_metrics_buckets"],
        ],
      );
    } finally {
      await store.close();
    }
    assert.ok((await Deno.stat(path)).isFile);
  });
});

Deno.test("session_id persists across reopen and differs for a new file", async () => {
  await withDir(async (dir) => {
    const a = await open(join(dir, "a.duckdb"));
    const first = a.sessionId;
    await a.close();
    const again = await open(join(dir, "a.duckdb"));
    assert.equal(again.sessionId, first);
    await again.close();
    const ro = await DuckDbStore.openReadOnly(join(dir, "a.duckdb"));
    assert.equal(ro.sessionId, first);
    await ro.close();
    const b = await open(join(dir, "b.duckdb"));
    assert.notEqual(b.sessionId, first);
    await b.close();
  });
});

Deno.test("write stores every column of every kind exactly", async () => {
  await withDir(async (dir) => {
    const counters = new Counters();
    const store = await open(join(dir, "db.duckdb"), { counters });
    try {
      await store.write(batch({
        http: [httpRecord(T0, {
          counts: [1, 2, 3, 4],
          route: "/items/{id}",
          statusCode: 503,
          attributes: { "k8s.pod": "p-1", retries: 2, cached: false },
          histogram: {
            boundsMs: [10, 20, 50],
            counts: [1, 2, 3, 4],
            count: 10,
            sumMs: 321.5,
            minMs: 0.5,
            maxMs: 99,
          },
        })],
        grpc: [grpcRecord(T0, { counts: [5, 0, 0, 1], statusCode: 14 })],
        sql: [sqlRecord(T0, {
          counts: [0, 0, 1, 0],
          dbSystem: "redis",
          operation: "GET",
          table: "",
          errorType: "timeout",
        })],
        spans: [span(1, 1, {
          parentSpanId: "00000000000000ff",
          kind: "client",
          startTimeUs: 1_704_110_400_123_456,
          durationUs: 2500,
          statusCode: 2,
          statusMessage: "boom",
          attributes: { "http.response.status_code": 503 },
          processPid: 4242,
        })],
      }));
      assert.deepEqual(
        await rows(
          store,
          `SELECT seq_id::INT, epoch_ms(timestamp), epoch_ms(window_start),
            agent_id, service_name, span_kind, http_method, http_route,
            http_status_code, latency_buckets_ms, latency_counts::VARCHAR,
            request_count::INT, latency_sum_ms, latency_min_ms,
            latency_max_ms, attributes::VARCHAR, source
           FROM beyla_http_metrics`,
        ),
        [[
          1,
          String(T0),
          String(T0 - 10_000),
          "agent-1",
          "checkout",
          "server",
          "GET",
          "/items/{id}",
          503,
          [10, 20, 50],
          "[1, 2, 3, 4]",
          10,
          321.5,
          0.5,
          99,
          `{"k8s.pod":"p-1","retries":2,"cached":false}`,
          "test",
        ]],
      );
      assert.deepEqual(
        await rows(
          store,
          `SELECT service_name, grpc_method, grpc_status_code,
            latency_counts::VARCHAR, request_count::INT, latency_min_ms
           FROM beyla_grpc_metrics`,
        ),
        [["cart", "shop.Cart/Add", 14, "[5, 0, 0, 1]", 6, null]],
      );
      assert.deepEqual(
        await rows(
          store,
          `SELECT span_kind, db_system, sql_operation, table_name, error_type,
            request_count::INT FROM beyla_sql_metrics`,
        ),
        [["client", "redis", "GET", "", "timeout", 1]],
      );
      assert.deepEqual(
        await rows(
          store,
          `SELECT seq_id::INT, trace_id, span_id, parent_span_id, agent_id,
            service_name, span_name, span_kind, epoch_us(start_time)::VARCHAR,
            duration_us::INT, status_code, status_message, attributes::VARCHAR,
            resource_attributes::VARCHAR, process_pid, source
           FROM beyla_traces`,
        ),
        [[
          1,
          "00000000000000000000000000000001",
          "0000000000000001",
          "00000000000000ff",
          "agent-1",
          "checkout",
          "GET /items",
          "client",
          "1704110400123456",
          2500,
          2,
          "boom",
          `{"http.response.status_code":503}`,
          `{"service.name":"checkout"}`,
          4242,
          "test",
        ]],
      );
      assert.deepEqual(
        await rows(
          store,
          `SELECT http_status_code, latency_bucket_ms, count::INT
           FROM beyla_http_metrics_buckets ORDER BY latency_bucket_ms`,
        ),
        [[503, 10, 1], [503, 20, 2], [503, 50, 3], [503, "Infinity", 4]],
      );
      assert.deepEqual(counters.snapshot("store."), {
        "store.commits": 1,
        "store.grpc.written": 1,
        "store.http.written": 1,
        "store.spans.written": 1,
        "store.sql.written": 1,
      });
    } finally {
      await store.close();
    }
  });
});

Deno.test("a span sent twice is stored once: same batch, later batch, after reopen", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "db.duckdb");
    const counters = new Counters();
    let store = await open(path, { counters });
    await store.write(batch({
      spans: [span(1, 1), span(1, 2), span(1, 1), span(2, 1)],
    }));
    await store.write(batch({ spans: [span(1, 2), span(1, 3)] }));
    await store.close();
    store = await open(path, { counters });
    await store.write(batch({ spans: [span(2, 1), span(3, 1)] }));
    assert.deepEqual(
      await rows(
        store,
        `SELECT seq_id::INT, right(trace_id, 1), right(span_id, 1)
         FROM beyla_traces ORDER BY seq_id`,
      ),
      [[1, "1", "1"], [2, "1", "2"], [3, "2", "1"], [4, "1", "3"], [
        5,
        "3",
        "1",
      ]],
    );
    assert.equal(counters.get("store.spans.duplicate"), 3);
    assert.equal(counters.get("store.spans.written"), 5);
    await store.close();
  });
});

Deno.test("seq_ids are dense per table and continue after reopen", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "db.duckdb");
    let store = await open(path);
    await Promise.all([
      store.write(batch({
        http: [
          httpRecord(T0, { counts: [1, 0, 0, 0] }),
          httpRecord(T0, {
            counts: [0, 1, 0, 0],
          }),
        ],
        sql: [sqlRecord(T0, { counts: [1, 0, 0, 0] })],
      })),
      store.write(batch({ http: [httpRecord(T0, { counts: [0, 0, 1, 0] })] })),
    ]);
    assert.deepEqual((await store.stats()).maxSeqIds, {
      beyla_http_metrics: 3,
      beyla_grpc_metrics: 0,
      beyla_sql_metrics: 1,
      beyla_traces: 0,
    });
    await store.close();
    store = await open(path);
    await store.write(batch({
      http: [httpRecord(T0, { counts: [0, 0, 0, 1] })],
      grpc: [grpcRecord(T0, { counts: [1, 0, 0, 0] })],
    }));
    assert.deepEqual(
      await rows(
        store,
        `SELECT seq_id::INT, latency_counts::VARCHAR FROM beyla_http_metrics
         ORDER BY seq_id`,
      ),
      [[1, "[1, 0, 0, 0]"], [2, "[0, 1, 0, 0]"], [3, "[0, 0, 1, 0]"], [
        4,
        "[0, 0, 0, 1]",
      ]],
    );
    assert.deepEqual(
      await rows(store, `SELECT seq_id::INT FROM beyla_grpc_metrics`),
      [[1]],
    );
    await store.close();
  });
});

Deno.test("retention deletes exactly the old rows; seq_ids survive an empty table", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "db.duckdb");
    const counters = new Counters();
    let store = await open(path, { counters });
    const hour = 3_600_000;
    await store.write(batch({
      http: [
        httpRecord(T0 - hour - 1, { counts: [1, 0, 0, 0] }),
        httpRecord(T0 - hour, { counts: [1, 0, 0, 0] }),
        httpRecord(T0, { counts: [1, 0, 0, 0] }),
      ],
      grpc: [grpcRecord(T0 - 2 * hour, { counts: [1, 0, 0, 0] })],
      spans: [
        span(1, 1, { startTimeUs: (T0 - hour) * 1000 - 1 }),
        span(1, 2, { startTimeUs: (T0 - hour) * 1000 }),
      ],
    }));
    const deleted = await store.runRetention(T0, hour);
    assert.deepEqual(deleted, {
      beyla_http_metrics: 1,
      beyla_grpc_metrics: 1,
      beyla_sql_metrics: 0,
      beyla_traces: 1,
    });
    assert.deepEqual(counters.snapshot("store.beyla"), {
      "store.beyla_grpc_metrics.expired": 1,
      "store.beyla_http_metrics.expired": 1,
      "store.beyla_traces.expired": 1,
    });
    assert.deepEqual(
      await rows(
        store,
        `SELECT seq_id::INT, epoch_ms(timestamp) FROM beyla_http_metrics
         ORDER BY seq_id`,
      ),
      [[2, String(T0 - hour)], [3, String(T0)]],
    );
    assert.deepEqual(
      await rows(store, `SELECT right(span_id, 1) FROM beyla_traces`),
      [["2"]],
    );
    await store.close();
    // The grpc table is empty now; its seq_id must not restart at 1.
    store = await open(path, { counters });
    await store.write(
      batch({ grpc: [grpcRecord(T0, { counts: [1, 0, 0, 0] })] }),
    );
    assert.deepEqual(
      await rows(store, `SELECT seq_id::INT FROM beyla_grpc_metrics`),
      [[2]],
    );
    await assert.rejects(store.runRetention(T0), /no retention period/);
    await store.close();
  });
});

Deno.test("startRetention runs on its timer and stops at close", async () => {
  await withDir(async (dir) => {
    const counters = new Counters();
    const store = await open(join(dir, "db.duckdb"), { counters });
    await store.write(batch({
      http: [httpRecord(Date.now() - 120_000, { counts: [1, 0, 0, 0] })],
    }));
    store.startRetention(60_000, 10);
    for (
      let i = 0;
      i < 100 && counters.get("store.beyla_http_metrics.expired") === 0;
      i++
    ) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assert.equal(counters.get("store.beyla_http_metrics.expired"), 1);
    await store.close();
  });
});

Deno.test("the queue bound rejects with StoreFullError and counts the drop", async () => {
  await withDir(async (dir) => {
    const counters = new Counters();
    const store = await open(join(dir, "db.duckdb"), {
      counters,
      maxPendingRows: 5,
    });
    try {
      const three = batch({
        http: [httpRecord(T0, { counts: [1, 0, 0, 0] })],
        spans: [span(1, 1), span(1, 2)],
      });
      const first = store.write(three);
      assert.equal(store.pendingRows, 3);
      const second = store.write(batch({
        http: [httpRecord(T0, { counts: [1, 0, 0, 0] })],
        sql: [sqlRecord(T0, { counts: [1, 0, 0, 0] })],
        spans: [span(2, 1)],
      }));
      await assert.rejects(second, (error: unknown) => {
        assert.ok(error instanceof StoreFullError);
        assert.equal(error.retryable, true);
        assert.match(error.message, /write queue full \(3 of 5 rows pending\)/);
        return true;
      });
      await first;
      assert.equal(store.pendingRows, 0);
      await assert.rejects(
        store.write(batch({
          spans: [1, 2, 3, 4, 5, 6].map((n) => span(9, n)),
        })),
        (error: unknown) =>
          error instanceof StoreFullError && error.retryable === false,
      );
      assert.deepEqual(counters.snapshot("store."), {
        "store.commits": 1,
        "store.http.dropped.queue_full": 1,
        "store.http.written": 1,
        "store.spans.dropped.queue_full": 7,
        "store.spans.written": 2,
        "store.sql.dropped.queue_full": 1,
      });
    } finally {
      await store.close();
    }
  });
});

Deno.test("batches arriving during a commit share the next transaction", async () => {
  await withDir(async (dir) => {
    const counters = new Counters();
    const store = await open(join(dir, "db.duckdb"), { counters });
    try {
      // Written in one go: one transaction.
      await Promise.all(
        Array.from(
          { length: 20 },
          (_, i) => store.write(batch({ spans: [span(i, 1)] })),
        ),
      );
      assert.equal(counters.get("store.commits"), 1);
      // One batch whose commit has started, then ten more: two transactions.
      const first = store.write(batch({ spans: [span(100, 1)] }));
      await new Promise((r) => setTimeout(r, 0));
      await Promise.all([
        first,
        ...Array.from(
          { length: 10 },
          (_, i) => store.write(batch({ spans: [span(200 + i, 1)] })),
        ),
      ]);
      assert.equal(counters.get("store.spans.written"), 31);
      assert.equal(counters.get("store.commits"), 3);
    } finally {
      await store.close();
    }
  });
});

Deno.test("invalid records are skipped and counted; the rest is stored", async () => {
  await withDir(async (dir) => {
    const counters = new Counters();
    const store = await open(join(dir, "db.duckdb"), { counters });
    try {
      await store.write(batch({
        http: [
          httpRecord(T0, { counts: [1, 0, 0] }),
          httpRecord(T0, { counts: [1, 0, 0, 0] }),
        ],
        spans: [span(1, 1, { traceId: "abc" }), span(1, 2)],
      }));
      assert.equal(counters.get("store.http.rejected.invalid"), 1);
      assert.equal(counters.get("store.spans.rejected.invalid"), 1);
      assert.equal(counters.get("store.http.written"), 1);
      assert.equal(counters.get("store.spans.written"), 1);
    } finally {
      await store.close();
    }
  });
});

Deno.test("a failed transaction rejects its batches, rolls back, and the store goes on", async () => {
  await withDir(async (dir) => {
    const counters = new Counters();
    const store = await open(join(dir, "db.duckdb"), { counters });
    try {
      const broken = httpRecord(T0, { counts: [1, 0, 0, 0] });
      (broken as { serviceName: unknown }).serviceName = undefined;
      await assert.rejects(
        store.write(batch({
          http: [httpRecord(T0, { counts: [1, 0, 0, 0] }), broken],
          spans: [span(1, 1)],
        })),
        (error: unknown) =>
          error instanceof StoreWriteError && error.retryable === true,
      );
      assert.equal(counters.get("store.http.dropped.write_error"), 2);
      assert.equal(counters.get("store.spans.dropped.write_error"), 1);
      assert.deepEqual((await store.stats()).rows, {
        beyla_http_metrics: 0,
        beyla_grpc_metrics: 0,
        beyla_sql_metrics: 0,
        beyla_traces: 0,
      });
      await store.write(batch({
        http: [httpRecord(T0, { counts: [1, 0, 0, 0] })],
        spans: [span(1, 1)],
      }));
      assert.deepEqual(
        await rows(store, `SELECT seq_id::INT FROM beyla_http_metrics`),
        [[1]],
      );
      assert.deepEqual(
        await rows(store, `SELECT seq_id::INT FROM beyla_traces`),
        [[1]],
      );
    } finally {
      await store.close();
    }
  });
});

Deno.test("close flushes pending writes, is safe twice, then rejects writes", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "db.duckdb");
    const store = await open(path);
    const pending = store.write(batch({ spans: [span(1, 1), span(1, 2)] }));
    const closing = store.close();
    await pending;
    await closing;
    await store.close();
    await assert.rejects(
      store.write(batch({ spans: [span(1, 3)] })),
      StoreClosedError,
    );
    const ro = await DuckDbStore.openReadOnly(path);
    assert.equal((await ro.stats()).rows.beyla_traces, 2);
    await ro.close();
  });
});

Deno.test("read-only open reads a closed file and refuses writes", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "db.duckdb");
    const store = await open(path);
    await store.write(
      batch({ http: [httpRecord(T0, { counts: [1, 0, 0, 0] })] }),
    );
    await store.close();
    const ro = await DuckDbStore.openReadOnly(path);
    try {
      assert.equal(ro.readOnly, true);
      const stats = await ro.stats();
      assert.equal(stats.rows.beyla_http_metrics, 1);
      assert.equal(stats.maxSeqIds.beyla_http_metrics, 1);
      assert.equal(stats.sessionId, store.sessionId);
      assert.ok(stats.fileBytes > 0);
      await assert.rejects(
        ro.write(batch({ spans: [span(1, 1)] })),
        /opened read-only/,
      );
    } finally {
      await ro.close();
      await ro.close();
    }
    await assert.rejects(
      DuckDbStore.openReadOnly(join(dir, "missing.duckdb")),
      /Cannot open database .*missing\.duckdb: no such file/,
    );
  });
});

Deno.test("a file open in another process fails with one clear line", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "db.duckdb");
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--config",
        new URL("../../deno.json", import.meta.url).pathname,
        new URL("./testdata/hold_open.ts", import.meta.url).pathname,
        path,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    try {
      const reader = child.stdout.pipeThrough(new TextDecoderStream())
        .getReader();
      let out = "";
      while (!out.includes("ready")) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`holder exited early: ${out}`);
        out += value;
      }
      for (
        const attempt of [
          () => open(path),
          () => DuckDbStore.openReadOnly(path),
        ]
      ) {
        await assert.rejects(attempt(), (error: unknown) => {
          assert.ok(error instanceof StoreLockedError);
          assert.match(
            error.message,
            new RegExp(
              `^Cannot open database ${path}: it is locked by another process \\(PID ${child.pid}\\)`,
            ),
          );
          assert.ok(!error.message.includes("\n"));
          return true;
        });
      }
      reader.releaseLock();
    } finally {
      await child.stdin.close();
      await child.stdout.cancel().catch(() => {});
      await child.status;
    }
  });
});

Deno.test("a resolved write survives the process being killed right after", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "db.duckdb");
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        "--config",
        new URL("../../deno.json", import.meta.url).pathname,
        new URL("./testdata/write_then_hang.ts", import.meta.url).pathname,
        path,
      ],
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream())
      .getReader();
    let out = "";
    while (!out.includes("written")) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`writer exited early: ${out}`);
      out += value;
    }
    child.kill("SIGKILL");
    await child.status;
    reader.releaseLock();
    await child.stdout.cancel().catch(() => {});
    const store = await DuckDbStore.openReadOnly(path);
    try {
      assert.deepEqual((await store.stats()).rows, {
        beyla_http_metrics: 3000,
        beyla_grpc_metrics: 0,
        beyla_sql_metrics: 0,
        beyla_traces: 3000,
      });
    } finally {
      await store.close();
    }
  });
});
