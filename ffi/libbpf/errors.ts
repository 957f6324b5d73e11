import { nativeSymbols, readCString } from "./symbols.ts";

/** Linux errno names for the codes libbpf and the bpf(2) syscall return. */
const ERRNO_NAMES: Readonly<Record<number, string>> = {
  1: "EPERM",
  2: "ENOENT",
  3: "ESRCH",
  4: "EINTR",
  5: "EIO",
  6: "ENXIO",
  7: "E2BIG",
  8: "ENOEXEC",
  9: "EBADF",
  11: "EAGAIN",
  12: "ENOMEM",
  13: "EACCES",
  14: "EFAULT",
  16: "EBUSY",
  17: "EEXIST",
  19: "ENODEV",
  22: "EINVAL",
  24: "EMFILE",
  28: "ENOSPC",
  34: "ERANGE",
  38: "ENOSYS",
  61: "ENODATA",
  71: "EPROTO",
  75: "EOVERFLOW",
  84: "EILSEQ",
  95: "EOPNOTSUPP",
  524: "ENOTSUPP",
  4001: "LIBBPF_ERRNO__LIBELF",
  4002: "LIBBPF_ERRNO__FORMAT",
  4003: "LIBBPF_ERRNO__KVERSION",
  4004: "LIBBPF_ERRNO__ENDIAN",
  4005: "LIBBPF_ERRNO__INTERNAL",
  4006: "LIBBPF_ERRNO__RELOC",
  4007: "LIBBPF_ERRNO__LOAD",
  4008: "LIBBPF_ERRNO__VERIFY",
  4009: "LIBBPF_ERRNO__PROG2BIG",
  4010: "LIBBPF_ERRNO__KVER",
  4011: "LIBBPF_ERRNO__PROGTYPE",
  4012: "LIBBPF_ERRNO__WRNGPID",
  4013: "LIBBPF_ERRNO__INVSEQ",
  4014: "LIBBPF_ERRNO__NLPARSE",
};

/** The symbolic name of an errno value, e.g. 1 → "EPERM"; "E<n>" when unknown. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `E${errno}`;
}

/** libc's description of an errno value, e.g. 1 → "Operation not permitted". */
export function errnoText(errno: number): string {
  if (errno === 524) return "Operation not supported by the kernel"; // kernel-internal ENOTSUPP
  try {
    return readCString(nativeSymbols().libc.strerror(errno));
  } catch {
    return `errno ${errno}`;
  }
}

/**
 * The calling thread's errno. Call it right after the synchronous call whose
 * failure it explains; nothing else may run in between.
 */
export function lastErrno(): number {
  const ptr = nativeSymbols().libc.__errno_location();
  return ptr === null ? 0 : new Deno.UnsafePointerView(ptr).getInt32();
}

/** Options of {@linkcode LibbpfError}. */
export interface LibbpfErrorOptions {
  /** What the call was about: a program, map, object or tracepoint name. */
  subject?: string;
  cause?: unknown;
}

/**
 * A failed libbpf (or bpf syscall) call: names the call, what it was about,
 * and the errno.
 *
 * @example
 * ```ts
 * // "bpf_object__load(smoke) failed: EPERM (Operation not permitted)"
 * err instanceof LibbpfError && err.code === "EPERM";
 * ```
 */
export class LibbpfError extends Error {
  override readonly name = "LibbpfError";
  /** The C function that failed, e.g. "bpf_object__load". */
  readonly call: string;
  /** Positive errno value. */
  readonly errno: number;
  /** Symbolic errno, e.g. "EPERM". */
  readonly code: string;
  readonly subject: string | undefined;

  constructor(call: string, errno: number, options: LibbpfErrorOptions = {}) {
    const positive = Math.abs(errno);
    const code = errnoName(positive);
    const what = options.subject === undefined
      ? call
      : `${call}(${options.subject})`;
    super(`${what} failed: ${code} (${errnoText(positive)})`, {
      cause: options.cause,
    });
    this.call = call;
    this.errno = positive;
    this.code = code;
    this.subject = options.subject;
  }

  /** For a call that returned NULL: reads errno now. */
  static fromErrno(call: string, options?: LibbpfErrorOptions): LibbpfError {
    return new LibbpfError(call, lastErrno() || 22, options);
  }
}

/** Throws a {@linkcode LibbpfError} when an int-returning call returned a negative errno. */
export function check(
  call: string,
  result: number,
  options?: LibbpfErrorOptions,
): number {
  if (result < 0) throw new LibbpfError(call, -result, options);
  return result;
}

/** Throws a {@linkcode LibbpfError} (errno read now) when a pointer-returning call returned NULL. */
export function checkPointer(
  call: string,
  ptr: Deno.PointerValue,
  options?: LibbpfErrorOptions,
): Deno.PointerObject {
  if (ptr === null) throw LibbpfError.fromErrno(call, options);
  return ptr;
}
