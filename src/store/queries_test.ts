import assert from "node:assert/strict";
import { join } from "node:path";
import { Counters } from "../model/counters.ts";
import { emptyBatch } from "../model/records.ts";
import {
  queryGrpc,
  queryHttp,
  queryMeta,
  querySql,
  queryStatusRows,
  queryTraces,
} from "./queries.ts";
import { DuckDbStore } from "./store.ts";
import {
  grpcRecord,
  histogram,
  httpRecord,
  span,
  sqlRecord,
  traceId,
} from "./testdata/records.ts";

const T0 = Date.UTC(2024, 0, 1, 12, 0, 0);
const SINCE = T0 - 60_000;
const WINDOW = { sinceMs: SINCE, nowMs: T0 };

async function withStore(
  fn: (store: DuckDbStore) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "coral-queries-" });
  const store = await DuckDbStore.open(join(dir, "db.duckdb"), {
    agentId: "agent-1",
    counters: new Counters(),
  });
  try {
    await fn(store);
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

function near(actual: number | null, expected: number): void {
  assert.ok(
    actual !== null && Math.abs(actual - expected) < 1e-9,
    `${actual} ≉ ${expected}`,
  );
}

Deno.test("queryHttp: exact counts, errors, status codes and percentiles", async () => {
  await withStore(async (store) => {
    const batch = emptyBatch();
    batch.http.push(
      // checkout GET /items: 40 OK (extremes unknown) + 4 errors.
      httpRecord(T0 - 30_000, { counts: [10, 20, 10, 0] }),
      httpRecord(T0, {
        statusCode: 503,
        counts: [],
        histogram: histogram([0, 0, 0, 4], { min: 60, max: 100 }),
      }),
      // checkout POST /orders: 10 requests, extremes known.
      httpRecord(T0, {
        method: "POST",
        route: "/orders",
        statusCode: 201,
        counts: [],
        histogram: histogram([0, 5, 5, 0], { min: 12, max: 40 }),
      }),
      // cart GET /cart: 404 is not a server error.
      httpRecord(T0, {
        serviceName: "cart",
        route: "/cart",
        statusCode: 404,
        counts: [],
        histogram: histogram([1, 0, 0, 0], { min: 1, max: 3 }),
      }),
      // Client side: 404 is an error there.
      httpRecord(T0, {
        side: "client",
        route: "/payments",
        statusCode: 404,
        counts: [2, 0, 0, 0],
      }),
      // Outside the window (ends exactly at since, which is exclusive).
      httpRecord(SINCE, { counts: [100, 0, 0, 0] }),
      httpRecord(T0 + 1, { counts: [100, 0, 0, 0] }),
    );
    await store.write(batch);

    const server = await queryHttp(store.connection, WINDOW);
    assert.equal(server.rows.length, 3);
    const [items, orders, cart] = server.rows;
    assert.deepEqual(
      { ...items, p50_ms: 0, p95_ms: 0, p99_ms: 0 },
      {
        service: "checkout",
        method: "GET",
        route: "/items",
        requests: 44,
        rps: 44 / 60,
        errors: 4,
        error_rate: 4 / 44,
        p50_ms: 0,
        p95_ms: 0,
        p99_ms: 0,
        status_codes: { "200": 40, "503": 4 },
      },
    );
    // Merged [10, 20, 10, 4]: rank 22 → 10 + 10·12/20; ranks 41.8 and 43.56
    // fall in +Inf with max unknown (one record lacks it) → last bound.
    near(items!.p50_ms, 16);
    near(items!.p95_ms, 50);
    near(items!.p99_ms, 50);
    assert.equal(orders!.route, "/orders");
    assert.equal(orders!.requests, 10);
    assert.equal(orders!.errors, 0);
    assert.deepEqual(orders!.status_codes, { "201": 10 });
    // (10, 20] narrowed to (12, 20]; (20, 50] narrowed to (20, 40].
    near(orders!.p50_ms, 20);
    near(orders!.p95_ms, 38);
    near(orders!.p99_ms, 39.6);
    assert.equal(cart!.service, "cart");
    assert.equal(cart!.errors, 0);
    near(cart!.p50_ms, 2);
    // Total: [11, 25, 15, 4], N = 55.
    assert.equal(server.total.service, "");
    assert.equal(server.total.requests, 55);
    assert.equal(server.total.errors, 4);
    assert.equal(server.total.rps, 55 / 60);
    assert.deepEqual(server.total.status_codes, {
      "200": 40,
      "201": 10,
      "404": 1,
      "503": 4,
    });
    near(server.total.p50_ms, 10 + 10 * 16.5 / 25);

    const client = await queryHttp(store.connection, {
      ...WINDOW,
      side: "client",
    });
    assert.equal(client.rows.length, 1);
    assert.equal(client.rows[0]!.route, "/payments");
    assert.equal(client.rows[0]!.errors, 2);
    assert.equal(client.rows[0]!.error_rate, 1);

    const filtered = await queryHttp(store.connection, {
      ...WINDOW,
      service: "checkout",
      route: "/orders",
    });
    assert.deepEqual(filtered.rows.map((r) => r.requests), [10]);
    assert.equal(filtered.total.requests, 10);

    const empty = await queryHttp(store.connection, {
      ...WINDOW,
      service: "nobody",
    });
    assert.deepEqual(empty.rows, []);
    assert.equal(empty.total.requests, 0);
    assert.equal(empty.total.p50_ms, null);
  });
});

Deno.test("queryHttp merges series whose bucket bounds differ", async () => {
  await withStore(async (store) => {
    const batch = emptyBatch();
    batch.http.push(
      httpRecord(T0, {
        counts: [4, 0],
        histogram: histogram([4, 0], { bounds: [10] }),
      }),
      httpRecord(T0, {
        counts: [],
        histogram: histogram([1, 1, 0], { bounds: [5, 10] }),
      }),
    );
    await store.write(batch);
    const { rows } = await queryHttp(store.connection, WINDOW);
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.requests, 6);
    // Union bounds [5, 10], counts [3, 3, 0]: rank 3 → top of (0, 5].
    near(rows[0]!.p50_ms, 5);
  });
});

Deno.test("queryGrpc: server errors are the listed codes, client any non-zero", async () => {
  await withStore(async (store) => {
    const batch = emptyBatch();
    batch.grpc.push(
      grpcRecord(T0, { statusCode: 0, counts: [4, 4, 0, 0] }),
      grpcRecord(T0, { statusCode: 14, counts: [0, 0, 2, 0] }),
      grpcRecord(T0, { statusCode: 5, counts: [1, 0, 0, 0] }),
      grpcRecord(T0, {
        method: "shop.Cart/Get",
        statusCode: 4,
        counts: [0, 0, 0, 1],
      }),
      grpcRecord(T0, { side: "client", statusCode: 5, counts: [1, 0, 0, 0] }),
    );
    await store.write(batch);
    const server = await queryGrpc(store.connection, WINDOW);
    assert.deepEqual(
      server.rows.map((r) => [r.grpc_method, r.requests, r.errors]),
      [["shop.Cart/Add", 11, 2], ["shop.Cart/Get", 1, 1]],
    );
    assert.deepEqual(server.rows[0]!.status_codes, { "0": 8, "5": 1, "14": 2 });
    // [5, 4, 2, 0], N = 11: rank 5.5 → 10 + 10·0.5/4.
    near(server.rows[0]!.p50_ms, 11.25);
    assert.equal(server.total.requests, 12);
    assert.equal(server.total.errors, 3);
    const client = await queryGrpc(store.connection, {
      ...WINDOW,
      side: "client",
    });
    assert.deepEqual(
      client.rows.map((r) => [r.service, r.grpc_method, r.errors]),
      [["cart", "shop.Cart/Add", 1]],
    );
    const one = await queryGrpc(store.connection, {
      ...WINDOW,
      route: "shop.Cart/Get",
    });
    assert.deepEqual(one.rows.map((r) => r.grpc_method), ["shop.Cart/Get"]);
  });
});

Deno.test("querySql: errors by error_type, Redis beside PostgreSQL", async () => {
  await withStore(async (store) => {
    const batch = emptyBatch();
    batch.sql.push(
      sqlRecord(T0, { counts: [9, 0, 0, 0] }),
      sqlRecord(T0, { errorType: "timeout", counts: [0, 0, 0, 1] }),
      sqlRecord(T0, {
        dbSystem: "redis",
        operation: "GET",
        table: "",
        counts: [3, 0, 0, 0],
      }),
    );
    await store.write(batch);
    const { rows, total } = await querySql(store.connection, WINDOW);
    assert.deepEqual(
      rows.map((r) => ({ ...r, p50_ms: 0, p95_ms: 0, p99_ms: 0 })),
      [
        {
          service: "checkout",
          db_system: "postgresql",
          operation: "SELECT",
          table: "users",
          requests: 10,
          rps: 10 / 60,
          errors: 1,
          error_rate: 0.1,
          p50_ms: 0,
          p95_ms: 0,
          p99_ms: 0,
          error_types: { timeout: 1 },
        },
        {
          service: "checkout",
          db_system: "redis",
          operation: "GET",
          table: "",
          requests: 3,
          rps: 3 / 60,
          errors: 0,
          error_rate: 0,
          p50_ms: 0,
          p95_ms: 0,
          p99_ms: 0,
          error_types: {},
        },
      ],
    );
    // [9, 0, 0, 1]: rank 5 → 10·5/9.
    near(rows[0]!.p50_ms, 50 / 9);
    assert.equal(total.requests, 13);
    assert.deepEqual(total.error_types, { timeout: 1 });
    const server = await querySql(store.connection, {
      ...WINDOW,
      side: "server",
    });
    assert.deepEqual(server.rows, []);
  });
});

Deno.test("queryTraces: matching traces newest first, with all their spans", async () => {
  await withStore(async (store) => {
    const us = (ms: number) => ms * 1000;
    const batch = emptyBatch();
    batch.spans.push(
      // Trace 1: old root, recent slow child in "payments".
      span(1, 1, { startTimeUs: us(SINCE - 5_000), durationUs: 90_000 }),
      span(1, 2, {
        parentSpanId: "0000000000000001",
        serviceName: "payments",
        name: "charge",
        kind: "client",
        startTimeUs: us(T0 - 10_000),
        durationUs: 50_000,
        statusCode: 2,
        statusMessage: "declined",
        attributes: { amount: 12.5, ok: false },
      }),
      // Trace 2: newer, fast.
      span(2, 1, { startTimeUs: us(T0 - 1_000), durationUs: 2_000 }),
      // Trace 3: too old.
      span(3, 1, { startTimeUs: us(SINCE - 1), durationUs: 5_000 }),
    );
    await store.write(batch);
    const all = await queryTraces(store.connection, { sinceMs: SINCE });
    assert.deepEqual(all.map((t) => t.trace_id), [traceId(2), traceId(1)]);
    assert.deepEqual(all[1]!.spans, [
      {
        trace_id: traceId(1),
        span_id: "0000000000000001",
        parent_span_id: "",
        service: "checkout",
        name: "GET /items",
        kind: "server",
        start_time: "2024-01-01T11:58:55.000000Z",
        start_time_us: us(SINCE - 5_000),
        duration_us: 90_000,
        status_code: 0,
        status_message: "",
        attributes: {},
      },
      {
        trace_id: traceId(1),
        span_id: "0000000000000002",
        parent_span_id: "0000000000000001",
        service: "payments",
        name: "charge",
        kind: "client",
        start_time: "2024-01-01T11:59:50.000000Z",
        start_time_us: us(T0 - 10_000),
        duration_us: 50_000,
        status_code: 2,
        status_message: "declined",
        attributes: { amount: 12.5, ok: false },
      },
    ]);
    const slow = await queryTraces(store.connection, {
      sinceMs: SINCE,
      minDurationMs: 50,
    });
    assert.deepEqual(slow.map((t) => [t.trace_id, t.spans.length]), [[
      traceId(1),
      2,
    ]]);
    const payments = await queryTraces(store.connection, {
      sinceMs: SINCE,
      service: "payments",
    });
    assert.deepEqual(payments.map((t) => t.spans.length), [2]);
    const byId = await queryTraces(store.connection, {
      sinceMs: 0,
      traceId: traceId(3).toUpperCase(),
    });
    assert.deepEqual(byId.map((t) => t.trace_id), [traceId(3)]);
    const limited = await queryTraces(store.connection, {
      sinceMs: 0,
      limit: 2,
    });
    assert.deepEqual(limited.map((t) => t.trace_id), [traceId(2), traceId(1)]);
  });
});

Deno.test("queryStatusRows and queryMeta describe the tables", async () => {
  await withStore(async (store) => {
    const batch = emptyBatch();
    batch.http.push(
      httpRecord(T0 - 5_000, { counts: [1, 0, 0, 0] }),
      httpRecord(T0, { counts: [1, 0, 0, 0] }),
    );
    batch.spans.push(span(1, 1, { startTimeUs: T0 * 1000 }));
    await store.write(batch);
    assert.deepEqual(await queryStatusRows(store.connection), {
      beyla_http_metrics: {
        rows: 2,
        max_seq_id: 2,
        oldest_ms: T0 - 5_000,
        newest_ms: T0,
      },
      beyla_grpc_metrics: {
        rows: 0,
        max_seq_id: 0,
        oldest_ms: null,
        newest_ms: null,
      },
      beyla_sql_metrics: {
        rows: 0,
        max_seq_id: 0,
        oldest_ms: null,
        newest_ms: null,
      },
      beyla_traces: { rows: 1, max_seq_id: 1, oldest_ms: T0, newest_ms: T0 },
    });
    assert.deepEqual(await queryMeta(store.connection), {
      session_id: store.sessionId,
      schema_version: 1,
    });
  });
});
