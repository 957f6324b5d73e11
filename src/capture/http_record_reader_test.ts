import assert from "node:assert/strict";
import { parseRequestHead, parseStatusLine } from "../decode/http1.ts";
import {
  decodeHttpEvent,
  HTTP_ENDPOINTS,
  HTTP_EVENT,
  HTTP_EVENT_MIN_SIZE,
  HTTP_SIDE,
} from "./http_event_layout.ts";
import { HttpRecordReader } from "./http_record_reader.ts";

interface RecordSpec {
  request: string;
  response: string;
  side?: number;
  startNs?: bigint;
  endNs?: bigint;
  family?: number;
  remote?: number[];
}

function record(spec: RecordSpec): DataView {
  const bytes = new Uint8Array(HTTP_EVENT.size);
  const view = new DataView(bytes.buffer);
  const f = HTTP_EVENT.fields;
  const ep = HTTP_ENDPOINTS.fields;
  const e = f.endpoints.offset;
  view.setBigUint64(f.start_ns.offset, spec.startNs ?? 5_000_000_123n, true);
  view.setBigUint64(f.end_ns.offset, spec.endNs ?? 5_012_345_678n, true);
  view.setBigUint64(f.request_bytes.offset, 321n, true);
  view.setBigUint64(f.response_bytes.offset, 99n, true);
  view.setUint32(f.pid.offset, 777, true);
  view.setInt32(f.fd.offset, 9, true);
  const remote = spec.remote ?? [10, 1, 2, 3];
  bytes.set([127, 0, 0, 1], e + ep.local_addr.offset);
  bytes.set(remote, e + ep.remote_addr.offset);
  view.setUint16(e + ep.local_port.offset, 8080, true);
  view.setUint16(e + ep.remote_port.offset, 45678, true);
  view.setUint16(e + ep.family.offset, spec.family ?? 2, true);
  view.setUint8(f.side.offset, spec.side ?? HTTP_SIDE.server);
  const request = new TextEncoder().encode(spec.request).subarray(0, 512);
  const response = new TextEncoder().encode(spec.response).subarray(0, 32);
  view.setUint16(f.request_len.offset, request.length, true);
  view.setUint8(f.response_len.offset, response.length);
  bytes.set(request, f.request.offset);
  bytes.set(response, f.response.offset);
  return view;
}

/** What the general decoders say of the same record. */
function general(view: DataView) {
  const event = decodeHttpEvent(view);
  const head = parseRequestHead(event.request);
  const status = parseStatusLine(event.response);
  if (head === undefined) return "unparsable_request";
  if (status === undefined) return "unparsable_response";
  const duration = Number(event.endNs - event.startNs);
  return {
    pid: event.pid,
    side: event.side,
    method: head.method,
    path: head.path,
    statusCode: status.statusCode,
    startUs: Number(event.startNs / 1000n),
    durationNs: duration > 0 ? duration : 0,
    localPort: event.localPort,
    remoteAddress: event.remoteAddress,
    remotePort: event.remotePort,
    requestBytes: event.requestBytes,
    ...(head.traceparent ? { traceparent: head.traceparent } : {}),
  };
}

const TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const REQUESTS = [
  "GET / HTTP/1.1\r\n\r\n",
  "GET /users/42?x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
  "POST /a/b#frag HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc",
  "DELETE /x HTTP/1.1\nHost: a\n\n",
  `GET /t HTTP/1.1\r\nHost: a\r\ntraceparent: ${TRACEPARENT}\r\n\r\n`,
  `GET /t HTTP/1.1\r\nTraceParent:${TRACEPARENT}\r\n\r\n`,
  `GET /t HTTP/1.1\r\ntraceparent: bad\r\ntraceparent: ${TRACEPARENT}\r\n\r\n`,
  `GET /t HTTP/1.1\r\ntraceparent: ${TRACEPARENT}`, // header cut by the copy limit
  "GET http://example.com/abs/path?q HTTP/1.1\r\n\r\n",
  "OPTIONS * HTTP/1.1\r\n\r\n",
  "CONNECT example.com:443 HTTP/1.1\r\n\r\n",
  "PATCH /caf\u00e9 HTTP/1.1\r\n\r\n",
  "GET /a b HTTP/1.1\r\n\r\n",
  "GET /a HTTP/2.0\r\n\r\n",
  "GET /a HTTP/1.1", // no line end within the copied bytes
  "FOO /a HTTP/1.1\r\n\r\n",
  "GETS /a HTTP/1.1\r\n\r\n",
  "",
  "GET /" + "x".repeat(600) + " HTTP/1.1\r\n\r\n",
];
const RESPONSES = [
  "HTTP/1.1 200 OK\r\n",
  "HTTP/1.0 404 Not Found\r\n",
  "HTTP/1.1 500\r\n",
  "HTTP/1.1 503",
  "HTTP/1.1 20x OK\r\n",
  "HTTP/1.1 099 Low\r\n",
  "HTTP/2.0 200 OK\r\n",
  "HTTP/1.1 2000 OK\r\n",
  "",
];

Deno.test("http_record_reader: the same answers as the general decoders", () => {
  const reader = new HttpRecordReader();
  let compared = 0;
  for (const request of REQUESTS) {
    for (const response of RESPONSES) {
      for (const side of [HTTP_SIDE.server, HTTP_SIDE.client]) {
        const view = record({ request, response, side });
        // Twice: the second time the path comes from the intern table.
        for (let round = 0; round < 2; round++) {
          assert.deepEqual(
            reader.read(view),
            general(view),
            `${JSON.stringify(request)} / ${JSON.stringify(response)}`,
          );
          compared++;
        }
      }
    }
  }
  assert.equal(compared, REQUESTS.length * RESPONSES.length * 4);
});

Deno.test("http_record_reader: paths that share a hash slot stay apart", () => {
  const reader = new HttpRecordReader();
  const paths = Array.from({ length: 2000 }, (_, i) => `/p/${i}`);
  for (const round of [0, 1]) {
    for (const path of paths) {
      const got = reader.read(
        record({
          request: `GET ${path} HTTP/1.1\r\n\r\n`,
          response: "HTTP/1.1 200 OK\r\n",
        }),
      );
      assert.ok(typeof got !== "string");
      assert.equal(got.path, path, `round ${round}`);
    }
  }
});

Deno.test("http_record_reader: times without BigInt, also past 2^32 ns and backwards", () => {
  const reader = new HttpRecordReader();
  const base = {
    request: "GET / HTTP/1.1\r\n\r\n",
    response: "HTTP/1.1 200 OK\r\n",
  };
  const a = reader.read(
    record({ ...base, startNs: 4_294_967_000n, endNs: 4_294_968_500n }),
  );
  assert.ok(typeof a !== "string");
  assert.equal(a.durationNs, 1500);
  assert.equal(a.startUs, 4_294_967);
  const big = 1_000_000n * 3_600_000_000_000n; // 1000 hours of uptime
  const b = reader.read(record({ ...base, startNs: big, endNs: big + 7n }));
  assert.ok(typeof b !== "string");
  assert.equal(b.durationNs, 7);
  assert.equal(b.startUs, Number(big / 1000n));
  const c = reader.read(record({ ...base, startNs: 2_000n, endNs: 1_000n }));
  assert.ok(typeof c !== "string");
  assert.equal(c.durationNs, 0);
});

Deno.test("http_record_reader: short records, bad sides, IPv6 peers", () => {
  const reader = new HttpRecordReader();
  assert.equal(reader.read(new DataView(new ArrayBuffer(10))), "short_record");
  assert.equal(
    reader.read(
      record({
        request: "GET / HTTP/1.1\r\n\r\n",
        response: "HTTP/1.1 200 OK\r\n",
        side: 7,
      }),
    ),
    "bad_side",
  );
  const v6 = reader.read(
    record({
      request: "GET / HTTP/1.1\r\n\r\n",
      response: "HTTP/1.1 200 OK\r\n",
      family: 10,
      remote: [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
    }),
  );
  assert.ok(typeof v6 !== "string");
  assert.equal(v6.remoteAddress, "2001:db8::1");
});

Deno.test("http_record_reader: records as the kernel sends them, cut after the request's valid bytes", () => {
  const reader = new HttpRecordReader();
  const request = "GET /short HTTP/1.1\r\n\r\n";
  const full = record({ request, response: "HTTP/1.1 204 No Content\r\n" });
  const cut = new DataView(
    full.buffer.slice(0, HTTP_EVENT_MIN_SIZE + request.length),
  );
  const got = reader.read(cut);
  assert.ok(typeof got !== "string");
  assert.equal(got.path, "/short");
  assert.equal(got.statusCode, 204);
  assert.equal(
    reader.read(new DataView(full.buffer.slice(0, HTTP_EVENT_MIN_SIZE - 1))),
    "short_record",
  );
});
