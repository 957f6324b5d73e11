/**
 * The OTLP part of `deno task bench`: throughput through the real OTLP/HTTP
 * receiver into DuckDB until queryable, the agent's peak RSS under that load,
 * and the latency of `query http` over one hour of data from 100 services.
 *
 * Each figure comes with a baseline measured in the same run: the same
 * requests sent to a server that only reads the body (the cost of the HTTP
 * transport on this machine), so results read as ratios.
 *
 * @module
 */
import { AgentProcess } from "../support/agent_process.ts";
import { startSink } from "./sink.ts";
import {
  histogramRequests,
  hourOfHistograms,
  spanRequests,
} from "./request_templates.ts";

/** Options of {@linkcode otlpBench}. */
export interface OtlpBenchOptions {
  /** Length of each load phase, in seconds. */
  seconds: number;
  /** Requests in flight. */
  concurrency: number;
}

const SPANS_PER_REQUEST = 1000;
const POINTS_PER_REQUEST = 1000;

interface LoadResult {
  requests: number;
  items: number;
  seconds: number;
  perSecond: number;
  failures: number;
}

/** Sends `bodies` round-robin with `concurrency` in flight for `seconds`. */
async function load(
  url: string,
  bodies: Uint8Array<ArrayBuffer>[],
  options: OtlpBenchOptions & { itemsPerRequest: number },
): Promise<LoadResult> {
  const { seconds, concurrency, itemsPerRequest } = options;
  let next = 0, ok = 0, failures = 0;
  const start = performance.now();
  const deadline = start + seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline && next < bodies.length) {
      const body = bodies[next++]!;
      const response = await fetch(url, {
        method: "POST",
        body,
        headers: { "content-type": "application/x-protobuf" },
      });
      await response.arrayBuffer();
      if (response.status === 200) ok++;
      else failures++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = (performance.now() - start) / 1000;
  const items = ok * itemsPerRequest;
  return {
    requests: ok,
    items,
    seconds: elapsed,
    perSecond: items / elapsed,
    failures,
  };
}

function rssSampler(pid: number) {
  let peak = 0;
  const read = () => {
    try {
      const status = Deno.readTextFileSync(`/proc/${pid}/status`);
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
      peak = Math.max(peak, kb * 1024);
    } catch { /* process gone */ }
  };
  const timer = setInterval(read, 100);
  return { stop: () => (clearInterval(timer), read(), peak) };
}

const mib = (bytes: number) => (bytes / 1024 / 1024).toFixed(1);
const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

/** Runs the OTLP part and returns its report block. */
export async function otlpBench(options: OtlpBenchOptions): Promise<string> {
  const { seconds, concurrency } = options;
  console.error("bench: encoding requests");
  const maxRequests = Math.ceil((seconds * 400_000) / SPANS_PER_REQUEST);
  const spanBodies = spanRequests(maxRequests, SPANS_PER_REQUEST);
  const pointBodies = histogramRequests(maxRequests, POINTS_PER_REQUEST);
  const hourBodies = hourOfHistograms(100, 10);

  console.error("bench: baseline (read-only HTTP sink)");
  const sink = await startSink();
  const baseSpans = await load(
    `${sink.url}/v1/traces`,
    spanBodies,
    { ...options, itemsPerRequest: SPANS_PER_REQUEST },
  );
  const basePoints = await load(
    `${sink.url}/v1/metrics`,
    pointBodies,
    { ...options, itemsPerRequest: POINTS_PER_REQUEST },
  );
  await sink.stop();

  console.error("bench: agent");
  const agent = await AgentProcess.start({
    config: { storage: { retention: "2h" } },
  });
  const rss = rssSampler(agent.pid);
  const spans = await load(
    `${agent.httpUrl}/v1/traces`,
    spanBodies,
    { ...options, itemsPerRequest: SPANS_PER_REQUEST },
  );
  const points = await load(
    `${agent.httpUrl}/v1/metrics`,
    pointBodies,
    { ...options, itemsPerRequest: POINTS_PER_REQUEST },
  );
  const peakRss = rss.stop();
  const stored = (await agent.statusJson()).storage as {
    rows: Record<string, number>;
  };

  await agent.cleanup();

  console.error(
    "bench: loading one hour of data from 100 services into a new agent",
  );
  const queried = await AgentProcess.start({
    config: { storage: { retention: "2h" } },
  });
  let hourPoints = 0;
  for (const body of hourBodies) {
    const response = await fetch(`${queried.httpUrl}/v1/metrics`, {
      method: "POST",
      body,
      headers: { "content-type": "application/x-protobuf" },
    });
    await response.arrayBuffer();
    if (response.status !== 200) {
      throw new Error(`load failed: ${response.status}`);
    }
    hourPoints += 2 * 10 * 10;
  }
  const timeGet = async (path: string) => {
    const times: number[] = [];
    for (let i = 0; i < 15; i++) {
      const start = performance.now();
      const response = await fetch(`${queried.apiUrl}${path}`);
      await response.json();
      times.push(performance.now() - start);
    }
    times.sort((a, b) => a - b);
    return { median: times[7]!, max: times[14]! };
  };
  const queryTime = await timeGet("/api/v1/query/http?since_ms=3600000");
  const healthTime = await timeGet("/healthz");
  const answer =
    await (await fetch(`${queried.apiUrl}/api/v1/query/http?since_ms=3600000`))
      .json();
  await queried.cleanup();

  const report = `
coral-agent benchmark (${seconds}s per phase, ${concurrency} requests in flight, ${navigator.hardwareConcurrency} cores)

spans through OTLP/HTTP into DuckDB (1000 spans/request)
  agent:     ${fmt(spans.perSecond)} spans/s  (${
    fmt(spans.items)
  } spans, ${spans.failures} failed requests)
  baseline:  ${
    fmt(baseSpans.perSecond)
  } spans/s  (read-only HTTP sink, same bodies)
  ratio:     ${
    (spans.perSecond / baseSpans.perSecond).toFixed(3)
  } of baseline; target 100,000/s: ${
    spans.perSecond >= 100_000 ? "met" : "NOT met"
  }
  stored:    ${
    fmt(stored.rows.beyla_traces ?? 0)
  } rows in beyla_traces (accepted ${fmt(spans.items)})

histogram data points through OTLP/HTTP into DuckDB (1000 points/request)
  agent:     ${fmt(points.perSecond)} points/s  (${
    fmt(points.items)
  } points, ${points.failures} failed requests)
  baseline:  ${fmt(basePoints.perSecond)} points/s
  ratio:     ${
    (points.perSecond / basePoints.perSecond).toFixed(3)
  } of baseline; target 200,000/s: ${
    points.perSecond >= 200_000 ? "met" : "NOT met"
  }
  stored:    ${
    fmt(stored.rows.beyla_http_metrics ?? 0)
  } rows in beyla_http_metrics (accepted ${fmt(points.items)})

agent peak RSS under load: ${mib(peakRss)} MiB (target at most 150 MiB: ${
    peakRss <= 150 * 1024 * 1024 ? "met" : "NOT met"
  })

query http over one hour from 100 services (${
    fmt(hourPoints)
  } data points, ${answer.rows.length} rows answered)
  median ${queryTime.median.toFixed(1)} ms, max ${
    queryTime.max.toFixed(1)
  } ms (target under 200 ms: ${queryTime.max < 200 ? "met" : "NOT met"})
  baseline /healthz round trip: median ${healthTime.median.toFixed(1)} ms
`;
  return report;
}
