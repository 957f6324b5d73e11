/** Prints `query http|grpc|sql` answers as a table (JSON prints as is). */
import type { RedAnswer, RedKind, RedRow } from "../serve/query_backend.ts";
import { type Column, renderTable } from "./table.ts";

const field = (row: RedRow, key: string): unknown =>
  (row as unknown as Record<string, unknown>)[key];
const text = (key: string) => (row: RedRow) => String(field(row, key) ?? "");
const num = (key: string, digits = 0) => (row: RedRow) => {
  const value = field(row, key);
  return typeof value === "number" ? value.toFixed(digits) : "-";
};
const right = (header: string, value: (row: RedRow) => string) => ({
  header,
  value,
  align: "right" as const,
});

const KEY_COLUMNS: Record<RedKind, Column<RedRow>[]> = {
  http: [
    { header: "SERVICE", value: text("service") },
    { header: "METHOD", value: text("method") },
    { header: "ROUTE", value: text("route") },
  ],
  grpc: [
    { header: "SERVICE", value: text("service") },
    { header: "METHOD", value: text("grpc_method") },
  ],
  sql: [
    { header: "SERVICE", value: text("service") },
    { header: "SYSTEM", value: text("db_system") },
    { header: "OPERATION", value: text("operation") },
    { header: "TABLE", value: text("table") },
  ],
};

const BREAKDOWN: Record<RedKind, { header: string; key: string }> = {
  http: { header: "STATUS CODES", key: "status_codes" },
  grpc: { header: "STATUS CODES", key: "status_codes" },
  sql: { header: "ERROR TYPES", key: "error_types" },
};

export function renderRedTable(answer: RedAnswer): string {
  const breakdown = BREAKDOWN[answer.kind];
  const byAgent = answer.rows.some((row) => row.agent !== undefined);
  const columns: Column<RedRow>[] = [
    ...(byAgent ? [{ header: "AGENT", value: text("agent") }] : []),
    ...KEY_COLUMNS[answer.kind],
    right("REQUESTS", num("requests")),
    right("REQ/S", num("rps", 2)),
    right("ERRORS", num("errors")),
    right(
      "ERR%",
      (row) =>
        typeof row.error_rate === "number"
          ? (row.error_rate * 100).toFixed(2)
          : "-",
    ),
    right("P50 ms", num("p50_ms", 2)),
    right("P95 ms", num("p95_ms", 2)),
    right("P99 ms", num("p99_ms", 2)),
    {
      header: breakdown.header,
      value: (row) => breakdownText(field(row, breakdown.key)),
    },
  ];
  if (answer.rows.length === 0) {
    return `no ${answer.kind} ${answer.side} data in the last ${
      answer.since_ms / 1000
    }s`;
  }
  const total = { ...answer.total, service: "TOTAL" } as RedRow;
  return renderTable(columns, answer.rows, [total]);
}

function breakdownText(value: unknown): string {
  if (!value || typeof value !== "object") return "";
  return Object.entries(value as Record<string, number>)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([key, count]) => `${key || "none"}:${count}`)
    .join(" ");
}
