import assert from "node:assert/strict";
import {
  parseRequestHead,
  parseStatusLine,
  parseTraceparent,
  targetPath,
} from "./http1.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

Deno.test("http1: a curl request with host and traceparent", () => {
  const head = parseRequestHead(bytes(
    "GET /users/42?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\n" +
      `Accept: */*\r\nTraceParent: ${TRACEPARENT}\r\n\r\n`,
  ));
  assert.deepEqual(head, {
    method: "GET",
    target: "/users/42?x=1",
    path: "/users/42",
    version: "HTTP/1.1",
    host: "127.0.0.1:8080",
    traceparent: {
      traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
      parentSpanId: "00f067aa0ba902b7",
      flags: 1,
    },
    headersComplete: true,
  });
});

Deno.test("http1: headers cut by the copy limit keep what is complete", () => {
  const head = parseRequestHead(
    bytes(
      `POST /orders HTTP/1.0\nhost: shop\ntraceparent: ${
        TRACEPARENT.slice(0, 30)
      }`,
    ),
  );
  assert.equal(head?.method, "POST");
  assert.equal(head?.version, "HTTP/1.0");
  assert.equal(head?.host, "shop");
  assert.equal(head?.traceparent, undefined);
  assert.equal(head?.headersComplete, false);
});

Deno.test("http1: request lines that are not HTTP/1.x are undefined", () => {
  for (
    const line of [
      "GET /a HTTP/1.1", // no line end: cut by the copy limit
      "GET /a HTTP/2.0\r\n",
      "FETCH /a HTTP/1.1\r\n",
      "GET HTTP/1.1\r\n",
      "GET /a  HTTP/1.1\r\n",
      " /a HTTP/1.1\r\n",
      "",
      "\r\n",
      "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n",
    ]
  ) {
    assert.equal(
      parseRequestHead(bytes(line)),
      undefined,
      JSON.stringify(line),
    );
  }
});

Deno.test("http1: targets and their paths", () => {
  assert.equal(targetPath("/a/b?c=1#d"), "/a/b");
  assert.equal(targetPath("/a#d"), "/a");
  assert.equal(targetPath("http://example.com:80/x/y?z"), "/x/y");
  assert.equal(targetPath("http://example.com"), "/");
  assert.equal(targetPath("*"), "");
  assert.equal(
    parseRequestHead(bytes("CONNECT example.com:443 HTTP/1.1\r\n\r\n"))?.path,
    "",
  );
  assert.equal(
    parseRequestHead(bytes("OPTIONS * HTTP/1.1\r\n\r\n"))?.target,
    "*",
  );
});

Deno.test("http1: status lines", () => {
  assert.deepEqual(parseStatusLine(bytes("HTTP/1.1 200 OK\r\nContent-")), {
    version: "HTTP/1.1",
    statusCode: 200,
  });
  assert.equal(parseStatusLine(bytes("HTTP/1.0 404\r\n"))?.statusCode, 404);
  assert.equal(parseStatusLine(bytes("HTTP/1.1 503"))?.statusCode, 503);
  for (
    const bad of [
      "HTTP/1.1 20 OK\r\n",
      "HTTP/1.1 2000 OK",
      "HTTP/2 200 OK\r\n\r\n",
      "HTTP/1.1 abc OK",
      "HTTP/1.1 099 X",
      "HTTP/1.1",
    ]
  ) {
    assert.equal(parseStatusLine(bytes(bad)), undefined, bad);
  }
});

Deno.test("http1: traceparent validation", () => {
  assert.deepEqual(parseTraceparent(` ${TRACEPARENT} `), {
    traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
    parentSpanId: "00f067aa0ba902b7",
    flags: 1,
  });
  // A future version may append fields.
  assert.equal(
    parseTraceparent(`01${TRACEPARENT.slice(2)}-extra`)?.flags,
    1,
  );
  for (
    const bad of [
      `ff${TRACEPARENT.slice(2)}`,
      `${TRACEPARENT}-extra`, // version 00 has exactly four fields
      TRACEPARENT.toUpperCase(),
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
      "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
    ]
  ) {
    assert.equal(parseTraceparent(bad), undefined, bad);
  }
});
