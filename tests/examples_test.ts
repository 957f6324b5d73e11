import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { loadConfigFile } from "../src/config/load.ts";

const EXAMPLES = new URL("../examples/", import.meta.url);

Deno.test("every examples/*.yaml is a valid config", async (t) => {
  const names: string[] = [];
  for await (const entry of Deno.readDir(EXAMPLES)) {
    if (entry.isFile && entry.name.endsWith(".yaml")) names.push(entry.name);
  }
  names.sort();
  assert.ok(names.length >= 3, `only ${names.length} examples: ${names}`);
  for (const name of names) {
    await t.step(name, async () => {
      // Throws a ConfigError listing every problem if the file is invalid.
      await loadConfigFile(fileURLToPath(new URL(name, EXAMPLES)));
    });
  }
});
