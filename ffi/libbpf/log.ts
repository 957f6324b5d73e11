import { decodeCString, nativeSymbols, pinnedBytes } from "./symbols.ts";

/** libbpf's print levels (enum libbpf_print_level), least verbose first. */
export type LibbpfLogLevel = "warn" | "info" | "debug";

/** Receives one libbpf message, trailing newline removed. */
export type LibbpfLogger = (level: LibbpfLogLevel, message: string) => void;

/** Options of {@linkcode setLibbpfLogger}. */
export interface LibbpfLogOptions {
  /** Most verbose level forwarded; quieter messages are not even formatted. Default "info". */
  level?: LibbpfLogLevel;
}

const LEVELS: readonly LibbpfLogLevel[] = ["warn", "info", "debug"];
const PRINT_FN = {
  parameters: ["i32", "pointer", "pointer"],
  result: "i32",
} as const;
/** sizeof(va_list) on x86_64: one struct __va_list_tag. */
const VA_LIST_SIZE = 24;

let current: Deno.UnsafeCallback<typeof PRINT_FN> | undefined;
let libbpfDefault: Deno.PointerValue = null;
let buffer = pinnedBytes(4096);
const vaSnapshot = new Uint8Array(VA_LIST_SIZE);

/**
 * Routes libbpf's own messages (load progress, verifier logs, warnings) to
 * `logger`, replacing the previous logger. `null` restores libbpf's default
 * (stderr). libbpf has one print function per process, so this is global.
 *
 * @example
 * ```ts
 * setLibbpfLogger((level, message) => log.debug("libbpf", { level, message }));
 * ```
 */
export function setLibbpfLogger(
  logger: LibbpfLogger | null,
  options: LibbpfLogOptions = {},
): void {
  const { bpf } = nativeSymbols();
  const previous = current;
  if (logger === null) {
    if (previous === undefined) return;
    bpf.libbpf_set_print(libbpfDefault);
    current = undefined;
  } else {
    const maxLevel = LEVELS.indexOf(options.level ?? "info");
    current = new Deno.UnsafeCallback(PRINT_FN, (level, fmt, args) => {
      if (level > maxLevel || fmt === null) return 0;
      const message = format(fmt, args).replace(/\n$/, "");
      try {
        logger(LEVELS[level] ?? "debug", message);
      } catch {
        // A logger must not throw into libbpf.
      }
      return message.length;
    });
    const before = bpf.libbpf_set_print(current.pointer);
    if (previous === undefined) libbpfDefault = before;
  }
  previous?.close();
}

/** Formats printf-style `fmt` with the va_list `args` through libc vsnprintf. */
function format(fmt: Deno.PointerObject, args: Deno.PointerValue): string {
  const { libc } = nativeSymbols();
  // vsnprintf consumes the va_list; on x86_64 a copy of its 24 bytes is a
  // va_copy, so a message longer than the buffer can be formatted again.
  const retry = args !== null && Deno.build.arch === "x86_64";
  if (retry) new Deno.UnsafePointerView(args).copyInto(vaSnapshot);
  const needed = libc.vsnprintf(buffer, BigInt(buffer.length), fmt, args);
  if (needed >= buffer.length && retry) {
    buffer = pinnedBytes(needed + 1);
    new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(args, VA_LIST_SIZE))
      .set(vaSnapshot);
    libc.vsnprintf(buffer, BigInt(buffer.length), fmt, args);
  }
  return decodeCString(buffer);
}
