/**
 * The built `coral-agent` executable for tests that use it as a user would:
 * `CORAL_SMOKE_ARTIFACT=PATH` names one already built (the release workflow
 * tests the `deno compile` build this way); otherwise build.sh runs once per
 * test process and its dist/coral-agent is used.
 */
const ROOT = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");

let built: Promise<string> | undefined;

/** The repository's root directory (the checkout the smoke test hides). */
export function checkoutDir(): string {
  return ROOT;
}

/** Absolute path of the executable to test; builds it when none is named. */
export function builtExecutable(): Promise<string> {
  return built ??= locate();
}

async function locate(): Promise<string> {
  const named = Deno.env.get("CORAL_SMOKE_ARTIFACT");
  if (named) {
    const info = await Deno.stat(named).catch(() => undefined);
    if (!info?.isFile) {
      throw new Error(`CORAL_SMOKE_ARTIFACT=${named}: no such file`);
    }
    return await Deno.realPath(named);
  }
  const output = await new Deno.Command("bash", {
    args: [`${ROOT}/build.sh`],
    cwd: ROOT,
    env: { CORAL_BUILD_KIND: Deno.env.get("CORAL_BUILD_KIND") ?? "launcher" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    const decoder = new TextDecoder();
    throw new Error(
      `bash build.sh failed (${output.code}):\n${
        decoder.decode(output.stderr)
      }${decoder.decode(output.stdout)}`,
    );
  }
  return `${ROOT}/dist/coral-agent`;
}
