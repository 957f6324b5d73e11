// Generated from proto/coral/agent/v1/agent.proto and proto/coral/colony/v1/colony.proto: do not edit.
// Regenerate: UPDATE=1 deno test -A src/serve/coral_protos_test.ts (the test fails when they differ).
// (Embedded because the built agent ships src/ but not proto/.)

export const AGENT_PROTO =
  `// The pull RPC a Coral colony calls on an agent for its eBPF data: the colony
// keeps a checkpoint (agent, data type, session_id, last seq_id), asks for
// the rows after it, and starts over when session_id changes.
//
// Served with the Connect protocol, unary:
//   POST /coral.agent.v1.AgentService/QueryEbpfMetrics
//   Content-Type: application/proto or application/json
// Field numbers are Coral's (coral-interfaces §1); do not renumber.
syntax = "proto3";

package coral.agent.v1;

service AgentService {
  rpc QueryEbpfMetrics(QueryEbpfMetricsRequest) returns (QueryEbpfMetricsResponse);
}

enum EbpfMetricType {
  EBPF_METRIC_TYPE_UNSPECIFIED = 0;
  EBPF_METRIC_TYPE_HTTP = 1;
  EBPF_METRIC_TYPE_GRPC = 2;
  EBPF_METRIC_TYPE_SQL = 3;
}

message QueryEbpfMetricsRequest {
  // Empty: all services.
  repeated string service_names = 1;
  // Empty: all types.
  repeated EbpfMetricType metric_types = 2;
  // Only the spans of this trace.
  string trace_id = 3;
  // Default 100, at most 1000.
  int32 max_traces = 4;
  bool include_traces = 5;
  // Rows with seq_id greater than these.
  uint64 http_start_seq_id = 6;
  uint64 grpc_start_seq_id = 7;
  uint64 sql_start_seq_id = 8;
  uint64 traces_start_seq_id = 9;
  // Per type; default 10000, at most 50000.
  int32 max_records = 10;
}

message QueryEbpfMetricsResponse {
  repeated EbpfHttpMetric http_metrics = 1;
  repeated EbpfGrpcMetric grpc_metrics = 2;
  repeated EbpfSqlMetric sql_metrics = 3;
  int32 total_metrics = 4;
  repeated EbpfTraceSpan trace_spans = 5;
  int32 total_traces = 6;
  uint64 http_max_seq_id = 7;
  uint64 grpc_max_seq_id = 8;
  uint64 sql_max_seq_id = 9;
  uint64 traces_max_seq_id = 10;
  // UUID of the agent's database; changes only when the database is recreated.
  string session_id = 11;
}

message EbpfHttpMetric {
  // Unix milliseconds.
  int64 timestamp = 1;
  string service_name = 2;
  string http_method = 3;
  string http_route = 4;
  uint32 http_status_code = 5;
  // Bucket upper bounds, milliseconds.
  repeated double latency_buckets = 6;
  repeated uint64 latency_counts = 7;
  uint64 request_count = 8;
  map<string, string> attributes = 9;
  uint64 seq_id = 10;
}

message EbpfGrpcMetric {
  int64 timestamp = 1;
  string service_name = 2;
  string grpc_method = 3;
  uint32 grpc_status_code = 4;
  repeated double latency_buckets = 5;
  repeated uint64 latency_counts = 6;
  uint64 request_count = 7;
  map<string, string> attributes = 8;
  uint64 seq_id = 9;
}

message EbpfSqlMetric {
  int64 timestamp = 1;
  string service_name = 2;
  string sql_operation = 3;
  string table_name = 4;
  repeated double latency_buckets = 5;
  repeated uint64 latency_counts = 6;
  uint64 query_count = 7;
  map<string, string> attributes = 8;
  uint64 seq_id = 9;
}

message EbpfTraceSpan {
  // 32 lowercase hex digits.
  string trace_id = 1;
  // 16 lowercase hex digits.
  string span_id = 2;
  // Empty for a root span.
  string parent_span_id = 3;
  string service_name = 4;
  string span_name = 5;
  string span_kind = 6;
  // Unix milliseconds.
  int64 start_time = 7;
  int64 duration_us = 8;
  uint32 status_code = 9;
  map<string, string> attributes = 10;
  uint64 seq_id = 11;
  uint32 process_pid = 12;
}`;

export const COLONY_PROTO =
  `// The push RPC an agent calls on its colony: batches of stored rows, each
// with the seq_id the agent's database gave it, so the colony can apply a
// batch exactly once (rows at or below the colony's checkpoint for the
// agent, session and table are skipped) and the agent can resume from the
// acknowledged seq_ids after a restart.
//
// Served with the Connect protocol, unary:
//   POST /coral.colony.v1.ColonyService/PushBatch
//   Content-Type: application/proto or application/json
//   Authorization: Bearer <the agent's token>
// Errors are Connect errors: 401 unauthenticated (wrong or missing token, or
// an unknown agent when registration is required), 400 invalid_argument
// (malformed batch, with the reason), 503 unavailable (retry later).
//
// Rows carry every column of the agent's tables (src/store/schema.ts), not
// the smaller Coral pull messages of agent.proto, so that the colony answers
// the same queries as the agent.
syntax = "proto3";

package coral.colony.v1;

service ColonyService {
  rpc PushBatch(PushBatchRequest) returns (PushBatchResponse);
}

message PushBatchRequest {
  string agent_id = 1;
  // The agent database's session_id: seq_ids are comparable within one.
  string session_id = 2;
  repeated HttpMetricRow http = 3;
  repeated GrpcMetricRow grpc = 4;
  repeated SqlMetricRow sql = 5;
  repeated SpanRow spans = 6;
}

message PushBatchResponse {
  // The colony's checkpoint per table after this batch (all rows of the
  // session up to these seq_ids are stored).
  uint64 http_acked_seq_id = 1;
  uint64 grpc_acked_seq_id = 2;
  uint64 sql_acked_seq_id = 3;
  uint64 spans_acked_seq_id = 4;
  // Rows of this batch stored now, and rows skipped as already stored.
  uint32 stored = 5;
  uint32 duplicates = 6;
}

// What every metric row has: one series, one window.
message MetricWindow {
  uint64 seq_id = 1;
  // Window end and start, Unix milliseconds.
  int64 timestamp_ms = 2;
  int64 window_start_ms = 3;
  string service_name = 4;
  // "server" or "client".
  string side = 5;
  // Finite upper bounds, milliseconds, ascending.
  repeated double latency_buckets_ms = 6;
  // One more than latency_buckets_ms: the last is the +Inf bucket.
  repeated uint64 latency_counts = 7;
  uint64 count = 8;
  double sum_ms = 9;
  // Absent when unknown.
  optional double min_ms = 10;
  optional double max_ms = 11;
  // JSON object text; values keep their types.
  string attributes_json = 12;
  // "otlp", "ebpf", …
  string source = 13;
}

message HttpMetricRow {
  MetricWindow window = 1;
  string method = 2;
  string route = 3;
  int32 status_code = 4;
}

message GrpcMetricRow {
  MetricWindow window = 1;
  string method = 2;
  int32 status_code = 3;
}

message SqlMetricRow {
  MetricWindow window = 1;
  string db_system = 2;
  string operation = 3;
  string table = 4;
  string error_type = 5;
}

message SpanRow {
  uint64 seq_id = 1;
  string trace_id = 2;
  string span_id = 3;
  string parent_span_id = 4;
  string service_name = 5;
  string name = 6;
  // "server", "client", "internal", …
  string kind = 7;
  // Unix microseconds.
  int64 start_time_us = 8;
  int64 duration_us = 9;
  int32 status_code = 10;
  string status_message = 11;
  string attributes_json = 12;
  string resource_attributes_json = 13;
  int32 process_pid = 14;
  string source = 15;
}`;
