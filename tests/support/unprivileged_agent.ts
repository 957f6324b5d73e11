/**
 * Runs the real agent (`main.ts run`) as the unprivileged user `nobody`
 * holding exactly a given set of capabilities, for
 * tests/least_capabilities_test.ts: `setpriv` makes them the process's
 * inheritable, ambient and bounding sets, so nothing else can be gained;
 * `prlimit` sets its RLIMIT_MEMLOCK.
 *
 * `nobody` must read the program: the checkout and the Deno binary are used
 * in place when it can, else copied to a world-readable temporary directory
 * (a clone under /root, say). Its DENO_DIR (transpiled modules; npm
 * packages come from node_modules/) and the agent's storage and cache
 * directories are temporary directories it owns.
 *
 * @module
 */
import { stringify } from "yaml";
import {
  type CommandText,
  outputText,
  StderrText,
  stopChild,
  untilHealthy,
} from "./served_process.ts";
import type { Cap } from "./least_capabilities.ts";

const REPO = new URL("../../", import.meta.url).pathname;
/** What `main.ts` needs of the checkout; the rest (.git, dist/, data/) is not copied. */
const NOT_COPIED = new Set([".git", "dist", "data", "tests"]);

/** The user the agent runs as (Debian's `nobody` and `nogroup`). */
export const NOBODY = { uid: 65534, gid: 65534 } as const;

/** setpriv arguments that become `nobody` with exactly `caps`, then run what follows "--". */
export function setprivArgs(caps: readonly Cap[]): string[] {
  const list = ["-all", ...caps.map((c) => `+${c}`)].join(",");
  return [
    `--reuid=${NOBODY.uid}`,
    `--regid=${NOBODY.gid}`,
    "--clear-groups",
    `--inh-caps=${list}`,
    `--ambient-caps=${list}`,
    `--bounding-set=${list}`,
    "--",
  ];
}

/** Output of a command run as `nobody`. */
export type AsUserResult = CommandText;

/** Runs `command` as `nobody` with exactly `caps` (and `env` only). */
export function runAsNobody(
  caps: readonly Cap[],
  command: string[],
  env: Record<string, string> = { PATH: "/usr/bin:/bin" },
): Promise<AsUserResult> {
  return outputText(
    new Deno.Command("setpriv", {
      args: [...setprivArgs(caps), ...command],
      env,
      clearEnv: true,
      stdout: "piped",
      stderr: "piped",
    }),
  );
}

/** A Deno and a main.ts that `nobody` can run, and a DENO_DIR it owns. */
export interface Runtime extends Disposable {
  deno: string;
  main: string;
  denoDir: string;
  /** True when the checkout had to be copied. */
  staged: boolean;
}

/** Creates a directory owned by `nobody`. */
export async function nobodyDir(path: string): Promise<string> {
  await Deno.mkdir(path, { recursive: true });
  await Deno.chown(path, NOBODY.uid, NOBODY.gid);
  return path;
}

/**
 * Finds or makes a runtime `nobody` can use: the checkout in place when
 * `nobody` can run `main.ts version` from it, else a copy.
 */
export async function prepareRuntime(): Promise<Runtime> {
  const root = await Deno.makeTempDir({ prefix: "coral-nobody-runtime-" });
  await Deno.chmod(root, 0o755);
  const denoDir = await nobodyDir(`${root}/deno-dir`);
  const home = await nobodyDir(`${root}/home`);
  const dispose = () => Deno.removeSync(root, { recursive: true });
  const version = (deno: string, main: string) =>
    runAsNobody([], [deno, "run", "-A", "--cached-only", main, "version"], {
      PATH: "/usr/bin:/bin",
      HOME: home,
      DENO_DIR: denoDir,
      NO_COLOR: "1",
    });
  let deno = Deno.execPath();
  let main = `${REPO}main.ts`;
  let staged = false;
  if ((await version(deno, main)).code !== 0) {
    staged = true;
    const app = `${root}/app`;
    await Deno.mkdir(app);
    const entries: string[] = [];
    for await (const entry of Deno.readDir(REPO)) {
      if (!NOT_COPIED.has(entry.name)) entries.push(`${REPO}${entry.name}`);
    }
    await run("cp", ["-a", ...entries, `${app}/`]);
    await run("chmod", ["-R", "a+rX", app]);
    main = `${app}/main.ts`;
    if ((await runAsNobody([], [deno, "--version"])).code !== 0) {
      await Deno.copyFile(deno, `${root}/deno`);
      await Deno.chmod(`${root}/deno`, 0o755);
      deno = `${root}/deno`;
    }
    const check = await version(deno, main);
    if (check.code !== 0) {
      dispose();
      throw new Error(
        `nobody cannot run ${main} even from a world-readable copy: ${check.stderr}`,
      );
    }
  }
  return {
    deno,
    main,
    denoDir,
    staged,
    [Symbol.dispose]: dispose,
  };
}

async function run(program: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(program, { args, stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(
      `${program} ${args.join(" ")}: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
}

/** The credentials of a process, from /proc/PID/status. */
export interface ProcessCredentials {
  uid: number;
  /** CapEff, CapPrm, CapInh, CapAmb and CapBnd as bit masks. */
  caps: Record<"eff" | "prm" | "inh" | "amb" | "bnd", bigint>;
  /** Soft limit of locked memory, bytes ("unlimited" as Infinity). */
  memlock: number;
}

/** Bit numbers of the capabilities in {@linkcode Cap}. */
const CAP_BITS: Record<Cap, number> = {
  dac_read_search: 2,
  sys_ptrace: 19,
  sys_admin: 21,
  perfmon: 38,
  bpf: 39,
};

/** The bit mask of `caps`. */
export function capMask(caps: readonly Cap[]): bigint {
  return caps.reduce((mask, c) => mask | (1n << BigInt(CAP_BITS[c])), 0n);
}

/** Reads uid, capability sets and RLIMIT_MEMLOCK of a running process. */
export function processCredentials(pid: number): ProcessCredentials {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const field = (name: string) => {
    const m = new RegExp(`^${name}:\\s*(\\S+)`, "m").exec(status);
    if (!m?.[1]) throw new Error(`/proc/${pid}/status has no ${name}`);
    return m[1];
  };
  const mask = (name: string) => BigInt(`0x${field(name)}`);
  const limits = Deno.readTextFileSync(`/proc/${pid}/limits`);
  const memlock = /^Max locked memory\s+(\S+)/m.exec(limits)?.[1] ?? "";
  return {
    uid: Number(field("Uid")),
    caps: {
      eff: mask("CapEff"),
      prm: mask("CapPrm"),
      inh: mask("CapInh"),
      amb: mask("CapAmb"),
      bnd: mask("CapBnd"),
    },
    memlock: memlock === "unlimited" ? Infinity : Number(memlock),
  };
}

/**
 * The file-system protections of examples/systemd/coral-agent.service,
 * approximated in a private mount namespace (systemd is not PID 1 where the
 * tests run): every mount read-only (ProtectSystem=strict,
 * ProtectKernelTunables, ProtectControlGroups) but the paths given before
 * "--" (StateDirectory, CacheDirectory); /proc/kallsyms, /proc/kcore and
 * /usr/lib/modules inaccessible (ProtectKernelTunables,
 * ProtectKernelModules); /home, /root and /run/user empty and closed
 * (ProtectHome=yes); /dev with only null, zero, full, random, urandom and
 * tty, read-only (PrivateDevices=yes). The seccomp filters these settings
 * also install are not reproduced.
 *
 * Arguments: a scratch directory, the writable paths, "--", the command.
 */
const SANDBOX_SCRIPT = `set -eu
scratch=$1; shift
writable=()
while [ "$1" != "--" ]; do writable+=("$1"); shift; done
shift
mkdir -p "$scratch/dev" "$scratch/closed-dir"
touch "$scratch/closed-file"
chmod 000 "$scratch/closed-dir" "$scratch/closed-file"
mount -n -t tmpfs -o mode=755,nosuid tmpfs "$scratch/dev"
for node in null zero full random urandom tty; do
  touch "$scratch/dev/$node"
  mount -n --bind "/dev/$node" "$scratch/dev/$node"
done
mkdir "$scratch/dev/pts" "$scratch/dev/shm"
ln -s pts/ptmx "$scratch/dev/ptmx"
for target in $(findmnt -rno TARGET | sort -u); do
  mount -n -o remount,bind,ro "$target" 2>/dev/null || true
done
mount -n --move "$scratch/dev" /dev
for path in /proc/kallsyms /proc/kcore; do
  if [ -e "$path" ]; then mount -n --bind "$scratch/closed-file" "$path"; fi
done
if [ -d /usr/lib/modules ]; then
  mount -n --bind "$scratch/closed-dir" /usr/lib/modules
fi
for home in /home /root /run/user; do
  if [ -d "$home" ]; then mount -n -t tmpfs -o ro,mode=000 tmpfs "$home"; fi
done
for path in "\${writable[@]}"; do
  mount -n --bind "$path" "$path"
  mount -n -o remount,bind,rw "$path"
done
exec "$@"
`;

/** A mount of a process's mount namespace, from /proc/PID/mountinfo. */
export interface MountEntry {
  mountPoint: string;
  /** Per-mount options: "ro" or "rw", then the others. */
  options: string[];
  fsType: string;
}

/** The mounts a process sees (the last mount on a path wins). */
export function processMounts(pid: number): Map<string, MountEntry> {
  const mounts = new Map<string, MountEntry>();
  for (
    const line of Deno.readTextFileSync(`/proc/${pid}/mountinfo`).split("\n")
  ) {
    const [before, after] = line.split(" - ");
    if (before === undefined || after === undefined) continue;
    const fields = before.split(" ");
    const mountPoint = fields[4]?.replace(/\\040/g, " ");
    if (mountPoint === undefined) continue;
    mounts.set(mountPoint, {
      mountPoint,
      options: (fields[5] ?? "").split(","),
      fsType: after.split(" ")[0] ?? "",
    });
  }
  return mounts;
}

/** A discovery rule of `beyla.discovery.services`. */
export interface ServiceRule {
  name: string;
  open_port: string | number;
}

/** The parts of `GET /api/v1/status` the test reads. */
export interface AgentStatus {
  capabilities: {
    privileges: { present: boolean; detail: string };
    tracepoints: { present: boolean; detail: string };
    can_load: boolean;
    missing: string[];
    capture: {
      running: boolean;
      reason?: string;
      traced_pids?: { pid: number; service: string }[];
      exchanges?: number;
      kernel?: Record<string, number>;
      tls?: {
        libraries: string[];
        not_decryptable: { pid: number; service: string }[];
        failures: string[];
      };
    };
  };
}

/** The agent as `nobody`, on a free API port and a temporary directory. */
export class UnprivilegedAgent implements AsyncDisposable {
  #child: Deno.ChildProcess | undefined;
  #stderr: StderrText | undefined;

  private constructor(
    readonly dir: string,
    readonly apiPort: number,
  ) {}

  get apiUrl(): string {
    return `http://127.0.0.1:${this.apiPort}`;
  }
  /** The DuckDB file (owned by nobody). */
  get dbPath(): string {
    return `${this.dir}/data/agent.duckdb`;
  }
  /** What the agent wrote to stderr so far. */
  get log(): string {
    return this.#stderr?.text ?? "";
  }
  get pid(): number {
    if (!this.#child) throw new Error("agent is not running");
    return this.#child.pid;
  }

  /**
   * Starts the agent with eBPF capture of `services`, as `nobody` with
   * exactly `caps`, and resolves once its API answers.
   */
  static async start(
    runtime: Runtime,
    options: {
      caps: readonly Cap[];
      services: ServiceRule[];
      port: number;
      /** RLIMIT_MEMLOCK (soft and hard) of the agent, bytes. */
      memlockBytes: number;
      /** Inside the approximated file-system protections of the systemd unit. */
      sandbox?: boolean;
    },
  ): Promise<UnprivilegedAgent> {
    const dir = await Deno.makeTempDir({ prefix: "coral-nobody-agent-" });
    await Deno.chmod(dir, 0o755);
    await nobodyDir(`${dir}/data`);
    await nobodyDir(`${dir}/cache`);
    const config = {
      agent: { id: "nobody-agent", api_listen: `127.0.0.1:${options.port}` },
      storage: { path: `${dir}/data/agent.duckdb` },
      otlp: { enabled: false },
      beyla: { enabled: true, discovery: { services: options.services } },
    };
    await Deno.writeTextFile(`${dir}/agent.yaml`, stringify(config));
    const agent = new UnprivilegedAgent(dir, options.port);
    const sandbox = options.sandbox
      ? [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "bash",
        "-c",
        SANDBOX_SCRIPT,
        "coral-sandbox",
        await Deno.makeTempDir({ dir, prefix: "sandbox-" }),
        `${dir}/data`,
        `${dir}/cache`,
        runtime.denoDir,
        "--",
      ]
      : [];
    const [program, ...args] = [
      ...sandbox,
      "prlimit",
      `--memlock=${options.memlockBytes}:${options.memlockBytes}`,
      "setpriv",
      ...setprivArgs(options.caps),
      runtime.deno,
      "run",
      "-A",
      "--cached-only",
      runtime.main,
      "run",
      "--config",
      `${dir}/agent.yaml`,
    ];
    const child = new Deno.Command(program!, {
      args,
      env: {
        PATH: "/usr/bin:/bin",
        HOME: `${dir}/data`,
        DENO_DIR: runtime.denoDir,
        CORAL_CACHE_DIR: `${dir}/cache`,
        NO_COLOR: "1",
      },
      clearEnv: true,
      cwd: `${dir}/data`,
      stdout: "null",
      stderr: "piped",
    }).spawn();
    agent.#child = child;
    agent.#stderr = new StderrText(child.stderr);
    try {
      await untilHealthy(child, agent.apiUrl, agent.#stderr, "agent as nobody");
    } catch (error) {
      await agent.stop("SIGKILL");
      await agent.#removeDir();
      throw error;
    }
    return agent;
  }

  /** `GET /api/v1/status`. */
  async status(): Promise<AgentStatus> {
    const response = await fetch(`${this.apiUrl}/api/v1/status`);
    if (!response.ok) {
      throw new Error(`status: ${response.status} ${await response.text()}`);
    }
    return await response.json() as AgentStatus;
  }

  /** Stops with `signal` and waits; returns the exit code. Safe twice. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<number> {
    const child = this.#child;
    if (!child) return 0;
    this.#child = undefined;
    return await stopChild(child, this.#stderr, signal);
  }

  #removeDir(): Promise<void> {
    return Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop("SIGKILL");
    await this.#removeDir();
  }
}
