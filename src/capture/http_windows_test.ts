import assert from "node:assert/strict";
import { beylaSchema } from "../config/schema.ts";
import { Counters } from "../model/counters.ts";
import { percentile } from "../aggregate/percentiles.ts";
import { type HttpExchange, HttpWindows, isHttpError } from "./http_windows.ts";

function exchange(over: Partial<HttpExchange> = {}): HttpExchange {
  return {
    serviceName: "shop",
    pid: 100,
    side: "server",
    method: "GET",
    path: "/users/42",
    statusCode: 200,
    startTimeUs: 1_700_000_000_000_000,
    durationNs: 50_000_000,
    localPort: 8080,
    remoteAddress: "127.0.0.1",
    remotePort: 40000,
    requestBytes: 80,
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

Deno.test("http_windows: groups by service, side, method, route and status", () => {
  const counters = new Counters();
  const windows = new HttpWindows({
    beyla: beylaSchema.parse({ attributes: { env: "test" } }),
    counters,
    startMs: 1000,
  });
  windows.add(exchange({ path: "/users/42" }));
  windows.add(exchange({ path: "/users/43", durationNs: 10_000_000 }));
  windows.add(exchange({ path: "/users/44", statusCode: 500 }));
  windows.add(exchange({ method: "POST", path: "/users" }));
  windows.add(exchange({ side: "client", remotePort: 9000, path: "/x" }));
  windows.add(exchange({ side: "client", remotePort: 9001, path: "/x" }));
  assert.equal(windows.seriesCount, 5);

  const records = windows.closeWindow(11_000);
  const summary = records.map((r) => ({
    key: `${r.side} ${r.method} ${r.route} ${r.statusCode}`,
    count: r.histogram.count,
    attributes: r.attributes,
  })).sort((a, b) => a.key.localeCompare(b.key));
  assert.deepEqual(summary, [
    {
      key: "client GET /x 200",
      count: 1,
      attributes: {
        "server.address": "127.0.0.1",
        "server.port": 9000,
        env: "test",
      },
    },
    {
      key: "client GET /x 200",
      count: 1,
      attributes: {
        "server.address": "127.0.0.1",
        "server.port": 9001,
        env: "test",
      },
    },
    { key: "server GET /users/* 200", count: 2, attributes: { env: "test" } },
    { key: "server GET /users/* 500", count: 1, attributes: { env: "test" } },
    { key: "server POST /users 200", count: 1, attributes: { env: "test" } },
  ]);
  for (const r of records) {
    assert.equal(r.windowStartMs, 1000);
    assert.equal(r.timestampMs, 11_000);
    assert.equal(r.source, "ebpf");
    assert.equal(r.serviceName, "shop");
    const h = r.histogram;
    assert.equal(h.counts.length, h.boundsMs.length + 1);
    assert.equal(h.counts.reduce((a, b) => a + b, 0), h.count);
  }
  const two = records.find((r) => r.histogram.count === 2)!.histogram;
  assert.equal(two.sumMs, 60);
  assert.equal(two.minMs, 10);
  assert.equal(two.maxMs, 50);
  assert.equal(counters.get("ebpf.http.requests.server"), 4);
  assert.equal(counters.get("ebpf.http.requests.client"), 2);

  // The next window starts where this one ended, empty.
  assert.deepEqual(windows.closeWindow(21_000), []);
  windows.add(exchange());
  assert.equal(windows.closeWindow(31_000)[0]?.windowStartMs, 21_000);
});

Deno.test("http_windows: latency percentiles within 2 %", () => {
  const windows = new HttpWindows({
    beyla: beylaSchema.parse({}),
    counters: new Counters(),
  });
  for (let i = 0; i < 100; i++) {
    windows.add(exchange({ durationNs: 50_000_000 + i * 20_000 })); // 50.00-51.98 ms
  }
  const [record] = windows.closeWindow();
  const h = record!.histogram;
  const p50 = percentile(h.boundsMs, h.counts, 0.5, {
    min: h.minMs,
    max: h.maxMs,
  })!;
  assert.ok(Math.abs(p50 - 50.99) / 50.99 < 0.02, `p50 ${p50}`);
});

Deno.test("http_windows: spans carry the traceparent's trace and parent", () => {
  const windows = new HttpWindows({
    beyla: beylaSchema.parse({ attributes: { env: "test" } }),
    counters: new Counters(),
    randomBytes: counting(),
  });
  windows.add(exchange({
    traceparent: {
      traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
      parentSpanId: "00f067aa0ba902b7",
      flags: 1,
    },
  }));
  windows.add(
    exchange({ side: "client", statusCode: 404, path: "", remotePort: 9000 }),
  );
  const [server, client] = windows.takeSpans();
  assert.deepEqual(server, {
    traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
    spanId: "0102030405060708",
    parentSpanId: "00f067aa0ba902b7",
    serviceName: "shop",
    name: "GET /users/*",
    kind: "server",
    startTimeUs: 1_700_000_000_000_000,
    durationUs: 50_000,
    statusCode: 0,
    statusMessage: "",
    attributes: {
      "http.request.method": "GET",
      "url.path": "/users/42",
      "http.route": "/users/*",
      "http.response.status_code": 200,
      "http.request.size": 80,
      "server.port": 8080,
      "client.address": "127.0.0.1",
      "client.port": 40000,
      env: "test",
    },
    resourceAttributes: { "service.name": "shop", "process.pid": 100 },
    processPid: 100,
    source: "ebpf",
  });
  assert.equal(client?.traceId, "090a0b0c0d0e0f101112131415161718");
  assert.equal(client?.parentSpanId, "");
  assert.equal(client?.name, "GET");
  assert.equal(client?.kind, "client");
  assert.equal(client?.statusCode, 2); // a client span is an error from 400
  assert.equal(client?.attributes["server.port"], 9000);
  assert.deepEqual(windows.takeSpans(), []);
});

Deno.test("http_windows: sampling keeps by trace id, and always keeps errors", () => {
  const counters = new Counters();
  const windows = new HttpWindows({
    beyla: beylaSchema.parse({ sampling: { rate: 0.5 } }),
    counters,
  });
  const low = "00000000000000000000000000000001"; // fraction ~0: kept
  const high = "0000000000000000ffffffffffffffff"; // fraction ~1: dropped
  const tp = (traceId: string) => ({
    traceId,
    parentSpanId: "00f067aa0ba902b7",
    flags: 1,
  });
  windows.add(exchange({ traceparent: tp(low) }));
  windows.add(exchange({ traceparent: tp(high) }));
  windows.add(exchange({ traceparent: tp(high), statusCode: 503 }));
  assert.deepEqual(
    windows.takeSpans().map((s) => [s.traceId, s.statusCode]),
    [[low, 0], [high, 2]],
  );
  assert.equal(counters.get("ebpf.http.spans.sampled_out"), 1);
  // Metrics count every request, sampled or not.
  assert.equal(
    windows.closeWindow().reduce((n, r) => n + r.histogram.count, 0),
    3,
  );
});

Deno.test("http_windows: limits on series and pending spans are counted", () => {
  const counters = new Counters();
  const windows = new HttpWindows({
    beyla: beylaSchema.parse({}),
    counters,
    maxSeries: 2,
    maxPendingSpans: 3,
  });
  for (const status of [200, 201, 202, 203]) {
    windows.add(exchange({ statusCode: status }));
  }
  assert.equal(windows.seriesCount, 2);
  assert.equal(windows.pendingSpans, 3);
  assert.equal(counters.get("ebpf.http.series_dropped.too_many_series"), 2);
  assert.equal(counters.get("ebpf.http.spans.dropped.queue_full"), 1);
});

Deno.test("http_windows: configured route patterns win", () => {
  const windows = new HttpWindows({
    beyla: beylaSchema.parse({
      protocols: { http: { route_patterns: ["/api/v1/users/:id"] } },
    }),
    counters: new Counters(),
  });
  windows.add(exchange({ path: "/api/v1/users/alice" }));
  assert.equal(windows.closeWindow()[0]?.route, "/api/v1/users/:id");
});

Deno.test("http_windows: errors are server ≥ 500, client ≥ 400", () => {
  assert.equal(isHttpError("server", 404), false);
  assert.equal(isHttpError("server", 500), true);
  assert.equal(isHttpError("client", 404), true);
  assert.equal(isHttpError("client", 399), false);
});
