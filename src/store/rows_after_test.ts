import assert from "node:assert/strict";
import { Counters } from "../model/counters.ts";
import { emptyBatch } from "../model/records.ts";
import { coralType, JSON_OBJECT_OPTIONS } from "../serve/coral_protos.ts";
import { readRowsAfter, toCoralMessage, toPushRow } from "./rows_after.ts";
import { DuckDbStore } from "./store.ts";
import { grpcRecord, httpRecord, span, sqlRecord } from "./testdata/records.ts";

const T0 = Date.UTC(2024, 0, 1, 12, 0, 0);

async function withStore(fn: (store: DuckDbStore) => Promise<void>) {
  const store = await DuckDbStore.open(":memory:", {
    agentId: "a1",
    counters: new Counters(),
  });
  try {
    await fn(store);
  } finally {
    await store.close();
  }
}

Deno.test("readRowsAfter pages every row once, ascending, with filters", async () => {
  await withStore(async (store) => {
    const http = Array.from({ length: 25 }, (_, i) =>
      httpRecord(T0 + i, {
        counts: [i, 1, 0, 2],
        serviceName: i % 2 === 0 ? "even" : "odd",
        attributes: { n: i, ok: true, s: "x" },
      }));
    await store.write({ ...emptyBatch(), http });
    const seen: number[] = [];
    let after = 0;
    for (;;) {
      const page = await readRowsAfter(store.connection, "http", {
        afterSeq: after,
        limit: 7,
      });
      if (page.length === 0) break;
      for (const row of page) seen.push(row.seqId);
      after = page.at(-1)!.seqId;
    }
    assert.deepEqual(seen, Array.from({ length: 25 }, (_, i) => i + 1));
    const odd = await readRowsAfter(store.connection, "http", {
      afterSeq: 0,
      limit: 100,
      services: ["odd"],
    });
    assert.equal(odd.length, 12);
    const first = (await readRowsAfter(store.connection, "http", {
      afterSeq: 3,
      limit: 1,
    }))[0]!;
    assert.deepEqual(first, {
      seqId: 4,
      timestampMs: T0 + 3,
      windowStartMs: T0 + 3 - 10_000,
      serviceName: "odd",
      side: "server",
      boundsMs: [10, 20, 50],
      counts: [3, 1, 0, 2],
      count: 6,
      sumMs: 0,
      minMs: null,
      maxMs: null,
      attributesJson: '{"n":3,"ok":true,"s":"x"}',
      source: "test",
      method: "GET",
      route: "/items",
      statusCode: 200,
    });
    await assert.rejects(
      readRowsAfter(store.connection, "http", { afterSeq: -1, limit: 1 }),
      /seq_id -1/,
    );
  });
});

Deno.test("push rows and Coral messages encode with the protos, every column kept", async () => {
  await withStore(async (store) => {
    await store.write({
      http: [httpRecord(T0, { counts: [1, 2, 3, 4], statusCode: 503 })],
      grpc: [
        grpcRecord(T0, { counts: [1, 0, 0, 0], statusCode: -1 }),
        grpcRecord(T0, { counts: [0, 1, 0, 0], statusCode: -2 }),
        grpcRecord(T0, { counts: [0, 0, 1, 0], statusCode: 14 }),
      ],
      sql: [sqlRecord(T0, { counts: [0, 0, 0, 5], errorType: "42P01" })],
      spans: [span(0xaa, 0xbb, { statusMessage: "boom" })],
    });
    const conn = store.connection;
    const http =
      (await readRowsAfter(conn, "http", { afterSeq: 0, limit: 9 }))[0]!;
    const pushType = coralType("coral.colony.v1.HttpMetricRow");
    const push = pushType.toObject(
      pushType.decode(
        pushType.encode(pushType.fromObject(toPushRow("http", http))).finish(),
      ),
      JSON_OBJECT_OPTIONS,
    );
    assert.deepEqual(push, {
      window: {
        seqId: "1",
        timestampMs: String(T0),
        windowStartMs: String(T0 - 10_000),
        serviceName: "checkout",
        side: "server",
        latencyBucketsMs: [10, 20, 50],
        latencyCounts: ["1", "2", "3", "4"],
        count: "10",
        sumMs: 0,
        attributesJson: "{}",
        source: "test",
      },
      method: "GET",
      route: "/items",
      statusCode: 503,
    });
    const grpc = await readRowsAfter(conn, "grpc", { afterSeq: 0, limit: 9 });
    const grpcType = coralType("coral.agent.v1.EbpfGrpcMetric");
    const messages = grpc.map((row) =>
      grpcType.toObject(
        grpcType.decode(
          grpcType.encode(grpcType.fromObject(toCoralMessage("grpc", row)))
            .finish(),
        ),
        JSON_OBJECT_OPTIONS,
      )
    );
    assert.deepEqual(
      messages.map((m) => [m.grpcStatusCode ?? 0, m.attributes]),
      [
        [2, { "span.kind": "server", "coral.grpc.status": "no_status" }],
        [0, { "span.kind": "server", "coral.grpc.status": "undecoded" }],
        [14, { "span.kind": "server" }],
      ],
    );
    const sql =
      (await readRowsAfter(conn, "sql", { afterSeq: 0, limit: 9 }))[0]!;
    const sqlMessage = toCoralMessage("sql", sql);
    assert.equal(sqlMessage.queryCount, 5);
    assert.deepEqual(sqlMessage.attributes, {
      "span.kind": "client",
      "db.system.name": "postgresql",
      "error.type": "42P01",
    });
    const spans = await readRowsAfter(conn, "spans", {
      afterSeq: 0,
      limit: 9,
      traceId: "AA".padStart(32, "0"),
    });
    assert.equal(spans.length, 1);
    const spanType = coralType("coral.agent.v1.EbpfTraceSpan");
    assert.equal(spanType.verify(toCoralMessage("spans", spans[0]!)), null);
    const spanPush = coralType("coral.colony.v1.SpanRow");
    assert.equal(spanPush.verify(toPushRow("spans", spans[0]!)), null);
  });
});
