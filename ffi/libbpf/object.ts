import { check, checkPointer } from "./errors.ts";
import {
  attachAuto,
  attachTracepoint,
  attachUprobe,
  BpfLink,
  type BpfProgram,
  type Tracepoint,
  type UprobeOptions,
} from "./links.ts";
import { BpfMap } from "./maps.ts";
import {
  mapShared,
  PAGE_SIZE,
  PROT_READ,
  PROT_WRITE,
  type SharedMapping,
  unmapShared,
} from "./mmap.ts";
import { cString, nativeSymbols, pinnedBytes, readCString } from "./symbols.ts";

/** sizeof(struct bpf_object_open_opts) in libbpf 1.1; object_name is at offset 8. */
const OPEN_OPTS_SIZE = 80;

/** Where a BpfObject is in its life: open → loaded → closed. */
export type BpfObjectState = "open" | "loaded" | "closed";

/** Options of {@linkcode BpfObject.attachAll}. */
export interface AttachAllOptions {
  /** Programs to leave alone, e.g. uprobes that need a target (see attachUprobe). */
  skip?: readonly string[];
}

/**
 * A BPF ELF object, in libbpf-bootstrap's order: open (touches nothing in the
 * kernel), set map sizes and read-only settings, load, attach, then read maps
 * and ring buffers. `close()` tears down in reverse: the links it attached,
 * then programs and maps. Safe to close twice.
 *
 * @example
 * ```ts
 * using object = BpfObject.openMem(await embeddedObject("smoke"), "smoke");
 * object.setMapMaxEntries("smoke_pids", 4096);
 * object.editRodata((data) => data.setBigUint64(0, 1n, true));
 * object.load();
 * object.attachAll({ skip: ["coral_smoke_uprobe"] });
 * const pids = object.map("smoke_pids");
 * ```
 */
export class BpfObject implements Disposable {
  #ptr: Deno.PointerObject | null;
  #state: BpfObjectState = "open";
  /** libbpf parses the ELF in place until load: keep the bytes alive until then. */
  #elf: Uint8Array | null;
  readonly #links: BpfLink[] = [];
  /** Global data mapped by globalData(), unmapped by close(). */
  readonly #mappings: SharedMapping[] = [];

  private constructor(
    ptr: Deno.PointerObject,
    elf: Uint8Array,
    readonly name: string,
  ) {
    this.#ptr = ptr;
    this.#elf = elf;
  }

  /** Parses an object from memory (bpf_object__open_mem); nothing reaches the kernel yet. */
  static openMem(bytes: Uint8Array, name: string): BpfObject {
    const elf = pinnedBytes(bytes.byteLength);
    elf.set(bytes);
    const objectName = cString(name);
    const opts = pinnedBytes(OPEN_OPTS_SIZE);
    const view = new DataView(opts.buffer);
    view.setBigUint64(0, BigInt(OPEN_OPTS_SIZE), true); // sz
    view.setBigUint64(
      8,
      BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(objectName))),
      true,
    );
    const ptr = checkPointer(
      "bpf_object__open_mem",
      nativeSymbols().bpf.bpf_object__open_mem(
        elf,
        BigInt(elf.byteLength),
        opts,
      ),
      { subject: name },
    );
    objectName.fill(0); // referenced until after the call; libbpf copied it
    return new BpfObject(ptr, elf, name);
  }

  get state(): BpfObjectState {
    return this.#state;
  }

  /** Resizes a map before load, e.g. from config (bpf_map__set_max_entries). */
  setMapMaxEntries(map: string, maxEntries: number): void {
    const ptr = this.#mapPtr(map, "setMapMaxEntries", "open");
    check(
      "bpf_map__set_max_entries",
      nativeSymbols().bpf.bpf_map__set_max_entries(ptr, maxEntries),
      {
        subject: `${map}, ${maxEntries}`,
      },
    );
  }

  /**
   * Edits read-only settings (`const volatile` globals) before load: `edit`
   * gets the section's initial bytes (offsets as in the object's BTF DATASEC),
   * which then become the map's value (bpf_map__set_initial_value).
   */
  editRodata(
    edit: (data: DataView) => void,
    options: { section?: string } = {},
  ): void {
    const section = options.section ?? ".rodata";
    const map = this.#mapPtr(section, "editRodata", "open");
    const { bpf } = nativeSymbols();
    const sizeOut = pinnedBytes(8);
    const initial = checkPointer(
      "bpf_map__initial_value",
      bpf.bpf_map__initial_value(map, sizeOut),
      {
        subject: section,
      },
    );
    const size = Number(new DataView(sizeOut.buffer).getBigUint64(0, true));
    const data = pinnedBytes(size);
    new Deno.UnsafePointerView(initial).copyInto(data);
    edit(new DataView(data.buffer));
    check(
      "bpf_map__set_initial_value",
      bpf.bpf_map__set_initial_value(map, data, BigInt(size)),
      {
        subject: section,
      },
    );
  }

  /**
   * The memory of a global data section (".bss", ".data") after load, mapped
   * into this process from the map (libbpf 1.1 does that only for
   * skeletons): reads and writes here are the programs' own variables (use
   * Atomics where the programs write too). Valid until close(), which
   * unmaps it: drop every view of it before closing.
   */
  globalData(section = ".bss"): ArrayBuffer {
    const map = this.#mapPtr(section, "globalData", "loaded");
    const { bpf } = nativeSymbols();
    const size = bpf.bpf_map__value_size(map);
    const mapping = mapShared(bpf.bpf_map__fd(map), {
      length: Math.ceil(size / PAGE_SIZE) * PAGE_SIZE,
      prot: PROT_READ | PROT_WRITE,
      subject: `${this.name} ${section}`,
    });
    this.#mappings.push(mapping);
    return Deno.UnsafePointerView.getArrayBuffer(mapping.memory, size);
  }

  /** Creates maps and verifies and loads programs (bpf_object__load). */
  load(): void {
    const ptr = this.#live("load", "open");
    check("bpf_object__load", nativeSymbols().bpf.bpf_object__load(ptr), {
      subject: this.name,
    });
    this.#state = "loaded";
    this.#elf = null;
  }

  /** The object's programs, in ELF order. */
  programs(): BpfProgram[] {
    const ptr = this.#live("programs");
    const { bpf } = nativeSymbols();
    const result: BpfProgram[] = [];
    for (
      let p = bpf.bpf_object__next_program(ptr, null);
      p !== null;
      p = bpf.bpf_object__next_program(ptr, p)
    ) {
      result.push(program(p));
    }
    return result;
  }

  /** One program by its C function name. */
  program(name: string): BpfProgram {
    const ptr = this.#live("program");
    return program(
      checkPointer(
        "bpf_object__find_program_by_name",
        nativeSymbols().bpf.bpf_object__find_program_by_name(
          ptr,
          cString(name),
        ),
        { subject: `${this.name}, ${name}` },
      ),
    );
  }

  /** Attaches one program by its section name (bpf_program__attach). */
  attach(program: string): BpfLink {
    this.#live("attach", "loaded");
    return this.#keep(attachAuto(this.program(program)));
  }

  /**
   * Attaches every program by its section name, except `skip`. On failure,
   * the links this call made are destroyed before the error is thrown.
   */
  attachAll(options: AttachAllOptions = {}): BpfLink[] {
    this.#live("attachAll", "loaded");
    const skip = new Set(options.skip ?? []);
    const made: BpfLink[] = [];
    try {
      for (const p of this.programs()) {
        if (!skip.has(p.name)) made.push(this.#keep(attachAuto(p)));
      }
    } catch (error) {
      for (const link of made.reverse()) link.destroy();
      throw error;
    }
    return made;
  }

  /** Attaches a program to an explicit tracepoint. */
  attachTracepoint(program: string, tracepoint: Tracepoint): BpfLink {
    this.#live("attachTracepoint", "loaded");
    return this.#keep(attachTracepoint(this.program(program), tracepoint));
  }

  /** Attaches a program as a uprobe or uretprobe. */
  attachUprobe(program: string, options: UprobeOptions): BpfLink {
    this.#live("attachUprobe", "loaded");
    return this.#keep(attachUprobe(this.program(program), options));
  }

  /** A loaded map's file descriptor, owned by this object. */
  mapFd(name: string): number {
    const ptr = this.#live("mapFd", "loaded");
    return check(
      "bpf_object__find_map_fd_by_name",
      nativeSymbols().bpf.bpf_object__find_map_fd_by_name(ptr, cString(name)),
      { subject: `${this.name}, ${name}` },
    );
  }

  /** A loaded map with its key and value sizes, for typed update/lookup/delete. */
  map(name: string): BpfMap {
    const ptr = this.#mapPtr(name, "map", "loaded");
    const { bpf } = nativeSymbols();
    const fd = check("bpf_map__fd", bpf.bpf_map__fd(ptr), { subject: name });
    return new BpfMap(fd, name, {
      keySize: bpf.bpf_map__key_size(ptr),
      valueSize: bpf.bpf_map__value_size(ptr),
    });
  }

  /** Destroys this object's links (newest first), then frees programs and maps. Safe twice. */
  close(): void {
    const ptr = this.#ptr;
    if (ptr === null) return;
    this.#ptr = null;
    this.#state = "closed";
    this.#elf = null;
    let firstError: unknown;
    for (const link of this.#links.splice(0).reverse()) {
      try {
        link.destroy();
      } catch (error) {
        firstError ??= error;
      }
    }
    for (const mapping of this.#mappings.splice(0)) unmapShared(mapping);
    nativeSymbols().bpf.bpf_object__close(ptr);
    if (firstError !== undefined) throw firstError;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #keep(link: BpfLink): BpfLink {
    this.#links.push(link);
    return link;
  }

  #mapPtr(
    name: string,
    method: string,
    state: BpfObjectState,
  ): Deno.PointerObject {
    const ptr = this.#live(method, state);
    return checkPointer(
      "bpf_object__find_map_by_name",
      nativeSymbols().bpf.bpf_object__find_map_by_name(ptr, cString(name)),
      { subject: `${this.name}, ${name}` },
    );
  }

  #live(method: string, state?: BpfObjectState): Deno.PointerObject {
    if (this.#ptr === null) {
      throw new Error(`BpfObject ${this.name}: ${method}() after close()`);
    }
    if (state !== undefined && this.#state !== state) {
      const when = state === "open" ? "before load()" : "after load()";
      throw new Error(`BpfObject ${this.name}: ${method}() must come ${when}`);
    }
    return this.#ptr;
  }
}

function program(ptr: Deno.PointerObject): BpfProgram {
  const { bpf } = nativeSymbols();
  return {
    name: readCString(bpf.bpf_program__name(ptr)),
    section: readCString(bpf.bpf_program__section_name(ptr)),
    ptr,
  };
}
