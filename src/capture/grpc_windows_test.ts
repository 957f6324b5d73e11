import assert from "node:assert/strict";
import { beylaSchema } from "../config/schema.ts";
import { Counters } from "../model/counters.ts";
import {
  GRPC_STATUS_UNDECODED,
  type GrpcCall,
  GrpcWindows,
  isGrpcError,
} from "./grpc_windows.ts";

function call(over: Partial<GrpcCall> = {}): GrpcCall {
  return {
    serviceName: "shop",
    pid: 100,
    side: "server",
    method: "shop.v1.Cart/AddItem",
    statusCode: 0,
    startTimeUs: 1_700_000_000_000_000,
    durationNs: 3_000_000,
    remoteAddress: "10.0.0.7",
    remotePort: 40000,
    localPort: 50051,
    requestBytes: 120,
    responseBytes: 40,
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

const TRACEPARENT = {
  traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
  parentSpanId: "00f067aa0ba902b7",
  flags: 1,
};

Deno.test("grpc_windows: groups by service, side, method, status and client peer", () => {
  const counters = new Counters();
  const windows = new GrpcWindows({
    beyla: beylaSchema.parse({ attributes: { env: "test" } }),
    counters,
    startMs: 1000,
  });
  windows.add(call());
  windows.add(call({ durationNs: 1_000_000, remotePort: 40001 })); // same series
  windows.add(call({ statusCode: 5 }));
  windows.add(call({ statusCode: 2 }));
  windows.add(call({ statusCode: -1 })); // stored as UNKNOWN: same series
  windows.add(call({ method: "shop.v1.Cart/Remove" }));
  windows.add(call({ method: "" }));
  windows.add(call({ serviceName: "cart" }));
  windows.add(call({ side: "client", remotePort: 50051 }));
  windows.add(call({ side: "client", remotePort: 50052 }));
  windows.add(call({ side: "client", remotePort: 50051, statusCode: -1 }));
  assert.equal(windows.seriesCount, 9);

  const records = windows.closeWindow(11_000);
  const summary = records.map((r) => ({
    key: `${r.serviceName}|${r.side}|${r.method}|${r.statusCode}`,
    count: r.histogram.count,
    attributes: r.attributes,
  })).sort((a, b) =>
    a.key.localeCompare(b.key) ||
    Number(a.attributes["server.port"]) - Number(b.attributes["server.port"])
  );
  const peer = (port: number) => ({
    "server.address": "10.0.0.7",
    "server.port": port,
    env: "test",
  });
  const env = { env: "test" };
  assert.deepEqual(summary, [
    { key: "cart|server|shop.v1.Cart/AddItem|0", count: 1, attributes: env },
    {
      key: "shop|client|shop.v1.Cart/AddItem|0",
      count: 1,
      attributes: peer(50051),
    },
    {
      key: "shop|client|shop.v1.Cart/AddItem|0",
      count: 1,
      attributes: peer(50052),
    },
    {
      key: "shop|client|shop.v1.Cart/AddItem|2",
      count: 1,
      attributes: peer(50051),
    },
    { key: "shop|server||0", count: 1, attributes: env },
    { key: "shop|server|shop.v1.Cart/AddItem|0", count: 2, attributes: env },
    { key: "shop|server|shop.v1.Cart/AddItem|2", count: 2, attributes: env },
    { key: "shop|server|shop.v1.Cart/AddItem|5", count: 1, attributes: env },
    { key: "shop|server|shop.v1.Cart/Remove|0", count: 1, attributes: env },
  ]);
  for (const r of records) {
    assert.equal(r.windowStartMs, 1000);
    assert.equal(r.timestampMs, 11_000);
    assert.equal(r.source, "ebpf");
    const h = r.histogram;
    assert.equal(h.counts.length, h.boundsMs.length + 1);
    assert.equal(h.counts.reduce((a, b) => a + b, 0), h.count);
  }
  const ok =
    records.find((r) =>
      r.serviceName === "shop" && r.side === "server" && r.statusCode === 0 &&
      r.method === "shop.v1.Cart/AddItem"
    )!.histogram;
  assert.equal(ok.sumMs, 4);
  assert.equal(ok.minMs, 1);
  assert.equal(ok.maxMs, 3);
  assert.equal(counters.get("ebpf.grpc.calls.server"), 8);
  assert.equal(counters.get("ebpf.grpc.calls.client"), 3);

  // The next window starts where this one ended, empty.
  assert.equal(windows.seriesCount, 0);
  assert.deepEqual(windows.closeWindow(21_000), []);
  windows.add(call());
  assert.equal(windows.closeWindow(31_000)[0]?.windowStartMs, 21_000);
});

Deno.test("grpc_windows: spans join the traceparent and follow the OTel RPC conventions", () => {
  const windows = new GrpcWindows({
    beyla: beylaSchema.parse({ attributes: { env: "test" } }),
    counters: new Counters(),
    randomBytes: counting(),
  });
  windows.add(call({ traceparent: TRACEPARENT }));
  windows.add(call({ side: "client", remotePort: 50051, statusCode: 14 }));
  assert.equal(windows.pendingSpans, 2);
  const [server, client] = windows.takeSpans();
  assert.deepEqual(server, {
    traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
    spanId: "0102030405060708",
    parentSpanId: "00f067aa0ba902b7",
    serviceName: "shop",
    name: "shop.v1.Cart/AddItem",
    kind: "server",
    startTimeUs: 1_700_000_000_000_000,
    durationUs: 3000,
    statusCode: 0,
    statusMessage: "",
    attributes: {
      "rpc.system": "grpc",
      "rpc.service": "shop.v1.Cart",
      "rpc.method": "AddItem",
      "rpc.grpc.status_code": 0,
      "server.port": 50051,
      "client.address": "10.0.0.7",
      "client.port": 40000,
      env: "test",
    },
    resourceAttributes: { "service.name": "shop", "process.pid": 100 },
    processPid: 100,
    source: "ebpf",
  });
  assert.deepEqual(client, {
    traceId: "090a0b0c0d0e0f101112131415161718",
    spanId: "191a1b1c1d1e1f20",
    parentSpanId: "",
    serviceName: "shop",
    name: "shop.v1.Cart/AddItem",
    kind: "client",
    startTimeUs: 1_700_000_000_000_000,
    durationUs: 3000,
    statusCode: 2,
    statusMessage: "",
    attributes: {
      "rpc.system": "grpc",
      "rpc.service": "shop.v1.Cart",
      "rpc.method": "AddItem",
      "rpc.grpc.status_code": 14,
      "server.address": "10.0.0.7",
      "server.port": 50051,
      env: "test",
    },
    resourceAttributes: { "service.name": "shop", "process.pid": 100 },
    processPid: 100,
    source: "ebpf",
  });
  assert.equal(server?.resourceAttributes, client?.resourceAttributes);
  assert.deepEqual(windows.takeSpans(), []);
  assert.equal(windows.pendingSpans, 0);
});

Deno.test("grpc_windows: unnamed methods, methods without a service, no status", () => {
  const windows = new GrpcWindows({
    beyla: beylaSchema.parse({}),
    counters: new Counters(),
  });
  windows.add(call({ method: "", statusCode: -1 }));
  windows.add(call({ method: "Ping" }));
  windows.add(call({ method: "a.b.C/D", side: "client", statusCode: -1 }));
  const [unnamed, bare, client] = windows.takeSpans();
  assert.equal(unnamed?.name, "grpc");
  assert.equal(unnamed?.statusCode, 2);
  assert.equal(
    unnamed?.statusMessage,
    "no grpc-status (stream reset or connection cut)",
  );
  assert.deepEqual(unnamed?.attributes, {
    "rpc.system": "grpc",
    "rpc.grpc.status_code": 2,
    "server.port": 50051,
    "client.address": "10.0.0.7",
    "client.port": 40000,
  });
  assert.equal(bare?.name, "Ping");
  assert.equal(bare?.statusCode, 0);
  assert.equal(bare?.attributes["rpc.method"], "Ping");
  assert.equal(Object.hasOwn(bare!.attributes, "rpc.service"), false);
  assert.equal(client?.statusCode, 2);
  assert.equal(client?.attributes["rpc.service"], "a.b.C");
  assert.equal(client?.attributes["rpc.method"], "D");
  assert.equal(client?.attributes["rpc.grpc.status_code"], 2);
  assert.deepEqual(
    windows.closeWindow().map((r) => [r.side, r.method, r.statusCode]),
    [["server", "", 2], ["server", "Ping", 0], ["client", "a.b.C/D", 2]],
  );
});

Deno.test("grpc_windows: a status that was sent but not decoded is kept as -2, not an error", () => {
  const windows = new GrpcWindows({
    beyla: beylaSchema.parse({}),
    counters: new Counters(),
  });
  windows.add(call({ statusCode: GRPC_STATUS_UNDECODED }));
  windows.add(call({ statusCode: GRPC_STATUS_UNDECODED, side: "client" }));
  assert.equal(isGrpcError("server", GRPC_STATUS_UNDECODED), false);
  assert.equal(isGrpcError("client", GRPC_STATUS_UNDECODED), false);
  const spans = windows.takeSpans();
  assert.deepEqual(spans.map((s) => s.statusCode), [0, 0]);
  assert.equal(
    spans[0]?.statusMessage,
    "grpc-status sent but not decoded (connection older than the capture)",
  );
  assert.deepEqual(
    windows.closeWindow().map((r) => [r.side, r.statusCode]),
    [["server", -2], ["client", -2]],
  );
});

Deno.test("grpc_windows: errors per OTel, server codes 2 4 12 13 14 15, client any non-zero", () => {
  const serverErrors = [];
  const clientErrors = [];
  for (let code = -1; code <= 16; code++) {
    if (isGrpcError("server", code)) serverErrors.push(code);
    if (isGrpcError("client", code)) clientErrors.push(code);
  }
  assert.deepEqual(serverErrors, [-1, 2, 4, 12, 13, 14, 15]);
  assert.deepEqual(clientErrors, [
    -1,
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
    9,
    10,
    11,
    12,
    13,
    14,
    15,
    16,
  ]);

  const windows = new GrpcWindows({
    beyla: beylaSchema.parse({}),
    counters: new Counters(),
  });
  for (const side of ["server", "client"] as const) {
    for (const statusCode of [0, 5, 13]) {
      windows.add(call({ side, statusCode }));
    }
  }
  assert.deepEqual(
    windows.takeSpans().map((s) => [s.kind, s.statusCode]),
    [
      ["server", 0],
      ["server", 0],
      ["server", 2],
      ["client", 0],
      ["client", 2],
      ["client", 2],
    ],
  );
});

Deno.test("grpc_windows: sampling keeps by trace id or a draw, and always keeps errors", () => {
  const counters = new Counters();
  const windows = new GrpcWindows({
    beyla: beylaSchema.parse({ sampling: { rate: 0.5 } }),
    counters,
    randomBytes: (into) => into.fill(0xff), // every draw ~1: sampled out
  });
  const low = { ...TRACEPARENT, traceId: "00000000000000000000000000000001" };
  const high = { ...TRACEPARENT, traceId: "0000000000000000ffffffffffffffff" };
  windows.add(call({ traceparent: low }));
  windows.add(call({ traceparent: high }));
  windows.add(call({ traceparent: high, statusCode: 13 }));
  windows.add(call({ traceparent: high, statusCode: 5 })); // not a server error
  windows.add(call()); // a new trace: the draw decides
  windows.add(call({ statusCode: -1 }));
  assert.deepEqual(
    windows.takeSpans().map((s) => [s.traceId, s.statusCode]),
    [[low.traceId, 0], [high.traceId, 2], ["f".repeat(32), 2]],
  );
  assert.equal(counters.get("ebpf.grpc.spans.sampled_out"), 3);
  // Metrics count every call, sampled or not.
  assert.equal(
    windows.closeWindow().reduce((n, r) => n + r.histogram.count, 0),
    6,
  );
});

Deno.test("grpc_windows: limits on series and pending spans are counted", () => {
  const counters = new Counters();
  const windows = new GrpcWindows({
    beyla: beylaSchema.parse({}),
    counters,
    maxSeries: 2,
    maxPendingSpans: 3,
  });
  for (const statusCode of [0, 1, 3, 5]) windows.add(call({ statusCode }));
  windows.add(call()); // an existing series still counts
  assert.equal(windows.seriesCount, 2);
  assert.equal(windows.pendingSpans, 3);
  assert.equal(counters.get("ebpf.grpc.series_dropped.too_many_series"), 2);
  assert.equal(counters.get("ebpf.grpc.spans.dropped.queue_full"), 2);
  assert.deepEqual(
    windows.closeWindow().map((r) => [r.statusCode, r.histogram.count]),
    [[0, 2], [1, 1]],
  );
});

Deno.test("grpc_windows: beyla.attributes never override a call's own", () => {
  const windows = new GrpcWindows({
    beyla: beylaSchema.parse({
      attributes: { "rpc.system": "configured", "server.address": "x", a: "b" },
    }),
    counters: new Counters(),
  });
  windows.add(call({ side: "client" }));
  windows.add(call());
  const [client, server] = windows.takeSpans();
  assert.equal(client?.attributes["rpc.system"], "grpc");
  assert.equal(client?.attributes["server.address"], "10.0.0.7");
  assert.equal(client?.attributes.a, "b");
  assert.equal(server?.attributes["server.address"], "x");
  assert.deepEqual(windows.closeWindow().map((r) => r.attributes), [
    {
      "server.address": "10.0.0.7",
      "server.port": 40000,
      "rpc.system": "configured",
      a: "b",
    },
    { "rpc.system": "configured", "server.address": "x", a: "b" },
  ]);
});
