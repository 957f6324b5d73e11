/**
 * The release workflow cannot run here (it needs GitHub's runners and
 * dl.deno.land); this checks that it says what the README promises: on a
 * tag, a `deno compile` build per architecture, the smoke test on x64, and
 * the executables uploaded with their sha256 sums.
 */
import assert from "node:assert/strict";
import { parse } from "yaml";

interface Step {
  name?: string;
  run?: string;
  uses?: string;
  if?: string;
  with?: Record<string, unknown>;
}
interface Workflow {
  on: { push: { tags: string[] } };
  jobs: Record<string, {
    strategy?: { matrix: { include: Record<string, unknown>[] } };
    steps: Step[];
  }>;
}

const workflow = parse(
  await Deno.readTextFile(
    new URL("../.github/workflows/release.yml", import.meta.url),
  ),
) as Workflow;

Deno.test("release workflow: tags build x64 and arm64 with deno compile, smoke-test x64, upload with sums", () => {
  assert.deepEqual(workflow.on.push.tags, ["v*"]);
  const build = workflow.jobs.build!;
  assert.deepEqual(
    build.strategy!.matrix.include.map((m) => [m.target, m.smoke]),
    [["linux-x64", true], ["linux-arm64", false]],
  );
  const runs = build.steps.map((s) => s.run ?? "").join("\n");
  assert.match(runs, /bash setup\.sh/);
  assert.match(runs, /CORAL_BUILD_KIND=compile bash build\.sh/);
  assert.match(
    runs,
    /CORAL_REQUIRE_EBPF=1 CORAL_SMOKE_ARTIFACT=dist\/coral-agent deno test -A tests\/executable_smoke_test\.ts/,
  );
  assert.match(runs, /sha256sum "coral-agent-\$\{\{ matrix\.target \}\}"/);
  const upload = build.steps.find((s) =>
    s.uses?.startsWith("actions/upload-artifact")
  );
  assert.equal(upload?.with?.["if-no-files-found"], "error");
  const publish = workflow.jobs.publish!.steps.map((s) => s.run ?? "").join(
    "\n",
  );
  assert.match(publish, /sha256sum -c/);
  assert.match(publish, /gh release upload/);
});
