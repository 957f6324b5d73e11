import { check } from "./errors.ts";
import { nativeSymbols } from "./symbols.ts";

/** bpf_map_update_elem flags: BPF_ANY, BPF_NOEXIST, BPF_EXIST. */
export type UpdateMode = "any" | "noexist" | "exist";

const UPDATE_FLAGS: Readonly<Record<UpdateMode, bigint>> = {
  any: 0n,
  noexist: 1n,
  exist: 2n,
};
const ENOENT = 2;

/** Sizes of a map's keys and values, in bytes. */
export interface MapShape {
  keySize: number;
  valueSize: number;
}

/**
 * A loaded BPF map, by file descriptor, with byte keys and values of fixed
 * sizes. The descriptor belongs to its BpfObject: do not use the map after the
 * object is closed.
 *
 * @example
 * ```ts
 * const pids = object.map("smoke_pids");
 * pids.update(u32(child.pid), Uint8Array.of(1));
 * ```
 */
export class BpfMap {
  constructor(
    readonly fd: number,
    readonly name: string,
    readonly shape: MapShape,
  ) {}

  /** Inserts or replaces `key` → `value` (mode "any"), or only inserts / only replaces. */
  update(key: Uint8Array, value: Uint8Array, mode: UpdateMode = "any"): void {
    this.#checkSize("key", key, this.shape.keySize);
    this.#checkSize("value", value, this.shape.valueSize);
    const result = nativeSymbols().bpf.bpf_map_update_elem(
      this.fd,
      key,
      value,
      UPDATE_FLAGS[mode],
    );
    check("bpf_map_update_elem", result, { subject: this.name });
  }

  /** Removes `key`; false when it was absent. */
  delete(key: Uint8Array): boolean {
    this.#checkSize("key", key, this.shape.keySize);
    const result = nativeSymbols().bpf.bpf_map_delete_elem(this.fd, key);
    if (result === -ENOENT) return false;
    check("bpf_map_delete_elem", result, { subject: this.name });
    return true;
  }

  /** The value for `key` (a copy), or undefined when absent. */
  lookup(key: Uint8Array): Uint8Array | undefined {
    this.#checkSize("key", key, this.shape.keySize);
    const value = new Uint8Array(this.shape.valueSize);
    const result = nativeSymbols().bpf.bpf_map_lookup_elem(this.fd, key, value);
    if (result === -ENOENT) return undefined;
    check("bpf_map_lookup_elem", result, { subject: this.name });
    return value;
  }

  #checkSize(what: string, bytes: Uint8Array, size: number): void {
    if (bytes.byteLength !== size) {
      throw new RangeError(
        `Map ${this.name}: ${what} is ${bytes.byteLength} bytes, the map's are ${size}`,
      );
    }
  }
}

/** A little-endian u32, the usual key of PID and index maps. */
export function u32(n: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, n, true);
  return bytes;
}

/** Reads a little-endian u64 value (e.g. an array map counter). */
export function readU64(bytes: Uint8Array): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
    .getBigUint64(0, true);
}
