/**
 * TypeScript view of ffi/bpf/smoke.h. Kept in sync by hand:
 * smoke_layout_test.ts checks every offset and size here against the BTF of
 * the compiled smoke object, so a change to smoke.h that is not mirrored here
 * fails the tests.
 *
 * @module
 */

/** struct smoke_write_event: one write(2) entry by a process in the PID filter. */
export interface SmokeWriteEvent {
  /** tgid of the writer (the user-space PID). */
  pid: number;
  /** write(2) fd argument. */
  fd: number;
  /** write(2) count argument. */
  count: bigint;
  /** bpf_ktime_get_ns() at sys_enter_write (CLOCK_MONOTONIC). */
  tsNs: bigint;
}

/** Layout of struct smoke_write_event: size, and each C field's offset and size. */
export const SMOKE_WRITE_EVENT = {
  size: 24,
  fields: {
    pid: { offset: 0, size: 4 },
    fd: { offset: 4, size: 4 },
    count: { offset: 8, size: 8 },
    ts_ns: { offset: 16, size: 8 },
  },
} as const;

/** Decodes one record of the "smoke_events" ring buffer (little-endian). */
export function decodeSmokeWriteEvent(view: DataView): SmokeWriteEvent {
  const { size, fields } = SMOKE_WRITE_EVENT;
  if (view.byteLength < size) {
    throw new RangeError(
      `smoke_write_event: ${view.byteLength} bytes, want ${size}`,
    );
  }
  return {
    pid: view.getUint32(fields.pid.offset, true),
    fd: view.getInt32(fields.fd.offset, true),
    count: view.getBigUint64(fields.count.offset, true),
    tsNs: view.getBigUint64(fields.ts_ns.offset, true),
  };
}

/** struct smoke_config: read-only settings, the `smoke_config` global in .rodata. */
export interface SmokeConfig {
  /** Emit only writes with count >= minCount. */
  minCount: bigint;
}

/** Layout of struct smoke_config, and where the `smoke_config` global sits in .rodata. */
export const SMOKE_CONFIG = {
  rodataOffset: 0,
  size: 8,
  fields: {
    min_count: { offset: 0, size: 8 },
  },
} as const;

/** Writes `config` into the .rodata bytes (see BpfObject.editRodata). */
export function writeSmokeConfig(rodata: DataView, config: SmokeConfig): void {
  const base = SMOKE_CONFIG.rodataOffset;
  rodata.setBigUint64(
    base + SMOKE_CONFIG.fields.min_count.offset,
    config.minCount,
    true,
  );
}

/** Indexes of the "smoke_counters" array map (enum smoke_counter). */
export const SMOKE_COUNTER = {
  dropped: 0,
  uprobeHits: 1,
} as const;

/** Names of the object's programs and maps. */
export const SMOKE = {
  object: "smoke",
  programs: { write: "coral_smoke_write", uprobe: "coral_smoke_uprobe" },
  maps: {
    pids: "smoke_pids",
    events: "smoke_events",
    counters: "smoke_counters",
  },
} as const;
