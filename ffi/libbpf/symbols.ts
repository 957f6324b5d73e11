/**
 * Every native function coral-agent calls, declared once: libbpf (libbpf.so.1,
 * 1.1+) and the few libc functions around it. The C signature sits beside each
 * entry; wrappers in this folder are the only callers.
 *
 * Conventions of libbpf 1.x: functions returning `int` return a negative errno
 * on failure (and set errno); functions returning a pointer return NULL and
 * set errno, read with `__errno_location()` right after the call.
 *
 * @module
 */

import { locateLibbpf } from "./bundled_library.ts";

/** libbpf.so.1, or the embedded libbpf-coral.so (bundled_library.ts) */
export const LIBBPF_SYMBOLS = {
  // libbpf_print_fn_t libbpf_set_print(libbpf_print_fn_t fn);
  // typedef int (*libbpf_print_fn_t)(enum libbpf_print_level level, const char *fmt, va_list ap);
  libbpf_set_print: { parameters: ["function"], result: "pointer" },
  // int libbpf_probe_bpf_prog_type(enum bpf_prog_type prog_type, const void *opts);
  libbpf_probe_bpf_prog_type: { parameters: ["u32", "pointer"], result: "i32" },

  // struct bpf_object *bpf_object__open_mem(const void *obj_buf, size_t obj_buf_sz,
  //                                         const struct bpf_object_open_opts *opts);
  bpf_object__open_mem: {
    parameters: ["buffer", "usize", "buffer"],
    result: "pointer",
  },
  // int bpf_object__load(struct bpf_object *obj);
  bpf_object__load: { parameters: ["pointer"], result: "i32" },
  // void bpf_object__close(struct bpf_object *obj);
  bpf_object__close: { parameters: ["pointer"], result: "void" },
  // struct bpf_program *bpf_object__find_program_by_name(const struct bpf_object *obj, const char *name);
  bpf_object__find_program_by_name: {
    parameters: ["pointer", "buffer"],
    result: "pointer",
  },
  // struct bpf_program *bpf_object__next_program(const struct bpf_object *obj, struct bpf_program *prog);
  bpf_object__next_program: {
    parameters: ["pointer", "pointer"],
    result: "pointer",
  },
  // struct bpf_map *bpf_object__find_map_by_name(const struct bpf_object *obj, const char *name);
  bpf_object__find_map_by_name: {
    parameters: ["pointer", "buffer"],
    result: "pointer",
  },
  // int bpf_object__find_map_fd_by_name(const struct bpf_object *obj, const char *name);
  bpf_object__find_map_fd_by_name: {
    parameters: ["pointer", "buffer"],
    result: "i32",
  },

  // const char *bpf_program__name(const struct bpf_program *prog);
  bpf_program__name: { parameters: ["pointer"], result: "pointer" },
  // const char *bpf_program__section_name(const struct bpf_program *prog);
  bpf_program__section_name: { parameters: ["pointer"], result: "pointer" },
  // struct bpf_link *bpf_program__attach(const struct bpf_program *prog);
  bpf_program__attach: { parameters: ["pointer"], result: "pointer" },
  // struct bpf_link *bpf_program__attach_tracepoint(const struct bpf_program *prog,
  //                                                 const char *tp_category, const char *tp_name);
  bpf_program__attach_tracepoint: {
    parameters: ["pointer", "buffer", "buffer"],
    result: "pointer",
  },
  // struct bpf_link *bpf_program__attach_uprobe_opts(const struct bpf_program *prog, pid_t pid,
  //     const char *binary_path, size_t func_offset, const struct bpf_uprobe_opts *opts);
  bpf_program__attach_uprobe_opts: {
    parameters: ["pointer", "i32", "buffer", "usize", "buffer"],
    result: "pointer",
  },
  // int bpf_link__destroy(struct bpf_link *link);
  bpf_link__destroy: { parameters: ["pointer"], result: "i32" },

  // int bpf_map__set_max_entries(struct bpf_map *map, __u32 max_entries);
  bpf_map__set_max_entries: { parameters: ["pointer", "u32"], result: "i32" },
  // __u32 bpf_map__max_entries(const struct bpf_map *map);
  bpf_map__max_entries: { parameters: ["pointer"], result: "u32" },
  // int bpf_map__fd(const struct bpf_map *map);
  bpf_map__fd: { parameters: ["pointer"], result: "i32" },
  // __u32 bpf_map__key_size(const struct bpf_map *map);
  bpf_map__key_size: { parameters: ["pointer"], result: "u32" },
  // __u32 bpf_map__value_size(const struct bpf_map *map);
  bpf_map__value_size: { parameters: ["pointer"], result: "u32" },
  // const void *bpf_map__initial_value(struct bpf_map *map, size_t *psize);
  bpf_map__initial_value: {
    parameters: ["pointer", "buffer"],
    result: "pointer",
  },
  // int bpf_map__set_initial_value(struct bpf_map *map, const void *data, size_t size);
  bpf_map__set_initial_value: {
    parameters: ["pointer", "buffer", "usize"],
    result: "i32",
  },

  // int bpf_map_create(enum bpf_map_type map_type, const char *map_name, __u32 key_size,
  //                    __u32 value_size, __u32 max_entries, const struct bpf_map_create_opts *opts);
  bpf_map_create: {
    parameters: ["u32", "buffer", "u32", "u32", "u32", "pointer"],
    result: "i32",
  },
  // int bpf_map_update_elem(int fd, const void *key, const void *value, __u64 flags);
  bpf_map_update_elem: {
    parameters: ["i32", "buffer", "buffer", "u64"],
    result: "i32",
  },
  // int bpf_map_lookup_elem(int fd, const void *key, void *value);
  bpf_map_lookup_elem: {
    parameters: ["i32", "buffer", "buffer"],
    result: "i32",
  },
  // int bpf_map_delete_elem(int fd, const void *key);
  bpf_map_delete_elem: { parameters: ["i32", "buffer"], result: "i32" },

  // int bpf_obj_get_info_by_fd(int bpf_fd, void *info, __u32 *info_len);
  bpf_obj_get_info_by_fd: {
    parameters: ["i32", "buffer", "buffer"],
    result: "i32",
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** libc.so.6 */
export const LIBC_SYMBOLS = {
  // int *__errno_location(void);
  __errno_location: { parameters: [], result: "pointer" },
  // char *strerror(int errnum);
  strerror: { parameters: ["i32"], result: "pointer" },
  // int vsnprintf(char *str, size_t size, const char *format, va_list ap);
  vsnprintf: {
    parameters: ["buffer", "usize", "pointer", "pointer"],
    result: "i32",
  },
  // int close(int fd);
  close: { parameters: ["i32"], result: "i32" },
  // int clock_gettime(clockid_t clockid, struct timespec *tp);
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
  // void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset);
  mmap: {
    parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"],
    result: "pointer",
  },
  // int munmap(void *addr, size_t length);
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  // int epoll_create1(int flags);
  epoll_create1: { parameters: ["i32"], result: "i32" },
  // int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event);
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  // int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout);
  // Runs on a helper thread: waits for ring buffer data without blocking JS.
  epoll_wait: {
    parameters: ["i32", "buffer", "i32", "i32"],
    result: "i32",
    nonblocking: true,
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** The opened libraries' symbols. */
export interface Native {
  readonly bpf: Deno.DynamicLibrary<typeof LIBBPF_SYMBOLS>["symbols"];
  readonly libc: Deno.DynamicLibrary<typeof LIBC_SYMBOLS>["symbols"];
  /** Which libbpf was opened: "embedded libbpf 1.1.2, … at PATH" or "system libbpf.so.1". */
  readonly libbpf: string;
}

let native: Native | undefined;

/**
 * Opens libbpf and libc.so.6 on first use (needs `--allow-ffi`); later calls
 * return the same symbols. Libraries stay open for the process' life. libbpf
 * is the copy embedded in the program when there is one (written to a cache
 * directory first, see bundled_library.ts), else the system's libbpf.so.1.
 *
 * @throws Error "Cannot load libbpf.so.1: …" when the library or permission is missing,
 * "Cannot extract embedded libbpf to DIR: …" when the cache directory is unsafe.
 */
export function nativeSymbols(): Native {
  if (native) return native;
  const library = locateLibbpf();
  const bpf = open(library.path, LIBBPF_SYMBOLS, {
    name: library.name,
    hint: library.hint,
  });
  const libc = open("libc.so.6", LIBC_SYMBOLS, {
    name: "libc.so.6",
    hint: "glibc is required",
  });
  native = { bpf: bpf.symbols, libc: libc.symbols, libbpf: library.detail };
  return native;
}

function open<S extends Deno.ForeignLibraryInterface>(
  path: string,
  symbols: S,
  { name, hint }: { name: string; hint: string },
): Deno.DynamicLibrary<S> {
  try {
    return Deno.dlopen(path, symbols);
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    throw new Error(`Cannot load ${name}: ${detail} (${hint})`, { cause });
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * Bytes that stay put: a typed array over its own ArrayBuffer lives outside
 * V8's heap, so its address may be stored in a C struct or used by a call on
 * another thread (small `new Uint8Array(n)` may live in the heap and move).
 */
export function pinnedBytes(size: number): Uint8Array<ArrayBuffer> {
  return new Uint8Array(new ArrayBuffer(size));
}

/** A NUL-terminated copy of `s` for a `const char *` parameter (pinned). */
export function cString(s: string): Uint8Array<ArrayBuffer> {
  const bytes = pinnedBytes(s.length * 3 + 1);
  const { written } = encoder.encodeInto(s, bytes);
  return bytes.subarray(0, written + 1);
}

/** Reads a NUL-terminated C string; "" for NULL. */
export function readCString(ptr: Deno.PointerValue): string {
  if (ptr === null) return "";
  return Deno.UnsafePointerView.getCString(ptr);
}

/** Decodes bytes up to the first NUL. */
export function decodeCString(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return decoder.decode(end < 0 ? bytes : bytes.subarray(0, end));
}
