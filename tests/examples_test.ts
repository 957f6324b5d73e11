import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { loadConfigFile } from "../src/config/load.ts";
import {
  loadColonyConfigFile,
  looksLikeColonyConfig,
} from "../src/colony/config.ts";

const EXAMPLES = new URL("../examples/", import.meta.url);
/** Not configs: tests/deploy_examples_test.ts checks them. */
const DEPLOYMENT_FILES = new Set(["docker-compose.yaml"]);

Deno.test("every examples/*.yaml is a valid config", async (t) => {
  const names: string[] = [];
  for await (const entry of Deno.readDir(EXAMPLES)) {
    if (
      entry.isFile && entry.name.endsWith(".yaml") &&
      !DEPLOYMENT_FILES.has(entry.name)
    ) names.push(entry.name);
  }
  names.sort();
  assert.ok(names.length >= 3, `only ${names.length} examples: ${names}`);
  for (const name of names) {
    await t.step(name, async () => {
      // Throws a ConfigError listing every problem if the file is invalid.
      // Colony configs (a `colony:` section) load with the colony schema.
      const path = fileURLToPath(new URL(name, EXAMPLES));
      if (looksLikeColonyConfig(await Deno.readTextFile(path))) {
        await loadColonyConfigFile(path);
      } else {
        await loadConfigFile(path);
      }
    });
  }
});
