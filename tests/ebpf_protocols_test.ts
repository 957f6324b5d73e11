/**
 * The eBPF capture of stream protocols against real servers on the real
 * kernel (as root): Redis, PostgreSQL and MariaDB from apt with their own
 * clients (redis-benchmark, pgbench, psql, mariadb), a grpc-js server, and
 * nginx over HTTPS (plaintext from the OpenSSL uprobes).
 * Each server is selected by discovery through its port, so what is counted
 * is the server's side of every call. Counts are exact: they equal what the
 * clients sent.
 *
 * Without the kernel features or privileges these tests are skipped with the
 * reason printed; with CORAL_REQUIRE_EBPF=1 they fail instead.
 */
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import mysql from "mysql2/promise";
import { Buffer } from "node:buffer";
import { ebpfTest } from "../ffi/libbpf/testing.ts";
import { HttpCapture } from "../src/capture/mod.ts";
import { beylaSchema } from "../src/config/schema.ts";
import { Counters } from "../src/model/counters.ts";
import { Logger } from "../src/log.ts";
import { CollectingSink } from "./support/collecting_sink.ts";
import {
  startMariadb,
  startPostgres,
  startRedis,
} from "./support/db_servers.ts";
import { ECHO_SERVICE } from "./support/grpc_test_server.ts";
import {
  curl,
  startNginx,
  startTestHttpServer,
  wrk,
} from "./support/test_http_server.ts";

interface Capture extends AsyncDisposable {
  capture: HttpCapture;
  sink: CollectingSink;
  counters: Counters;
}

/** A capture whose discovery selects the process listening on `port` as `name`. */
async function captureOf(
  name: string,
  port: number,
  beyla: object = {},
  processes = 1,
): Promise<Capture> {
  const sink = new CollectingSink();
  const counters = new Counters();
  const capture = await HttpCapture.start({
    beyla: beylaSchema.parse({
      discovery: { services: [{ name, open_port: port }] },
      ...beyla,
    }),
    sink,
    counters,
    log: new Logger("warn"),
    windowMs: 3_600_000, // cut by flush()
  });
  assert.equal(capture.pids.size, processes, `processes on port ${port}`);
  return {
    capture,
    sink,
    counters,
    [Symbol.asyncDispose]: () => capture.shutdown(),
  };
}

/** Flushes until `total(sink)` reaches `n` (or a deadline), then once more for a wrong extra. */
async function settle(
  c: Capture,
  n: number,
  total: (sink: CollectingSink) => number,
): Promise<void> {
  const deadline = performance.now() + 15_000;
  for (;;) {
    await c.capture.flush();
    if (total(c.sink) >= n) break;
    if (performance.now() > deadline) {
      throw new Error(
        `timed out waiting for ${n} calls (have ${total(c.sink)}): ${
          JSON.stringify(c.capture.stats)
        } ${JSON.stringify(c.counters.snapshot("ebpf"))}`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await new Promise((r) => setTimeout(r, 200));
  await c.capture.flush();
}

const sqlTotal = (sink: CollectingSink) =>
  sink.sql.reduce((n, r) => n + r.histogram.count, 0);
const grpcTotal = (sink: CollectingSink) =>
  sink.grpc.reduce((n, r) => n + r.histogram.count, 0);

async function run(
  command: string,
  args: string[],
  env?: Record<string, string>,
) {
  const out = await new Deno.Command(command, { args, env }).output();
  const text = new TextDecoder().decode(out.stdout) +
    new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`${command} ${args.join(" ")}: ${text}`);
  return text;
}

ebpfTest(
  "redis: redis-benchmark, pipelined and not, and an error reply: exact counts per command",
  async () => {
    await using redis = await startRedis();
    await using c = await captureOf("redis", redis.port);
    const bench = (extra: string[]) =>
      run("redis-benchmark", [
        "-h",
        redis.host,
        "-p",
        String(redis.port),
        "-n",
        "160",
        "-c",
        "2",
        "-t",
        "set,get",
        "-q",
        ...extra,
      ]);
    await bench([]);
    await bench(["-P", "16"]);
    await redis.cli("SET", "word", "hello");
    // LPUSH on a string: a WRONGTYPE error reply.
    await redis.cli("LPUSH", "word", "x");
    // RESP3: redis-cli -3 says HELLO 3 first; HGETALL then answers a map.
    await redis.cli("-3", "HSET", "h", "f", "v");
    await redis.cli("-3", "HGETALL", "h");
    // redis-benchmark asks CONFIG GET twice at start, per run.
    await settle(c, 160 * 4 + 4 + 2 + 4, sqlTotal);
    assert.deepEqual(c.sink.sqlCounts(), {
      "server redis CONFIG GET": 4,
      "server redis GET": 320,
      "server redis HELLO": 2,
      "server redis HGETALL": 1,
      "server redis HSET": 1,
      "server redis LPUSH [WRONGTYPE]": 1,
      "server redis SET": 321,
    });
    assert.equal(c.counters.get("ebpf.redis.parser.resyncs"), 0);
    // Every client has gone: each connection's close record freed its parser.
    assert.deepEqual(c.counters.snapshot("ebpf.stream.rejected"), {});
    assert.equal(c.capture.stats.streamConnections, 0);
    const spans = c.sink.spans.filter((s) => s.name === "LPUSH");
    assert.equal(spans.length, 1);
    assert.equal(spans[0]!.statusCode, 2);
    assert.equal(spans[0]!.kind, "server");
  },
);

ebpfTest(
  "postgresql: pgbench simple and prepared, psql errors: exact counts, no literal stored",
  async () => {
    await using pg = await startPostgres();
    const pgbench = `${pg.binDir}/pgbench`;
    await run(pgbench, ["-i", "-s", "1", "-q"], pg.env); // before the capture
    await using c = await captureOf("db", pg.port);
    const transactions = 20;
    for (const mode of ["simple", "prepared"]) {
      const report = await run(
        pgbench,
        ["-n", "-c", "1", "-t", String(transactions), "-M", mode],
        pg.env,
      );
      assert.match(
        report,
        new RegExp(
          `number of transactions actually processed: ${transactions}/${transactions}`,
        ),
      );
    }
    await assert.rejects(pg.psql("SELECT * FROM no_such_table"));
    const perTransaction = 7; // BEGIN, 3 UPDATE, SELECT, INSERT, END
    await settle(c, 2 * transactions * perTransaction + 1 + 4, sqlTotal);
    const t = 2 * transactions;
    assert.deepEqual(c.sink.sqlCounts(), {
      "server postgresql BEGIN": t,
      "server postgresql END": t,
      "server postgresql INSERT pgbench_history": t,
      "server postgresql SELECT pgbench_accounts": t,
      "server postgresql UPDATE pgbench_accounts": t,
      "server postgresql UPDATE pgbench_branches": t,
      "server postgresql UPDATE pgbench_tellers": t,
      "server postgresql SELECT no_such_table [42P01]": 1,
      // pgbench's own start, once per run: the table check and the scale.
      "server postgresql SELECT pg_catalog.pg_class": 2,
      "server postgresql SELECT pgbench_branches": 2,
    });
    assert.equal(c.counters.get("ebpf.postgres.parser.resyncs"), 0);
    // The backends are children of the postmaster that discovery found.
    assert.ok(c.counters.get("ebpf.http.kernel.forks_followed") >= 2);
    for (const span of c.sink.spans) {
      const text = String(span.attributes["db.query.text"] ?? "");
      // $1, $2 are placeholders of prepared statements, not literals.
      assert.doesNotMatch(
        text,
        /(?<!\$)\b\d+\b|'/,
        `a literal stored: ${text}`,
      );
    }
  },
);

ebpfTest(
  "mariadb: queries and an error packet from the mariadb client: exact counts",
  async () => {
    await using db = await startMariadb();
    await db.mysql("CREATE TABLE items (id INT PRIMARY KEY, name TEXT)");
    await using c = await captureOf("mariadb", db.port);
    const statements = [
      ...Array.from(
        { length: 10 },
        (_, i) => `INSERT INTO items VALUES (${i}, 'name ${i}');`,
      ),
      ...Array.from(
        { length: 5 },
        (_, i) => `SELECT name FROM items WHERE id = ${i};`,
      ),
      "UPDATE items SET name = 'x' WHERE id = 3;",
    ].join("\n");
    await db.mysql(statements);
    await assert.rejects(db.mysql("SELECT * FROM no_such_table"));
    await settle(c, 17, sqlTotal);
    assert.deepEqual(c.sink.sqlCounts(), {
      "server mysql INSERT items": 10,
      "server mysql SELECT items": 5,
      "server mysql UPDATE items": 1,
      "server mysql SELECT no_such_table [1146]": 1,
    });
    assert.equal(c.counters.get("ebpf.mysql.parser.resyncs"), 0);
    for (const span of c.sink.spans) {
      const text = String(span.attributes["db.query.text"] ?? "");
      assert.doesNotMatch(text, /'|\b\d+\b/, `a literal stored: ${text}`);
    }
  },
);

ebpfTest(
  "mariadb: prepared statements over the binary protocol (mysql2): executions counted, a failed prepare is an error",
  async () => {
    await using db = await startMariadb();
    await db.mysql("CREATE TABLE items (id INT PRIMARY KEY, name TEXT)");
    await db.mysql("INSERT INTO items VALUES (1, 'one'), (2, 'two')");
    await using c = await captureOf("mariadb", db.port);
    const connection = await mysql.createConnection({
      host: db.host,
      port: db.port,
      user: db.user,
      database: db.database,
    });
    try {
      for (let i = 0; i < 6; i++) {
        // mysql2 prepares once per connection and executes six times.
        await connection.execute("SELECT name FROM items WHERE id = ?", [
          1 + i % 2,
        ]);
      }
      await connection.execute("UPDATE items SET name = ? WHERE id = ?", [
        "uno",
        1,
      ]);
      await assert.rejects(
        connection.execute("SELECT * FROM no_such_table WHERE id = ?", [1]),
      );
    } finally {
      await connection.end();
    }
    await settle(c, 8, sqlTotal);
    assert.deepEqual(c.sink.sqlCounts(), {
      "server mysql SELECT items": 6,
      "server mysql SELECT no_such_table [1146]": 1,
      "server mysql UPDATE items": 1,
    });
    assert.equal(
      c.counters.get("ebpf.sql.mysql.other_commands.COM_STMT_PREPARE"),
      2,
    );
  },
);

ebpfTest(
  "grpc: unary, server streaming and error statuses from grpc-js: exact counts per method and status",
  async () => {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("./support/grpc_test_server.ts", import.meta.url).pathname,
      ],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    try {
      const reader = child.stdout.pipeThrough(new TextDecoderStream())
        .getReader();
      const port = Number((await reader.read()).value?.trim());
      assert.ok(port > 0, "the grpc server did not say its port");
      await using c = await captureOf("echo", port);
      const Client = grpc.makeGenericClientConstructor(ECHO_SERVICE, "Echo");
      const client = new Client(
        `127.0.0.1:${port}`,
        grpc.credentials.createInsecure(),
      ) as unknown as Record<string, (...args: unknown[]) => unknown>;
      const unary = (
        name: string,
        body: Buffer,
        metadata = new grpc.Metadata(),
      ) =>
        new Promise<grpc.StatusObject | null>((resolve) => {
          client[name]!(
            body,
            metadata,
            (error: grpc.ServiceError | null) => resolve(error),
          );
        });
      for (let i = 0; i < 9; i++) {
        assert.equal(await unary("Unary", Buffer.from("hi")), null);
      }
      // The caller's trace context in the metadata: the server span joins it.
      const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
      const parent = "00f067aa0ba902b7";
      const metadata = new grpc.Metadata();
      metadata.set("traceparent", `00-${traceId}-${parent}-01`);
      assert.equal(await unary("Unary", Buffer.from("hi"), metadata), null);
      assert.equal((await unary("Fail", Buffer.from("5")))?.code, 5);
      assert.equal((await unary("Fail", Buffer.from("13")))?.code, 13);
      for (let i = 0; i < 3; i++) {
        const messages = await new Promise<number>((resolve, reject) => {
          let n = 0;
          const call = client.Stream!(
            Buffer.from([4]),
          ) as grpc.ClientReadableStream<Buffer>;
          call.on("data", () => n++);
          call.on("end", () => resolve(n));
          call.on("error", reject);
        });
        assert.equal(messages, 4);
      }
      (client as unknown as grpc.Client).close();
      await settle(c, 15, grpcTotal);
      assert.deepEqual(c.sink.grpcCounts(), {
        "server coral.test.Echo/Fail 13": 1,
        "server coral.test.Echo/Fail 5": 1,
        "server coral.test.Echo/Stream 0": 3,
        "server coral.test.Echo/Unary 0": 10,
      });
      assert.equal(c.counters.get("ebpf.http2.unnamed_requests"), 0);
      const joined = c.sink.spans.filter((s) => s.traceId === traceId);
      assert.equal(joined.length, 1);
      assert.equal(joined[0]!.parentSpanId, parent);
      assert.equal(joined[0]!.name, "coral.test.Echo/Unary");
      const failed = c.sink.spans.filter((s) => s.statusCode === 2);
      // On the server side only INTERNAL of the two is an error (OTel rules).
      assert.deepEqual(
        failed.map((s) => s.attributes["rpc.grpc.status_code"]),
        [13],
      );
    } finally {
      child.kill("SIGKILL");
      await child.status;
    }
  },
);

ebpfTest(
  "grpc: a connection opened before the capture is picked up mid-stream, never with invented names",
  async () => {
    await using server = await startGrpcServer();
    const client = echoClient(server.port);
    try {
      // Before the capture: the connection, its preface and HPACK tables.
      for (let i = 0; i < 3; i++) {
        assert.equal(await unaryCall(client, "Unary"), null);
      }
      await using c = await captureOf("echo", server.port);
      for (let i = 0; i < 5; i++) {
        assert.equal(await unaryCall(client, "Unary"), null);
      }
      await settle(c, 5, grpcTotal);
      // grpc-js (through Deno's node:http2) sends :path as a literal, so the
      // method is decoded; grpc-status comes from the dynamic table it built
      // before the capture, so it is not: stored as -2, not as an error.
      assert.deepEqual(c.sink.grpcCounts(), {
        "server coral.test.Echo/Unary -2": 5,
      });
      assert.equal(c.counters.get("ebpf.grpc.status_undecoded"), 5);
      assert.equal(c.counters.get("ebpf.http2.unnamed_requests"), 0);
      assert.ok(c.sink.spans.every((span) => span.statusCode !== 2));
      assert.equal(c.counters.get("ebpf.stream.side_from_listening_ports"), 1);
    } finally {
      client.close();
    }
  },
);

ebpfTest(
  "tls: nginx over HTTPS with curl and wrk: the same counts as over plain HTTP",
  async () => {
    await using upstream = await startTestHttpServer("python");
    await using nginx = await startNginx(upstream.port, { accessLog: true });
    await using c = await captureOf("nginx", nginx.port, {}, 3); // master, 2 workers
    // The HTTPS port belongs to the same processes: one discovery rule is enough.
    const tls = c.capture.stats.tls;
    assert.equal(tls.libraries.length, 1, JSON.stringify(tls));
    assert.match(tls.libraries[0]!, /libssl\.so/);
    for (const path of ["/ok", "/ok", "/missing", "/fail"]) {
      await curl("-k", "-o", "/dev/null", nginx.tlsUrl(path));
    }
    const requests = await wrk(nginx.tlsUrl("/ok"), {
      connections: 4,
      seconds: 1,
    });
    await settleHttp(c, 4 + requests);
    const log = await nginx.accessLog();
    await settleHttp(c, Object.values(log).reduce((a, b) => a + b, 0));
    assert.deepEqual(c.sink.httpCounts(), {
      "server GET /fail 500": log["GET /fail 500"],
      "server GET /missing 404": log["GET /missing 404"],
      "server GET /ok 200": log["GET /ok 200"],
    });
    // wrk counts the answers it read; nginx also logs the few it was still
    // answering when wrk closed its connections.
    assert.ok(log["GET /ok 200"]! >= 2 + requests);
    assert.equal(c.capture.stats.kernel.tls_no_socket, 0);
  },
);

ebpfTest(
  "tls + http2: nginx over HTTPS with HTTP/2 (curl --http2): requests named through HPACK",
  async () => {
    await using upstream = await startTestHttpServer("python");
    await using nginx = await startNginx(upstream.port, { accessLog: true });
    await using c = await captureOf("nginx", nginx.port, {}, 3);
    // Several requests on one connection: later ones use HPACK's dynamic table.
    await curl(
      "-k",
      "--http2",
      "-o",
      "/dev/null",
      "-o",
      "/dev/null",
      "-o",
      "/dev/null",
      "-o",
      "/dev/null",
      nginx.h2Url("/ok"),
      nginx.h2Url("/ok"),
      nginx.h2Url("/missing"),
      nginx.h2Url("/fail"),
    );
    await settleHttp(c, 4);
    assert.deepEqual(c.sink.httpCounts(), {
      "server GET /fail 500": 1,
      "server GET /missing 404": 1,
      "server GET /ok 200": 2,
    });
    assert.equal(c.counters.get("ebpf.http2.connections"), 1);
    assert.equal(c.counters.get("ebpf.http2.unnamed_requests"), 0);
  },
);

/** The Echo server (tests/support/grpc_test_server.ts) in its own process. */
async function startGrpcServer(): Promise<AsyncDisposable & { port: number }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("./support/grpc_test_server.ts", import.meta.url).pathname,
    ],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const port = Number((await reader.read()).value?.trim());
  reader.releaseLock();
  const stop = async () => {
    child.kill("SIGKILL");
    await child.status;
    await child.stdout.cancel().catch(() => {});
  };
  if (!(port > 0)) {
    await stop();
    throw new Error("the grpc server did not say its port");
  }
  return { port, [Symbol.asyncDispose]: stop };
}

function echoClient(port: number): grpc.Client {
  const Client = grpc.makeGenericClientConstructor(ECHO_SERVICE, "Echo");
  return new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}

function unaryCall(
  client: grpc.Client,
  name: string,
  body = Buffer.from("hi"),
): Promise<grpc.ServiceError | null> {
  const method =
    (client as unknown as Record<string, (...a: unknown[]) => void>)[
      name
    ]!;
  return new Promise((resolve) => {
    method.call(
      client,
      body,
      new grpc.Metadata(),
      (error: grpc.ServiceError | null) => resolve(error),
    );
  });
}

async function settleHttp(c: Capture, n: number): Promise<void> {
  await settle(
    c,
    n,
    (sink) => sink.http.reduce((t, r) => t + r.histogram.count, 0),
  );
}
