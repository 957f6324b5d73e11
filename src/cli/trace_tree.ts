/**
 * Prints traces as trees: children under their parent ordered by start,
 * each with its offset from the trace's first span and its duration. Spans
 * whose parent was not received are shown as orphans, never hidden.
 */
import type { TraceSpanRow } from "../store/queries.ts";

/** A span as the query API returns it (the fields the tree needs). */
export type TreeSpan = Pick<
  TraceSpanRow,
  | "trace_id"
  | "span_id"
  | "parent_span_id"
  | "service"
  | "name"
  | "kind"
  | "start_time_us"
  | "duration_us"
  | "status_code"
>;

export interface TreeTrace {
  trace_id: string;
  spans: TreeSpan[];
}

const STATUS = ["", " OK", " ERROR"];

export function renderTraceTree(trace: TreeTrace): string {
  const spans = [...trace.spans].sort((a, b) =>
    a.start_time_us - b.start_time_us || a.span_id.localeCompare(b.span_id)
  );
  const origin = spans[0]?.start_time_us ?? 0;
  const ids = new Set(spans.map((span) => span.span_id));
  const children = new Map<string, TreeSpan[]>();
  const tops: TreeSpan[] = [];
  for (const span of spans) {
    if (span.parent_span_id && ids.has(span.parent_span_id)) {
      const list = children.get(span.parent_span_id) ?? [];
      list.push(span);
      children.set(span.parent_span_id, list);
    } else {
      tops.push(span);
    }
  }
  const end = Math.max(...spans.map((s) => s.start_time_us + s.duration_us));
  const lines = [
    `trace ${trace.trace_id}  ${spans.length} span(s)  ${
      ms(end - origin)
    } total`,
  ];
  const visited = new Set<string>();
  const walk = (
    span: TreeSpan,
    prefix: string,
    last: boolean,
    top: boolean,
  ) => {
    if (visited.has(span.span_id)) return;
    visited.add(span.span_id);
    const branch = top ? "" : last ? "└─ " : "├─ ";
    const orphan = top && span.parent_span_id
      ? `  (orphan: parent ${span.parent_span_id} not received)`
      : "";
    lines.push(
      `${prefix}${branch}${span.name} [${span.service}] ${span.kind}  +${
        ms(span.start_time_us - origin)
      }  ${ms(span.duration_us)}${STATUS[span.status_code] ?? ""}${orphan}`,
    );
    const kids = children.get(span.span_id) ?? [];
    const childPrefix = top ? prefix + "  " : prefix + (last ? "   " : "│  ");
    kids.forEach((kid, i) =>
      walk(kid, childPrefix, i === kids.length - 1, false)
    );
  };
  for (const span of tops) walk(span, "", true, true);
  // Spans in a parent cycle are unreachable from any top: show them too.
  for (const span of spans) {
    if (!visited.has(span.span_id)) walk(span, "", true, true);
  }
  return lines.join("\n");
}

function ms(us: number): string {
  return `${(us / 1000).toFixed(us < 10_000 ? 3 : 1)}ms`;
}
