/**
 * Pre-encoded OTLP/protobuf requests for the benchmark: one template is
 * encoded by the OpenTelemetry JS encoder, then each copy gets unique ids
 * by patching bytes at known offsets, so the sender spends almost nothing.
 */
import {
  metricsRequestProtobuf,
  traceRequestProtobuf,
} from "../support/otlp_bodies.ts";

const TRACE_MARK = "c0ffee";

/** The OpenTelemetry default duration buckets, in seconds. */
const BOUNDS = [
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

/** `count` copies of a request with `spansPerRequest` spans, ids all unique. */
export function spanRequests(
  count: number,
  spansPerRequest: number,
): Uint8Array<ArrayBuffer>[] {
  const now = Date.now();
  const template = traceRequestProtobuf(
    "bench-spans",
    Array.from({ length: spansPerRequest }, (_, i) => ({
      traceId: TRACE_MARK + i.toString(16).padStart(26, "0"),
      spanId: (i + 1).toString(16).padStart(16, "0"),
      parentSpanId: i % 4 === 0 ? "" : i.toString(16).padStart(16, "0"),
      name: i % 4 === 0 ? "GET /api/orders/:id" : "SELECT orders",
      startMs: now - 1000 + (i % 500),
      durationMs: 1 + (i % 40),
      statusCode: i % 50 === 0 ? 2 : 0,
    })),
  );
  const traceOffsets = findAll(template, hexBytes(TRACE_MARK));
  if (traceOffsets.length !== spansPerRequest) {
    throw new Error(
      `expected ${spansPerRequest} trace ids, found ${traceOffsets.length}`,
    );
  }
  return Array.from({ length: count }, (_, r) => {
    // A real copy: the encoder returns a Node Buffer, whose slice() is a view.
    const copy = new Uint8Array(template);
    const view = new DataView(copy.buffer);
    // bytes 3..6 of each trace id carry the request number: unique per copy.
    for (const offset of traceOffsets) view.setUint32(offset + 3, r + 1);
    return copy;
  });
}

/** `count` delta-histogram requests with `pointsPerRequest` points each. */
export function histogramRequests(
  count: number,
  pointsPerRequest: number,
): Uint8Array<ArrayBuffer>[] {
  const now = Date.now();
  const body = metricsRequestProtobuf(
    "bench-metrics",
    Array.from({ length: pointsPerRequest }, (_, i) => ({
      name: "http.server.request.duration",
      unit: "s",
      attributes: {
        "http.request.method": "GET",
        "http.route": `/api/r${i % 100}`,
        "http.response.status_code": i % 10 === 0 ? 500 : 200,
      },
      bounds: BOUNDS,
      counts: BOUNDS.map((_, b) => (b * 7 + i) % 5).concat([0]),
      sum: 1.5,
      timeMs: now - 1000,
    })),
  );
  return Array.from({ length: count }, () => body);
}

/** One hour of per-minute delta histograms from `services` services. */
export function hourOfHistograms(
  services: number,
  routes: number,
): Uint8Array<ArrayBuffer>[] {
  const now = Date.now();
  const requests: Uint8Array<ArrayBuffer>[] = [];
  for (let s = 0; s < services; s++) {
    for (let minute = 60; minute >= 1; minute -= 10) {
      const points = [];
      for (let m = minute; m > minute - 10; m--) {
        for (let r = 0; r < routes; r++) {
          for (const status of [200, 500]) {
            points.push({
              name: "http.server.request.duration",
              unit: "s",
              attributes: {
                "http.request.method": "GET",
                "http.route": `/api/r${r}`,
                "http.response.status_code": status,
              },
              bounds: BOUNDS,
              counts: BOUNDS.map((_, b) => (b + r + m) % 7).concat([
                status === 500 ? 1 : 0,
              ]),
              sum: 2.5,
              timeMs: now - m * 60_000 + 1000,
            });
          }
        }
      }
      requests.push(metricsRequestProtobuf(`svc-${s}`, points));
    }
  }
  return requests;
}

function hexBytes(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g)!, (b) => parseInt(b, 16));
}

function findAll(haystack: Uint8Array, needle: Uint8Array): number[] {
  const found: number[] = [];
  outer: for (let i = 0; i <= haystack.length - needle.length; i++) {
    for (let j = 0; j < needle.length; j++) {
      if (haystack[i + j] !== needle[j]) continue outer;
    }
    found.push(i);
  }
  return found;
}
