/** Prints `status` for a person (JSON prints as is). */
import type {
  CapabilitiesStatus,
  CaptureStatus,
  FeatureStatus,
} from "../serve/capabilities.ts";
import type { StatusReport } from "../serve/query_backend.ts";

/** A value on one line, or several lines aligned under the first. */
type Value = string | number | readonly string[];

/** Lines wrapped at this width, where a value is a list. */
const WIDTH = 100;

/**
 * `key: value` lines with the values in one column; a list value continues
 * on the following lines at that column.
 */
export function keyValueLines(
  rows: readonly (readonly [string, Value])[],
  indent = "  ",
): string[] {
  // The longest key, its colon and two spaces.
  const width = Math.max(0, ...rows.map(([key]) => key.length)) + 3;
  const lines: string[] = [];
  for (const [key, value] of rows) {
    const values = typeof value === "object" ? value : [String(value)];
    const head = `${indent}${`${key}:`.padEnd(width)}`;
    const [first = "", ...more] = values.length === 0 ? ["none"] : values;
    lines.push(`${head}${first}`.trimEnd());
    for (const line of more) lines.push(`${" ".repeat(head.length)}${line}`);
  }
  return lines;
}

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
  if (report.capabilities) {
    lines.push("", "capabilities:", ...renderCapabilities(report.capabilities));
  }
  const counters = Object.entries(report.counters);
  if (counters.length > 0) {
    lines.push("", "counters:");
    const width = Math.max(...counters.map(([name]) => name.length));
    for (const [name, value] of counters) {
      lines.push(`  ${name.padEnd(width)}  ${value}`);
    }
  }
  lines.push(
    "",
    "storage:",
    ...keyValueLines(
      Object.entries(report.storage).map(([key, value]) => [
        key,
        typeof value === "object" ? JSON.stringify(value) : String(value),
      ]),
    ),
  );
  if (report.memory) {
    lines.push(
      "",
      "memory (MiB):",
      ...keyValueLines(
        Object.entries(report.memory).map((
          [key, bytes],
        ) => [key, (bytes / 1048576).toFixed(1)]),
      ),
    );
  }
  if (report.config) {
    lines.push("", "configuration:", ...report.config.map((l) => `  ${l}`));
  }
  return lines.join("\n");
}

/**
 * The `capabilities:` section: one line per probed feature ("yes" or "no"
 * and what was found), whether the capture can load and what is missing,
 * then the capture's state and, when it runs, its stats (indented, values
 * in the same column).
 */
export function renderCapabilities(c: CapabilitiesStatus): string[] {
  const feature = (f: FeatureStatus) =>
    `${f.present ? "yes" : "no "}  ${f.detail}`.trimEnd();
  const capture = c.capture;
  return keyValueLines([
    ["kernel", feature(c.kernel)],
    ["libbpf", feature(c.libbpf)],
    ["btf", feature(c.btf)],
    ["bpf syscall", feature(c.bpf_syscall)],
    ["ring buffer", feature(c.ring_buffer)],
    ["tracepoints", feature(c.tracepoints)],
    ["uprobes", feature(c.uprobes)],
    ["privileges", feature(c.privileges)],
    ["can load", c.can_load ? "yes" : "no"],
    ["missing", c.missing],
    [
      "ebpf capture",
      capture.running
        ? "running"
        : `not running (${capture.reason ?? "unknown"})`,
    ],
    ...(capture.running
      ? captureRows(capture).map(([key, value]) => [`  ${key}`, value] as const)
      : []),
  ]);
}

function captureRows(c: CaptureStatus): [string, Value][] {
  const pids = c.traced_pids ?? [];
  const pidWidth = Math.max(0, ...pids.map((p) => String(p.pid).length));
  const discovery = c.discovery;
  return [
    [
      "traced pids",
      pids.map((p) => `${String(p.pid).padEnd(pidWidth)}  ${p.service}`),
    ],
    ["exchanges", c.exchanges ?? 0],
    ["kernel", wrap(pairs(c.kernel ?? {}))],
    ["rejected", wrap(pairs(c.rejected ?? {}))],
    ["ring buffer", ringText(c.ring_buffer)],
    [
      "discovery",
      discovery == null
        ? "off"
        : `${plural(discovery.rules, "rule")}, ${
          plural(discovery.scans, "scan")
        }, last scan ${discovery.last_scan_ms} ms`,
    ],
    ...streamRows(c),
  ];
}

/** Stream connections and TLS, when the agent reports them. */
function streamRows(c: CaptureStatus): [string, Value][] {
  const rows: [string, Value][] = [];
  if (c.stream_ring_buffer !== undefined) {
    rows.push(["stream ring", ringText(c.stream_ring_buffer)]);
  }
  if (c.stream_connections !== undefined) {
    rows.push(["stream connections", c.stream_connections]);
  }
  if (c.tls !== undefined) {
    rows.push(
      ["tls libraries", c.tls.libraries],
      [
        "tls not decryptable",
        c.tls.not_decryptable.map((p) =>
          `${p.pid}  ${p.service} (no shared libssl)`
        ),
      ],
    );
    if (c.tls.failures.length > 0) {
      rows.push(["tls probe failures", c.tls.failures]);
    }
  }
  return rows;
}

function ringText(ring: CaptureStatus["ring_buffer"]): Value {
  return ring === undefined ? [] : wrap([
    `records ${ring.records}`,
    `batches ${ring.batches}`,
    `handler errors ${ring.handler_errors}`,
    `wait errors ${ring.wait_errors}`,
  ]);
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/** { events: 12, dropped: 0 } → ["events 12", "dropped 0"]. */
function pairs(values: Record<string, number>): string[] {
  return Object.entries(values).map(([key, value]) => `${key} ${value}`);
}

/** Joins items with ", " into lines of at most WIDTH - 20 characters. */
function wrap(items: readonly string[]): string[] {
  const lines: string[] = [];
  let line = "";
  for (const item of items) {
    const next = line === "" ? item : `${line}, ${item}`;
    if (line !== "" && next.length > WIDTH - 20) {
      lines.push(`${line},`);
      line = item;
    } else {
      line = next;
    }
  }
  if (line !== "") lines.push(line);
  return lines;
}
