/**
 * The compiled BPF objects, carried inside the program: ffi/bpf/build.sh
 * compiles every *.bpf.c and writes objects.gen.ts (base64, not committed).
 *
 * The import specifier is computed so that `deno check` passes on a fresh
 * clone. Bundlers do not follow a computed import, so the built program's
 * entry (written by build.sh) imports objects.gen.ts itself and hands the
 * table over with `provideObjects` before anything loads a probe.
 *
 * @module
 */

const NOT_BUILT = "BPF objects not built: run bash ffi/bpf/build.sh";

let objects: Promise<Readonly<Record<string, string>>> | undefined;

function loadObjects(): Promise<Readonly<Record<string, string>>> {
  const url = new URL("./objects.gen.ts", import.meta.url).href;
  return import(url).then(
    (module: { BPF_OBJECTS?: unknown }) => {
      const table = module.BPF_OBJECTS;
      if (typeof table !== "object" || table === null) {
        throw new Error(`${NOT_BUILT} (objects.gen.ts has no BPF_OBJECTS)`);
      }
      return table as Record<string, string>;
    },
    (cause: unknown) => {
      throw new Error(NOT_BUILT, { cause });
    },
  );
}

/** The objects table the built program carries (called by its entry). */
export function provideObjects(table: Readonly<Record<string, string>>): void {
  objects = Promise.resolve(table);
}

/** Names of the embedded objects, e.g. ["smoke"]. */
export async function embeddedObjectNames(): Promise<string[]> {
  return Object.keys(await (objects ??= loadObjects())).sort();
}

/**
 * The ELF bytes of an embedded object, by source name (smoke.bpf.c → "smoke").
 *
 * @throws Error "BPF objects not built: run bash ffi/bpf/build.sh" when the build has not run.
 */
export async function embeddedObject(
  name: string,
): Promise<Uint8Array<ArrayBuffer>> {
  const table = await (objects ??= loadObjects());
  const base64 = table[name];
  if (base64 === undefined) {
    const known = Object.keys(table).join(", ") || "none";
    throw new Error(
      `BPF object ${name} not embedded (have: ${known}): add ffi/bpf/${name}.bpf.c and run bash ffi/bpf/build.sh`,
    );
  }
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}
