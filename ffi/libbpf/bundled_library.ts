/**
 * The libbpf the program carries inside itself: ffi/libbpf/build_libbpf.sh
 * builds libbpf-coral.so (libbpf with libelf and zlib linked in, glibc alone
 * left dynamic) and writes libbpf_so.gen.ts (base64, not committed). At run
 * time the bytes are written once to a private cache directory, named by
 * their sha256, and opened from there; without them the system's
 * libbpf.so.1 is opened as before.
 *
 * The bytes come from {@linkcode provideLibbpf} when an entry file hands them
 * over (bundlers do not follow computed imports), otherwise from importing
 * libbpf_so.gen.ts by a computed specifier, so that `deno check` passes on a
 * fresh clone. build.sh's entry (dist/.build/entry.ts) imports the generated
 * module itself and calls `provideLibbpf`, for `deno bundle` and
 * `deno compile` alike.
 *
 * @module
 */

import { createHash } from "node:crypto";

/** An embedded libbpf-coral.so, as libbpf_so.gen.ts exports it. */
export interface EmbeddedLibbpf {
  /** The library's bytes, base64 (LIBBPF_SO_BASE64). */
  readonly base64: string;
  /** sha256 of those bytes, hex (LIBBPF_SO_SHA256). */
  readonly sha256: string;
  /** What it was built from, e.g. "libbpf 1.1.2, elfutils 0.188, zlib 1.2.13". */
  readonly version: string;
}

/** The libbpf to open, and how to name it in reports and errors. */
export interface LibbpfLibrary {
  /** What to pass to `Deno.dlopen`: a file path, or "libbpf.so.1". */
  readonly path: string;
  /** For "Cannot load NAME: …": "libbpf.so.1", or the detail of the embedded one. */
  readonly name: string;
  /** e.g. "embedded libbpf 1.1.2, … (sha256 6d5f72387e3054f0) at /root/.cache/coral-agent/libbpf-6d5f72387e3054f0.so" */
  readonly detail: string;
  /** What to try when opening it fails. */
  readonly hint: string;
}

const SYSTEM_LIBBPF: LibbpfLibrary = {
  path: "libbpf.so.1",
  name: "libbpf.so.1",
  detail: "system libbpf.so.1",
  hint: "install libbpf1 (apt-get install -y libbpf1)",
};
const REBUILD = "run bash ffi/libbpf/build_libbpf.sh";

let provided: EmbeddedLibbpf | undefined;
let located: LibbpfLibrary | undefined;

/**
 * Hands over the embedded library before libbpf is first used; an entry file
 * that is bundled calls it with the generated module's values.
 *
 * @example
 * ```ts ignore
 * import * as so from "./ffi/libbpf/libbpf_so.gen.ts";
 * provideLibbpf({ base64: so.LIBBPF_SO_BASE64, sha256: so.LIBBPF_SO_SHA256, version: so.LIBBPF_SO_VERSION });
 * ```
 *
 * @throws Error when libbpf was already opened.
 */
export function provideLibbpf(library: EmbeddedLibbpf): void {
  if (located !== undefined) {
    throw new Error(
      `provideLibbpf: too late, ${located.detail} is already in use: call it before libbpf is first used`,
    );
  }
  provided = library;
}

// Evaluated once, when this module loads: nativeSymbols() is synchronous.
const generated = await importGenerated();

async function importGenerated(): Promise<EmbeddedLibbpf | Error | undefined> {
  const url = new URL("./libbpf_so.gen.ts", import.meta.url).href;
  let module: Record<string, unknown>;
  try {
    module = await import(url);
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    // Not built: a source checkout, or a bundle that is handed the bytes.
    if (detail.includes("Module not found")) return undefined;
    return new Error(`Cannot import libbpf_so.gen.ts: ${detail} (${REBUILD})`, {
      cause,
    });
  }
  const { LIBBPF_SO_BASE64, LIBBPF_SO_SHA256, LIBBPF_SO_VERSION } = module;
  if (
    typeof LIBBPF_SO_BASE64 !== "string" ||
    typeof LIBBPF_SO_SHA256 !== "string" ||
    typeof LIBBPF_SO_VERSION !== "string"
  ) {
    return new Error(
      `Cannot use libbpf_so.gen.ts: LIBBPF_SO_BASE64, LIBBPF_SO_SHA256 or LIBBPF_SO_VERSION missing (${REBUILD})`,
    );
  }
  return {
    base64: LIBBPF_SO_BASE64,
    sha256: LIBBPF_SO_SHA256,
    version: LIBBPF_SO_VERSION,
  };
}

/** The embedded library: the provided one, else the generated one, else undefined. */
export function embeddedLibbpf(): EmbeddedLibbpf | undefined {
  if (provided !== undefined) return provided;
  if (generated instanceof Error) throw generated;
  return generated;
}

/**
 * The libbpf to open: the embedded one, written to the cache directory on
 * first use, or the system's libbpf.so.1 when none is embedded.
 *
 * @throws Error "Cannot extract embedded libbpf to DIR: …" when the cache directory is unsafe or unwritable.
 */
export function locateLibbpf(): LibbpfLibrary {
  if (located !== undefined) return located;
  const library = embeddedLibbpf();
  if (library === undefined) return located = SYSTEM_LIBBPF;
  const dir = cacheDirectory();
  let path: string;
  try {
    path = extractLibrary(library, dir);
  } catch (cause) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    throw new Error(
      `Cannot extract embedded libbpf to ${dir}: ${detail} (set CORAL_CACHE_DIR to a private directory)`,
      { cause },
    );
  }
  const detail = `embedded ${library.version} (sha256 ${
    library.sha256.slice(0, 16)
  }) at ${path}`;
  return located = {
    path,
    name: detail,
    detail,
    hint:
      `is ${dir} mounted noexec? set CORAL_CACHE_DIR to a private directory on an exec mount`,
  };
}

/**
 * Where the library is written: $CORAL_CACHE_DIR, else $CACHE_DIRECTORY
 * (systemd's CacheDirectory=), else $XDG_CACHE_HOME/coral-agent, else
 * $HOME/.cache/coral-agent, else /tmp/coral-agent-UID.
 */
export function cacheDirectory(
  env: (name: string) => string | undefined = readEnv,
  uid: number = currentUid(),
): string {
  const set = (name: string) => {
    const value = env(name);
    return value === undefined || value === "" ? undefined : value;
  };
  const systemd = set("CACHE_DIRECTORY")?.split(":")[0];
  const xdg = set("XDG_CACHE_HOME");
  const home = set("HOME");
  return set("CORAL_CACHE_DIR") ?? systemd ??
    (xdg !== undefined ? `${xdg}/coral-agent` : undefined) ??
    (home !== undefined ? `${home}/.cache/coral-agent` : undefined) ??
    `/tmp/coral-agent-${uid}`;
}

/**
 * Writes the library into `dir` as libbpf-<first 16 hex of sha256>.so (mode
 * 0500) and returns its path. An existing file is kept when its sha256
 * matches, replaced otherwise; a new one is written to a temporary file and
 * renamed into place, so agents starting together never see half a file.
 * `dir` is created 0700 and refused when it is a symlink, not owned by this
 * user, or writable by group or others.
 *
 * @throws Error naming the unsafe directory, the corrupt embedded bytes, or the failed file operation.
 */
export function extractLibrary(library: EmbeddedLibbpf, dir: string): string {
  const uid = currentUid();
  privateDirectory(dir, uid);
  const path = `${dir}/libbpf-${library.sha256.slice(0, 16)}.so`;
  if (matches(path, library.sha256, uid)) return path;

  const bytes = Uint8Array.fromBase64(library.base64);
  const actual = sha256Hex(bytes);
  if (actual !== library.sha256) {
    throw new Error(
      `embedded library is corrupt: sha256 ${actual}, expected ${library.sha256} (${REBUILD})`,
    );
  }
  const temporary = `${path}.${Deno.pid}.${
    crypto.randomUUID().slice(0, 8)
  }.tmp`;
  try {
    using file = Deno.openSync(temporary, {
      write: true,
      createNew: true,
      mode: 0o500,
    });
    let written = 0;
    while (written < bytes.length) {
      written += file.writeSync(bytes.subarray(written));
    }
    Deno.renameSync(temporary, path);
  } catch (error) {
    try {
      Deno.removeSync(temporary);
    } catch {
      // Never created, or already renamed.
    }
    throw error;
  }
  return path;
}

function privateDirectory(dir: string, uid: number): void {
  Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const info = Deno.lstatSync(dir);
  if (info.isSymlink) throw new Error(`${dir} is a symlink`);
  if (!info.isDirectory) throw new Error(`${dir} is not a directory`);
  if (info.uid !== uid) {
    throw new Error(`${dir} is owned by uid ${info.uid}, not ${uid}`);
  }
  const mode = (info.mode ?? 0) & 0o777;
  if ((mode & 0o022) !== 0) {
    throw new Error(
      `${dir} is writable by group or others (mode ${mode.toString(8)})`,
    );
  }
}

/** The file at `path` is ours, regular, and has the expected sha256. */
function matches(path: string, sha256: string, uid: number): boolean {
  let info: Deno.FileInfo;
  try {
    info = Deno.lstatSync(path);
  } catch {
    return false;
  }
  if (!info.isFile || info.uid !== uid) return false;
  try {
    return sha256Hex(Deno.readFileSync(path)) === sha256;
  } catch {
    return false;
  }
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

function currentUid(): number {
  return Deno.uid() ?? 0;
}

function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined; // no --allow-env: fall through to the next choice
  }
}
