/**
 * Names the children the kernel traces because their parent is traced (the
 * fork rule in ffi/bpf/http.bpf.c): a PID the capture does not know is
 * looked up through the fork records the kernel sent, else through its
 * ancestors in /proc, until a traced one is found.
 *
 * @module
 */

/** Ancestors looked at before giving up. */
const MAX_DEPTH = 8;
/** Fork records kept (child → parent) before the table starts over. */
const MAX_ADOPTED = 100_000;

/** The parent PID from the text of /proc/PID/stat; undefined when unreadable. */
export function parentPid(stat: string): number | undefined {
  // "pid (comm) state ppid …": comm may hold spaces and parentheses.
  const close = stat.lastIndexOf(")");
  if (close === -1) return undefined;
  const ppid = Number(stat.slice(close + 2).split(" ")[1]);
  return Number.isInteger(ppid) && ppid > 0 ? ppid : undefined;
}

/** Options of {@linkcode ServiceOfProcess}. */
export interface ServiceOfProcessOptions {
  /** The service of a PID discovery or the caller chose. */
  known(pid: number): string | undefined;
  /** Where proc is mounted; default "/proc". */
  procRoot?: string;
}

/**
 * The service of a PID: its own, else the nearest traced ancestor's.
 * Answers for unknown PIDs are cached until {@linkcode clear}.
 */
export class ServiceOfProcess {
  readonly #known: (pid: number) => string | undefined;
  readonly #procRoot: string;
  #inherited = new Map<number, string | null>();
  /** Children the kernel reported (fork records): child → parent. */
  #parents = new Map<number, number>();

  constructor(options: ServiceOfProcessOptions) {
    this.#known = options.known;
    this.#procRoot = options.procRoot ?? "/proc";
  }

  /**
   * Records that `child` was forked by `parent` (the kernel says so before
   * any record of the child): no /proc lookup is needed, and a child gone
   * before its records are read is still named.
   */
  adopt(child: number, parent: number): void {
    if (this.#parents.size >= MAX_ADOPTED) this.#parents.clear();
    this.#parents.set(child, parent);
    this.#inherited.delete(child);
  }

  get(pid: number): string | undefined {
    const own = this.#known(pid);
    if (own !== undefined) return own;
    let parent = this.#parents.get(pid);
    for (let depth = 0; parent !== undefined && depth < MAX_DEPTH; depth++) {
      const name = this.#known(parent);
      if (name !== undefined) return name;
      parent = this.#parents.get(parent);
    }
    const cached = this.#inherited.get(pid);
    if (cached !== undefined) return cached ?? undefined;
    const found = this.#fromAncestors(pid);
    this.#inherited.set(pid, found ?? null);
    return found;
  }

  /** Forgets inherited names (PIDs are reused; call it now and then). */
  clear(): void {
    this.#inherited = new Map();
  }

  #fromAncestors(pid: number): string | undefined {
    let current = pid;
    for (let depth = 0; depth < MAX_DEPTH; depth++) {
      let stat: string;
      try {
        stat = Deno.readTextFileSync(`${this.#procRoot}/${current}/stat`);
      } catch {
        return undefined; // gone
      }
      const parent = parentPid(stat);
      if (parent === undefined || parent === current) return undefined;
      const name = this.#known(parent);
      if (name !== undefined) return name;
      current = parent;
    }
    return undefined;
  }
}
