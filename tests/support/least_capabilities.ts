/**
 * The capability sets tests/least_capabilities_test.ts proves on the real
 * kernel, shared with the test of the deployment examples (systemd unit,
 * docker-compose file, DaemonSet), which must grant exactly these.
 *
 * Names are setpriv's (`bpf`); {@linkcode capName} gives systemd's and
 * Kubernetes' spelling (`CAP_BPF`, `BPF`).
 *
 * @module
 */

/** A Linux capability by setpriv's name. */
export type Cap =
  | "bpf"
  | "perfmon"
  | "sys_ptrace"
  | "dac_read_search"
  | "sys_admin";

/**
 * The least set for plaintext capture (syscall tracepoints, ring buffers,
 * discovery of other users' processes): what the examples grant.
 */
export const LEAST: readonly Cap[] = [
  "bpf",
  "perfmon",
  "sys_ptrace",
  "dac_read_search",
];

/**
 * The least set that also decrypts TLS: uprobes (perf_event_open of the
 * uprobe PMU) need CAP_SYS_ADMIN since Linux's 2025 fix "perf: Revert to
 * requiring CAP_SYS_ADMIN for uprobes" (6.16, backported to stable kernels);
 * CAP_SYS_ADMIN covers what CAP_BPF and CAP_PERFMON allow.
 */
export const LEAST_WITH_TLS: readonly Cap[] = [
  "sys_admin",
  "sys_ptrace",
  "dac_read_search",
];

/** "sys_ptrace" → "CAP_SYS_PTRACE". */
export function capName(cap: Cap): string {
  return `CAP_${cap.toUpperCase()}`;
}
