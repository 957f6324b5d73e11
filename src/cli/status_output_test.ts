import assert from "node:assert/strict";
import type { CapabilitiesStatus } from "../serve/capabilities.ts";
import { keyValueLines, renderCapabilities } from "./status_output.ts";

const ok = (detail: string) => ({ present: true, detail });

const FEATURES: Omit<CapabilitiesStatus, "capture"> = {
  kernel: ok("6.8.0-45-generic"),
  libbpf: ok("libbpf.so.1"),
  btf: ok("/sys/kernel/btf/vmlinux"),
  bpf_syscall: ok("map created"),
  ring_buffer: ok("map created"),
  tracepoints: ok("/sys/kernel/tracing/events"),
  uprobes: ok("/sys/bus/event_source/devices/uprobe"),
  privileges: ok("CAP_BPF,CAP_PERFMON"),
  can_load: true,
  missing: [],
};

Deno.test("keyValueLines: values in one column, lists continue under it", () => {
  assert.deepEqual(
    keyValueLines([["a", 1], ["long key", ["x", "y"]], ["empty", []], [
      "blank",
      "",
    ]]),
    [
      "  a:         1",
      "  long key:  x",
      "             y",
      "  empty:     none",
      "  blank:",
    ],
  );
});

Deno.test("capabilities: a running capture with its stats", () => {
  assert.deepEqual(
    renderCapabilities({
      ...FEATURES,
      capture: {
        running: true,
        traced_pids: [
          { pid: 77, service: "web" },
          { pid: 4120, service: "checkout-py" },
        ],
        exchanges: 11,
        kernel: {
          events: 12,
          dropped: 1,
          conn_map_full: 0,
          conns_opened: 3,
          conns_closed: 2,
          unanswered: 0,
          unpaired_response: 0,
          unparsable: 0,
          not_inet: 4,
        },
        rejected: {},
        ring_buffer: {
          records: 12,
          batches: 5,
          handler_errors: 0,
          wait_errors: 0,
        },
        discovery: { rules: 1, scans: 7, last_scan_ms: 1.3 },
      },
    }),
    [
      "  kernel:         yes  6.8.0-45-generic",
      "  libbpf:         yes  libbpf.so.1",
      "  btf:            yes  /sys/kernel/btf/vmlinux",
      "  bpf syscall:    yes  map created",
      "  ring buffer:    yes  map created",
      "  tracepoints:    yes  /sys/kernel/tracing/events",
      "  uprobes:        yes  /sys/bus/event_source/devices/uprobe",
      "  privileges:     yes  CAP_BPF,CAP_PERFMON",
      "  can load:       yes",
      "  missing:        none",
      "  ebpf capture:   running",
      "    traced pids:  77    web",
      "                  4120  checkout-py",
      "    exchanges:    11",
      "    kernel:       events 12, dropped 1, conn_map_full 0, conns_opened 3, conns_closed 2,",
      "                  unanswered 0, unpaired_response 0, unparsable 0, not_inet 4",
      "    rejected:     none",
      "    ring buffer:  records 12, batches 5, handler errors 0, wait errors 0",
      "    discovery:    1 rule, 7 scans, last scan 1.3 ms",
    ],
  );
});

Deno.test("capabilities: stream connections and TLS libraries, and who is not decryptable", () => {
  const lines = renderCapabilities({
    ...FEATURES,
    capture: {
      running: true,
      stream_connections: 3,
      tls: {
        libraries: ["/usr/lib/x86_64-linux-gnu/libssl.so.3"],
        not_decryptable: [{ pid: 812, service: "api" }],
        failures: [],
      },
    },
  });
  assert.deepEqual(lines.slice(-3), [
    "    stream connections:   3",
    "    tls libraries:        /usr/lib/x86_64-linux-gnu/libssl.so.3",
    "    tls not decryptable:  812  api (no shared libssl)",
  ]);
});

Deno.test("capabilities: what is missing, and why the capture does not run", () => {
  assert.deepEqual(
    renderCapabilities({
      ...FEATURES,
      privileges: { present: false, detail: "none" },
      uprobes: {
        present: false,
        detail: "/sys/bus/event_source/devices/uprobe",
      },
      can_load: false,
      missing: [
        "privileges: have none: needs CAP_BPF and CAP_PERFMON (Linux 5.8+) or CAP_SYS_ADMIN; run as root or grant them",
        "uprobes: /sys/bus/event_source/devices/uprobe missing: needs CONFIG_UPROBE_EVENTS=y",
      ],
      capture: {
        running: false,
        reason: "eBPF is not available here, see missing",
      },
    }).slice(6),
    [
      "  uprobes:       no   /sys/bus/event_source/devices/uprobe",
      "  privileges:    no   none",
      "  can load:      no",
      "  missing:       privileges: have none: needs CAP_BPF and CAP_PERFMON (Linux 5.8+) or CAP_SYS_ADMIN; run as root or grant them",
      "                 uprobes: /sys/bus/event_source/devices/uprobe missing: needs CONFIG_UPROBE_EVENTS=y",
      "  ebpf capture:  not running (eBPF is not available here, see missing)",
    ],
  );
});
