import assert from "node:assert/strict";
import { beylaSchema } from "../config/schema.ts";
import { Counters } from "../model/counters.ts";
import { type SqlCall, sqlSpanName, SqlWindows } from "./sql_windows.ts";

function call(over: Partial<SqlCall> = {}): SqlCall {
  return {
    serviceName: "shop",
    pid: 100,
    side: "client",
    dbSystem: "postgresql",
    operation: "SELECT",
    table: "users",
    queryText: "SELECT name FROM users WHERE id = ?",
    errorType: "",
    errorMessage: "",
    startTimeUs: 1_700_000_000_000_000,
    durationNs: 2_000_000,
    remoteAddress: "10.0.0.5",
    remotePort: 5432,
    localPort: 41000,
    ...over,
  };
}

/** Ids 01 02 03 … so they are predictable. */
function counting(): (into: Uint8Array) => void {
  let next = 1;
  return (into) => {
    for (let i = 0; i < into.length; i++) into[i] = next++ & 0xff || 1;
  };
}

Deno.test("sql_windows: groups by service, side, system, operation, table, error and peer", () => {
  const counters = new Counters();
  const windows = new SqlWindows({
    beyla: beylaSchema.parse({ attributes: { env: "test" } }),
    counters,
    startMs: 1000,
  });
  windows.add(call());
  windows.add(call({ durationNs: 4_000_000 }));
  windows.add(call({ remotePort: 5433 }));
  windows.add(call({ table: "orders" }));
  windows.add(call({ operation: "INSERT" }));
  windows.add(call({ errorType: "42P01", errorMessage: "no such table" }));
  windows.add(call({ dbSystem: "mysql", remotePort: 3306 }));
  windows.add(call({ side: "server", remotePort: 50000 }));
  windows.add(call({ side: "server", remotePort: 50001 })); // same series
  windows.add(call({ serviceName: "cart" }));
  windows.add(
    call({ dbSystem: "redis", operation: "GET", table: "", remotePort: 6379 }),
  );
  windows.add(
    call({
      dbSystem: "redis",
      operation: "CLIENT SETNAME",
      table: "",
      remotePort: 6379,
    }),
  );
  assert.equal(windows.seriesCount, 10);

  const records = windows.closeWindow(11_000);
  const summary = records.map((r) => ({
    key: [
      r.serviceName,
      r.side,
      r.dbSystem,
      r.operation,
      r.table,
      r.errorType,
    ].join("|"),
    count: r.histogram.count,
    attributes: r.attributes,
  })).sort((a, b) =>
    a.key.localeCompare(b.key) ||
    Number(a.attributes["server.port"]) - Number(b.attributes["server.port"])
  );
  const peer = (port: number) => ({
    "server.address": "10.0.0.5",
    "server.port": port,
    env: "test",
  });
  assert.deepEqual(summary, [
    {
      key: "cart|client|postgresql|SELECT|users|",
      count: 1,
      attributes: peer(5432),
    },
    {
      key: "shop|client|mysql|SELECT|users|",
      count: 1,
      attributes: peer(3306),
    },
    {
      key: "shop|client|postgresql|INSERT|users|",
      count: 1,
      attributes: peer(5432),
    },
    {
      key: "shop|client|postgresql|SELECT|orders|",
      count: 1,
      attributes: peer(5432),
    },
    {
      key: "shop|client|postgresql|SELECT|users|",
      count: 2,
      attributes: peer(5432),
    },
    {
      key: "shop|client|postgresql|SELECT|users|",
      count: 1,
      attributes: peer(5433),
    },
    {
      key: "shop|client|postgresql|SELECT|users|42P01",
      count: 1,
      attributes: peer(5432),
    },
    {
      key: "shop|client|redis|CLIENT SETNAME||",
      count: 1,
      attributes: peer(6379),
    },
    { key: "shop|client|redis|GET||", count: 1, attributes: peer(6379) },
    {
      key: "shop|server|postgresql|SELECT|users|",
      count: 2,
      attributes: { env: "test" },
    },
  ]);
  for (const r of records) {
    assert.equal(r.windowStartMs, 1000);
    assert.equal(r.timestampMs, 11_000);
    assert.equal(r.source, "ebpf");
    const h = r.histogram;
    assert.equal(h.counts.length, h.boundsMs.length + 1);
    assert.equal(h.counts.reduce((a, b) => a + b, 0), h.count);
  }
  const two =
    records.find((r) => r.histogram.count === 2 && r.side === "client")!
      .histogram;
  assert.equal(two.sumMs, 6);
  assert.equal(two.minMs, 2);
  assert.equal(two.maxMs, 4);
  assert.equal(counters.get("ebpf.sql.calls.client"), 10);
  assert.equal(counters.get("ebpf.sql.calls.server"), 2);

  // The next window starts where this one ended, empty.
  assert.equal(windows.seriesCount, 0);
  assert.deepEqual(windows.closeWindow(21_000), []);
  windows.add(call());
  assert.equal(windows.closeWindow(31_000)[0]?.windowStartMs, 21_000);
});

Deno.test("sql_windows: a client span follows the OTel database conventions", () => {
  const windows = new SqlWindows({
    beyla: beylaSchema.parse({ attributes: { env: "test" } }),
    counters: new Counters(),
    randomBytes: counting(),
  });
  windows.add(call());
  assert.equal(windows.pendingSpans, 1);
  assert.deepEqual(windows.takeSpans(), [{
    traceId: "0102030405060708090a0b0c0d0e0f10",
    spanId: "1112131415161718",
    parentSpanId: "",
    serviceName: "shop",
    name: "SELECT users",
    kind: "client",
    startTimeUs: 1_700_000_000_000_000,
    durationUs: 2000,
    statusCode: 0,
    statusMessage: "",
    attributes: {
      "db.system.name": "postgresql",
      "db.system": "postgresql",
      "db.operation.name": "SELECT",
      "db.collection.name": "users",
      "db.query.text": "SELECT name FROM users WHERE id = ?",
      "server.address": "10.0.0.5",
      "server.port": 5432,
      env: "test",
    },
    resourceAttributes: { "service.name": "shop", "process.pid": 100 },
    processPid: 100,
    source: "ebpf",
  }]);
  assert.deepEqual(windows.takeSpans(), []);
  assert.equal(windows.pendingSpans, 0);
});

Deno.test("sql_windows: server, error and Redis spans", () => {
  const windows = new SqlWindows({
    beyla: beylaSchema.parse({}),
    counters: new Counters(),
    randomBytes: counting(),
  });
  windows.add(
    call({
      side: "server",
      dbSystem: "mysql",
      operation: "INSERT",
      table: "t1",
      queryText: "INSERT INTO t1 VALUES (?, ?)",
      errorType: "1146",
      errorMessage: "Table 'test.t1' doesn't exist",
      remoteAddress: "10.0.0.9",
      remotePort: 50000,
      localPort: 3306,
    }),
  );
  windows.add(
    call({
      dbSystem: "redis",
      operation: "GET",
      table: "",
      queryText: "",
      errorType: "WRONGTYPE",
      errorMessage: "Operation against a key holding the wrong kind of value",
      remotePort: 6379,
    }),
  );
  windows.add(
    call({ operation: "", table: "", queryText: "", durationNs: 1_999 }),
  );
  const [server, redis, unknown] = windows.takeSpans();
  assert.equal(server?.name, "INSERT t1");
  assert.equal(server?.kind, "server");
  assert.equal(server?.statusCode, 2);
  assert.equal(server?.statusMessage, "Table 'test.t1' doesn't exist");
  assert.deepEqual(server?.attributes, {
    "db.system.name": "mysql",
    "db.system": "mysql",
    "db.operation.name": "INSERT",
    "db.collection.name": "t1",
    "db.query.text": "INSERT INTO t1 VALUES (?, ?)",
    "error.type": "1146",
    "db.response.status_code": "1146",
    "server.port": 3306,
    "client.address": "10.0.0.9",
    "client.port": 50000,
  });
  assert.equal(redis?.name, "GET");
  assert.equal(redis?.kind, "client");
  assert.equal(redis?.statusCode, 2);
  assert.equal(
    redis?.statusMessage,
    "Operation against a key holding the wrong kind of value",
  );
  assert.deepEqual(redis?.attributes, {
    "db.system.name": "redis",
    "db.system": "redis",
    "db.operation.name": "GET",
    "error.type": "WRONGTYPE",
    "db.response.status_code": "WRONGTYPE",
    "server.address": "10.0.0.5",
    "server.port": 6379,
  });
  assert.equal(unknown?.name, "postgresql");
  assert.equal(unknown?.durationUs, 1);
  assert.equal(unknown?.statusCode, 0);
  assert.deepEqual(unknown?.attributes, {
    "db.system.name": "postgresql",
    "db.system": "postgresql",
    "server.address": "10.0.0.5",
    "server.port": 5432,
  });
  // Spans of one process share one resource object.
  assert.equal(redis?.resourceAttributes, unknown?.resourceAttributes);
});

Deno.test("sql_windows: span names per the OTel conventions", () => {
  assert.equal(sqlSpanName(call()), "SELECT users");
  assert.equal(sqlSpanName(call({ table: "" })), "SELECT");
  assert.equal(sqlSpanName(call({ operation: "" })), "users");
  assert.equal(sqlSpanName(call({ operation: "", table: "" })), "postgresql");
  assert.equal(
    sqlSpanName(call({ dbSystem: "redis", operation: "", table: "" })),
    "redis",
  );
  assert.equal(
    sqlSpanName(call({ table: "public.users" })),
    "SELECT public.users",
  );
});

Deno.test("sql_windows: sampling draws at the rate, and always keeps errors", () => {
  // Draws alternate ~0 (kept at 0.5) and ~1 (sampled out).
  let fills = 0;
  const counters = new Counters();
  const windows = new SqlWindows({
    beyla: beylaSchema.parse({ sampling: { rate: 0.5 } }),
    counters,
    randomBytes: (into) => {
      fills++;
      for (let i = 0; i < into.length; i++) {
        into[i] = i % 8 < 4 ? 0x01 : 0xff;
      }
    },
  });
  windows.add(call({ operation: "A" })); // draw: bytes 0-3, 0x01: kept; ids 4-27
  windows.add(call({ operation: "B" })); // draw: bytes 28-31, 0xff: out
  windows.add(call({ operation: "C", errorType: "23505" })); // no draw; ids 32-55
  windows.add(call({ operation: "D" })); // draw: bytes 56-59, 0x01: kept
  assert.deepEqual(
    windows.takeSpans().map((s) => [s.name, s.statusCode]),
    [["A users", 0], ["C users", 2], ["D users", 0]],
  );
  assert.equal(fills, 1);
  assert.equal(counters.get("ebpf.sql.spans.sampled_out"), 1);
  // Metrics count every call, sampled or not.
  assert.equal(
    windows.closeWindow().reduce((n, r) => n + r.histogram.count, 0),
    4,
  );

  const none = new SqlWindows({
    beyla: beylaSchema.parse({ sampling: { rate: 0 } }),
    counters,
  });
  none.add(call());
  none.add(call({ errorType: "40001" }));
  assert.deepEqual(none.takeSpans().map((s) => s.attributes["error.type"]), [
    "40001",
  ]);
  assert.equal(counters.get("ebpf.sql.spans.sampled_out"), 2);
});

Deno.test("sql_windows: limits on series and pending spans are counted", () => {
  const counters = new Counters();
  const windows = new SqlWindows({
    beyla: beylaSchema.parse({}),
    counters,
    maxSeries: 2,
    maxPendingSpans: 3,
  });
  for (const table of ["a", "b", "c", "d"]) windows.add(call({ table }));
  windows.add(call({ table: "a" })); // an existing series still counts
  assert.equal(windows.seriesCount, 2);
  assert.equal(windows.pendingSpans, 3);
  assert.equal(counters.get("ebpf.sql.series_dropped.too_many_series"), 2);
  assert.equal(counters.get("ebpf.sql.spans.dropped.queue_full"), 2);
  assert.deepEqual(
    windows.closeWindow().map((r) => [r.table, r.histogram.count]),
    [["a", 2], ["b", 1]],
  );
  assert.equal(windows.takeSpans().length, 3);
  windows.add(call({ table: "c" }));
  assert.equal(windows.seriesCount, 1);
  assert.equal(windows.pendingSpans, 1);
});

Deno.test("sql_windows: beyla.attributes never override a call's own", () => {
  const windows = new SqlWindows({
    beyla: beylaSchema.parse({
      attributes: {
        "db.system": "configured",
        "server.port": "configured",
        team: "payments",
      },
    }),
    counters: new Counters(),
  });
  windows.add(call());
  windows.add(call({ side: "server" }));
  const [client, server] = windows.takeSpans();
  assert.equal(client?.attributes["db.system"], "postgresql");
  assert.equal(client?.attributes["server.port"], 5432);
  assert.equal(client?.attributes.team, "payments");
  assert.equal(server?.attributes["server.port"], 41000);
  const records = windows.closeWindow();
  assert.deepEqual(records.map((r) => [r.side, r.attributes]), [
    ["client", {
      "server.address": "10.0.0.5",
      "server.port": 5432,
      "db.system": "configured",
      team: "payments",
    }],
    ["server", {
      "db.system": "configured",
      "server.port": "configured",
      team: "payments",
    }],
  ]);
});
