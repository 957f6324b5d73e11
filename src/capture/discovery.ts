/**
 * Which processes the eBPF capture traces: `beyla.discovery.services[]`
 * matched against /proc, rescanned on a timer. A rule matches a process
 * when every selector it sets matches; the first matching rule names it, by
 * its `name`, or when it has none by the process itself: OTEL_SERVICE_NAME
 * from /proc/PID/environ (the environment it was started with), else the
 * base name of /proc/PID/exe, else /proc/PID/comm.
 *
 * - `open_port`: the process holds a TCP socket listening on one of the
 *   ports (/proc/net/tcp and tcp6 joined to /proc/PID/fd by socket inode).
 *   Only sockets in the agent's network namespace are seen.
 * - `exe_path`: /proc/PID/exe. With `*` or `?` and no other regular
 *   expression syntax it is a glob (`*` and `?` stop at "/", `**` does not),
 *   matched against the whole path when it contains "/", else against the
 *   file name. Anything else is a regular expression searched in the path,
 *   as Beyla does ("python3" matches /usr/bin/python3.11).
 * - `k8s_*`: not available here; rules that use them are skipped (logged).
 *
 * The agent's own process is never selected.
 *
 * @module
 */
import type { BeylaConfig } from "../config/schema.ts";

type ServiceRule = BeylaConfig["discovery"]["services"][number];

/** One TCP socket in LISTEN state from /proc/net/tcp{,6}. */
export interface ListeningSocket {
  port: number;
  inode: number;
}

/** A compiled discovery rule. */
export interface DiscoveryRule {
  /** The service name; undefined: the process names itself (see {@linkcode processServiceName}). */
  name?: string;
  /** Ports the process must listen on (one of them), when set. */
  ports?: (port: number) => boolean;
  /** Executable path test, when set. */
  exe?: (path: string) => boolean;
}

/** What discovery needs to know of one process. */
export interface ProcessFacts {
  pid: number;
  /** /proc/PID/exe target; "" when unreadable (kernel threads, gone). */
  exe: string;
  /** Ports of listening sockets the process holds. */
  listeningPorts: ReadonlySet<number>;
}

/** A change of the traced set. */
export interface DiscoveryChange {
  /** New PIDs and their service names (also PIDs whose service changed). */
  added: Map<number, string>;
  /** PIDs no longer matched (or gone). */
  removed: number[];
}

const TCP_LISTEN = "0A";

/**
 * Listening sockets from the text of /proc/net/tcp or /proc/net/tcp6.
 * Malformed lines are skipped.
 */
export function parseProcNetTcp(text: string): ListeningSocket[] {
  const out: ListeningSocket[] = [];
  const lines = text.split("\n");
  for (let i = 1; i < lines.length; i++) {
    const fields = lines[i]!.trim().split(/\s+/);
    if (fields.length < 10 || fields[3] !== TCP_LISTEN) continue;
    const local = fields[1]!;
    const colon = local.lastIndexOf(":");
    const port = parseInt(local.slice(colon + 1), 16);
    const inode = Number(fields[9]);
    if (colon > 0 && port > 0 && Number.isSafeInteger(inode) && inode > 0) {
      out.push({ port, inode });
    }
  }
  return out;
}

/** "socket:[12345]" → 12345; undefined for anything else. */
export function socketInode(link: string): number | undefined {
  const m = /^socket:\[(\d+)\]$/.exec(link);
  return m ? Number(m[1]) : undefined;
}

/** A port test from `open_port`: 8080, "80,443", "8000-8999" or a mix. */
export function portMatcher(spec: number | string): (port: number) => boolean {
  const ranges = String(spec).split(",").map((item) => {
    const [low, high = low] = item.trim().split("-").map(Number);
    return [low!, high!] as const;
  });
  return (port) => ranges.some(([low, high]) => port >= low && port <= high);
}

const REGEX_ONLY = /[\\^$()[\]{}|+]|\.[*?+]/;

/** An `exe_path` test: a glob or a regular expression (see the module doc). */
export function exeMatcher(pattern: string): (path: string) => boolean {
  if (/[*?]/.test(pattern) && !REGEX_ONLY.test(pattern)) {
    let source = "";
    for (let i = 0; i < pattern.length; i++) {
      const c = pattern[i]!;
      if (c === "*" && pattern[i + 1] === "*") {
        source += ".*";
        i++;
      } else if (c === "*") source += "[^/]*";
      else if (c === "?") source += "[^/]";
      else source += c.replace(/[.\\^$()[\]{}|+*?]/g, "\\$&");
    }
    const glob = new RegExp(`^${source}$`);
    if (pattern.includes("/")) return (path) => glob.test(path);
    return (path) => glob.test(path.slice(path.lastIndexOf("/") + 1));
  }
  const regex = new RegExp(pattern);
  return (path) => regex.test(path);
}

/**
 * Compiles the configured rules. Rules that cannot match here (Kubernetes
 * selectors, or no selector at all) are left out and described in
 * `skipped`; an invalid regular expression throws, naming the key path.
 */
export function compileRules(
  services: readonly ServiceRule[],
): { rules: DiscoveryRule[]; skipped: string[] } {
  const rules: DiscoveryRule[] = [];
  const skipped: string[] = [];
  services.forEach((s, i) => {
    const at = `beyla.discovery.services[${i}]` +
      (s.name === undefined ? "" : ` (${s.name})`);
    if (
      s.k8s_namespace !== undefined || s.k8s_pod_name !== undefined ||
      s.k8s_pod_label !== undefined
    ) {
      skipped.push(
        `${at}: Kubernetes selectors are not available to this agent`,
      );
      return;
    }
    if (s.open_port === undefined && s.exe_path === undefined) {
      skipped.push(`${at}: no open_port or exe_path`);
      return;
    }
    const rule: DiscoveryRule = s.name === undefined ? {} : { name: s.name };
    if (s.open_port !== undefined) rule.ports = portMatcher(s.open_port);
    if (s.exe_path !== undefined) {
      try {
        rule.exe = exeMatcher(s.exe_path);
      } catch (cause) {
        throw new Error(
          `beyla.discovery.services[${i}].exe_path: invalid regular expression: ${
            cause instanceof Error ? cause.message : String(cause)
          }`,
          { cause },
        );
      }
    }
    rules.push(rule);
  });
  return { rules, skipped };
}

/** The first rule the process matches, or undefined. */
export function matchRule(
  rules: readonly DiscoveryRule[],
  p: ProcessFacts,
): DiscoveryRule | undefined {
  for (const rule of rules) {
    if (rule.exe !== undefined && (p.exe === "" || !rule.exe(p.exe))) continue;
    if (rule.ports !== undefined) {
      let any = false;
      for (const port of p.listeningPorts) {
        if (rule.ports(port)) {
          any = true;
          break;
        }
      }
      if (!any) continue;
    }
    return rule;
  }
  return undefined;
}

/**
 * The value of `key` in the text of /proc/PID/environ ("K=V" entries, each
 * ended by NUL); the first entry wins, as getenv(3) does. Entries without
 * "=" are skipped.
 */
export function environValue(
  environ: Uint8Array | string,
  key: string,
): string | undefined {
  const text = typeof environ === "string"
    ? environ
    : new TextDecoder().decode(environ);
  const prefix = `${key}=`;
  for (const entry of text.split("\0")) {
    if (entry.startsWith(prefix)) return entry.slice(prefix.length);
  }
  return undefined;
}

/**
 * The file name of a /proc/PID/exe target: "/usr/bin/python3.11" →
 * "python3.11"; the kernel's " (deleted)" suffix (binary replaced since the
 * start) is dropped. "" for "".
 */
export function exeBaseName(exe: string): string {
  const path = exe.endsWith(" (deleted)") ? exe.slice(0, -10) : exe;
  return path.slice(path.lastIndexOf("/") + 1);
}

/** What a process says about itself, read from /proc/PID. */
export interface ProcessIdentity {
  /** /proc/PID/environ; undefined when unreadable (another user's process). */
  environ?: Uint8Array | string;
  /** /proc/PID/exe target; "" or undefined when unreadable. */
  exe?: string;
  /** /proc/PID/comm (may end with a newline); undefined when unreadable. */
  comm?: string;
}

/**
 * The service name of a process matched by a rule without `name`:
 * OTEL_SERVICE_NAME from its environment (blank counts as unset), else the
 * executable's base name, else its comm. Undefined when none is known (the
 * process is gone).
 *
 * @example
 * ```ts
 * processServiceName({ environ: "OTEL_SERVICE_NAME=checkout\0", exe: "/usr/bin/python3.11" }); // "checkout"
 * processServiceName({ environ: "HOME=/root\0", exe: "/usr/bin/python3.11" }); // "python3.11"
 * ```
 */
export function processServiceName(p: ProcessIdentity): string | undefined {
  const fromEnv = p.environ === undefined
    ? undefined
    : environValue(p.environ, "OTEL_SERVICE_NAME")?.trim();
  if (fromEnv) return fromEnv;
  const exe = exeBaseName(p.exe ?? "");
  if (exe !== "") return exe;
  const comm = p.comm?.trim();
  return comm || undefined;
}

/** The difference between the traced set and a fresh scan. */
export function diffPids(
  current: ReadonlyMap<number, string>,
  next: ReadonlyMap<number, string>,
): DiscoveryChange {
  const added = new Map<number, string>();
  const removed: number[] = [];
  for (const [pid, name] of next) {
    if (current.get(pid) !== name) added.set(pid, name);
  }
  for (const pid of current.keys()) if (!next.has(pid)) removed.push(pid);
  return { added, removed };
}

/** Options of {@linkcode Discovery}. */
export interface DiscoveryOptions {
  services: readonly ServiceRule[];
  /** Called after each scan that changed the set (and after the first scan). */
  onChange: (change: DiscoveryChange) => void;
  /** Rescan period; default 2000 ms. */
  intervalMs?: number;
  /** Never selected; default Deno.pid. */
  selfPid?: number;
  /** Where proc is mounted; default "/proc" (tests point it at fixtures). */
  procRoot?: string;
  /** Told once about rules that cannot match here. */
  warn?: (message: string) => void;
}

/**
 * Scans /proc now and every `intervalMs`, and reports changes of the set of
 * matching processes to `onChange`.
 *
 * @example
 * ```ts
 * const discovery = new Discovery({
 *   services: [{ name: "checkout", open_port: 8080 }],
 *   onChange: ({ added, removed }) => { … },
 * });
 * await discovery.start();
 * // …
 * await discovery.stop();
 * ```
 */
export class Discovery {
  readonly #rules: DiscoveryRule[];
  readonly #options: DiscoveryOptions;
  readonly #procRoot: string;
  readonly #selfPid: number;
  #pids = new Map<number, string>();
  #timer: ReturnType<typeof setTimeout> | undefined;
  #scanning: Promise<DiscoveryChange> | undefined;
  #stopped = false;
  #scans = 0;
  #lastScanMs = 0;
  /** Listening ports of each process, as last read from its fds. */
  #portsByPid = new Map<number, ReadonlySet<number>>();
  /** The listening sockets (inode:port) the cache above was read against. */
  #listeningKey = "";

  constructor(options: DiscoveryOptions) {
    this.#options = options;
    this.#procRoot = options.procRoot ?? "/proc";
    this.#selfPid = options.selfPid ?? Deno.pid;
    const { rules, skipped } = compileRules(options.services);
    this.#rules = rules;
    for (const line of skipped) options.warn?.(`discovery: skipping ${line}`);
  }

  /** The traced PIDs and their service names. */
  get pids(): ReadonlyMap<number, string> {
    return this.#pids;
  }

  /** Scans so far, and how long the last one took (ms). */
  get stats(): { scans: number; lastScanMs: number; rules: number } {
    return {
      scans: this.#scans,
      lastScanMs: this.#lastScanMs,
      rules: this.#rules.length,
    };
  }

  /** Scans once, then on the timer. */
  async start(): Promise<void> {
    await this.scan();
    if (this.#stopped || this.#timer !== undefined) return;
    const tick = async () => {
      try {
        await this.scan();
      } catch (error) {
        this.#options.warn?.(`discovery: scan failed: ${String(error)}`);
      }
      if (!this.#stopped) {
        this.#timer = setTimeout(tick, this.#options.intervalMs ?? 2000);
      }
    };
    this.#timer = setTimeout(tick, this.#options.intervalMs ?? 2000);
  }

  /** Scans /proc now (joining a scan in progress) and applies the change. */
  scan(): Promise<DiscoveryChange> {
    this.#scanning ??= this.#scan().finally(() => {
      this.#scanning = undefined;
    });
    return this.#scanning;
  }

  /** Stops the timer and waits for a scan in progress. Safe twice. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#scanning?.catch(() => {});
  }

  async #scan(): Promise<DiscoveryChange> {
    const began = performance.now();
    const next = this.#rules.length === 0
      ? new Map<number, string>()
      : await this.#match();
    const change = diffPids(this.#pids, next);
    this.#pids = next;
    this.#scans++;
    this.#lastScanMs = performance.now() - began;
    if (
      !this.#stopped &&
      (this.#scans === 1 || change.added.size > 0 || change.removed.length > 0)
    ) {
      this.#options.onChange(change);
    }
    return change;
  }

  async #match(): Promise<Map<number, string>> {
    const root = this.#procRoot;
    const needPorts = this.#rules.some((r) => r.ports !== undefined);
    const listening = new Map<number, number>(); // inode → port
    if (needPorts) {
      for (const file of ["net/tcp", "net/tcp6"]) {
        const text = readText(`${root}/${file}`);
        if (text === undefined) continue;
        for (const s of parseProcNetTcp(text)) {
          if (this.#rules.some((r) => r.ports?.(s.port))) {
            listening.set(s.inode, s.port);
          }
        }
      }
    }
    // A process's fds are read again only when the listening sockets changed
    // (a server started, stopped or restarted), for processes not seen
    // before, and on every FULL_RESCAN_EVERY-th scan (pid reuse and the like).
    const listeningKey = [...listening].map(([i, p]) => `${i}:${p}`).sort()
      .join(",");
    if (
      listeningKey !== this.#listeningKey ||
      this.#scans % FULL_RESCAN_EVERY === 0
    ) {
      this.#portsByPid = new Map();
      this.#listeningKey = listeningKey;
    }
    const previousPorts = this.#portsByPid;
    const portsByPid = new Map<number, ReadonlySet<number>>();
    const needExe = this.#rules.some((r) => r.exe !== undefined);
    const found = new Map<number, string>();
    let visited = 0;
    for (const pid of listPids(root)) {
      if (pid === this.#selfPid) continue;
      // Sync reads are the cheapest; yield now and then so timers keep time.
      if (++visited % 64 === 0) await new Promise((r) => setTimeout(r, 0));
      const exe = needExe ? readLink(`${root}/${pid}/exe`) ?? "" : "";
      const candidates = this.#rules.filter((r) =>
        r.exe === undefined || (exe !== "" && r.exe(exe))
      );
      if (candidates.length === 0) continue;
      let ports = NO_PORTS;
      if (candidates.some((r) => r.ports !== undefined) && listening.size > 0) {
        ports = previousPorts.get(pid) ??
          listeningPorts(`${root}/${pid}/fd`, listening);
        portsByPid.set(pid, ports);
      }
      const rule = matchRule(candidates, { pid, exe, listeningPorts: ports });
      if (rule === undefined) continue;
      const name = rule.name ?? this.#processName(pid, exe);
      if (name !== undefined) found.set(pid, name);
    }
    this.#portsByPid = portsByPid;
    return found;
  }

  /** Read at every scan, not cached: an exec(2) changes all three. */
  #processName(pid: number, exe: string): string | undefined {
    const dir = `${this.#procRoot}/${pid}`;
    return processServiceName({
      environ: readBytes(`${dir}/environ`),
      exe: exe || readLink(`${dir}/exe`),
      comm: readText(`${dir}/comm`),
    });
  }
}

/** Scans that read every process's fds even when no listening socket changed. */
const FULL_RESCAN_EVERY = 10;
const NO_PORTS: ReadonlySet<number> = new Set();

function listPids(root: string): number[] {
  const pids: number[] = [];
  try {
    for (const entry of Deno.readDirSync(root)) {
      const pid = Number(entry.name);
      if (Number.isInteger(pid) && pid > 0) pids.push(pid);
    }
  } catch {
    // no proc: nothing to trace
  }
  return pids.sort((a, b) => a - b);
}

/** Ports of the listening sockets among a process's fds. */
function listeningPorts(
  fdDir: string,
  listening: ReadonlyMap<number, number>,
): ReadonlySet<number> {
  const ports = new Set<number>();
  let entries: Iterable<Deno.DirEntry>;
  try {
    entries = Deno.readDirSync(fdDir);
    for (const entry of entries) {
      const link = readLink(`${fdDir}/${entry.name}`);
      if (link === undefined) continue;
      const inode = socketInode(link);
      const port = inode === undefined ? undefined : listening.get(inode);
      if (port !== undefined) ports.add(port);
    }
  } catch {
    // gone, or not ours to read
  }
  return ports;
}

function readLink(path: string): string | undefined {
  try {
    return Deno.readLinkSync(path);
  } catch {
    return undefined;
  }
}

function readBytes(path: string): Uint8Array | undefined {
  try {
    return Deno.readFileSync(path);
  } catch {
    return undefined;
  }
}

function readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}
