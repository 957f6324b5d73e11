/**
 * What this machine allows and what the eBPF capture is doing, for
 * `status`: the `capabilities` section (the probe taken at start, whether
 * the capture runs and its own stats) and `beyla_capabilities`, shaped as
 * the `coral.mesh.v1.BeylaCapabilities` message of
 * proto/coral/mesh/v1/ebpf.proto (field names exactly as there).
 *
 * @module
 */
import type {
  Capability,
  CapabilityReport,
  RingBufferStats,
} from "../../ffi/libbpf/mod.ts";
import type { HttpCaptureStats } from "../capture/http_capture.ts";
import type { BeylaConfig } from "../config/schema.ts";
import { VERSION } from "../version.ts";

/** `coral.mesh.v1.BeylaCapabilities` as protobuf JSON with the proto's own field names. */
export interface BeylaCapabilities {
  enabled: boolean;
  version: string;
  supported_protocols: string[];
  supported_runtimes: string[];
  tracing_enabled: boolean;
}

/** Protocols the eBPF capture decodes (src/decode/), by config key. */
export const CAPTURE_PROTOCOLS = ["http", "grpc", "sql", "redis"] as const;

/**
 * Syscall-level capture sees the plaintext of every runtime; TLS is
 * decrypted where the process uses a shared OpenSSL (uprobes on libssl).
 */
export const CAPTURE_RUNTIMES = [
  "any (syscall level, plaintext)",
  "TLS through a shared OpenSSL libssl",
];

/**
 * The `BeylaCapabilities` message for this agent: `enabled` and
 * `tracing_enabled` when the capture runs (every request becomes a span,
 * sampled; error spans are always kept), the protocols it decodes that the
 * configuration enables, and this agent's version.
 *
 * @example
 * ```ts
 * beylaCapabilities(config.beyla, probeCapabilities(), true);
 * // { enabled: true, version: "coral-agent/0.1.0", supported_protocols: ["http", "grpc", "sql", "redis"], … }
 * ```
 */
export function beylaCapabilities(
  config: BeylaConfig,
  report: Pick<CapabilityReport, "canLoad">,
  captureRunning: boolean,
): BeylaCapabilities {
  const running = config.enabled && report.canLoad && captureRunning;
  return {
    enabled: running,
    version: `coral-agent/${VERSION}`,
    supported_protocols: CAPTURE_PROTOCOLS.filter((name) =>
      config.protocols[name].enabled
    ),
    supported_runtimes: [...CAPTURE_RUNTIMES],
    tracing_enabled: running,
  };
}

/** One probed feature in `status`. */
export interface FeatureStatus {
  present: boolean;
  /** What was found: a release, a path, the effective capabilities, an errno. */
  detail: string;
}

/** The capture's own stats in `status`, when it runs. */
export interface CaptureStatus {
  running: boolean;
  /** Why it does not run (only when it does not). */
  reason?: string;
  /** Traced processes and their service names, by PID. */
  traced_pids?: { pid: number; service: string }[];
  /** Request/response pairs decoded in user space. */
  exchanges?: number;
  /** The kernel's counters (ffi/bpf/http.h). */
  kernel?: Record<string, number>;
  /** Records dropped in user space, by reason. */
  rejected?: Record<string, number>;
  ring_buffer?: {
    records: number;
    batches: number;
    handler_errors: number;
    wait_errors: number;
  };
  discovery?: { rules: number; scans: number; last_scan_ms: number } | null;
  /** The ring of stream-protocol chunks, as ring_buffer. */
  stream_ring_buffer?: CaptureStatus["ring_buffer"];
  /** Stream connections (HTTP/2, PostgreSQL, MySQL, Redis) with a parser now. */
  stream_connections?: number;
  tls?: {
    /** libssl files with SSL_read/SSL_write probes. */
    libraries: string[];
    /** Traced processes without a shared libssl: their TLS traffic is not seen. */
    not_decryptable: { pid: number; service: string }[];
    /** Probes that could not be attached. */
    failures: string[];
  };
}

/** The `capabilities` section of `status`. */
export interface CapabilitiesStatus {
  kernel: FeatureStatus;
  libbpf: FeatureStatus;
  btf: FeatureStatus;
  bpf_syscall: FeatureStatus;
  ring_buffer: FeatureStatus;
  tracepoints: FeatureStatus;
  uprobes: FeatureStatus;
  privileges: FeatureStatus;
  can_load: boolean;
  /** One line per absent feature, saying what it needs. */
  missing: string[];
  capture: CaptureStatus;
}

/** What the agent knows about its eBPF capture. */
export interface CaptureState {
  /** The running capture's stats; undefined when it does not run. */
  stats?: () => HttpCaptureStats;
  /** Why it does not run. */
  reason?: string;
}

/** The `capabilities` section from the probe taken at start and the capture's state now. */
export function capabilitiesStatus(
  report: CapabilityReport,
  capture: CaptureState,
): CapabilitiesStatus {
  const feature = (c: Capability): FeatureStatus => ({
    present: c.present,
    detail: c.detail,
  });
  return {
    kernel: feature(report.kernel),
    libbpf: feature(report.libbpf),
    btf: feature(report.btf),
    bpf_syscall: feature(report.bpfSyscall),
    ring_buffer: feature(report.ringBuffer),
    tracepoints: feature(report.tracepoints),
    uprobes: feature(report.uprobes),
    privileges: feature(report.privileges),
    can_load: report.canLoad,
    missing: [...report.missing],
    capture: capture.stats === undefined
      ? { running: false, reason: capture.reason ?? "not started" }
      : captureStatus(capture.stats()),
  };
}

function ringStatus(ring: RingBufferStats): CaptureStatus["ring_buffer"] {
  return {
    records: ring.records,
    batches: ring.batches,
    handler_errors: ring.handlerErrors,
    wait_errors: ring.waitErrors,
  };
}

function captureStatus(stats: HttpCaptureStats): CaptureStatus {
  return {
    running: true,
    traced_pids: Object.entries(stats.pids)
      .map(([pid, service]) => ({ pid: Number(pid), service }))
      .sort((a, b) => a.pid - b.pid),
    exchanges: stats.exchanges,
    kernel: { ...stats.kernel },
    rejected: { ...stats.rejected },
    ring_buffer: ringStatus(stats.ring),
    stream_ring_buffer: ringStatus(stats.streamRing),
    stream_connections: stats.streamConnections,
    tls: {
      libraries: [...stats.tls.libraries],
      not_decryptable: Object.entries(stats.tls.notDecryptable)
        .map(([pid, service]) => ({ pid: Number(pid), service }))
        .sort((a, b) => a.pid - b.pid),
      failures: [...stats.tls.failures],
    },
    discovery: stats.discovery === null ? null : {
      rules: stats.discovery.rules,
      scans: stats.discovery.scans,
      last_scan_ms: Math.round(stats.discovery.lastScanMs * 10) / 10,
    },
  };
}
