import assert from "node:assert/strict";
import { renderTraceTree, type TreeSpan } from "./trace_tree.ts";

function span(
  id: string,
  parent: string,
  start: number,
  duration: number,
  name = id,
): TreeSpan {
  return {
    trace_id: "t",
    span_id: id,
    parent_span_id: parent,
    service: "svc",
    name,
    kind: "server",
    start_time_us: start,
    duration_us: duration,
    status_code: 0,
  };
}

Deno.test("children sit under their parent in start order; orphans are shown", () => {
  const text = renderTraceTree({
    trace_id: "t",
    spans: [
      span("c2", "root", 3000, 1000),
      span("root", "", 1000, 10000),
      span("c1", "root", 2000, 500),
      span("gc", "c1", 2100, 100),
      span("lost", "missing0", 5000, 200),
    ],
  });
  assert.equal(
    text,
    [
      "trace t  5 span(s)  10.0ms total",
      "root [svc] server  +0.000ms  10.0ms",
      "  ├─ c1 [svc] server  +1.000ms  0.500ms",
      "  │  └─ gc [svc] server  +1.100ms  0.100ms",
      "  └─ c2 [svc] server  +2.000ms  1.000ms",
      "lost [svc] server  +4.000ms  0.200ms  (orphan: parent missing0 not received)",
    ].join("\n"),
  );
});
