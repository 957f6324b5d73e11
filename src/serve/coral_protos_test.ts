import assert from "node:assert/strict";
import { AGENT_PROTO, COLONY_PROTO } from "./coral_proto_text.ts";
import { coralType } from "./coral_protos.ts";

const PROTO = new URL("../../proto/coral/", import.meta.url);
const TEXT = new URL("./coral_proto_text.ts", import.meta.url);

Deno.test("the embedded proto texts are the files in proto/", async () => {
  const agent = await Deno.readTextFile(new URL("agent/v1/agent.proto", PROTO));
  const colony = await Deno.readTextFile(
    new URL("colony/v1/colony.proto", PROTO),
  );
  if (Deno.env.get("UPDATE") === "1") {
    const head = (await Deno.readTextFile(TEXT)).split("\nexport const")[0];
    await Deno.writeTextFile(
      TEXT,
      `${head}\nexport const AGENT_PROTO = \`${agent.trimEnd()}\`;\n\n` +
        `export const COLONY_PROTO = \`${colony.trimEnd()}\`;\n`,
    );
    return;
  }
  assert.equal(
    AGENT_PROTO,
    agent.trimEnd(),
    "run UPDATE=1 deno test -A src/serve/coral_protos_test.ts",
  );
  assert.equal(
    COLONY_PROTO,
    colony.trimEnd(),
    "run UPDATE=1 deno test -A src/serve/coral_protos_test.ts",
  );
});

Deno.test("the Coral types resolve with camelCase field names", () => {
  const req = coralType("coral.agent.v1.QueryEbpfMetricsRequest");
  assert.equal(req.fieldsById[6]?.name, "httpStartSeqId");
  const push = coralType("coral.colony.v1.PushBatchRequest");
  assert.equal(push.fieldsById[6]?.name, "spans");
});
