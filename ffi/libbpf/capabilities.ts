import { errnoName, errnoText } from "./errors.ts";
import { cString, nativeSymbols } from "./symbols.ts";

/** One feature: whether it is there, what was found, and if not, why and what it needs. */
export interface Capability {
  readonly present: boolean;
  /** What was found, e.g. a release string, a path, the effective capabilities. */
  readonly detail: string;
  /** When absent: one line saying what is missing, what it needs and from which kernel. */
  readonly missing?: string;
}

/** Linux capability bits of CapEff that BPF cares about. */
export interface BpfCapabilities {
  /** CAP_BPF (39), Linux 5.8+. */
  bpf: boolean;
  /** CAP_PERFMON (38), Linux 5.8+: perf events, so tracepoints and uprobes. */
  perfmon: boolean;
  /** CAP_SYS_ADMIN (21): implies both on any kernel. */
  sysAdmin: boolean;
}

/** What {@linkcode probeCapabilities} found. */
export interface CapabilityReport {
  /** uname release; present when Linux 5.8+ (BPF ring buffer, CAP_BPF). */
  readonly kernel: Capability & { readonly release: string };
  readonly libbpf: Capability;
  readonly privileges: Capability & { readonly caps: BpfCapabilities };
  /** bpf(2) can create a map. */
  readonly bpfSyscall: Capability;
  /** Kernel BTF for CO-RE at /sys/kernel/btf/vmlinux. */
  readonly btf: Capability;
  /** BPF_MAP_TYPE_RINGBUF can be created. */
  readonly ringBuffer: Capability;
  /** tracefs mounted with syscall tracepoints, and the tracepoint program type loads. */
  readonly tracepoints: Capability;
  /** The uprobe perf event source. */
  readonly uprobes: Capability;
  /** Everything above is present: the capture can load and attach. */
  readonly canLoad: boolean;
  /** One line per absent feature, in the order above. */
  readonly missing: readonly string[];
}

/** Paths the probe reads; tests may point them elsewhere. */
export interface ProbePaths {
  procStatus: string;
  btf: string;
  tracefs: readonly string[];
  uprobe: string;
}

const DEFAULT_PATHS: ProbePaths = {
  procStatus: "/proc/self/status",
  btf: "/sys/kernel/btf/vmlinux",
  tracefs: ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"],
  uprobe: "/sys/bus/event_source/devices/uprobe",
};

const BPF_MAP_TYPE_ARRAY = 2;
const BPF_MAP_TYPE_RINGBUF = 27;
const BPF_PROG_TYPE_TRACEPOINT = 5;
const MIN_KERNEL: readonly [number, number] = [5, 8];

/**
 * Finds out what this machine allows, without throwing: kernel version, BTF,
 * privileges, the bpf syscall, ring buffers, tracepoints and uprobes. Creating
 * the two probe maps is the only thing it does in the kernel (they are closed
 * at once).
 *
 * @example
 * ```ts
 * const report = probeCapabilities();
 * if (!report.canLoad) for (const line of report.missing) console.error(line);
 * ```
 */
export function probeCapabilities(
  paths: Partial<ProbePaths> = {},
): CapabilityReport {
  const p = { ...DEFAULT_PATHS, ...paths };
  const kernel = probeKernel();
  const libbpf = probeLibbpf();
  const privileges = probePrivileges(p.procStatus);
  const bpfSyscall = libbpf.present
    ? probeMap("bpf syscall", BPF_MAP_TYPE_ARRAY)
    : cannotCheck("bpf syscall");
  const ringBuffer = libbpf.present
    ? probeMap(
      "BPF ring buffer",
      BPF_MAP_TYPE_RINGBUF,
      "needs Linux 5.8+ (BPF_MAP_TYPE_RINGBUF)",
    )
    : cannotCheck("BPF ring buffer");
  const btf = exists(p.btf) ? { present: true, detail: p.btf } : absent(
    p.btf,
    `kernel BTF: ${p.btf} missing: needs CONFIG_DEBUG_INFO_BTF=y (Linux 5.4+) for CO-RE`,
  );
  const tracepoints = probeTracepoints(p.tracefs, libbpf.present);
  const uprobes = exists(p.uprobe)
    ? { present: true, detail: p.uprobe }
    : absent(
      p.uprobe,
      `uprobes: ${p.uprobe} missing: needs CONFIG_UPROBE_EVENTS=y (Linux 4.17+ for perf-event uprobes)`,
    );
  const all = [
    kernel,
    libbpf,
    privileges,
    bpfSyscall,
    btf,
    ringBuffer,
    tracepoints,
    uprobes,
  ];
  const missing = all.flatMap((
    c,
  ) => (c.missing === undefined ? [] : [c.missing]));
  return {
    kernel,
    libbpf,
    privileges,
    bpfSyscall,
    btf,
    ringBuffer,
    tracepoints,
    uprobes,
    canLoad: missing.length === 0,
    missing,
  };
}

/** Parses "6.18.44-fc-v782" → [6, 18, 44]; undefined when it is not a version. */
export function parseKernelRelease(
  release: string,
): [number, number, number] | undefined {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?/.exec(release);
  if (!m) return undefined;
  return [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
}

/** Reads the BPF-related bits of the CapEff line of /proc/<pid>/status. */
export function parseCapEff(status: string): BpfCapabilities | undefined {
  const m = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(status);
  if (!m?.[1]) return undefined;
  const bits = BigInt(`0x${m[1]}`);
  const has = (bit: bigint) => ((bits >> bit) & 1n) === 1n;
  return { sysAdmin: has(21n), perfmon: has(38n), bpf: has(39n) };
}

function probeKernel(): CapabilityReport["kernel"] {
  let release = "";
  try {
    release = Deno.osRelease();
  } catch {
    release = readText("/proc/sys/kernel/osrelease")?.trim() ?? "";
  }
  const version = parseKernelRelease(release);
  if (version === undefined) {
    return {
      release,
      present: false,
      detail: release,
      missing: `kernel: cannot read the release (${release || "no uname"})`,
    };
  }
  const [major, minor] = version;
  const [needMajor, needMinor] = MIN_KERNEL;
  if (major > needMajor || (major === needMajor && minor >= needMinor)) {
    return { release, present: true, detail: release };
  }
  return {
    release,
    present: false,
    detail: release,
    missing:
      `kernel ${release}: needs Linux ${needMajor}.${needMinor}+ (BPF ring buffer, CAP_BPF)`,
  };
}

function probeLibbpf(): Capability {
  try {
    return { present: true, detail: nativeSymbols().libbpf };
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    return absent(detail, `libbpf: ${detail}`);
  }
}

function probePrivileges(procStatus: string): CapabilityReport["privileges"] {
  const caps = parseCapEff(readText(procStatus) ?? "");
  if (caps === undefined) {
    const none = { bpf: false, perfmon: false, sysAdmin: false };
    return {
      caps: none,
      ...absent("unknown", `privileges: cannot read CapEff from ${procStatus}`),
    };
  }
  const names = [
    caps.bpf && "CAP_BPF",
    caps.perfmon && "CAP_PERFMON",
    caps.sysAdmin && "CAP_SYS_ADMIN",
  ].filter(Boolean);
  const detail = names.join(",") || "none";
  if ((caps.bpf && caps.perfmon) || caps.sysAdmin) {
    return { caps, present: true, detail };
  }
  return {
    caps,
    ...absent(
      detail,
      `privileges: have ${detail}: needs CAP_BPF and CAP_PERFMON (Linux 5.8+) or CAP_SYS_ADMIN; run as root or grant them`,
    ),
  };
}

function probeMap(what: string, type: number, need?: string): Capability {
  try {
    const { bpf, libc } = nativeSymbols();
    const fd = type === BPF_MAP_TYPE_RINGBUF
      ? bpf.bpf_map_create(type, cString("coral_probe"), 0, 0, 4096, null)
      : bpf.bpf_map_create(type, cString("coral_probe"), 4, 4, 1, null);
    if (fd >= 0) {
      libc.close(fd);
      return { present: true, detail: "map created" };
    }
    const code = errnoName(-fd);
    const reason = `${code} (${errnoText(-fd)})`;
    const hint = code === "EPERM" || code === "EACCES"
      ? "needs CAP_BPF (Linux 5.8+) or CAP_SYS_ADMIN"
      : code === "ENOSYS"
      ? "needs CONFIG_BPF_SYSCALL=y"
      : need ?? "kernel refused";
    return absent(reason, `${what}: bpf_map_create failed: ${reason}: ${hint}`);
  } catch (error) {
    const detail = error instanceof Error ? error.message : String(error);
    return absent(detail, `${what}: ${detail}`);
  }
}

function probeTracepoints(
  roots: readonly string[],
  canProbeType: boolean,
): Capability {
  const root = roots.find((r) => exists(`${r}/events`));
  const closed = roots.find((r) => denied(`${r}/events`));
  if (root === undefined && closed !== undefined) {
    return absent(
      "tracefs not readable",
      `tracepoints: ${closed} is mounted but not searchable by this user: needs CAP_DAC_READ_SEARCH (or root)`,
    );
  }
  if (root === undefined) {
    return absent(
      "no tracefs",
      `tracepoints: tracefs not mounted (no ${
        roots.map((r) => `${r}/events`).join(" or ")
      }): mount -t tracefs nodev /sys/kernel/tracing`,
    );
  }
  const write = `${root}/events/syscalls/sys_enter_write`;
  if (!exists(write)) {
    return absent(
      root,
      `tracepoints: ${write} missing: needs CONFIG_FTRACE_SYSCALLS=y`,
    );
  }
  if (canProbeType) {
    try {
      const supported = nativeSymbols().bpf.libbpf_probe_bpf_prog_type(
        BPF_PROG_TYPE_TRACEPOINT,
        null,
      );
      if (supported === 0) {
        return absent(
          root,
          "tracepoints: the kernel does not load BPF_PROG_TYPE_TRACEPOINT programs for this process (needs Linux 4.7+ and CAP_PERFMON or CAP_SYS_ADMIN)",
        );
      }
    } catch {
      // Probed through libbpf, which libbpf's own entry reports.
    }
  }
  return { present: true, detail: `${root}/events` };
}

function cannotCheck(what: string): Capability {
  return absent("not checked", `${what}: not checked without libbpf`);
}

function absent(detail: string, missing: string): Capability {
  return { present: false, detail, missing };
}

/** `path` exists but this process may not look (EACCES). */
function denied(path: string): boolean {
  try {
    Deno.statSync(path);
    return false;
  } catch (error) {
    return error instanceof Deno.errors.PermissionDenied;
  }
}

function exists(path: string): boolean {
  try {
    Deno.statSync(path);
    return true;
  } catch {
    return false;
  }
}

function readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}
