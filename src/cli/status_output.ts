/** Prints `status` for a person (JSON prints as is). */
import type { StatusReport } from "../serve/query_backend.ts";

export function renderStatus(report: StatusReport): string {
  const lines = [`coral-agent ${report.version}`];
  if (report.source === "database") {
    lines.push("source: database file (agent not running; no live counters)");
  } else {
    lines.push(`agent: ${report.agent_id}  up ${report.uptime_s}s`);
  }
  if (report.receivers) {
    lines.push("", "receivers:");
    for (const [name, receiver] of Object.entries(report.receivers)) {
      lines.push(`  ${name.padEnd(12)} ${receiver.listen}`);
    }
  }
  const counters = Object.entries(report.counters);
  if (counters.length > 0) {
    lines.push("", "counters:");
    const width = Math.max(...counters.map(([name]) => name.length));
    for (const [name, value] of counters) {
      lines.push(`  ${name.padEnd(width)}  ${value}`);
    }
  }
  lines.push("", "storage:");
  for (const [key, value] of Object.entries(report.storage)) {
    lines.push(
      `  ${key}: ${typeof value === "object" ? JSON.stringify(value) : value}`,
    );
  }
  if (report.memory) {
    lines.push("", "memory (MiB):");
    for (const [key, bytes] of Object.entries(report.memory)) {
      lines.push(`  ${key}: ${(bytes / 1048576).toFixed(1)}`);
    }
  }
  if (report.config) {
    lines.push("", "configuration:", ...report.config.map((l) => `  ${l}`));
  }
  return lines.join("\n");
}
