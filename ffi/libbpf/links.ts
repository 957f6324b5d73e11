import { check, checkPointer } from "./errors.ts";
import { cString, nativeSymbols } from "./symbols.ts";

/** A program of a loaded BpfObject, as the attach functions need it. */
export interface BpfProgram {
  readonly name: string;
  /** The section it was declared in, e.g. "tracepoint/syscalls/sys_enter_write". */
  readonly section: string;
  /** struct bpf_program *, owned by its BpfObject. */
  readonly ptr: Deno.PointerObject;
}

/**
 * An attachment of a program to a hook (struct bpf_link *). Destroying it
 * detaches the program; its BpfObject destroys the links it made on close.
 */
export class BpfLink implements Disposable {
  #ptr: Deno.PointerObject | null;

  constructor(ptr: Deno.PointerObject, readonly description: string) {
    this.#ptr = ptr;
  }

  get destroyed(): boolean {
    return this.#ptr === null;
  }

  /** Detaches; safe to call twice. */
  destroy(): void {
    const ptr = this.#ptr;
    if (ptr === null) return;
    this.#ptr = null;
    check("bpf_link__destroy", nativeSymbols().bpf.bpf_link__destroy(ptr), {
      subject: this.description,
    });
  }

  [Symbol.dispose](): void {
    this.destroy();
  }
}

/** Attaches by the program's section name (SEC("tracepoint/…"), SEC("uprobe/…:func")…). */
export function attachAuto(program: BpfProgram): BpfLink {
  const ptr = checkPointer(
    "bpf_program__attach",
    nativeSymbols().bpf.bpf_program__attach(program.ptr),
    { subject: `${program.name}, ${program.section}` },
  );
  return new BpfLink(ptr, `${program.name} → ${program.section}`);
}

/** A tracepoint under tracefs events/, e.g. { category: "syscalls", name: "sys_enter_write" }. */
export interface Tracepoint {
  category: string;
  name: string;
}

/** Attaches to a tracepoint given explicitly, whatever the program's section says. */
export function attachTracepoint(
  program: BpfProgram,
  tracepoint: Tracepoint,
): BpfLink {
  const where = `${tracepoint.category}/${tracepoint.name}`;
  const ptr = checkPointer(
    "bpf_program__attach_tracepoint",
    nativeSymbols().bpf.bpf_program__attach_tracepoint(
      program.ptr,
      cString(tracepoint.category),
      cString(tracepoint.name),
    ),
    { subject: `${program.name}, ${where}` },
  );
  return new BpfLink(ptr, `${program.name} → tracepoint ${where}`);
}

/** Where and how to attach a uprobe. */
export interface UprobeOptions {
  /** Absolute path of the executable or shared library, e.g. "/usr/lib/x86_64-linux-gnu/libssl.so.3". */
  binaryPath: string;
  /** Symbol to probe (libbpf resolves it in the ELF); `offset` is then relative to it. */
  funcName?: string;
  /** Byte offset: in the file without `funcName`, inside the function with it. Default 0. */
  offset?: number | bigint;
  /** Only this process; default -1, every process that maps the binary. */
  pid?: number;
  /** Fire on return (uretprobe) instead of entry. */
  retprobe?: boolean;
  /** Value the program reads with bpf_get_attach_cookie(). */
  cookie?: bigint;
}

/** sizeof(struct bpf_uprobe_opts) in libbpf 1.1: sz, ref_ctr_offset, bpf_cookie, retprobe, func_name. */
const UPROBE_OPTS_SIZE = 40;

/** Attaches a uprobe or uretprobe (bpf_program__attach_uprobe_opts). */
export function attachUprobe(
  program: BpfProgram,
  options: UprobeOptions,
): BpfLink {
  const funcName = options.funcName === undefined
    ? undefined
    : cString(options.funcName);
  const opts = new Uint8Array(UPROBE_OPTS_SIZE);
  const view = new DataView(opts.buffer);
  view.setBigUint64(0, BigInt(UPROBE_OPTS_SIZE), true); // sz
  view.setBigUint64(16, options.cookie ?? 0n, true); // bpf_cookie
  view.setUint8(24, options.retprobe ? 1 : 0); // retprobe
  if (funcName !== undefined) {
    view.setBigUint64(
      32,
      BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(funcName))),
      true,
    );
  }
  const kind = options.retprobe ? "uretprobe" : "uprobe";
  const target = `${options.binaryPath}:${options.funcName ?? ""}+${
    options.offset ?? 0
  }`;
  const ptr = checkPointer(
    "bpf_program__attach_uprobe_opts",
    nativeSymbols().bpf.bpf_program__attach_uprobe_opts(
      program.ptr,
      options.pid ?? -1,
      cString(options.binaryPath),
      BigInt(options.offset ?? 0),
      opts,
    ),
    { subject: `${program.name}, ${kind} ${target}` },
  );
  funcName?.fill(0); // keeps the name's buffer alive until after the call
  return new BpfLink(ptr, `${program.name} → ${kind} ${target}`);
}
