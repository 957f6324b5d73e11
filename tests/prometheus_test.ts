/**
 * End to end: OTLP histograms sent to the real agent come out of its
 * `GET /metrics` as valid exposition text (`promtool check metrics`), and a
 * real Prometheus server scraping it answers exactly the counts sent.
 */
import assert from "node:assert/strict";
import { AgentProcess, freePort } from "./support/agent_process.ts";
import {
  type HistogramSpec,
  metricsRequestProtobuf,
} from "./support/otlp_bodies.ts";

const agent = await AgentProcess.start();
const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });

const now = Date.now();
/** OpenTelemetry's default bounds (s): each count stays in its own bucket. */
const OTEL_BOUNDS = [
  0,
  0.005,
  0.01,
  0.025,
  0.05,
  0.075,
  0.1,
  0.25,
  0.5,
  0.75,
  1,
  2.5,
  5,
  7.5,
  10,
];

function histogramSpec(
  name: string,
  attributes: Record<string, string | number>,
  counts: number[],
  sum: number,
): HistogramSpec {
  return {
    name,
    unit: "s",
    attributes,
    bounds: OTEL_BOUNDS,
    counts,
    sum,
    timeMs: now - 30_000,
  };
}

/** 16 counts (15 bounds + Inf) with `n` values at `index`. */
function at(...pairs: [index: number, n: number][]): number[] {
  const counts = new Array<number>(16).fill(0);
  for (const [i, n] of pairs) counts[i] = n;
  return counts;
}

async function send(service: string, histograms: HistogramSpec[]) {
  const response = await fetch(`${agent.httpUrl}/v1/metrics`, {
    method: "POST",
    body: metricsRequestProtobuf(service, histograms),
    headers: { "content-type": "application/x-protobuf" },
  });
  await response.body?.cancel();
  assert.equal(response.status, 200, `OTLP export of ${service}`);
}

const GET_ITEM = {
  "http.request.method": "GET",
  "http.route": "/items/:id",
  "http.response.status_code": 200,
};
const POST_ITEM = {
  "http.request.method": "POST",
  "http.route": "/items",
  "http.response.status_code": 500,
};

async function sendFirst(): Promise<void> {
  await send("shop", [
    // 7 requests: 3 in (0.005, 0.01], 4 in (0.1, 0.25].
    histogramSpec(
      "http.server.request.duration",
      GET_ITEM,
      at([2, 3], [7, 4]),
      0.9,
    ),
    // 2 requests over 10 s.
    histogramSpec("http.server.request.duration", POST_ITEM, at([15, 2]), 30),
    // 5 client calls to api.example:443.
    histogramSpec(
      "http.client.request.duration",
      {
        ...GET_ITEM,
        "server.address": "api.example",
        "server.port": 443,
      },
      at([4, 5]),
      0.2,
    ),
    histogramSpec(
      "db.client.operation.duration",
      {
        "db.system.name": "redis",
        "db.operation.name": "GET",
      },
      at([1, 11]),
      0.011,
    ),
  ]);
  await send("cart", [
    histogramSpec(
      "rpc.server.call.duration",
      {
        "rpc.service": "shop.Cart",
        "rpc.method": "Add",
        "rpc.grpc.status_code": 0,
      },
      at([3, 6]),
      0.1,
    ),
  ]);
}

test("GET /metrics: valid exposition text, promtool check metrics passes", async () => {
  await sendFirst();
  const response = await fetch(`${agent.apiUrl}/metrics`);
  assert.equal(response.status, 200);
  assert.equal(
    response.headers.get("content-type"),
    "text/plain; version=0.0.4; charset=utf-8",
  );
  const text = await response.text();
  const shop =
    'service_name="shop",http_request_method="GET",http_route="/items/:id",http_response_status_code="200"';
  assert.ok(
    text.includes(
      `http_server_request_duration_seconds_bucket{${shop},le="0.01"} 3\n`,
    ),
    text,
  );
  assert.ok(
    text.includes(`http_server_request_duration_seconds_count{${shop}} 7\n`),
  );
  assert.ok(
    text.includes(
      'rpc_server_duration_seconds_count{service_name="cart",rpc_system="grpc",rpc_method="shop.Cart/Add",rpc_grpc_status_code="0"} 6\n',
    ),
  );
  assert.ok(
    text.includes(
      'coral_agent_events_total{name="otlp.metrics.points.received"} 5\n',
    ),
  );

  const promtool = new Deno.Command("promtool", {
    args: ["check", "metrics"],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = promtool.stdin.getWriter();
  await writer.write(new TextEncoder().encode(text));
  await writer.close();
  const out = await promtool.output();
  const decoder = new TextDecoder();
  const report = decoder.decode(out.stdout) + decoder.decode(out.stderr);
  assert.equal(out.code, 0, report);
  assert.equal(report.trim(), "", "promtool lint findings");
});

test("GET /metrics: other methods are refused and the agent keeps serving", async () => {
  const post = await fetch(`${agent.apiUrl}/metrics`, {
    method: "POST",
    body: "x",
  });
  assert.equal(post.status, 405);
  await post.body?.cancel();
  const get = await fetch(`${agent.apiUrl}/metrics`);
  assert.equal(get.status, 200);
  await get.body?.cancel();
});

/** A private Prometheus server scraping the agent every second. */
class PrometheusServer {
  #log = "";
  #logDone: Promise<void>;
  private constructor(
    readonly dir: string,
    readonly url: string,
    readonly child: Deno.ChildProcess,
  ) {
    this.#logDone = (async () => {
      const decoder = new TextDecoder();
      for await (const chunk of child.stderr) {
        this.#log += decoder.decode(chunk, { stream: true });
      }
    })();
  }

  get log(): string {
    return this.#log;
  }

  static async start(target: string): Promise<PrometheusServer> {
    const dir = await Deno.makeTempDir({ prefix: "coral-prometheus-" });
    await Deno.writeTextFile(
      `${dir}/prometheus.yml`,
      [
        "global:",
        "  scrape_interval: 1s",
        "  scrape_timeout: 1s",
        "scrape_configs:",
        "  - job_name: coral",
        "    metrics_path: /metrics",
        "    static_configs:",
        `      - targets: ["${target}"]`,
        "",
      ].join("\n"),
    );
    const listen = `127.0.0.1:${freePort()}`;
    const child = new Deno.Command("prometheus", {
      args: [
        `--config.file=${dir}/prometheus.yml`,
        `--storage.tsdb.path=${dir}/data`,
        `--web.listen-address=${listen}`,
      ],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    return new PrometheusServer(dir, `http://${listen}`, child);
  }

  /** The instant vector of a PromQL query: labels → value. */
  async query(promql: string): Promise<Map<string, number>> {
    const response = await fetch(
      `${this.url}/api/v1/query?query=${encodeURIComponent(promql)}`,
    );
    const body = await response.json();
    if (body.status !== "success") {
      throw new Error(`query ${promql}: ${JSON.stringify(body)}`);
    }
    const out = new Map<string, number>();
    for (
      const r of body.data.result as {
        metric: object;
        value: [number, string];
      }[]
    ) {
      out.set(JSON.stringify(r.metric), Number(r.value[1]));
    }
    return out;
  }

  /** One value of a query that yields a single series; null when none. */
  async scalar(promql: string): Promise<number | null> {
    const result = await this.query(promql);
    if (result.size > 1) throw new Error(`${promql}: ${result.size} series`);
    return result.size === 0 ? null : [...result.values()][0]!;
  }

  /** Polls `probe` (bounded) until it returns non-null. */
  async waitFor<T>(what: string, probe: () => Promise<T | null>): Promise<T> {
    const deadline = Date.now() + 60_000;
    let last: unknown = null;
    while (Date.now() < deadline) {
      try {
        const value = await probe();
        if (value !== null) return value;
      } catch (error) {
        last = error; // not up yet
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`${what}: not within 60 s (${last}):\n${this.#log}`);
  }

  async stop(): Promise<void> {
    try {
      this.child.kill("SIGTERM");
    } catch { /* already gone */ }
    await this.child.status;
    await this.#logDone;
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}

test("a real Prometheus server scraping /metrics answers exactly the counts sent", async () => {
  // The first export was sent (and answered) by the first test, so every
  // scrape from the first on sees all of it.
  const target = new URL(agent.apiUrl).host;
  const prometheus = await PrometheusServer.start(target);
  try {
    await prometheus.waitFor("a successful scrape", async () => {
      const up = await prometheus.scalar('up{job="coral"}');
      return up === 1 ? up : null;
    });
    assert.equal(
      await prometheus.scalar(
        "sum(http_server_request_duration_seconds_count)",
      ),
      9,
    );
    assert.equal(
      await prometheus.scalar(
        'http_server_request_duration_seconds_bucket{http_route="/items/:id",le="0.01"}',
      ),
      3,
    );
    assert.equal(
      await prometheus.scalar(
        'http_server_request_duration_seconds_bucket{http_route="/items/:id",le="0.25"}',
      ),
      7,
    );
    assert.equal(
      await prometheus.scalar(
        'http_server_request_duration_seconds_bucket{http_response_status_code="500",le="10"}',
      ),
      0,
    );
    assert.equal(
      await prometheus.scalar(
        'http_server_request_duration_seconds_bucket{http_response_status_code="500",le="+Inf"}',
      ),
      2,
    );
    assert.equal(
      await prometheus.scalar(
        'sum(http_server_request_duration_seconds_sum{service_name="shop"})',
      ),
      30.9,
    );
    assert.equal(
      await prometheus.scalar(
        'http_client_request_duration_seconds_count{server_address="api.example",server_port="443"}',
      ),
      5,
    );
    assert.equal(
      await prometheus.scalar(
        'rpc_server_duration_seconds_count{rpc_method="shop.Cart/Add",rpc_system="grpc",rpc_grpc_status_code="0"}',
      ),
      6,
    );
    assert.equal(
      await prometheus.scalar(
        'db_client_operation_duration_seconds_bucket{db_system_name="redis",db_operation_name="GET",le="0.005"}',
      ),
      11,
    );

    // A second window for one series: the counter grows by exactly that.
    await send("shop", [
      histogramSpec("http.server.request.duration", GET_ITEM, at([2, 10]), 0.1),
    ]);
    const total = await prometheus.waitFor(
      "a scrape after the second export",
      async () => {
        const value = await prometheus.scalar(
          "sum(http_server_request_duration_seconds_count)",
        );
        return value !== 9 ? value : null;
      },
    );
    assert.equal(total, 19);
    assert.equal(
      await prometheus.scalar(
        'http_server_request_duration_seconds_bucket{http_route="/items/:id",le="0.01"}',
      ),
      13,
    );
    // The same counts through the agent's own query API.
    const http = await agent.queryJson<{ total: { requests: number } }>(
      "http",
      "shop",
    );
    assert.equal(http.total.requests, 19);
  } finally {
    await prometheus.stop();
  }
});

test("cleanup", async () => {
  await agent.cleanup();
});
