/**
 * The agent's .proto files: Coral's field numbers (coral-interfaces §1 and
 * RFD 032) exactly, and the `beyla_capabilities` object of `status` encodes
 * as `coral.mesh.v1.BeylaCapabilities` and decodes to the same values.
 */
import assert from "node:assert/strict";
import { beylaSchema } from "../src/config/schema.ts";
import { beylaCapabilities } from "../src/serve/capabilities.ts";
import { VERSION } from "../src/version.ts";
import { coralProto, fieldsOf, roundTrip } from "./support/coral_proto.ts";

const METRIC_TAIL = [
  ["latency_buckets", "repeated double"],
  ["latency_counts", "repeated uint64"],
] as const;

Deno.test("ebpf.proto: BeylaCapabilities has RFD 032's fields", () => {
  assert.deepEqual(fieldsOf("coral.mesh.v1.BeylaCapabilities"), [
    ["enabled", 1, "bool"],
    ["version", 2, "string"],
    ["supported_protocols", 3, "repeated string"],
    ["supported_runtimes", 4, "repeated string"],
    ["tracing_enabled", 5, "bool"],
  ]);
});

Deno.test("ebpf.proto: Beyla metrics, span and event messages", () => {
  const numbered = (fields: readonly (readonly [string, string])[]) =>
    fields.map(([name, type], i) => [name, i + 1, type]);
  assert.deepEqual(
    fieldsOf("coral.mesh.v1.BeylaHttpMetrics"),
    numbered([
      ["timestamp", "google.protobuf.Timestamp"],
      ["service_name", "string"],
      ["http_route", "string"],
      ["http_method", "string"],
      ["http_status_code", "uint32"],
      ...METRIC_TAIL,
      ["request_count", "uint64"],
      ["attributes", "map<string, string>"],
    ]),
  );
  assert.deepEqual(
    fieldsOf("coral.mesh.v1.BeylaGrpcMetrics"),
    numbered([
      ["timestamp", "google.protobuf.Timestamp"],
      ["service_name", "string"],
      ["grpc_method", "string"],
      ["grpc_status_code", "uint32"],
      ...METRIC_TAIL,
      ["request_count", "uint64"],
      ["attributes", "map<string, string>"],
    ]),
  );
  assert.deepEqual(
    fieldsOf("coral.mesh.v1.BeylaSqlMetrics"),
    numbered([
      ["timestamp", "google.protobuf.Timestamp"],
      ["service_name", "string"],
      ["sql_operation", "string"],
      ["table_name", "string"],
      ...METRIC_TAIL,
      ["query_count", "uint64"],
      ["attributes", "map<string, string>"],
    ]),
  );
  assert.deepEqual(
    fieldsOf("coral.mesh.v1.BeylaTraceSpan"),
    numbered([
      ["trace_id", "string"],
      ["span_id", "string"],
      ["parent_span_id", "string"],
      ["service_name", "string"],
      ["span_name", "string"],
      ["span_kind", "string"],
      ["start_time", "google.protobuf.Timestamp"],
      ["duration", "google.protobuf.Duration"],
      ["status_code", "uint32"],
      ["attributes", "map<string, string>"],
    ]),
  );
  assert.deepEqual(fieldsOf("coral.mesh.v1.EbpfEvent"), [
    ["timestamp", 1, "google.protobuf.Timestamp"],
    ["collector_id", 2, "string"],
    ["beyla_http", 20, "BeylaHttpMetrics"],
    ["beyla_grpc", 21, "BeylaGrpcMetrics"],
    ["beyla_sql", 22, "BeylaSqlMetrics"],
    ["beyla_trace", 23, "BeylaTraceSpan"],
  ]);
  const event = coralProto().lookupType("coral.mesh.v1.EbpfEvent");
  assert.deepEqual(
    event.oneofsArray.map((o) => [o.name, o.oneof]),
    [["payload", ["beyla_http", "beyla_grpc", "beyla_sql", "beyla_trace"]]],
  );
  assert.deepEqual(event.reserved, [[10, 10], [11, 11]]);
});

Deno.test("agent.proto: AgentService.QueryEbpfMetrics with Coral's field numbers", () => {
  const service = coralProto().lookupService("coral.agent.v1.AgentService");
  assert.deepEqual(
    service.methodsArray.map((m) => [m.name, m.requestType, m.responseType]),
    [[
      "QueryEbpfMetrics",
      "QueryEbpfMetricsRequest",
      "QueryEbpfMetricsResponse",
    ]],
  );
  assert.deepEqual(
    coralProto().lookupEnum("coral.agent.v1.EbpfMetricType").values,
    {
      EBPF_METRIC_TYPE_UNSPECIFIED: 0,
      EBPF_METRIC_TYPE_HTTP: 1,
      EBPF_METRIC_TYPE_GRPC: 2,
      EBPF_METRIC_TYPE_SQL: 3,
    },
  );
  assert.deepEqual(fieldsOf("coral.agent.v1.QueryEbpfMetricsRequest"), [
    ["service_names", 1, "repeated string"],
    ["metric_types", 2, "repeated EbpfMetricType"],
    ["trace_id", 3, "string"],
    ["max_traces", 4, "int32"],
    ["include_traces", 5, "bool"],
    ["http_start_seq_id", 6, "uint64"],
    ["grpc_start_seq_id", 7, "uint64"],
    ["sql_start_seq_id", 8, "uint64"],
    ["traces_start_seq_id", 9, "uint64"],
    ["max_records", 10, "int32"],
  ]);
  assert.deepEqual(fieldsOf("coral.agent.v1.QueryEbpfMetricsResponse"), [
    ["http_metrics", 1, "repeated EbpfHttpMetric"],
    ["grpc_metrics", 2, "repeated EbpfGrpcMetric"],
    ["sql_metrics", 3, "repeated EbpfSqlMetric"],
    ["total_metrics", 4, "int32"],
    ["trace_spans", 5, "repeated EbpfTraceSpan"],
    ["total_traces", 6, "int32"],
    ["http_max_seq_id", 7, "uint64"],
    ["grpc_max_seq_id", 8, "uint64"],
    ["sql_max_seq_id", 9, "uint64"],
    ["traces_max_seq_id", 10, "uint64"],
    ["session_id", 11, "string"],
  ]);
  assert.deepEqual(fieldsOf("coral.agent.v1.EbpfHttpMetric"), [
    ["timestamp", 1, "int64"],
    ["service_name", 2, "string"],
    ["http_method", 3, "string"],
    ["http_route", 4, "string"],
    ["http_status_code", 5, "uint32"],
    ["latency_buckets", 6, "repeated double"],
    ["latency_counts", 7, "repeated uint64"],
    ["request_count", 8, "uint64"],
    ["attributes", 9, "map<string, string>"],
    ["seq_id", 10, "uint64"],
  ]);
  assert.deepEqual(fieldsOf("coral.agent.v1.EbpfGrpcMetric"), [
    ["timestamp", 1, "int64"],
    ["service_name", 2, "string"],
    ["grpc_method", 3, "string"],
    ["grpc_status_code", 4, "uint32"],
    ["latency_buckets", 5, "repeated double"],
    ["latency_counts", 6, "repeated uint64"],
    ["request_count", 7, "uint64"],
    ["attributes", 8, "map<string, string>"],
    ["seq_id", 9, "uint64"],
  ]);
  assert.deepEqual(fieldsOf("coral.agent.v1.EbpfSqlMetric"), [
    ["timestamp", 1, "int64"],
    ["service_name", 2, "string"],
    ["sql_operation", 3, "string"],
    ["table_name", 4, "string"],
    ["latency_buckets", 5, "repeated double"],
    ["latency_counts", 6, "repeated uint64"],
    ["query_count", 7, "uint64"],
    ["attributes", 8, "map<string, string>"],
    ["seq_id", 9, "uint64"],
  ]);
  assert.deepEqual(fieldsOf("coral.agent.v1.EbpfTraceSpan"), [
    ["trace_id", 1, "string"],
    ["span_id", 2, "string"],
    ["parent_span_id", 3, "string"],
    ["service_name", 4, "string"],
    ["span_name", 5, "string"],
    ["span_kind", 6, "string"],
    ["start_time", 7, "int64"],
    ["duration_us", 8, "int64"],
    ["status_code", 9, "uint32"],
    ["attributes", 10, "map<string, string>"],
    ["seq_id", 11, "uint64"],
    ["process_pid", 12, "uint32"],
  ]);
});

Deno.test("beylaCapabilities() encodes as BeylaCapabilities and decodes to the same values", () => {
  const type = "coral.mesh.v1.BeylaCapabilities";
  const names = fieldsOf(type).map(([name]) => name).sort();
  const cases = [
    beylaCapabilities(beylaSchema.parse({}), { canLoad: true }, true),
    beylaCapabilities(beylaSchema.parse({}), { canLoad: false }, false),
    beylaCapabilities(
      beylaSchema.parse({ protocols: { http: { enabled: false } } }),
      { canLoad: true },
      false,
    ),
  ];
  assert.deepEqual(cases[0], {
    enabled: true,
    version: `coral-agent/${VERSION}`,
    supported_protocols: ["http", "grpc", "sql", "redis"],
    supported_runtimes: [
      "any (syscall level, plaintext)",
      "TLS through a shared OpenSSL libssl",
    ],
    tracing_enabled: true,
  });
  for (const capabilities of cases) {
    assert.deepEqual(Object.keys(capabilities).sort(), names);
    assert.deepEqual(roundTrip(type, { ...capabilities }), capabilities);
  }
});
