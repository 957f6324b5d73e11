/**
 * What the benchmarks read from /proc and bpftool: CPU time of processes
 * (own, reaped children, everyone else's), idle detection, and how many of
 * our BPF programs are loaded.
 *
 * @module
 */

const CLOCK_TICKS = Number(
  new TextDecoder().decode(
    new Deno.Command("getconf", { args: ["CLK_TCK"] }).outputSync().stdout,
  ).trim(),
) || 100;

/** Prefix of the names of the capture's BPF programs (ffi/bpf/http.bpf.c). */
const PROGRAM_PREFIX = "coral_";

export interface ProcStat {
  ppid: number;
  /** utime + stime of all threads, in ms. */
  cpuMs: number;
  /** cutime + cstime: children it has reaped, in ms. */
  childrenMs: number;
}

/** /proc/PID/stat; the fields after "(comm)", as comm may hold spaces. */
export function procStat(pid: number | string): ProcStat | undefined {
  let stat;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return undefined; // gone
  }
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // f[0] is field 3 (state): ppid is field 4, utime…cstime fields 14–17.
  const ms = (i: number) => Number(f[i]) * 1000 / CLOCK_TICKS;
  return {
    ppid: Number(f[1]),
    cpuMs: ms(11) + ms(12),
    childrenMs: ms(13) + ms(14),
  };
}

export const cpuMs = (pid: number): number => procStat(pid)?.cpuMs ?? 0;

export function allProcesses(): Map<number, ProcStat> {
  const out = new Map<number, ProcStat>();
  for (const entry of Deno.readDirSync("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    const stat = procStat(entry.name);
    if (stat !== undefined) out.set(Number(entry.name), stat);
  }
  return out;
}

/**
 * CPU used by processes other than ours (this bench and its clients, the
 * server, the agent) and kernel threads, between two
 * {@linkcode allProcesses} snapshots. A process that ended meanwhile counts
 * through the parent that reaped it, less what it had used before.
 */
export function othersCpuMs(
  before: Map<number, ProcStat>,
  after: Map<number, ProcStat>,
  ours: Set<number>,
): number {
  const skip = (pid: number, stat: ProcStat) =>
    ours.has(pid) || ours.has(stat.ppid) || pid === 2 || stat.ppid === 2;
  const total = (stat: ProcStat) => stat.cpuMs + stat.childrenMs;
  let sum = 0;
  for (const [pid, stat] of after) {
    if (skip(pid, stat)) continue;
    const then = before.get(pid);
    sum += Math.max(0, total(stat) - (then ? total(then) : 0));
  }
  for (const [pid, stat] of before) {
    if (!after.has(pid) && !skip(pid, stat)) sum -= total(stat);
  }
  return Math.max(0, sum);
}

/** Loaded BPF programs named like the capture's; undefined without bpftool. */
export function coralPrograms(): number | undefined {
  try {
    const out = new Deno.Command("bpftool", { args: ["-j", "prog", "list"] })
      .outputSync();
    if (!out.success) return undefined;
    const programs = JSON.parse(new TextDecoder().decode(out.stdout)) as {
      name?: string;
    }[];
    return programs.filter((p) => p.name?.startsWith(PROGRAM_PREFIX)).length;
  } catch {
    return undefined;
  }
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((r) => setTimeout(r, ms));

/**
 * Waits until the process uses at most 8% of a core over two 250 ms steps in
 * a row (at most 30 s); returns the CPU ms it used meanwhile.
 */
export async function untilIdle(pid: number): Promise<number> {
  const first = cpuMs(pid);
  let last = first, quietSteps = 0;
  const deadline = performance.now() + 30_000;
  while (quietSteps < 2 && performance.now() < deadline) {
    await sleep(250);
    const now = cpuMs(pid);
    quietSteps = now - last <= 20 ? quietSteps + 1 : 0;
    last = now;
  }
  return last - first;
}
