/**
 * The eBPF HTTP capture against real processes on the real kernel (as
 * root): Python test servers found by discovery, requests from curl, fetch
 * and raw sockets, records collected by a sink. Without the kernel features
 * or privileges these tests are skipped with the reason printed; with
 * CORAL_REQUIRE_EBPF=1 they fail instead.
 *
 * No timing assertions except the latency accuracy check: waits poll for the
 * expected number of exchanges, with a generous deadline.
 */
import assert from "node:assert/strict";
import { ebpfTest } from "../ffi/libbpf/testing.ts";
import {
  exeBaseName,
  HttpCapture,
  type HttpCaptureOptions,
} from "../src/capture/mod.ts";
import { beylaSchema } from "../src/config/schema.ts";
import { SSL_PROBES } from "../src/capture/tls_probes.ts";
import { Counters } from "../src/model/counters.ts";
import { Logger } from "../src/log.ts";
import { percentile } from "../src/aggregate/percentiles.ts";
import { CollectingSink } from "./support/collecting_sink.ts";
import {
  curl,
  hasNginx,
  hasNode,
  hasWrk,
  python3,
  type ServerKind,
  startNginx,
  startTestHttpServer,
  type TestHttpServer,
  wrk,
} from "./support/test_http_server.ts";

/** Test peers come from setup.sh: a missing one fails the test, never skips it. */
function requireTool(name: string, present: boolean): void {
  if (!present) throw new Error(`${name} not found: run bash setup.sh`);
}

interface Capture {
  capture: HttpCapture;
  sink: CollectingSink;
  counters: Counters;
}

/** Starts a capture whose discovery selects `servers` by their port, as "py-<index>". */
async function startCapture(
  servers: TestHttpServer[],
  options: Partial<HttpCaptureOptions> & { beylaExtra?: object } = {},
): Promise<Capture & AsyncDisposable> {
  const sink = new CollectingSink();
  const counters = new Counters();
  const capture = await HttpCapture.start({
    beyla: beylaSchema.parse({
      discovery: {
        services: servers.map((s, i) => ({
          name: `py-${i}`,
          open_port: s.port,
        })),
      },
      attributes: { test: "ebpf" },
      ...options.beylaExtra,
    }),
    sink,
    counters,
    log: new Logger("warn"),
    windowMs: 3_600_000, // windows are cut by flush() here
    ...options,
  });
  for (const server of servers) {
    assert.ok(
      capture.pids.has(server.pid),
      `server ${server.pid} not discovered`,
    );
  }
  return {
    capture,
    sink,
    counters,
    [Symbol.asyncDispose]: () => capture.shutdown(),
  };
}

/** Waits until the capture has seen `n` exchanges, then a little longer for a wrong extra one. */
async function settle(capture: HttpCapture, n: number): Promise<void> {
  const deadline = performance.now() + 15_000;
  while (capture.stats.exchanges < n) {
    if (performance.now() > deadline) {
      throw new Error(
        `timed out waiting for ${n} exchanges: ${
          JSON.stringify(capture.stats)
        }`,
      );
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  await new Promise((r) => setTimeout(r, 100));
  await capture.flush();
}

ebpfTest(
  "server: exact counts per method, route and status from curl and fetch",
  async () => {
    await using server = await startTestHttpServer();
    await using c = await startCapture([server]);

    // One curl, several URLs: one keep-alive connection.
    await curl(
      "-o",
      "/dev/null",
      "-o",
      "/dev/null",
      "-o",
      "/dev/null",
      "-o",
      "/dev/null",
      "-o",
      "/dev/null",
      "-o",
      "/dev/null",
      server.url("/ok"),
      server.url("/ok"),
      server.url("/missing"),
      server.url("/fail"),
      server.url("/users/1"),
      server.url("/users/2"),
    );
    for (let i = 0; i < 3; i++) {
      assert.equal(await curl(server.url("/ok")), "ok");
    }
    for (const body of ["a", "bb"]) {
      const response = await fetch(server.url("/echo"), {
        method: "POST",
        body,
      });
      assert.equal(await response.text(), body);
    }
    const chunked = await fetch(server.url("/chunked?n=5"));
    assert.equal((await chunked.text()).split("\n").length, 6);
    await settle(c.capture, 12);

    assert.deepEqual(c.sink.httpCounts(), {
      "server GET /chunked 200": 1,
      "server GET /fail 500": 1,
      "server GET /missing 404": 1,
      "server GET /ok 200": 5,
      "server GET /users/* 200": 2,
      "server POST /echo 200": 2,
    });
    for (const r of c.sink.http) {
      assert.equal(r.serviceName, "py-0");
      assert.equal(r.source, "ebpf");
      assert.deepEqual(r.attributes, { test: "ebpf" });
    }

    const spans = c.sink.spans;
    assert.equal(spans.length, 12);
    assert.deepEqual(
      spans.filter((s) => s.statusCode === 2).map((s) => s.name),
      ["GET /fail"],
    );
    for (const s of spans) {
      assert.equal(s.kind, "server");
      assert.equal(s.processPid, server.pid);
      assert.equal(s.attributes["server.port"], server.port);
      assert.equal(s.attributes["client.address"], "127.0.0.1");
      assert.match(s.traceId, /^[0-9a-f]{32}$/);
      assert.equal(s.parentSpanId, "");
      // Start times are Unix time: within the last minute.
      assert.ok(
        Math.abs(s.startTimeUs / 1000 - Date.now()) < 60_000,
        `${s.startTimeUs}`,
      );
    }
    // The six requests of the first curl shared one connection.
    const byClientPort = new Map<unknown, number>();
    for (const s of spans) {
      const port = s.attributes["client.port"];
      byClientPort.set(port, (byClientPort.get(port) ?? 0) + 1);
    }
    assert.ok(
      [...byClientPort.values()].includes(6),
      JSON.stringify([...byClientPort]),
    );
    const posts = spans.filter((s) =>
      s.attributes["http.request.method"] === "POST"
    );
    assert.ok(
      posts.every((s) => Number(s.attributes["http.request.size"]) > 0),
    );

    const kernel = c.capture.stats.kernel;
    assert.equal(kernel.events, 12);
    assert.equal(kernel.dropped, 0);
    assert.equal(c.capture.stats.exchanges, 12);
    assert.deepEqual(c.capture.stats.rejected, {});
  },
);

for (const kind of ["python", "node", "deno"] as ServerKind[]) {
  const name =
    `${kind} server: server and client records, keep-alive, chunked, POST`;
  ebpfTest(name, async () => {
    if (kind === "node") requireTool("node", hasNode());
    await using server = await startTestHttpServer(kind);
    await using upstream = await startTestHttpServer("python");
    await using c = await startCapture([server]);
    const paths = [
      "/ok",
      "/ok",
      "/missing",
      "/fail",
      "/users/1",
      "/chunked?n=3",
    ];
    await curl(...paths.flatMap((p) => ["-o", "/dev/null", server.url(p)]));
    for (const body of ["a", "bb"]) {
      const response = await fetch(server.url("/echo"), {
        method: "POST",
        body,
      });
      assert.equal(await response.text(), body);
    }
    for (let i = 0; i < 2; i++) {
      assert.equal(
        await curl(server.url(`/call?port=${upstream.port}&path=/users/${i}`)),
        "200",
      );
    }
    await settle(c.capture, 12);
    assert.deepEqual(c.sink.httpCounts(), {
      [`client GET /users/* 200 → ${upstream.port}`]: 2,
      "server GET /call 200": 2,
      "server GET /chunked 200": 1,
      "server GET /fail 500": 1,
      "server GET /missing 404": 1,
      "server GET /ok 200": 2,
      "server GET /users/* 200": 1,
      "server POST /echo 200": 2,
    });
    assert.ok(c.sink.spans.every((s) => s.processPid === server.pid));
    assert.deepEqual(c.capture.stats.rejected, {});
  });
}

{
  ebpfTest(
    "nginx: master and workers, sendfile, proxy_pass as a client",
    async () => {
      requireTool("nginx", hasNginx());
      await using upstream = await startTestHttpServer("python");
      await using nginx = await startNginx(upstream.port, { accessLog: true });
      await using c = await startCapture([nginx]);
      const paths = [
        "/ok",
        "/missing",
        "/fail",
        "/static/file.txt",
        "/proxy/users/7",
        "/proxy/missing",
        "/proxy/ok",
      ];
      await curl(...paths.flatMap((p) => ["-o", "/dev/null", nginx.url(p)]));
      await settle(c.capture, 10);
      assert.deepEqual(c.sink.httpCounts(), {
        [`client GET /missing 404 → ${upstream.port}`]: 1,
        [`client GET /ok 200 → ${upstream.port}`]: 1,
        [`client GET /users/* 200 → ${upstream.port}`]: 1,
        "server GET /fail 500": 1,
        "server GET /missing 404": 1,
        "server GET /ok 200": 1,
        "server GET /proxy/missing 404": 1,
        "server GET /proxy/ok 200": 1,
        "server GET /proxy/users/* 200": 1,
        "server GET /static/file.txt 200": 1,
      });
      assert.deepEqual(await nginx.accessLog(), {
        "GET /fail 500": 1,
        "GET /missing 404": 1,
        "GET /ok 200": 1,
        "GET /proxy/missing 404": 1,
        "GET /proxy/ok 200": 1,
        "GET /proxy/users/7 200": 1,
        "GET /static/file.txt 200": 1,
      });
      // Requests are served by the workers, which discovery found too.
      assert.ok(c.capture.pids.size >= 3, JSON.stringify(c.capture.stats.pids));
      assert.ok(c.sink.spans.every((s) => s.processPid !== nginx.pid));
    },
  );
}

{
  ebpfTest(
    "wrk keep-alive load on nginx: every request counted, none dropped",
    async () => {
      requireTool("nginx", hasNginx());
      requireTool("wrk", hasWrk());
      await using upstream = await startTestHttpServer("python");
      await using nginx = await startNginx(upstream.port, { accessLog: true });
      await using c = await startCapture([nginx]);
      const connections = 10;
      const completed = await wrk(nginx.url("/ok"), {
        connections,
        seconds: 2,
      });
      assert.ok(completed > 1000, `wrk completed only ${completed}`);
      await settle(c.capture, completed);
      // wrk stops with up to one request in flight per connection: nginx may
      // have answered those too.
      const counts = c.sink.httpCounts();
      const got = counts["server GET /ok 200"] ?? 0;
      // nginx logs each request it answered: the capture saw exactly those.
      assert.deepEqual(await nginx.accessLog(), { "GET /ok 200": got });
      assert.ok(
        got >= completed && got <= completed + connections,
        `captured ${got}, wrk completed ${completed}: ${
          JSON.stringify(counts)
        }`,
      );
      assert.deepEqual(Object.keys(counts), ["server GET /ok 200"]);
      const { kernel } = c.capture.stats;
      assert.equal(kernel.dropped, 0);
      assert.equal(kernel.events, got);
      assert.equal(c.sink.spans.length, got);
    },
  );
}

ebpfTest(
  "latency: a route sleeping 50 ms: P50, P95 and P99 from the histogram within 5 % of the spans' exact ones",
  async () => {
    await using server = await startTestHttpServer();
    await using c = await startCapture([server]);
    const n = 20;
    const urls = Array.from({ length: n }, () => server.url("/sleep/50"));
    await curl(...urls.flatMap((u) => ["-o", "/dev/null", u]));
    await settle(c.capture, n);

    const [record, ...rest] = c.sink.http;
    assert.equal(rest.length, 0);
    assert.ok(record);
    assert.equal(record.route, "/sleep/*"); // digits are an id to the route heuristics
    const h = record.histogram;
    assert.equal(h.count, n);
    // Every request is a span (sampling 1) with its exact duration: the
    // reference, whatever the machine's load did to the 50 ms sleeps.
    const exactMs = c.sink.spans.map((s) => s.durationUs / 1000)
      .sort((a, b) => a - b);
    assert.equal(exactMs.length, n);
    for (const q of [0.5, 0.95, 0.99]) {
      const p = percentile(h.boundsMs, h.counts, q, {
        min: h.minMs,
        max: h.maxMs,
      });
      const exact = exactMs[Math.min(n - 1, Math.ceil(q * n) - 1)]!;
      assert.ok(
        p !== null && Math.abs(p - exact) / exact <= 0.05,
        `P${
          q * 100
        } ${p} ms, exact ${exact} ms (min ${h.minMs}, max ${h.maxMs})`,
      );
    }
    assert.ok(h.minMs !== null && h.minMs >= 50, `min ${h.minMs} ms`);
    assert.ok(
      Math.abs(exactMs[0]! - h.minMs) < 0.01 &&
        Math.abs(exactMs[n - 1]! - h.maxMs!) < 0.01,
      `span durations ${exactMs[0]}…${
        exactMs[n - 1]
      } ms, histogram ${h.minMs}…${h.maxMs} ms`,
    );
  },
);

ebpfTest(
  "discovery: a rule without a name uses OTEL_SERVICE_NAME, else the executable's name",
  async () => {
    await using named = await startTestHttpServer("python", {
      env: { OTEL_SERVICE_NAME: "checkout-py" },
    });
    // No OTEL_SERVICE_NAME even if the test runs with one.
    await using plain = await startTestHttpServer("python", {
      clearEnv: true,
      env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
    });
    // /proc/PID/exe is the interpreter with symlinks resolved.
    const exeName = exeBaseName(Deno.realPathSync(python3()));
    assert.match(exeName, /^python3/);
    await using c = await startCapture([named, plain], {
      beylaExtra: {
        discovery: {
          services: [{ open_port: named.port }, { open_port: plain.port }],
        },
      },
    });
    assert.deepEqual(
      c.capture.stats.pids,
      { [named.pid]: "checkout-py", [plain.pid]: exeName },
    );
    await curl(named.url("/ok"));
    await curl(plain.url("/missing"));
    await settle(c.capture, 2);
    assert.deepEqual(
      c.sink.http.map((r) => [r.serviceName, r.route, r.statusCode]).sort(),
      [["checkout-py", "/ok", 200], [exeName, "/missing", 404]],
    );
    assert.deepEqual(
      c.sink.spans.map((s) => [s.serviceName, s.processPid]).sort(),
      [["checkout-py", named.pid], [exeName, plain.pid]],
    );
  },
);

ebpfTest("a process discovery does not select produces nothing", async () => {
  await using observed = await startTestHttpServer();
  await using other = await startTestHttpServer();
  await using c = await startCapture([observed]);
  assert.equal(c.capture.pids.has(other.pid), false);
  for (let i = 0; i < 3; i++) await curl(other.url("/ok"));
  await curl(observed.url("/ok")); // a marker: the one exchange expected
  await settle(c.capture, 1);

  assert.deepEqual(c.sink.httpCounts(), { "server GET /ok 200": 1 });
  assert.equal(c.sink.spans.length, 1);
  assert.equal(c.sink.spans[0]?.processPid, observed.pid);
  assert.equal(c.capture.stats.kernel.events, 1);
});

ebpfTest(
  "client: an observed process calling another server yields client records",
  async () => {
    await using observed = await startTestHttpServer();
    await using upstream = await startTestHttpServer();
    await using c = await startCapture([observed]);
    for (let i = 0; i < 2; i++) {
      await curl(
        observed.url(`/call?port=${upstream.port}&path=/users/${i + 10}`),
      );
    }
    await curl(observed.url(`/call?port=${upstream.port}&path=/missing`));
    await settle(c.capture, 6);

    assert.deepEqual(c.sink.httpCounts(), {
      [`client GET /missing 404 → ${upstream.port}`]: 1,
      [`client GET /users/* 200 → ${upstream.port}`]: 2,
      "server GET /call 200": 3,
    });
    const clients = c.sink.spans.filter((s) => s.kind === "client");
    assert.equal(clients.length, 3);
    for (const s of clients) {
      assert.equal(s.processPid, observed.pid);
      assert.equal(s.attributes["server.address"], "127.0.0.1");
      assert.equal(s.attributes["server.port"], upstream.port);
    }
    // A client span is an error from 400.
    assert.deepEqual(
      clients.filter((s) => s.statusCode === 2).map((s) => s.name),
      ["GET /missing"],
    );
    const record = c.sink.http.find((r) => r.side === "client");
    assert.equal(record?.attributes["server.address"], "127.0.0.1");
  },
);

ebpfTest("traceparent: the span joins the caller's trace", async () => {
  await using server = await startTestHttpServer();
  await using c = await startCapture([server]);
  const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
  const parent = "00f067aa0ba902b7";
  await curl(
    "-H",
    `traceparent: 00-${traceId}-${parent}-01`,
    server.url("/ok"),
  );
  await curl(server.url("/ok"));
  await settle(c.capture, 2);

  const [withParent, without] = c.sink.spans;
  assert.equal(withParent?.traceId, traceId);
  assert.equal(withParent?.parentSpanId, parent);
  assert.notEqual(withParent?.spanId, parent);
  assert.notEqual(without?.traceId, traceId);
  assert.equal(without?.parentSpanId, "");
});

ebpfTest("sampling: rate 0 keeps metrics and error spans only", async () => {
  await using server = await startTestHttpServer();
  await using c = await startCapture([server], {
    beylaExtra: { sampling: { rate: 0 } },
  });
  await curl(
    "-o",
    "/dev/null",
    "-o",
    "/dev/null",
    server.url("/ok"),
    server.url("/fail"),
  );
  await settle(c.capture, 2);
  assert.deepEqual(c.sink.httpCounts(), {
    "server GET /fail 500": 1,
    "server GET /ok 200": 1,
  });
  assert.deepEqual(c.sink.spans.map((s) => s.name), ["GET /fail"]);
  assert.equal(c.counters.get("ebpf.http.spans.sampled_out"), 1);
});

ebpfTest(
  "a keep-alive connection opened before the capture started is picked up",
  async () => {
    await using server = await startTestHttpServer();
    const conn = await Deno.connect({
      hostname: "127.0.0.1",
      port: server.port,
    });
    try {
      const exchange = async (path: string) => {
        await conn.write(new TextEncoder().encode(
          `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`,
        ));
        const buf = new Uint8Array(4096);
        let text = "";
        // The test server's replies are small and end with their body.
        while (!/\r\n\r\n[\s\S]*(ok|missing)$/.test(text)) {
          const n = await conn.read(buf);
          if (n === null) throw new Error(`connection closed: ${text}`);
          text += new TextDecoder().decode(buf.subarray(0, n));
        }
        return text;
      };
      assert.match(await exchange("/ok"), /^HTTP\/1.1 200/);
      await using c = await startCapture([server]);
      assert.match(await exchange("/missing"), /^HTTP\/1.1 404/);
      assert.match(await exchange("/ok"), /^HTTP\/1.1 200/);
      await settle(c.capture, 2);
      assert.deepEqual(c.sink.httpCounts(), {
        "server GET /missing 404": 1,
        "server GET /ok 200": 1,
      });
    } finally {
      conn.close();
    }
  },
);

ebpfTest(
  "a traced process that exits leaves no connection state behind",
  async () => {
    const server = await startTestHttpServer();
    await using c = await startCapture([server]);
    // A keep-alive connection the server still holds when it is killed: the
    // kernel closes it without close(2), so only the exit hook frees it.
    const conn = await Deno.connect({
      hostname: "127.0.0.1",
      port: server.port,
    });
    try {
      await conn.write(
        new TextEncoder().encode("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"),
      );
      await conn.read(new Uint8Array(4096));
      await settle(c.capture, 1);
      const opened = c.capture.stats.kernel.conns_opened;
      assert.ok(opened >= 1);
      assert.equal(c.capture.stats.kernel.conns_closed, 0);
      await server.close(); // SIGKILL
      const deadline = performance.now() + 10_000;
      while (c.capture.stats.kernel.conns_closed < opened) {
        assert.ok(
          performance.now() < deadline,
          JSON.stringify(c.capture.stats.kernel),
        );
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.equal(c.capture.stats.kernel.conns_closed, opened);
    } finally {
      conn.close();
    }
  },
);

ebpfTest("addPid/removePid: the filter follows the calls", async () => {
  await using server = await startTestHttpServer();
  await using c = await startCapture([], { discovery: false });
  await curl(server.url("/ok")); // not traced yet
  c.capture.addPid(server.pid, "manual");
  await curl(server.url("/missing"));
  await settle(c.capture, 1);
  c.capture.removePid(server.pid);
  await curl(server.url("/fail")); // not traced any more
  await settle(c.capture, 1);
  assert.deepEqual(c.sink.httpCounts(), { "server GET /missing 404": 1 });
  assert.equal(c.sink.http[0]?.serviceName, "manual");
  assert.equal(c.capture.stats.kernel.events, 1);
});

interface BpftoolProg {
  id: number;
  name?: string;
}

function bpftoolJson<T>(...args: string[]): T {
  const out = new Deno.Command("bpftool", { args: ["-j", ...args] })
    .outputSync();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout)) as T;
}

/** Loaded programs whose (kernel-truncated) name starts with coral_http. */
function ourPrograms(): number[] {
  return bpftoolJson<BpftoolProg[]>("prog", "list")
    .filter((p) => p.name?.startsWith("coral_http"))
    .map((p) => p.id);
}

/**
 * Programs of the http object while it runs: 16 syscall programs, process
 * exit and fork, and 11 for OpenSSL; links: all but the OpenSSL ones, which
 * attach only to a libssl a traced process maps.
 */
const PROGRAMS = 29;
const LINKS = 18;

ebpfTest(
  "shutdown(): bpftool lists no program or link of ours, and it is safe twice",
  async () => {
    assert.deepEqual(
      ourPrograms(),
      [],
      "coral_http programs left by an earlier run",
    );
    await using server = await startTestHttpServer();
    const c = await startCapture([server]);
    const progs = ourPrograms();
    assert.equal(
      progs.length,
      PROGRAMS,
      `coral_http programs while running: ${progs}`,
    );
    const links = () =>
      bpftoolJson<{ prog_id: number }[]>("link", "list").filter((l) =>
        progs.includes(l.prog_id)
      );
    // Plus one link per OpenSSL probe when the server maps a libssl.
    const tlsLinks = c.capture.stats.tls.libraries.length * SSL_PROBES.length;
    assert.equal(links().length, LINKS + tlsLinks);
    await curl(server.url("/ok"));
    while (c.capture.stats.exchanges < 1) {
      await new Promise((r) => setTimeout(r, 10));
    }
    await c.capture.shutdown();
    await c.capture.shutdown();
    assert.deepEqual(links(), []);
    assert.deepEqual(ourPrograms(), []);
    // The open window was flushed on the way out.
    assert.deepEqual(c.sink.httpCounts(), { "server GET /ok 200": 1 });
    assert.throws(
      () => c.capture.addPid(1, "x"),
      /addPid\(\) after shutdown\(\)/,
    );
  },
);
