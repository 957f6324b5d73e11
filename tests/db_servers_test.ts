/**
 * The database servers of tests/support/db_servers.ts against their real
 * clients. Without the binaries these tests are skipped with the reason
 * printed; with CORAL_REQUIRE_EBPF=1 (CI) they fail instead.
 */
import assert from "node:assert/strict";
import {
  missingMariadb,
  missingPostgres,
  missingRedis,
  startMariadb,
  startPostgres,
  startRedis,
} from "./support/db_servers.ts";

const requireAll = Deno.env.get("CORAL_REQUIRE_EBPF") === "1";

function dbTest(
  name: string,
  missing: string | undefined,
  fn: () => Promise<void>,
): void {
  if (missing === undefined) {
    Deno.test(name, fn);
  } else if (requireAll) {
    Deno.test(name, () => {
      throw new Error(`CORAL_REQUIRE_EBPF=1 but ${missing}`);
    });
  } else {
    console.log(
      `skipping "${name}" (set CORAL_REQUIRE_EBPF=1 to fail instead): ${missing}`,
    );
    Deno.test({ name, ignore: true, fn });
  }
}

async function run(
  program: string,
  args: string[],
  env?: Record<string, string>,
): Promise<string> {
  const out = await new Deno.Command(program, { args, env }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${program} ${args.join(" ")}: ${text}`);
  return text;
}

dbTest("postgres: psql and pgbench", missingPostgres(), async () => {
  await using pg = await startPostgres();
  assert.equal(await pg.psql("SELECT 1+1"), "2");
  await run(`${pg.binDir}/pgbench`, ["-i", "-s", "1", "-q"], pg.env);
  const out = await run(`${pg.binDir}/pgbench`, ["-t", "5", "-c", "1"], pg.env);
  assert.match(out, /number of transactions actually processed: 5\/5\n/);
  assert.equal(
    await pg.psql("SELECT count(*) FROM pgbench_history"),
    "5",
  );
});

dbTest("mariadb: mariadb and mysqlslap", missingMariadb(), async () => {
  await using db = await startMariadb();
  assert.equal(await db.mysql("SELECT 1+1"), "2");
  const selects = async () =>
    Number(
      (await db.mysql("SHOW GLOBAL STATUS LIKE 'Com_select'")).split("\t")[1],
    );
  const before = await selects();
  const out = await run("mysqlslap", [
    ...db.clientArgs,
    `--create-schema=${db.database}`,
    "--query=SELECT 1",
    "--concurrency=1",
    "--iterations=1",
    "--number-of-queries=10",
  ]);
  assert.match(out, /Average number of queries per client: 10\n/);
  assert.equal(await selects() - before, 10); // SHOW is not a Com_select
});

dbTest("redis: redis-cli and redis-benchmark", missingRedis(), async () => {
  await using redis = await startRedis();
  assert.equal(await redis.cli("SET", "coral", "42"), "OK");
  assert.equal(await redis.cli("GET", "coral"), "42");
  await run("redis-benchmark", [
    "-h",
    redis.host,
    "-p",
    String(redis.port),
    "-n",
    "100",
    "-t",
    "set",
    "-q",
  ]);
  const stats = await redis.cli("INFO", "commandstats");
  assert.match(stats, /cmdstat_set:calls=101,/);
});
