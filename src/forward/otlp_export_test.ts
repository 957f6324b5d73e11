import assert from "node:assert/strict";
import { Counters } from "../model/counters.ts";
import { emptyBatch, type SpanRecord } from "../model/records.ts";
import { OtlpExporter, retryAfterMs } from "./otlp_export.ts";

function span(i: number): SpanRecord {
  return {
    traceId: "0af7651916cd43dd8448eb211c80319c",
    spanId: (i + 1).toString(16).padStart(16, "0"),
    parentSpanId: "",
    serviceName: "svc",
    name: "op",
    kind: "server",
    startTimeUs: 1_700_000_000_000_000,
    durationUs: 10,
    statusCode: 0,
    statusMessage: "",
    attributes: {},
    resourceAttributes: {},
    processPid: 0,
    source: "otlp",
  };
}

/** A port nothing listens on. */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

Deno.test("a full queue drops what does not fit, counted; shutdown counts what is left", async () => {
  const counters = new Counters();
  const exporter = new OtlpExporter({
    endpoint: `http://127.0.0.1:${closedPort()}`,
    counters,
    maxQueue: 5,
    intervalMs: 3_600_000,
    shutdownTimeoutMs: 2000,
  });
  exporter.start();
  exporter.observe({ ...emptyBatch(), spans: [0, 1, 2].map(span) });
  exporter.observe({ ...emptyBatch(), spans: [3, 4, 5, 6].map(span) });
  assert.equal(exporter.queued, 5);
  assert.equal(counters.get("export.otlp.dropped.spans"), 2);
  await exporter.shutdown();
  await exporter.shutdown(); // safe twice
  // The final flush found nobody listening: the 5 queued are dropped too.
  assert.equal(counters.get("export.otlp.dropped.spans"), 7);
  assert.equal(counters.get("export.otlp.failed_requests"), 1);
  assert.equal(exporter.queued, 0);
  // After shutdown nothing is queued, only counted.
  exporter.observe({ ...emptyBatch(), spans: [span(9)] });
  assert.equal(counters.get("export.otlp.dropped.spans"), 8);
});

Deno.test("shutdown without start is a no-op", async () => {
  const counters = new Counters();
  const exporter = new OtlpExporter({
    endpoint: "http://127.0.0.1:1",
    counters,
  });
  await exporter.shutdown();
  assert.deepEqual(counters.snapshot(), {});
});

Deno.test("shutdown flushes what is queued to a live receiver", async () => {
  const bodies: number[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      bodies.push((await request.arrayBuffer()).byteLength);
      return new Response(null, { status: 200 });
    },
  );
  const counters = new Counters();
  const exporter = new OtlpExporter({
    endpoint: `http://127.0.0.1:${server.addr.port}`,
    counters,
    intervalMs: 3_600_000,
    maxBatch: 2,
  });
  exporter.start();
  // 2 fill a request: sent at once, before the interval.
  exporter.observe({ ...emptyBatch(), spans: [span(0), span(1)] });
  exporter.observe({ ...emptyBatch(), spans: [span(2)] });
  await exporter.shutdown();
  await server.shutdown();
  assert.equal(counters.get("export.otlp.sent.spans"), 3);
  assert.equal(counters.get("export.otlp.dropped.spans"), 0);
  assert.equal(bodies.length, 2);
});

Deno.test("Retry-After: seconds or an HTTP date", () => {
  assert.equal(retryAfterMs("3"), 3000);
  assert.equal(retryAfterMs(" 0 "), 0);
  const now = Date.UTC(2025, 0, 1, 0, 0, 0);
  assert.equal(retryAfterMs("Wed, 01 Jan 2025 00:00:10 GMT", now), 10_000);
  assert.equal(retryAfterMs("Tue, 31 Dec 2024 00:00:00 GMT", now), 0);
  assert.equal(retryAfterMs("soon"), null);
  assert.equal(retryAfterMs(null), null);
});
