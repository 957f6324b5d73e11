/**
 * TLS plaintext through uprobes on OpenSSL (ffi/bpf/http.bpf.c, "TLS"
 * section): for every traced process, the libssl it has mapped is found in
 * /proc/PID/maps and SSL_read, SSL_read_ex, SSL_write and SSL_write_ex of
 * that file get an entry and a return probe, once per library file (the
 * probes fire in every process using it; the kernel's PID filter decides).
 * A process without a shared libssl (static OpenSSL, BoringSSL, Go's TLS,
 * or no TLS at all) is listed as not decryptable: its TLS traffic, if any,
 * is not seen.
 *
 * @module
 */
import type { BpfObject } from "../../ffi/libbpf/mod.ts";

/** One probe: a program of the http object on a libssl function. */
interface SslProbe {
  program: string;
  func: string;
  retprobe: boolean;
}

/**
 * The programs and where they go: data at SSL_read/SSL_write (and the _ex
 * forms, OpenSSL 1.1.1+); each SSL *'s socket from SSL_set_fd or from the
 * syscalls of SSL_do_handshake.
 */
export const SSL_PROBES: readonly SslProbe[] = [
  { program: "coral_http_ssl_set_fd", func: "SSL_set_fd", retprobe: false },
  ...[
    ["handshake", "SSL_do_handshake"],
    ["read", "SSL_read"],
    ["read_ex", "SSL_read_ex"],
    ["write", "SSL_write"],
    ["write_ex", "SSL_write_ex"],
  ].flatMap(([name, func]) => [
    { program: `coral_http_ssl_${name}_enter`, func: func!, retprobe: false },
    { program: `coral_http_ssl_${name}_exit`, func: func!, retprobe: true },
  ]),
];

/** Program names that only attach to a library: attachAll() must skip them. */
export const SSL_PROGRAMS: readonly string[] = SSL_PROBES.map((p) => p.program);

const LIBSSL = /\/libssl\.so(\.[0-9]+)*$/;

/**
 * The libssl a process has mapped, from the text of /proc/PID/maps: its
 * path as that process sees it; undefined when none.
 */
export function mappedLibssl(maps: string): string | undefined {
  for (const line of maps.split("\n")) {
    const path = line.slice(line.indexOf("/"));
    if (line.includes("/") && LIBSSL.test(path)) return path;
  }
  return undefined;
}

/** What {@linkcode TlsProbes.stats} reports. */
export interface TlsStats {
  /** libssl files with probes (as the first process that used them sees them). */
  libraries: string[];
  /** Traced processes without a shared libssl: their TLS is not decrypted. */
  notDecryptable: Record<number, string>;
  /** Probes that could not be attached, "function in file: reason". */
  failures: string[];
}

/** Options of {@linkcode TlsProbes}. */
export interface TlsProbesOptions {
  object: BpfObject;
  /** Where proc is mounted; default "/proc". */
  procRoot?: string;
  warn?: (message: string) => void;
}

export class TlsProbes {
  readonly #object: BpfObject;
  readonly #procRoot: string;
  readonly #warn: (message: string) => void;
  /** "dev:inode" of each library file with probes → its path. */
  readonly #libraries = new Map<string, string>();
  readonly #notDecryptable = new Map<number, string>();
  readonly #failures: string[] = [];

  constructor(options: TlsProbesOptions) {
    this.#object = options.object;
    this.#procRoot = options.procRoot ?? "/proc";
    this.#warn = options.warn ?? (() => {});
  }

  /** Probes the libssl of a newly traced process (once per library file). */
  addProcess(pid: number, serviceName: string): void {
    let maps: string;
    try {
      maps = Deno.readTextFileSync(`${this.#procRoot}/${pid}/maps`);
    } catch {
      return; // gone already
    }
    const library = mappedLibssl(maps);
    if (library === undefined) {
      this.#notDecryptable.set(pid, serviceName);
      return;
    }
    this.#notDecryptable.delete(pid);
    // Through the process's root: right inside containers too.
    const path = `${this.#procRoot}/${pid}/root${library}`;
    let key: string;
    try {
      const info = Deno.statSync(path);
      key = `${info.dev}:${info.ino}`;
    } catch {
      return;
    }
    if (this.#libraries.has(key)) return;
    this.#libraries.set(key, library);
    let attached = 0;
    for (const probe of SSL_PROBES) {
      try {
        this.#object.attachUprobe(probe.program, {
          binaryPath: path,
          funcName: probe.func,
          retprobe: probe.retprobe,
        });
        attached++;
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        this.#failures.push(`${probe.func} in ${library}: ${reason}`);
      }
    }
    if (attached === 0) {
      const denied = this.#failures.some((f) => /EACCES|EPERM/.test(f));
      this.#warn(
        `tls: no probe attached to ${library}${
          denied
            ? " (permission denied: uprobes need CAP_SYS_ADMIN on Linux 6.16+ and on kernels with that change backported)"
            : ""
        }`,
      );
    }
  }

  /** Forgets a process that is no longer traced. */
  removeProcess(pid: number): void {
    this.#notDecryptable.delete(pid);
  }

  get stats(): TlsStats {
    return {
      libraries: [...this.#libraries.values()],
      notDecryptable: Object.fromEntries(this.#notDecryptable),
      failures: [...this.#failures],
    };
  }
}
