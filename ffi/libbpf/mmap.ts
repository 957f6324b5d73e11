/**
 * mmap(2) of BPF map fds (ring buffers, global data), shared by the
 * wrappers that read kernel memory directly from JS.
 *
 * @module
 */
import { LibbpfError } from "./errors.ts";
import { nativeSymbols } from "./symbols.ts";

export const PAGE_SIZE = 4096;
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
const MAP_SHARED = 0x1;
/** (void *)-1 as mmap returns it on failure. */
const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

/** One mapping: unmap it with {@linkcode unmapShared}. */
export interface SharedMapping {
  memory: Deno.PointerObject;
  length: number;
}

/**
 * Maps `length` bytes of the map at `fd` from `offset` (MAP_SHARED).
 *
 * @throws LibbpfError "mmap(<subject>) failed: <errno>"
 */
export function mapShared(
  fd: number,
  options: { length: number; offset?: number; prot: number; subject: string },
): SharedMapping {
  const memory = nativeSymbols().libc.mmap(
    null,
    BigInt(options.length),
    options.prot,
    MAP_SHARED,
    fd,
    BigInt(options.offset ?? 0),
  );
  if (memory === null || Deno.UnsafePointer.value(memory) === MAP_FAILED) {
    throw LibbpfError.fromErrno("mmap", { subject: options.subject });
  }
  return { memory, length: options.length };
}

export function unmapShared(mapping: SharedMapping): void {
  nativeSymbols().libc.munmap(mapping.memory, BigInt(mapping.length));
}
