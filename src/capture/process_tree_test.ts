import assert from "node:assert/strict";
import { parentPid, ServiceOfProcess } from "./process_tree.ts";

Deno.test("process_tree: the parent PID from /proc/PID/stat, comm with spaces and parentheses", () => {
  assert.equal(parentPid("123 (postgres) S 45 123 123 0 -1"), 45);
  assert.equal(parentPid("123 (a (b) c) R 7 1 1"), 7);
  assert.equal(parentPid("1 (init) S 0 1 1"), undefined);
  assert.equal(parentPid("garbage"), undefined);
});

Deno.test("process_tree: a child is named after its nearest traced ancestor", async () => {
  const root = await Deno.makeTempDir();
  try {
    const stat = async (pid: number, ppid: number) => {
      await Deno.mkdir(`${root}/${pid}`);
      await Deno.writeTextFile(
        `${root}/${pid}/stat`,
        `${pid} (p) S ${ppid} 0 0`,
      );
    };
    await stat(300, 200); // backend → postmaster
    await stat(200, 100); // postmaster → traced
    await stat(400, 1); // unrelated
    const known = new Map([[100, "db"]]);
    const services = new ServiceOfProcess({
      known: (pid) => known.get(pid),
      procRoot: root,
    });
    assert.equal(services.get(100), "db");
    assert.equal(services.get(300), "db");
    assert.equal(services.get(400), undefined);
    assert.equal(services.get(999), undefined); // gone
    known.set(400, "late"); // own names win at once, no cache in the way
    assert.equal(services.get(400), "late");
    await Deno.remove(`${root}/300`, { recursive: true });
    assert.equal(services.get(300), "db"); // cached until clear()
    services.clear();
    assert.equal(services.get(300), undefined);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("process_tree: fork records name children that are already gone from /proc", () => {
  const services = new ServiceOfProcess({
    known: (pid) => pid === 100 ? "db" : undefined,
    procRoot: "/nonexistent",
  });
  assert.equal(services.get(300), undefined);
  services.adopt(200, 100); // postmaster's child
  services.adopt(300, 200); // and its child
  assert.equal(services.get(300), "db");
  assert.equal(services.get(200), "db");
  services.adopt(400, 999);
  assert.equal(services.get(400), undefined);
});
