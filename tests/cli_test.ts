/** The command line as a user meets it: help, usage errors, no agent. */
import assert from "node:assert/strict";
import { freePort, runCli } from "./support/agent_process.ts";

Deno.test("--help lists the commands; each command has its own help", async () => {
  const main = await runCli(["--help"]);
  assert.equal(main.code, 0);
  for (
    const command of ["run", "validate", "colony", "query", "status", "version"]
  ) {
    assert.match(main.stdout, new RegExp(`coral-agent ${command}`));
    const own = await runCli([command, "--help"]);
    assert.equal(own.code, 0, `${command} --help`);
    assert.match(own.stdout, /^Usage:/, `${command} --help`);
  }
  for (const kind of ["http", "grpc", "sql", "traces"]) {
    const own = await runCli(["query", kind, "--help"]);
    assert.equal(own.code, 0, `query ${kind} --help`);
    assert.match(own.stdout, /Usage:/);
  }
});

Deno.test("version prints the version", async () => {
  const result = await runCli(["version"]);
  assert.equal(result.code, 0);
  assert.match(
    result.stdout,
    /^coral-agent \d+\.\d+\.\d+ \(source, deno \d+\.\d+\.\d+, [\w-]+\)\n$/,
  );
});

Deno.test("usage errors are one line and exit 2", async () => {
  for (
    const args of [
      ["frobnicate"],
      ["query"],
      ["query", "http", "--since", "soon"],
      ["query", "http", "--format", "xml"],
      ["query", "http", "--bogus"],
      ["run"],
    ]
  ) {
    const result = await runCli(args);
    assert.equal(result.code, 2, args.join(" "));
    assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
    assert.match(result.stderr, /^coral-agent: /);
  }
});

Deno.test("without a reachable agent the CLI says so in one line, exit 1", async () => {
  const url = `http://127.0.0.1:${freePort()}`;
  for (const args of [["query", "http"], ["query", "traces"], ["status"]]) {
    const result = await runCli([...args, "--agent", url]);
    assert.equal(result.code, 1);
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0]!, new RegExp(`cannot reach the agent at ${url}`));
  }
});

Deno.test("an invalid config file: one line per problem, exit 2, no stack trace", async () => {
  const dir = await Deno.makeTempDir();
  const path = `${dir}/bad.yaml`;
  await Deno.writeTextFile(
    path,
    "agent:\n  idd: x\notlp:\n  max_body_bytes: lots\n",
  );
  for (const command of ["validate", "run"]) {
    const result = await runCli([command, "--config", path]);
    assert.equal(result.code, 2, command);
    assert.doesNotMatch(result.stderr, /\bat .*\.ts:\d+/);
    assert.match(result.stderr, /agent\.idd: unknown key/);
    assert.match(result.stderr, /otlp\.max_body_bytes: /);
  }
  await Deno.remove(dir, { recursive: true });
});

Deno.test("validate checks a colony config: valid summary, or every problem", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const good = `${dir}/colony.yaml`;
    await Deno.writeTextFile(
      good,
      [
        "colony:",
        "  listen: 127.0.0.1:9100",
        "storage:",
        "  retention:",
        "    sql: 7d",
        "agents:",
        "  - id: web-1",
        "    token: s3cret-token",
        "pull:",
        "  - agent_id: db-1",
        "    url: http://10.0.0.5:9001",
        "",
      ].join("\n"),
    );
    const ok = await runCli(["validate", "--config", good]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /colony\.yaml: valid \(colony config\)/);
    assert.match(ok.stdout, /listen: +127\.0\.0\.1:9100/);
    assert.match(ok.stdout, /retention http 30d, grpc 30d, sql 7d, traces 7d/);
    assert.match(ok.stdout, /1 registered, registration required/);
    assert.match(ok.stdout, /pull: +db-1 http:\/\/10\.0\.0\.5:9001/);
    assert.doesNotMatch(ok.stdout, /s3cret-token/);

    const bad = `${dir}/bad-colony.yaml`;
    await Deno.writeTextFile(
      bad,
      [
        "colony:",
        "  listen: nowhere",
        "storage:",
        "  retention:",
        "    sql: often",
        "agents:",
        "  - id: web-1",
        "pull:",
        "  - agent_id: db-1",
        "    url: not a url",
        "",
      ].join("\n"),
    );
    const result = await runCli(["validate", "--config", bad]);
    assert.equal(result.code, 2);
    assert.equal(result.stdout, "");
    assert.doesNotMatch(result.stderr, /\bat .*\.ts:\d+/);
    assert.match(result.stderr, /bad-colony\.yaml: 4 problems/);
    assert.match(result.stderr, /colony\.listen: /);
    assert.match(result.stderr, /storage\.retention\.sql: /);
    assert.match(result.stderr, /agents\[0\]\.token: expected a string/);
    assert.match(result.stderr, /pull\[0\]\.url: expected a URL/);

    // An agent config is still checked as one.
    const agent = `${dir}/agent.yaml`;
    await Deno.writeTextFile(agent, "agent:\n  id: web-1\n");
    const agentResult = await runCli(["validate", "--config", agent]);
    assert.equal(agentResult.code, 0, agentResult.stderr);
    assert.match(agentResult.stdout, /agent\.yaml: valid\nagent id: +web-1/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
