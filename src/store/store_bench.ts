/**
 * Store micro-benchmarks: `deno bench -A src/store/store_bench.ts`.
 * Per-iteration time / 100 000 = µs per row.
 */
import { join } from "node:path";
import { Counters } from "../model/counters.ts";
import {
  emptyBatch,
  type HttpMetricRecord,
  type SpanRecord,
} from "../model/records.ts";
import { queryHttp, queryTraces } from "./queries.ts";
import { DuckDbStore } from "./store.ts";

const ROWS = 100_000;
/** OTel's default duration buckets, in ms. */
const BOUNDS = [
  0,
  5,
  10,
  25,
  50,
  75,
  100,
  250,
  500,
  750,
  1000,
  2500,
  5000,
  7500,
  10000,
];
const HOUR = 3_600_000;
const NOW = Date.now();

const dir = await Deno.makeTempDir({ prefix: "coral-bench-" });
const options = {
  agentId: "bench-agent",
  counters: new Counters(),
  maxPendingRows: 1_000_000,
  maxRowsPerCommit: 1_000_000,
};
/** Receives the write benches. */
const store = await DuckDbStore.open(join(dir, "write.duckdb"), options);
/** Holds exactly one hour of HTTP metrics for the query bench. */
const queried = await DuckDbStore.open(join(dir, "query.duckdb"), options);

function httpRecords(
  n: number,
  windows: number,
  offset = 0,
): HttpMetricRecord[] {
  const out: HttpMetricRecord[] = [];
  for (let i = 0; i < n; i++) {
    const k = i + offset;
    const window = k % windows;
    const series = Math.floor(k / windows);
    const end = NOW - HOUR + (window + 1) * (HOUR / windows);
    const counts = BOUNDS.map((_, j) => (k + j) % 5).concat([k % 2]);
    out.push({
      timestampMs: end,
      windowStartMs: end - HOUR / windows,
      serviceName: `service-${series % 100}`,
      side: "server",
      method: series % 2 ? "POST" : "GET",
      route: `/api/v1/resource-${series % 7}/{id}`,
      statusCode: series % 11 === 0 ? 503 : 200,
      histogram: {
        boundsMs: BOUNDS,
        counts,
        count: counts.reduce((a, b) => a + b, 0),
        sumMs: 1234.5,
        minMs: 0.2,
        maxMs: 9000,
      },
      attributes: {
        "k8s.pod.name": `pod-${series % 300}`,
        "net.host.port": 8080,
      },
      source: "otlp",
    });
  }
  return out;
}

let nextTrace = 1;
let nextStartUs = (NOW - HOUR) * 1000;
/** Spans of 8-span traces, starting 10 µs apart, later on every call. */
function spans(n: number): SpanRecord[] {
  const resource = { "service.name": "checkout", "host.name": "node-1" };
  const out: SpanRecord[] = [];
  const base = nextStartUs;
  nextStartUs += n * 10;
  for (let i = 0; i < n; i++) {
    const t = nextTrace + Math.floor(i / 8);
    out.push({
      traceId: t.toString(16).padStart(32, "a"),
      spanId: (i % 8 + 1).toString(16).padStart(16, "b"),
      parentSpanId: i % 8 ? "000000000000000b" : "",
      serviceName: `service-${i % 100}`,
      name: "GET /api/v1/items/{id}",
      kind: "server",
      startTimeUs: base + i * 10,
      durationUs: 1000 + (i % 977),
      statusCode: 0,
      statusMessage: "",
      attributes: {
        "http.request.method": "GET",
        "http.route": "/api/v1/items/{id}",
        "http.response.status_code": 200,
        "server.port": 8080,
      },
      resourceAttributes: resource,
      processPid: 4242,
      source: "otlp",
    });
  }
  nextTrace += Math.ceil(n / 8);
  return out;
}

// 200k HTTP rows over one hour: 100 services, 600 series, 360 windows of 10 s.
const QUERY_ROWS = 216_000;
for (let off = 0; off < QUERY_ROWS; off += ROWS) {
  const batch = emptyBatch();
  batch.http = httpRecords(Math.min(ROWS, QUERY_ROWS - off), 360, off);
  await queried.write(batch);
}

const httpBatches = Array.from({ length: 4 }, () => httpRecords(ROWS, 360));

Deno.bench({
  name: "write 100k http records (one batch)",
  n: 4,
  warmup: 1,
  async fn() {
    const batch = emptyBatch();
    batch.http = httpBatches.pop() ?? httpRecords(ROWS, 360);
    await store.write(batch);
  },
});

Deno.bench({
  name: "write 100k spans (one batch)",
  n: 4,
  warmup: 1,
  async fn(b) {
    const batch = emptyBatch();
    batch.spans = spans(ROWS);
    b.start();
    await store.write(batch);
    b.end();
  },
});

Deno.bench({
  name: "write 100k spans (100 batches of 1000, concurrent)",
  n: 4,
  warmup: 1,
  async fn(b) {
    const batches = Array.from({ length: 100 }, () => {
      const batch = emptyBatch();
      batch.spans = spans(1000);
      return batch;
    });
    b.start();
    await Promise.all(batches.map((batch) => store.write(batch)));
    b.end();
  },
});

Deno.bench({
  name: "queryHttp over 1 h (≥216k rows, 100 services)",
  n: 10,
  warmup: 2,
  async fn() {
    const result = await queryHttp(queried.connection, {
      sinceMs: NOW - HOUR,
      nowMs: NOW,
    });
    if (result.rows.length === 0) throw new Error("no rows");
  },
});

Deno.bench({
  name: "queryTraces newest 100 (of 1M spans)",
  n: 10,
  warmup: 2,
  async fn() {
    const traces = await queryTraces(store.connection, {
      sinceMs: NOW - HOUR,
      limit: 100,
    });
    if (traces.length !== 100) throw new Error("expected 100 traces");
  },
});

// Deno.bench has no teardown hook, and an async close would not finish in
// "unload": remove the files directly (the process is ending anyway).
globalThis.addEventListener("unload", () => {
  Deno.removeSync(dir, { recursive: true });
});
