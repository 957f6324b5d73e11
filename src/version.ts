/**
 * What this program is: its version, and how it was built. A source run
 * (`deno run -A main.ts`) says "source"; build.sh's entry calls
 * `provideBuild` with "compiled" (`deno compile`) or "launcher" (a launcher
 * over a `deno bundle` and the Deno runtime) and the commit it was built from.
 *
 * @module
 */
export const VERSION = "0.1.0";

/** How the running program was made. */
export interface BuildInfo {
  kind: "source" | "compiled" | "launcher";
  /** The commit built, as hex, with "-dirty" when the tree had changes. */
  commit?: string;
}

let build: BuildInfo = { kind: "source" };

/** Called once by the built program's entry, before main.ts runs. */
export function provideBuild(info: BuildInfo): void {
  build = info;
}

export function buildInfo(): BuildInfo {
  return build;
}

/** One line for `coral-agent version`, e.g. "coral-agent 0.1.0 (launcher build 915cfd2, deno 2.9.6, x86_64-unknown-linux-gnu)". */
export function versionLine(): string {
  const made = build.commit
    ? `${build.kind} build ${build.commit}`
    : build.kind;
  return `coral-agent ${VERSION} (${made}, deno ${Deno.version.deno}, ${Deno.build.target})`;
}
