/**
 * The kernel's PID filter as user space sees it: `http_pid_bits` in the http
 * object's .bss (ffi/bpf/http.bpf.c), one bit per tgid, mapped into this process.
 * The programs read it on every syscall and clear a bit when a traced
 * process exits; user space sets and clears bits here. Both sides change
 * single bits atomically, so neither loses the other's update.
 *
 * @module
 */

/** Bits per 32-bit word; the kernel's u64 words are two of these (little-endian). */
const BITS = 32;

export class PidBitmap {
  readonly #words: Uint32Array;

  /** `memory`: the bitmap's bytes (a whole number of u64 words). */
  constructor(memory: ArrayBuffer, byteOffset = 0, byteLength?: number) {
    this.#words = new Uint32Array(
      memory,
      byteOffset,
      (byteLength ?? memory.byteLength - byteOffset) / 4,
    );
  }

  /** The largest PID that fits, plus one. */
  get capacity(): number {
    return this.#words.length * BITS;
  }

  /** Sets the bit of `pid`; false when the PID is beyond the bitmap. */
  add(pid: number): boolean {
    if (!this.#fits(pid)) return false;
    Atomics.or(this.#words, pid >>> 5, 1 << (pid & 31));
    return true;
  }

  remove(pid: number): void {
    if (!this.#fits(pid)) return;
    Atomics.and(this.#words, pid >>> 5, ~(1 << (pid & 31)));
  }

  has(pid: number): boolean {
    return this.#fits(pid) &&
      (Atomics.load(this.#words, pid >>> 5) & (1 << (pid & 31))) !== 0;
  }

  #fits(pid: number): boolean {
    return Number.isInteger(pid) && pid >= 0 && pid < this.capacity;
  }
}
