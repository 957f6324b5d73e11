/**
 * The kernel stamps events with bpf_ktime_get_ns(), CLOCK_MONOTONIC; records
 * want Unix time. `measureClockOffset` finds the difference by catching the
 * moment Date.now() ticks to the next millisecond between two monotonic
 * readings, so the offset is good to about a microsecond rather than to the
 * millisecond Date.now() gives.
 *
 * @module
 */

import { nativeSymbols } from "../../ffi/libbpf/symbols.ts";

const CLOCK_MONOTONIC = 1;

const timespec = new BigInt64Array(2);
const timespecBytes = new Uint8Array(timespec.buffer);

/** CLOCK_MONOTONIC in nanoseconds, the clock of bpf_ktime_get_ns(). */
export function monotonicNs(): bigint {
  const { libc } = nativeSymbols();
  if (libc.clock_gettime(CLOCK_MONOTONIC, timespecBytes) !== 0) {
    throw new Error("clock_gettime(CLOCK_MONOTONIC) failed");
  }
  return timespec[0]! * 1_000_000_000n + timespec[1]!;
}

/** Unix µs = monotonic µs + offsetUs. */
export interface ClockOffset {
  offsetUs: number;
  /** Width of the window the tick was caught in (µs): the offset's error bound. */
  uncertaintyUs: number;
}

/**
 * Measures Unix time minus CLOCK_MONOTONIC, in µs. Spins for at most about a
 * millisecond (until Date.now() ticks).
 */
export function measureClockOffset(): ClockOffset {
  let before = monotonicNs();
  let ms = Date.now();
  const deadline = before + 5_000_000n;
  for (;;) {
    const mono = monotonicNs();
    const now = Date.now();
    if (now !== ms || mono > deadline) {
      // The tick to `now` happened between the readings `before` and `mono`.
      const tickNs = (before + mono) / 2n;
      return {
        offsetUs: now * 1000 - Number(tickNs / 1000n),
        uncertaintyUs: Number(mono - before) / 1000,
      };
    }
    before = mono;
    ms = now;
  }
}
