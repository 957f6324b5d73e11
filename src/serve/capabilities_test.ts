import assert from "node:assert/strict";
import type { CapabilityReport } from "../../ffi/libbpf/mod.ts";
import type { HttpCaptureStats } from "../capture/http_capture.ts";
import { beylaSchema } from "../config/schema.ts";
import { VERSION } from "../version.ts";
import { beylaCapabilities, capabilitiesStatus } from "./capabilities.ts";

const ok = (detail: string) => ({ present: true, detail });

/** A machine where everything is there but uprobes. */
const REPORT: CapabilityReport = {
  kernel: { ...ok("6.8.0-45-generic"), release: "6.8.0-45-generic" },
  libbpf: ok("libbpf.so.1"),
  privileges: {
    ...ok("CAP_BPF,CAP_PERFMON"),
    caps: { bpf: true, perfmon: true, sysAdmin: false },
  },
  bpfSyscall: ok("map created"),
  btf: ok("/sys/kernel/btf/vmlinux"),
  ringBuffer: ok("map created"),
  tracepoints: ok("/sys/kernel/tracing/events"),
  uprobes: {
    present: false,
    detail: "/sys/bus/event_source/devices/uprobe",
    missing: "uprobes: /sys/bus/event_source/devices/uprobe missing: needs …",
  },
  canLoad: false,
  missing: [
    "uprobes: /sys/bus/event_source/devices/uprobe missing: needs …",
  ],
};

const STATS: HttpCaptureStats = {
  pids: { 4120: "checkout-py", 77: "web" },
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
    stream_events: 0,
    stream_dropped: 0,
    stream_truncated: 0,
    forks_followed: 0,
    tls_no_socket: 0,
  },
  ring: { records: 12, handlerErrors: 0, batches: 5, waitErrors: 0 },
  streamRing: { records: 0, handlerErrors: 0, batches: 0, waitErrors: 0 },
  streamConnections: 0,
  tls: { libraries: [], notDecryptable: { 77: "web" }, failures: [] },
  exchanges: 11,
  rejected: { unknown_pid: 1 },
  discovery: { scans: 7, lastScanMs: 1.26, rules: 2 },
  clock: { offsetUs: 1, uncertaintyUs: 2 },
};

Deno.test("beylaCapabilities: enabled and tracing only when the capture runs; protocols it decodes and the config enables", () => {
  const defaults = beylaSchema.parse({});
  const base = {
    version: `coral-agent/${VERSION}`,
    supported_runtimes: [
      "any (syscall level, plaintext)",
      "TLS through a shared OpenSSL libssl",
    ],
  };
  const all = ["http", "grpc", "sql", "redis"];
  assert.deepEqual(beylaCapabilities(defaults, { canLoad: true }, true), {
    ...base,
    enabled: true,
    supported_protocols: all,
    tracing_enabled: true,
  });
  const off = { ...base, enabled: false, tracing_enabled: false };
  assert.deepEqual(beylaCapabilities(defaults, { canLoad: false }, false), {
    ...off,
    supported_protocols: all,
  });
  assert.deepEqual(
    beylaCapabilities(beylaSchema.parse({ enabled: false }), {
      canLoad: true,
    }, false),
    { ...off, supported_protocols: all },
  );
  assert.deepEqual(
    beylaCapabilities(
      beylaSchema.parse({
        protocols: { http: { enabled: false }, redis: { enabled: false } },
      }),
      { canLoad: true },
      false,
    ),
    { ...off, supported_protocols: ["grpc", "sql"] },
  );
});

Deno.test("capabilitiesStatus: the probe's features, missing lines and the capture's stats", () => {
  const features = {
    kernel: ok("6.8.0-45-generic"),
    libbpf: ok("libbpf.so.1"),
    btf: ok("/sys/kernel/btf/vmlinux"),
    bpf_syscall: ok("map created"),
    ring_buffer: ok("map created"),
    tracepoints: ok("/sys/kernel/tracing/events"),
    uprobes: {
      present: false,
      detail: "/sys/bus/event_source/devices/uprobe",
    },
    privileges: ok("CAP_BPF,CAP_PERFMON"),
    can_load: false,
    missing: [
      "uprobes: /sys/bus/event_source/devices/uprobe missing: needs …",
    ],
  };
  assert.deepEqual(
    capabilitiesStatus(REPORT, {
      reason: "eBPF is not available here, see missing",
    }),
    {
      ...features,
      capture: {
        running: false,
        reason: "eBPF is not available here, see missing",
      },
    },
  );
  assert.deepEqual(capabilitiesStatus(REPORT, { stats: () => STATS }), {
    ...features,
    capture: {
      running: true,
      traced_pids: [
        { pid: 77, service: "web" },
        { pid: 4120, service: "checkout-py" },
      ],
      exchanges: 11,
      kernel: STATS.kernel,
      rejected: { unknown_pid: 1 },
      ring_buffer: {
        records: 12,
        batches: 5,
        handler_errors: 0,
        wait_errors: 0,
      },
      discovery: { rules: 2, scans: 7, last_scan_ms: 1.3 },
      stream_ring_buffer: {
        records: 0,
        batches: 0,
        handler_errors: 0,
        wait_errors: 0,
      },
      stream_connections: 0,
      tls: {
        libraries: [],
        not_decryptable: [{ pid: 77, service: "web" }],
        failures: [],
      },
    },
  });
  assert.deepEqual(
    capabilitiesStatus(REPORT, { stats: () => ({ ...STATS, discovery: null }) })
      .capture.discovery,
    null,
  );
});
