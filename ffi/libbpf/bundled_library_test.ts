import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import {
  cacheDirectory,
  type EmbeddedLibbpf,
  embeddedLibbpf,
  extractLibrary,
} from "./bundled_library.ts";
import { nativeSymbols } from "./symbols.ts";

function library(bytes: Uint8Array, version = "test 1.0"): EmbeddedLibbpf {
  return {
    base64: bytes.toBase64(),
    sha256: createHash("sha256").update(bytes).digest("hex"),
    version,
  };
}

function randomBytes(size: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 65536) {
    crypto.getRandomValues(bytes.subarray(i, Math.min(size, i + 65536)));
  }
  return bytes;
}

function withTempDir(run: (root: string) => void | Promise<void>) {
  return async () => {
    const root = Deno.makeTempDirSync({ prefix: "coral-bundled-" });
    try {
      await run(root);
    } finally {
      Deno.removeSync(root, { recursive: true });
    }
  };
}

const mode = (path: string) => (Deno.lstatSync(path).mode ?? 0) & 0o777;
const isRoot = Deno.uid() === 0;

Deno.test("cacheDirectory: CORAL_CACHE_DIR, systemd, XDG, HOME, then /tmp per uid", () => {
  const from = (vars: Record<string, string>) =>
    cacheDirectory((name) => vars[name], 1000);
  const all = {
    CORAL_CACHE_DIR: "/coral",
    CACHE_DIRECTORY: "/var/cache/coral-agent:/var/cache/other",
    XDG_CACHE_HOME: "/xdg",
    HOME: "/home/u",
  };
  assert.equal(from(all), "/coral");
  assert.equal(
    from({ ...all, CORAL_CACHE_DIR: "" }),
    "/var/cache/coral-agent",
  );
  assert.equal(
    from({ XDG_CACHE_HOME: "/xdg", HOME: "/home/u" }),
    "/xdg/coral-agent",
  );
  assert.equal(from({ HOME: "/home/u" }), "/home/u/.cache/coral-agent");
  assert.equal(from({}), "/tmp/coral-agent-1000");
});

Deno.test(
  "extractLibrary: creates the directory 0700 and the file 0500 named by the sha256",
  withTempDir((root) => {
    const bytes = randomBytes(100_000);
    const lib = library(bytes);
    const dir = `${root}/a/cache`;
    const path = extractLibrary(lib, dir);
    assert.equal(path, `${dir}/libbpf-${lib.sha256.slice(0, 16)}.so`);
    assert.equal(mode(dir), 0o700);
    assert.equal(mode(path), 0o500);
    assert.deepEqual(Deno.readFileSync(path), bytes);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [
      `libbpf-${lib.sha256.slice(0, 16)}.so`,
    ]);
  }),
);

Deno.test(
  "extractLibrary: reuses a matching file without rewriting it",
  withTempDir((root) => {
    const lib = library(randomBytes(50_000));
    const path = extractLibrary(lib, root);
    const before = Deno.statSync(path);
    const again = extractLibrary(lib, root);
    const after = Deno.statSync(path);
    assert.equal(again, path);
    assert.equal(after.ino, before.ino);
    assert.equal(after.mtime?.getTime(), before.mtime?.getTime());
  }),
);

Deno.test(
  "extractLibrary: replaces a corrupted or foreign file",
  withTempDir((root) => {
    const bytes = randomBytes(50_000);
    const lib = library(bytes);
    const path = extractLibrary(lib, root);
    Deno.chmodSync(path, 0o600);
    Deno.writeFileSync(path, new Uint8Array(10));
    const before = Deno.statSync(path).ino;
    assert.equal(extractLibrary(lib, root), path);
    assert.deepEqual(Deno.readFileSync(path), bytes);
    assert.notEqual(Deno.statSync(path).ino, before);
    assert.equal(mode(path), 0o500);

    // A symlink where the file should be is replaced, not followed.
    const elsewhere = `${root}/elsewhere`;
    Deno.writeFileSync(elsewhere, new Uint8Array([1, 2, 3]));
    Deno.removeSync(path);
    Deno.symlinkSync(elsewhere, path);
    extractLibrary(lib, root);
    assert.equal(Deno.lstatSync(path).isFile, true);
    assert.deepEqual(Deno.readFileSync(elsewhere), new Uint8Array([1, 2, 3]));
  }),
);

Deno.test(
  "extractLibrary: refuses a symlinked, shared or foreign directory",
  withTempDir((root) => {
    const lib = library(randomBytes(1000));
    const real = `${root}/real`;
    Deno.mkdirSync(real, { mode: 0o700 });
    Deno.symlinkSync(real, `${root}/link`);
    assert.throws(() => extractLibrary(lib, `${root}/link`), /is a symlink/);

    for (const shared of [0o770, 0o702, 0o777]) {
      Deno.chmodSync(real, shared);
      assert.throws(
        () => extractLibrary(lib, real),
        /writable by group or others/,
      );
    }
    assert.deepEqual([...Deno.readDirSync(real)], []);

    Deno.chmodSync(real, 0o700);
    if (isRoot) {
      Deno.chownSync(real, 65534, 65534);
      assert.throws(() => extractLibrary(lib, real), /owned by uid 65534/);
    }
  }),
);

Deno.test(
  "extractLibrary: refuses embedded bytes that do not match their sha256",
  withTempDir((root) => {
    const lib = library(randomBytes(1000));
    const wrong = { ...lib, base64: randomBytes(1000).toBase64() };
    assert.throws(
      () => extractLibrary(wrong, root),
      /embedded library is corrupt/,
    );
    assert.deepEqual([...Deno.readDirSync(root)], []);
  }),
);

Deno.test(
  "extractLibrary: agents starting together each get the whole file",
  withTempDir(async (root) => {
    const bytes = randomBytes(4_000_000);
    const lib = library(bytes);
    const input = `${root}/lib.json`;
    Deno.writeTextFileSync(input, JSON.stringify(lib));
    const dir = `${root}/cache`;
    const module = new URL("./bundled_library.ts", import.meta.url).href;
    const code = `
      import { extractLibrary } from ${JSON.stringify(module)};
      const lib = JSON.parse(Deno.readTextFileSync(${JSON.stringify(input)}));
      console.log(extractLibrary(lib, ${JSON.stringify(dir)}));`;
    const runs = await Promise.all(
      Array.from({ length: 4 }, () =>
        new Deno.Command(Deno.execPath(), {
          args: ["eval", code],
          stdout: "piped",
          stderr: "piped",
        }).output()),
    );
    const decoder = new TextDecoder();
    for (const run of runs) {
      assert.equal(run.code, 0, decoder.decode(run.stderr));
    }
    const path = `${dir}/libbpf-${lib.sha256.slice(0, 16)}.so`;
    assert.deepEqual(
      new Set(runs.map((r) => decoder.decode(r.stdout).trim())),
      new Set([path]),
    );
    assert.deepEqual(Deno.readFileSync(path), bytes);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), [
      `libbpf-${lib.sha256.slice(0, 16)}.so`,
    ]);
  }),
);

Deno.test(
  "provideLibbpf: the provided bytes are used, named in the detail, and refused once in use",
  withTempDir(async (root) => {
    const lib = library(randomBytes(1000), "libbpf 9.9.9 (provided)");
    const module = new URL("./bundled_library.ts", import.meta.url).href;
    const code = `
      import { locateLibbpf, provideLibbpf } from ${JSON.stringify(module)};
      provideLibbpf(${JSON.stringify(lib)});
      const located = locateLibbpf();
      let late = "";
      try { provideLibbpf(${
      JSON.stringify(lib)
    }); } catch (e) { late = e.message; }
      console.log(JSON.stringify({ ...located, late }));`;
    const run = (dir: string) =>
      new Deno.Command(Deno.execPath(), {
        args: ["eval", code],
        env: { CORAL_CACHE_DIR: dir },
        stdout: "piped",
        stderr: "piped",
      }).output();
    const decoder = new TextDecoder();

    const ok = await run(`${root}/cache`);
    assert.equal(ok.code, 0, decoder.decode(ok.stderr));
    const located = JSON.parse(decoder.decode(ok.stdout));
    const path = `${root}/cache/libbpf-${lib.sha256.slice(0, 16)}.so`;
    assert.equal(located.path, path);
    assert.equal(
      located.detail,
      `embedded libbpf 9.9.9 (provided) (sha256 ${
        lib.sha256.slice(0, 16)
      }) at ${path}`,
    );
    assert.match(
      located.late,
      /^provideLibbpf: too late, embedded libbpf 9\.9\.9/,
    );

    Deno.mkdirSync(`${root}/shared`, { mode: 0o700 });
    Deno.chmodSync(`${root}/shared`, 0o777);
    const refused = await run(`${root}/shared`);
    assert.notEqual(refused.code, 0);
    assert.match(
      decoder.decode(refused.stderr),
      /Cannot extract embedded libbpf to .*\/shared: .*writable by group or others \(mode 777\) \(set CORAL_CACHE_DIR to a private directory\)/,
    );
  }),
);

const embedded = embeddedLibbpf();
const noEmbedded = embedded === undefined;

Deno.test({
  name:
    "embedded libbpf: dlopen works and ldd lists nothing but glibc (after bash ffi/libbpf/build_libbpf.sh)",
  ignore: noEmbedded,
  fn: withTempDir(async (root) => {
    assert(embedded);
    const path = extractLibrary(embedded, `${root}/cache`);
    const lib = Deno.dlopen(path, {
      libbpf_major_version: { parameters: [], result: "u32" },
      libbpf_minor_version: { parameters: [], result: "u32" },
    });
    try {
      const version =
        `${lib.symbols.libbpf_major_version()}.${lib.symbols.libbpf_minor_version()}`;
      assert.match(embedded.version, new RegExp(`^libbpf ${version}\\.`));
    } finally {
      lib.close();
    }

    // ldd (libc-bin, always there with glibc) lists what the loader maps.
    const ldd = await new Deno.Command("ldd", {
      args: [path],
      stdout: "piped",
    }).output();
    assert.equal(ldd.code, 0);
    const needed = new TextDecoder().decode(ldd.stdout).trim().split("\n")
      .map((line) => line.trim().split(/\s+/)[0]?.replace(/^.*\//, "") ?? "");
    assert(needed.includes("libc.so.6"), `ldd: ${needed.join(", ")}`);
    for (const name of needed) {
      assert.match(
        name,
        /^(libc\.so\.6|ld-linux.*\.so\.\d+|linux-(vdso|gate)\.so\.1)$/,
      );
    }
  }),
});

Deno.test({
  name: "nativeSymbols: opens the embedded libbpf and says so",
  ignore: noEmbedded,
  fn() {
    const native = nativeSymbols();
    assert.match(
      native.libbpf,
      /^embedded libbpf \d+\.\d+\.\d+.* at \/.+\.so$/,
    );
    const maps = Deno.readTextFileSync("/proc/self/maps");
    assert.doesNotMatch(maps, /libbpf\.so\.1|libelf[-.]/);
  },
});
