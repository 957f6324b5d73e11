/**
 * The colony part of `deno task bench` (`--only colony`):
 *
 * 1. Ingest: 10 agents (10 ids registered with tokens) push PushBatch
 *    requests (protobuf, 1000 rows each: 600 HTTP metric windows with 63
 *    log-linear latency buckets and 400 spans) to the real colony process at
 *    once, one request in flight per agent as a forwarder does. Rows/s from
 *    the first push to the last acknowledgement; the rows the colony stored
 *    are checked against the rows sent, exactly. Baseline in the same run:
 *    the same requests to a server that only reads the body.
 * 2. Query: a colony database pre-loaded with 30 days of HTTP metric windows
 *    (one 10-minute window per service and agent, 64 buckets; written with
 *    DuckDB into the colony's own schema), for 100 services spread 10 per
 *    agent over 10 agents (432,000 rows) and for 100 services on each of
 *    10 agents (4.3 million rows); then the real colony started on it and
 *    `query http --since 30d` timed through its query API (15 calls:
 *    median and max), against the 1 s target.
 *
 * @module
 */
import { ColonyStore } from "../../src/colony/store.ts";
import { Counters } from "../../src/model/counters.ts";
import { startSink } from "./sink.ts";
import {
  ColonyProcess,
  colonyProto,
  PUSH_PATH,
} from "../support/colony_process.ts";

/** Options of {@linkcode colonyBench}. */
export interface ColonyBenchOptions {
  /** PushBatch requests per agent in the ingest part. */
  batchesPerAgent?: number;
}

const AGENTS = 10;
const HTTP_PER_BATCH = 600;
const SPANS_PER_BATCH = 400;
const ROWS_PER_BATCH = HTTP_PER_BATCH + SPANS_PER_BATCH;
const DAY = 86_400_000;
const WINDOW_MS = 10 * 60_000;

/** 63 log-linear bounds: 1..9 × 10^k ms for k = -2..4 (0.01 ms to 90 s). */
export const LOG_LINEAR_BOUNDS_MS: number[] = (() => {
  const out: number[] = [];
  for (let e = -2; e <= 4; e++) {
    for (let m = 1; m <= 9; m++) out.push(Number((m * 10 ** e).toPrecision(6)));
  }
  return out;
})();

const agentId = (a: number) => `bench-agent-${String(a).padStart(2, "0")}`;
const tokenOf = (a: number) => `bench-token-${a}-${"x".repeat(24)}`;

/** Latency counts around a typical latency: ~8 non-zero buckets of 64. */
function counts(seed: number): { counts: number[]; total: number } {
  const out = new Array<number>(LOG_LINEAR_BOUNDS_MS.length + 1).fill(0);
  const center = 22 + (seed % 12);
  let total = 0;
  for (let d = -3; d <= 4; d++) {
    const n = ((seed * 31 + (d + 3) * 17) % 40) + (d === 0 ? 60 : 1);
    out[center + d] = n;
    total += n;
  }
  return { counts: out, total };
}

/** The PushBatch requests of one agent, encoded. */
function agentBatches(a: number, batches: number, nowMs: number) {
  const type = colonyProto().lookupType("coral.colony.v1.PushBatchRequest");
  const bodies: Uint8Array<ArrayBuffer>[] = [];
  let httpSeq = 0, spanSeq = 0;
  for (let b = 0; b < batches; b++) {
    const http = [];
    for (let i = 0; i < HTTP_PER_BATCH; i++) {
      const seq = ++httpSeq;
      const c = counts(seq + a);
      const end = nowMs - 3_600_000 + seq * 10;
      const service = `svc-${(seq + a * 7) % 100}`;
      http.push({
        window: {
          seq_id: seq,
          timestamp_ms: end,
          window_start_ms: end - 10_000,
          service_name: service,
          side: "server",
          latency_buckets_ms: LOG_LINEAR_BOUNDS_MS,
          latency_counts: c.counts,
          count: c.total,
          sum_ms: c.total * 4.5,
          min_ms: 0.3,
          max_ms: 950,
          attributes_json: JSON.stringify({
            "k8s.namespace.name": "shop",
            "k8s.pod.name": `${service}-7d9f8c-${seq % 5}`,
            "server.address": `${service}.shop.svc`,
          }),
          source: "ebpf",
        },
        method: seq % 4 === 0 ? "POST" : "GET",
        route: `/api/v1/${service}/items/:id`,
        status_code: seq % 50 === 0 ? 503 : 200,
      });
    }
    const spans = [];
    for (let i = 0; i < SPANS_PER_BATCH; i++) {
      const seq = ++spanSeq;
      const id = a * 100_000_000 + seq;
      spans.push({
        seq_id: seq,
        trace_id: id.toString(16).padStart(32, "0"),
        span_id: id.toString(16).padStart(16, "0"),
        parent_span_id: "",
        service_name: `svc-${seq % 100}`,
        name: "GET /api/v1/items/:id",
        kind: "server",
        start_time_us: (nowMs - 3_600_000 + seq * 10) * 1000,
        duration_us: 1200 + (seq % 700),
        status_code: seq % 50 === 0 ? 2 : 0,
        status_message: "",
        attributes_json:
          '{"http.request.method":"GET","http.response.status_code":200}',
        resource_attributes_json: '{"service.name":"svc"}',
        process_pid: 4242,
        source: "ebpf",
      });
    }
    const request = {
      agent_id: agentId(a),
      session_id: `bench-session-${a}`,
      http,
      spans,
    };
    bodies.push(
      type.encode(type.fromObject(request)).finish() as Uint8Array<
        ArrayBuffer
      >,
    );
  }
  return bodies;
}

interface PushResult {
  rows: number;
  seconds: number;
  perSecond: number;
  failures: number;
  bytes: number;
}

/** Each agent sends its bodies in order, one in flight; all agents at once. */
async function pushAll(
  url: string,
  perAgent: Uint8Array<ArrayBuffer>[][],
): Promise<PushResult> {
  let ok = 0, failures = 0, bytes = 0;
  const start = performance.now();
  await Promise.all(perAgent.map(async (bodies, a) => {
    for (const body of bodies) {
      const response = await fetch(url, {
        method: "POST",
        body,
        headers: {
          "content-type": "application/proto",
          authorization: `Bearer ${tokenOf(a)}`,
        },
      });
      await response.arrayBuffer();
      bytes += body.length;
      if (response.status === 200) ok++;
      else failures++;
    }
  }));
  const seconds = (performance.now() - start) / 1000;
  const rows = ok * ROWS_PER_BATCH;
  return { rows, seconds, perSecond: rows / seconds, failures, bytes };
}

/**
 * Writes 30 days of HTTP windows into a new colony database at `path`:
 * agent `a` has `servicesPerAgent` services, `svc-(a * agentStride + s)`
 * (stride 0: every agent runs the same services), one series (method,
 * route; 200 or now and then 503) per service, one window per series per
 * `WINDOW_MS`. Returns the rows and requests written.
 */
export async function preload(
  path: string,
  nowMs: number,
  shape: { agents: number; servicesPerAgent: number; agentStride: number },
): Promise<{ rows: number; requests: number }> {
  const store = await ColonyStore.open(path, { counters: new Counters() });
  try {
    const windows = Math.floor((30 * DAY - 2 * 3_600_000) / WINDOW_MS);
    const firstEndUs = (nowMs - windows * WINDOW_MS - 60_000) * 1000;
    const bounds = `[${LOG_LINEAR_BOUNDS_MS.join(", ")}]::DOUBLE[]`;
    const variants = 97;
    const lists = Array.from({ length: variants }, (_, v) => counts(v));
    const values = lists.map((c, v) =>
      `(${v}, [${c.counts.join(", ")}]::UBIGINT[], ${c.total})`
    ).join(",\n");
    const perAgent = shape.servicesPerAgent;
    const service = `(a * ${shape.agentStride} + s)`;
    return await store.runExclusive(async (conn) => {
      await conn.run(
        `CREATE TEMP TABLE bench_counts (v INTEGER, counts UBIGINT[], total UBIGINT)`,
      );
      await conn.run(`INSERT INTO bench_counts VALUES ${values}`);
      await conn.run(`INSERT INTO beyla_http_metrics BY NAME
        SELECT
          (w * ${perAgent} + s + 1)::UBIGINT AS seq_id,
          make_timestamp((${firstEndUs} + w * ${
        WINDOW_MS * 1000
      })::BIGINT) AS timestamp,
          make_timestamp((${firstEndUs} + w * ${WINDOW_MS * 1000} - ${
        WINDOW_MS * 1000
      })::BIGINT) AS window_start,
          'bench-agent-' || lpad(a::VARCHAR, 2, '0') AS agent_id,
          'svc-' || ${service}::VARCHAR AS service_name,
          'server' AS span_kind,
          CASE WHEN ${service} % 4 = 0 THEN 'POST' ELSE 'GET' END AS http_method,
          '/api/v1/svc-' || ${service}::VARCHAR || '/items/:id' AS http_route,
          CASE WHEN (w + s) % 97 = 0 THEN 503 ELSE 200 END AS http_status_code,
          ${bounds} AS latency_buckets_ms,
          c.counts AS latency_counts,
          c.total AS request_count,
          c.total * 4.5 AS latency_sum_ms,
          0.3 AS latency_min_ms,
          950.0 AS latency_max_ms,
          '{"k8s.namespace.name":"shop"}'::JSON AS attributes,
          'ebpf' AS source
        FROM range(${windows}) t1(w), range(${perAgent}) t2(s),
          range(${shape.agents}) t3(a), bench_counts c
        WHERE c.v = (w * 7 + s * 3 + a) % ${variants}
        ORDER BY w, a, s`);
      await conn.run("CHECKPOINT");
      const reader = await conn.runAndReadAll(
        `SELECT count(*)::DOUBLE, sum(request_count)::DOUBLE FROM beyla_http_metrics`,
      );
      const [rows, requests] = reader.getRowsJS()[0]!.map(Number);
      return { rows: rows!, requests: requests! };
    });
  } finally {
    await store.close();
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString("en-US");

/** Pre-loads a colony database, starts the colony on it, times `query http`. */
async function queryBench(
  nowMs: number,
  shape: { agents: number; servicesPerAgent: number; agentStride: number },
): Promise<string> {
  console.error(
    `bench colony: writing 30 days of HTTP windows (${shape.servicesPerAgent} services on each of ${shape.agents} agents)`,
  );
  const dir = await Deno.makeTempDir({ prefix: "coral-colony-bench-" });
  try {
    const loadStart = performance.now();
    const loaded = await preload(`${dir}/colony.duckdb`, nowMs, shape);
    const loadSeconds = (performance.now() - loadStart) / 1000;
    const queried = await ColonyProcess.start({ dir });
    try {
      const path = `/api/v1/query/http?since_ms=${30 * DAY}`;
      const timeGet = async (path: string) => {
        const times: number[] = [];
        for (let i = 0; i < 15; i++) {
          const start = performance.now();
          const response = await fetch(`${queried.url}${path}`);
          await response.arrayBuffer();
          times.push(performance.now() - start);
        }
        times.sort((a, b) => a - b);
        return { median: times[7]!, max: times[14]! };
      };
      console.error("bench colony: timing query http --since 30d");
      const queryTime = await timeGet(path);
      const healthTime = await timeGet("/healthz");
      const text = await (await fetch(`${queried.url}${path}`)).text();
      const answer = JSON.parse(text) as {
        rows: unknown[];
        total: { requests: number };
      };
      return `
    data:      ${fmt(loaded.rows)} rows, ${
        fmt(loaded.requests)
      } requests (written in ${loadSeconds.toFixed(1)} s)
    answer:    ${answer.rows.length} rows (service x agent), total ${
        fmt(answer.total.requests)
      } requests (${
        answer.total.requests === loaded.requests ? "exact" : "MISMATCH"
      }), ${fmt(text.length)} bytes of JSON
    query:     median ${queryTime.median.toFixed(1)} ms, max ${
        queryTime.max.toFixed(1)
      } ms (target under 1 s: ${queryTime.max < 1000 ? "met" : "NOT met"})
    baseline:  /healthz round trip median ${healthTime.median.toFixed(1)} ms`;
    } finally {
      await queried.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

/** Runs the colony part and returns its report block. */
export async function colonyBench(
  options: ColonyBenchOptions = {},
): Promise<string> {
  const batchesPerAgent = options.batchesPerAgent ?? 30;
  const nowMs = Date.now();
  console.error("bench colony: encoding PushBatch requests");
  const perAgent = Array.from(
    { length: AGENTS },
    (_, a) => agentBatches(a, batchesPerAgent, nowMs),
  );
  const sent = AGENTS * batchesPerAgent * ROWS_PER_BATCH;

  console.error("bench colony: baseline (read-only HTTP sink)");
  const sink = await startSink();
  const base = await pushAll(`${sink.url}${PUSH_PATH}`, perAgent);
  await sink.stop();

  console.error("bench colony: colony ingest from 10 agents at once");
  const colony = await ColonyProcess.start({
    config: {
      agents: Array.from(
        { length: AGENTS },
        (_, a) => ({ id: agentId(a), token: tokenOf(a) }),
      ),
    },
  });
  let ingest: PushResult;
  let stored: Record<string, number>;
  let commits: number;
  try {
    ingest = await pushAll(`${colony.url}${PUSH_PATH}`, perAgent);
    const status = await colony.status() as {
      counters: Record<string, number>;
      storage: { rows: Record<string, number> };
    };
    stored = status.storage.rows;
    commits = status.counters["colony.commits"] ?? 0;
  } finally {
    await colony.cleanup();
  }
  const storedRows = (stored.beyla_http_metrics ?? 0) +
    (stored.beyla_traces ?? 0);

  const spread = await queryBench(nowMs, {
    agents: AGENTS,
    servicesPerAgent: 10,
    agentStride: 10,
  });
  const everywhere = await queryBench(nowMs, {
    agents: AGENTS,
    servicesPerAgent: 100,
    agentStride: 0,
  });

  const mb = (bytes: number, s: number) => (bytes / 1e6 / s).toFixed(1);
  return `
colony benchmark (${navigator.hardwareConcurrency} cores)

colony ingest: ${AGENTS} agents pushing at once, one PushBatch in flight each
(protobuf, ${ROWS_PER_BATCH} rows/request: ${HTTP_PER_BATCH} HTTP windows with ${
    LOG_LINEAR_BOUNDS_MS.length + 1
  } latency buckets + ${SPANS_PER_BATCH} spans; ${batchesPerAgent} requests per agent)
  colony:    ${fmt(ingest.perSecond)} rows/s  (${fmt(ingest.rows)} rows in ${
    ingest.seconds.toFixed(2)
  } s, first push to last ack, ${ingest.failures} failed requests, ${
    mb(ingest.bytes, ingest.seconds)
  } MB/s)
  baseline:  ${
    fmt(base.perSecond)
  } rows/s  (read-only HTTP sink, same requests, ${
    mb(base.bytes, base.seconds)
  } MB/s)
  ratio:     ${(ingest.perSecond / base.perSecond).toFixed(3)} of baseline
  stored:    ${fmt(storedRows)} rows (${
    fmt(stored.beyla_http_metrics ?? 0)
  } HTTP windows + ${fmt(stored.beyla_traces ?? 0)} spans) of ${
    fmt(sent)
  } sent: ${storedRows === sent ? "exact" : "MISMATCH"}; ${fmt(commits)} commits

query http --since 30d at the colony: 30 days of one 10-minute window per
service and agent (64 latency buckets each), through the colony's query API
  100 services, 10 on each of 10 agents:${spread}
  100 services on each of 10 agents:${everywhere}`;
}

if (import.meta.main) {
  console.log(await colonyBench());
}
