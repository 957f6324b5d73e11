import assert from "node:assert/strict";
import {
  createHttp2Parser,
  type Http2Exchange,
  type Http2ParserOptions,
  type Http2ParserStats,
  startsWithHttp2Preface,
} from "./http2.ts";
import type { StreamChunk } from "./stream.ts";

// Fixtures in testdata/http2_*.txt are real connections on loopback,
// recorded by a small Deno TCP proxy (Deno.listen + Deno.connect) between
// the client and the server: one line per read() of either socket, "c" or
// "s", nanoseconds since the start, and the bytes in hex. Each file's
// comment says which client and server made it: grpc-js 1.14.7 under Deno
// (node:http2), node:http2 client and server under Deno, curl 7.88.1
// (nghttp2), and python h2 (whose HPACK encoder indexes :path too).

function load(name: string): StreamChunk[] {
  const text = Deno.readTextFileSync(
    new URL(`./testdata/${name}`, import.meta.url),
  );
  const chunks: StreamChunk[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const [sender, time, hex] = line.split(" ");
    const bytes = Uint8Array.from(
      hex!.match(/../g)!,
      (h) => parseInt(h, 16),
    );
    chunks.push({
      sender: sender === "c" ? "client" : "server",
      timeNs: BigInt(time!),
      bytes,
      size: bytes.length,
    });
  }
  return chunks;
}

/**
 * Feeds every chunk to a new parser. The trailer flags (endedWithHeaders,
 * responseUndecoded) are left out of the exchanges here: the test
 * "trailers are flagged" checks them on their own.
 */
function run(
  chunks: StreamChunk[],
  options?: Http2ParserOptions,
): { exchanges: Http2Exchange[]; stats: Http2ParserStats } {
  const parser = createHttp2Parser(options);
  const exchanges: Http2Exchange[] = [];
  for (const chunk of chunks) {
    for (const x of parser.push(chunk)) {
      const { endedWithHeaders: _e, responseUndecoded: _u, ...rest } = x;
      exchanges.push(rest);
    }
  }
  return { exchanges, stats: { ...parser.stats } };
}

function stats(counts: Partial<Http2ParserStats> = {}): Http2ParserStats {
  return {
    exchanges: 0,
    resyncs: 0,
    unanswered: 0,
    unnamed: 0,
    hpackLost: 0,
    unmatched: 0,
    ...counts,
  };
}

/** A copy of a chunk with other bytes (and `size` of the original unless given). */
function cut(chunk: StreamChunk, bytes: Uint8Array, size = chunk.size) {
  return { ...chunk, bytes, size };
}

const GRPC = load("http2_grpc_js.txt");
const NODE = load("http2_h2c_node.txt");
const CURL = load("http2_h2c_curl.txt");
const PYTHON = load("http2_h2c_python.txt");
const TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const GRPC_AUTHORITY = "127.0.0.1:40873";

function grpcExchange(
  streamId: number,
  request: number,
  path: string,
  fields: Partial<Http2Exchange>,
): Http2Exchange {
  return {
    startNs: GRPC[request]!.timeNs,
    endNs: GRPC[request + 1]!.timeNs,
    streamId,
    unnamed: false,
    method: "POST",
    path,
    authority: GRPC_AUTHORITY,
    scheme: "http",
    status: 200,
    contentType: "application/grpc",
    requestBytes: 0,
    responseBytes: 0,
    ...fields,
  };
}

const GRPC_EXCHANGES: Http2Exchange[] = [
  grpcExchange(1, 2, "/demo.Echo/Unary", {
    requestBytes: 10, // 5-byte gRPC prefix + "hello"
    responseBytes: 15, // + "echo:hello"
    grpcStatus: 0,
    grpcMessage: "OK",
    traceparent: TRACEPARENT,
  }),
  // A Trailers-Only response: one HEADERS with END_STREAM and grpc-status.
  grpcExchange(3, 4, "/demo.Echo/Fail", {
    requestBytes: 12,
    grpcStatus: 5,
    grpcMessage: "no such order: Ω",
  }),
  // Server streaming: HEADERS, 3 DATA and the trailers in one chunk.
  grpcExchange(5, 6, "/demo.Echo/Stream", {
    requestBytes: 7,
    responseBytes: 42,
    grpcStatus: 0,
    grpcMessage: "OK",
  }),
  grpcExchange(7, 8, "/demo.Echo/Unary", {
    requestBytes: 10,
    responseBytes: 15,
    grpcStatus: 0,
    grpcMessage: "OK",
  }),
];

Deno.test("http2: grpc-js unary, error status and server streaming (real bytes)", () => {
  assert.equal(GRPC.length, 12);
  const { exchanges, stats: counts } = run(GRPC);
  assert.deepEqual(exchanges, GRPC_EXCHANGES);
  assert.deepEqual(counts, stats({ exchanges: 4 }));
});

Deno.test("http2: node:http2 h2c GET 200 and 404 (real bytes)", () => {
  const { exchanges, stats: counts } = run(NODE);
  const base = {
    unnamed: false,
    method: "GET",
    authority: "127.0.0.1:46829",
    scheme: "http",
    requestBytes: 0,
    responseBytes: 10,
  };
  assert.deepEqual(exchanges, [
    {
      ...base,
      startNs: NODE[0]!.timeNs,
      endNs: NODE[1]!.timeNs,
      streamId: 1,
      path: "/",
      status: 200,
    },
    {
      ...base,
      startNs: NODE[2]!.timeNs,
      endNs: NODE[3]!.timeNs,
      streamId: 3,
      path: "/missing",
      status: 404,
    },
  ]);
  assert.deepEqual(counts, stats({ exchanges: 2 }));
});

Deno.test("http2: curl (nghttp2's encoder) GET (real bytes)", () => {
  const { exchanges, stats: counts } = run(CURL);
  assert.deepEqual(exchanges, [{
    startNs: CURL[0]!.timeNs,
    endNs: CURL[1]!.timeNs,
    streamId: 1,
    unnamed: false,
    method: "GET",
    path: "/",
    authority: "127.0.0.1:34401",
    scheme: "http",
    status: 200,
    requestBytes: 0,
    responseBytes: 10,
  }]);
  assert.deepEqual(counts, stats({ exchanges: 1 }));
});

Deno.test("http2: a chunk split at every byte gives the same exchanges", () => {
  for (const fixture of [GRPC, NODE, CURL, PYTHON]) {
    const expected = run(fixture);
    for (let k = 0; k < fixture.length; k++) {
      const chunk = fixture[k]!;
      for (let at = 1; at < chunk.bytes.length; at++) {
        const split = [
          ...fixture.slice(0, k),
          cut(chunk, chunk.bytes.subarray(0, at), at),
          cut(chunk, chunk.bytes.subarray(at), chunk.bytes.length - at),
          ...fixture.slice(k + 1),
        ];
        assert.deepEqual(run(split), expected, `chunk ${k} split at ${at}`);
      }
    }
  }
});

Deno.test("http2: one byte per chunk gives the same exchanges", () => {
  for (const fixture of [GRPC, NODE, CURL, PYTHON]) {
    const bytewise = fixture.flatMap((chunk) =>
      Array.from(
        { length: chunk.bytes.length },
        (_, i) => cut(chunk, chunk.bytes.subarray(i, i + 1), 1),
      )
    );
    assert.deepEqual(run(bytewise), run(fixture));
  }
});

Deno.test("http2: server bytes before the client preface, in short pieces", () => {
  // The server may send its SETTINGS (and here the ACK, 18 bytes) as soon
  // as it accepts: they arrive one byte at a time before the preface.
  const first = NODE[1]!;
  const pieces = Array.from(
    { length: 18 },
    (_, i) => cut(first, first.bytes.subarray(i, i + 1), 1),
  );
  const rest = cut(first, first.bytes.subarray(18), first.bytes.length - 18);
  assert.deepEqual(
    run([...pieces, NODE[0]!, rest, ...NODE.slice(2)]),
    run(NODE),
  );
});

Deno.test("http2: each direction in one chunk (many frames and messages per chunk)", () => {
  const join = (sender: string) => {
    const parts = GRPC.filter((c) => c.sender === sender).map((c) => c.bytes);
    const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      bytes.set(p, at);
      at += p.length;
    }
    return bytes;
  };
  const client = join("client");
  const server = join("server");
  const { exchanges, stats: counts } = run([
    { sender: "client", timeNs: 100n, bytes: client, size: client.length },
    { sender: "server", timeNs: 200n, bytes: server, size: server.length },
  ]);
  assert.deepEqual(
    exchanges,
    GRPC_EXCHANGES.map((x) => ({ ...x, startNs: 100n, endNs: 200n })),
  );
  assert.deepEqual(counts, stats({ exchanges: 4 }));
});

Deno.test("http2: capture started after 2 exchanges: indexed names come out unnamed", () => {
  // python h2 indexes :path, so requests 3 and 4 name their path (and
  // authority) by dynamic-table entries the capture never saw. The :method
  // GET and :scheme http are static entries, :status 200 too, but without
  // :path the request is unnamed: no method or path at all.
  const { exchanges, stats: counts } = run(PYTHON.slice(5));
  const base = {
    unnamed: true,
    scheme: "http",
    status: 200,
    requestBytes: 0,
    responseBytes: 10,
  };
  assert.deepEqual(exchanges, [
    {
      ...base,
      streamId: 5,
      startNs: PYTHON[5]!.timeNs,
      endNs: PYTHON[6]!.timeNs,
    },
    {
      ...base,
      streamId: 7,
      startNs: PYTHON[7]!.timeNs,
      endNs: PYTHON[8]!.timeNs,
    },
  ]);
  assert.deepEqual(counts, stats({ exchanges: 2, unnamed: 2 }));
  // The whole connection names all four.
  const whole = run(PYTHON);
  assert.deepEqual(
    whole.exchanges.map((x) => [x.streamId, x.method, x.path, x.authority]),
    [1, 3, 5, 7].map((id) => [id, "GET", "/items/42", "shop.local"]),
  );
  assert.deepEqual(whole.stats, stats({ exchanges: 4 }));
});

Deno.test("http2: capture started mid-connection keeps names sent as literals", () => {
  // grpc-js under Deno sends :path as a literal (never indexed) and :method
  // POST from the static table: both certain. Its :authority, content-type
  // and trailers are dynamic-table references: left out.
  const { exchanges, stats: counts } = run(GRPC.slice(6));
  const drop = ({
    authority: _a,
    contentType: _c,
    grpcStatus: _s,
    grpcMessage: _m,
    ...rest
  }: Http2Exchange) => rest;
  assert.deepEqual(exchanges, GRPC_EXCHANGES.slice(2).map(drop));
  assert.deepEqual(counts, stats({ exchanges: 2 }));
});

Deno.test("http2: a first chunk that starts inside a frame is skipped", () => {
  const first = GRPC[6]!;
  const { exchanges, stats: counts } = run([
    cut(first, first.bytes.subarray(5)),
    ...GRPC.slice(7),
  ]);
  // Stream 5's request was in the skipped chunk: its end is unmatched.
  assert.deepEqual(exchanges.map((x) => [x.streamId, x.path]), [[
    7,
    "/demo.Echo/Unary",
  ]]);
  assert.deepEqual(counts, stats({ exchanges: 1, unmatched: 1 }));
});

Deno.test("http2: a truncated chunk whose missing bytes are DATA keeps framing", () => {
  const big = new Uint8Array(16384).fill(7);
  const server = concat(
    frame(HEADERS, END_HEADERS, 1, [0x88]), // :status 200
    frame(DATA, 0, 1, big),
  );
  const tail = concat(
    frame(DATA, 0, 1, new Uint8Array(50)),
    frame(HEADERS, END_HEADERS | END_STREAM, 1, literal("grpc-status", "0")),
  );
  const { exchanges, stats: counts } = run([
    chunk("client", 1, PREFACE_AND_SETTINGS, requestFrame(1, "/a.B/C", true)),
    // Only the first 300 bytes (of the 16 KiB DATA frame) were copied.
    chunk("server", 2, server),
    chunk("server", 3, tail),
  ].map((c, i) => i === 1 ? cut(c, c.bytes.subarray(0, 300)) : c));
  assert.deepEqual(exchanges, [{
    startNs: 1n,
    endNs: 2n,
    streamId: 1,
    unnamed: false,
    method: "POST",
    path: "/a.B/C",
    scheme: "http",
    contentType: "application/grpc",
    status: 200,
    grpcStatus: 0,
    requestBytes: 0,
    responseBytes: 16434,
  }]);
  assert.deepEqual(counts, stats({ exchanges: 1 }));
});

Deno.test("http2: missing bytes over a frame header: resync, HPACK state lost", () => {
  // Chunk 3 (stream 3's HEADERS, 16 bytes) was copied only up to 5 bytes.
  const chunks = [...PYTHON];
  chunks[3] = cut(chunks[3]!, chunks[3]!.bytes.subarray(0, 5));
  const { exchanges, stats: counts } = run(chunks);
  assert.deepEqual(
    exchanges.map((x) => [x.streamId, x.unnamed, x.path, x.status]),
    [[1, false, "/items/42", 200], [5, true, undefined, 200], [
      7,
      true,
      undefined,
      200,
    ]],
  );
  assert.deepEqual(
    counts,
    stats({ exchanges: 3, resyncs: 1, unnamed: 2, hpackLost: 1, unmatched: 1 }),
  );
});

Deno.test("http2: missing bytes inside a HEADERS payload: its prefix still names it", () => {
  // The first client chunk is the preface, SETTINGS (42) and the HEADERS
  // (28) of stream 1; only 10 bytes of that block were copied: enough for
  // :method and :path. Framing holds (the frame length covers the rest).
  const chunks = [...PYTHON];
  chunks[0] = cut(chunks[0]!, chunks[0]!.bytes.subarray(0, 24 + 51 + 9 + 10));
  const { exchanges, stats: counts } = run(chunks);
  assert.deepEqual(
    exchanges.map((x) => [x.streamId, x.unnamed, x.method, x.path]),
    [
      [1, false, "GET", "/items/42"],
      [3, true, undefined, undefined],
      [5, true, undefined, undefined],
      [7, true, undefined, undefined],
    ],
  );
  assert.equal(exchanges[0]!.authority, undefined); // after the cut
  assert.deepEqual(counts, stats({ exchanges: 4, unnamed: 3, hpackLost: 1 }));
});

Deno.test("http2: garbage after the preface counts a resync and never throws", () => {
  const garbage = new TextEncoder().encode("hello world, this is not HTTP/2");
  const chunks = [
    ...PYTHON.slice(0, 3),
    { sender: "client" as const, timeNs: 1n, bytes: garbage, size: 4000 },
    ...PYTHON.slice(3),
  ];
  const { exchanges, stats: counts } = run(chunks);
  assert.deepEqual(
    exchanges.map((x) => [x.streamId, x.unnamed, x.path]),
    [[1, false, "/items/42"], [3, true, undefined], [5, true, undefined], [
      7,
      true,
      undefined,
    ]],
  );
  assert.deepEqual(
    counts,
    stats({ exchanges: 4, resyncs: 1, unnamed: 3, hpackLost: 1 }),
  );
});

Deno.test("http2: random and mutated bytes never throw", () => {
  let seed = 7;
  const random = () =>
    (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;
  for (let round = 0; round < 300; round++) {
    const parser = createHttp2Parser({ maxStreams: 8 });
    const source = [GRPC, NODE, CURL, PYTHON][round % 4]!;
    for (const chunk of source) {
      const bytes = chunk.bytes.slice();
      for (let flips = Math.floor(random() * 4); flips > 0; flips--) {
        bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      }
      const kept = random() < 0.2
        ? Math.floor(random() * bytes.length)
        : bytes.length;
      parser.push(cut(chunk, bytes.subarray(0, kept), bytes.length));
      if (random() < 0.1) {
        const noise = Uint8Array.from(
          { length: Math.floor(random() * 64) },
          () => Math.floor(random() * 256),
        );
        parser.push({
          sender: random() < 0.5 ? "client" : "server",
          timeNs: 0n,
          bytes: noise,
          size: noise.length + Math.floor(random() * 100),
        });
      }
    }
    assert.ok(parser.stats.exchanges <= 4);
  }
});

Deno.test("http2: RST_STREAM from either side ends the stream with its code", () => {
  const { exchanges, stats: counts } = run([
    chunk(
      "client",
      1,
      PREFACE_AND_SETTINGS,
      requestFrame(1, "/a", true),
      requestFrame(3, "/b", true),
    ),
    chunk("server", 2, frame(HEADERS, END_HEADERS, 3, [0x88])),
    chunk("server", 3, frame(RST_STREAM, 0, 1, u32(8))), // CANCEL
    chunk("client", 4, frame(RST_STREAM, 0, 3, u32(0))),
    chunk("client", 5, frame(RST_STREAM, 0, 3, u32(0))), // already ended
  ]);
  const base = {
    startNs: 1n,
    unnamed: false,
    method: "POST",
    scheme: "http",
    contentType: "application/grpc",
    requestBytes: 0,
    responseBytes: 0,
  };
  assert.deepEqual(exchanges, [
    { ...base, streamId: 1, path: "/a", endNs: 3n, resetCode: 8 },
    { ...base, streamId: 3, path: "/b", endNs: 2n, status: 200, resetCode: 0 },
  ]);
  assert.deepEqual(counts, stats({ exchanges: 2 }));
});

Deno.test("http2: padded and prioritised HEADERS, CONTINUATION, padded DATA", () => {
  const block = [
    ...indexed(3), // :method POST
    ...literal(":path", "/orders.Api/Place", true),
    ...indexed(6), // :scheme http
    ...literal("traceparent", TRACEPARENT),
  ];
  // HEADERS: pad length 2, 5 bytes of priority, the first 7 block octets, 2
  // octets of padding; the rest in two CONTINUATION frames.
  const headers = frame(HEADERS, PADDED | PRIORITY_FLAG | END_STREAM, 1, [
    2,
    0,
    0,
    0,
    0,
    16,
    ...block.slice(0, 7),
    0,
    0,
  ]);
  const body = [5, 1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 0]; // 6 octets + 5 padding
  const { exchanges, stats: counts } = run([
    chunk(
      "client",
      1,
      PREFACE_AND_SETTINGS,
      headers,
      frame(CONTINUATION, 0, 1, block.slice(7, 20)),
      frame(CONTINUATION, END_HEADERS, 1, block.slice(20)),
    ),
    chunk(
      "server",
      2,
      frame(HEADERS, END_HEADERS, 1, literal(":status", "201")),
      frame(DATA, PADDED | END_STREAM, 1, body),
    ),
  ]);
  assert.deepEqual(exchanges, [{
    startNs: 1n,
    endNs: 2n,
    streamId: 1,
    unnamed: false,
    method: "POST",
    path: "/orders.Api/Place",
    scheme: "http",
    traceparent: TRACEPARENT,
    status: 201,
    requestBytes: 0,
    responseBytes: 6,
  }]);
  assert.deepEqual(counts, stats({ exchanges: 1 }));
});

Deno.test("http2: a header block interrupted by another frame is lost", () => {
  // :method POST, :path "/x" (name 4, inserted in the table), :scheme http.
  const block = [...indexed(3), 0x44, ...text("/x"), ...indexed(6)];
  const { exchanges, stats: counts } = run([
    chunk(
      "client",
      1,
      PREFACE_AND_SETTINGS,
      frame(HEADERS, END_STREAM, 1, block.slice(0, 5)), // :method and :path
      frame(PING, 0, 0, new Uint8Array(8)), // not a CONTINUATION
      frame(CONTINUATION, END_HEADERS, 1, block.slice(5)),
      requestFrame(3, "/y", true, [0xbe]), // refers to the lost "/x" entry
    ),
    chunk(
      "server",
      2,
      frame(HEADERS, END_HEADERS | END_STREAM, 1, [0x88]),
      frame(HEADERS, END_HEADERS | END_STREAM, 3, [0x88]),
    ),
  ]);
  assert.deepEqual(
    exchanges.map((x) => [x.streamId, x.unnamed, x.method, x.path]),
    [[1, false, "POST", "/x"], [3, false, "POST", "/y"]],
  );
  // The stray CONTINUATION breaks HPACK again; stream 3's extra field (an
  // unknown dynamic entry) does not matter: :method and :path are literal.
  assert.deepEqual(counts, stats({ exchanges: 2, hpackLost: 2 }));
});

Deno.test("http2: PUSH_PROMISE header blocks keep the HPACK state", () => {
  const { exchanges, stats: counts } = run([
    chunk(
      "client",
      1,
      PREFACE_AND_SETTINGS,
      requestFrame(1, "/", true),
      requestFrame(3, "/b", true),
    ),
    chunk(
      "server",
      2,
      // :status 203, inserted in the table (62).
      frame(HEADERS, END_HEADERS, 1, literal(":status", "203", true)),
      // A push inserts :path /style.css: now 62, and :status 203 is 63.
      frame(PUSH_PROMISE, END_HEADERS, 1, [
        ...u32(2),
        ...indexed(2),
        ...literal(":path", "/style.css", true),
      ]),
      frame(DATA, END_STREAM, 1, [1, 2, 3]),
      frame(HEADERS, END_HEADERS | END_STREAM, 3, indexed(63)),
      frame(HEADERS, END_HEADERS | END_STREAM, 2, [0x88]), // the pushed response
    ),
  ]);
  assert.deepEqual(
    exchanges.map((x) => [x.streamId, x.status, x.responseBytes]),
    [
      [1, 203, 3],
      [3, 203, 0],
    ],
  );
  assert.deepEqual(counts, stats({ exchanges: 2 }));
});

Deno.test("http2: GOAWAY drops the streams the server will not answer", () => {
  const { exchanges, stats: counts } = run([
    chunk(
      "client",
      1,
      PREFACE_AND_SETTINGS,
      requestFrame(1, "/a", true),
      requestFrame(3, "/b", true),
      requestFrame(5, "/c", true),
    ),
    chunk(
      "server",
      2,
      frame(GOAWAY, 0, 0, [...u32(1), ...u32(0)]),
      frame(HEADERS, END_HEADERS | END_STREAM, 1, [0x88]),
    ),
  ]);
  assert.deepEqual(exchanges.map((x) => x.streamId), [1]);
  assert.deepEqual(counts, stats({ exchanges: 1, unanswered: 2 }));
});

Deno.test("http2: open streams are capped, the oldest dropped and counted", () => {
  const { exchanges, stats: counts } = run([
    chunk(
      "client",
      1,
      PREFACE_AND_SETTINGS,
      requestFrame(1, "/a", true),
      requestFrame(3, "/b", true),
      requestFrame(5, "/c", true),
    ),
    chunk(
      "server",
      2,
      frame(HEADERS, END_HEADERS | END_STREAM, 1, [0x88]),
      frame(HEADERS, END_HEADERS | END_STREAM, 5, [0x88]),
    ),
  ], { maxStreams: 2 });
  assert.deepEqual(exchanges.map((x) => x.path), ["/c"]);
  assert.deepEqual(
    counts,
    stats({ exchanges: 1, unanswered: 1, unmatched: 1 }),
  );
});

Deno.test("http2: a header block over the cap is decoded up to it", () => {
  const block = [
    ...indexed(3),
    ...literal(":path", "/big", true),
    ...literal("x-big", "v".repeat(200), true),
  ];
  const { exchanges, stats: counts } = run([
    chunk(
      "client",
      1,
      PREFACE_AND_SETTINGS,
      frame(HEADERS, END_STREAM, 1, block.slice(0, 60)),
      frame(CONTINUATION, END_HEADERS, 1, block.slice(60)),
      requestFrame(3, "/next", true, indexed(62)),
    ),
    chunk(
      "server",
      2,
      frame(HEADERS, END_HEADERS | END_STREAM, 1, [0x88]),
      frame(HEADERS, END_HEADERS | END_STREAM, 3, [0x88]),
    ),
  ], { maxHeaderBlock: 100 });
  assert.deepEqual(
    exchanges.map((x) => [x.streamId, x.unnamed, x.path]),
    [[1, false, "/big"], [3, false, "/next"]],
  );
  assert.deepEqual(counts, stats({ exchanges: 2, hpackLost: 1 }));
});

Deno.test("http2: SETTINGS_HEADER_TABLE_SIZE bounds the encoder's table size updates", () => {
  const connection = (settings: number[]) => [
    chunk(
      "client",
      1,
      PREFACE,
      frame(SETTINGS, 0, 0, settings),
      requestFrame(1, "/a", true),
    ),
    // A table size update to 8192, then :status 200.
    chunk(
      "server",
      2,
      frame(HEADERS, END_HEADERS | END_STREAM, 1, [0x3f, 0xe1, 0x3f, 0x88]),
    ),
  ];
  const allowed = run(connection([0, 1, ...u32(8192)]));
  assert.equal(allowed.exchanges[0]?.status, 200);
  assert.deepEqual(allowed.stats, stats({ exchanges: 1 }));
  const refused = run(connection([]));
  assert.equal(refused.exchanges[0]?.status, undefined);
  assert.equal(refused.exchanges[0]?.path, "/a");
  assert.deepEqual(refused.stats, stats({ exchanges: 1, hpackLost: 1 }));
});

Deno.test("http2: a 1xx response is followed by the final status", () => {
  const { exchanges } = run([
    chunk("client", 1, PREFACE_AND_SETTINGS, requestFrame(1, "/up", false)),
    chunk(
      "server",
      2,
      frame(HEADERS, END_HEADERS, 1, literal(":status", "100")),
    ),
    chunk("client", 3, frame(DATA, END_STREAM, 1, new Uint8Array(20))),
    chunk(
      "server",
      4,
      frame(HEADERS, END_HEADERS, 1, [0x88]),
      frame(DATA, END_STREAM, 1, [1]),
    ),
  ]);
  assert.deepEqual(
    exchanges.map((x) => [x.status, x.startNs, x.endNs, x.requestBytes]),
    [[200, 1n, 2n, 20]],
  );
});

Deno.test("http2: the client connection preface", () => {
  assert.equal(startsWithHttp2Preface(GRPC[0]!.bytes), true);
  assert.equal(startsWithHttp2Preface(PREFACE), true);
  assert.equal(startsWithHttp2Preface(PREFACE.subarray(0, 23)), false);
  assert.equal(
    startsWithHttp2Preface(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n")),
    false,
  );
});

// Frames and header blocks written by hand (RFC 9113 §4, RFC 7541 §6).
const DATA = 0;
const HEADERS = 1;
const RST_STREAM = 3;
const SETTINGS = 4;
const PUSH_PROMISE = 5;
const PING = 6;
const GOAWAY = 7;
const CONTINUATION = 9;
const END_STREAM = 0x1;
const END_HEADERS = 0x4;
const PADDED = 0x8;
const PRIORITY_FLAG = 0x20;
const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const PREFACE_AND_SETTINGS = concat(PREFACE, frame(SETTINGS, 0, 0, []));

function u32(n: number): number[] {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff];
}

function frame(
  type: number,
  flags: number,
  stream: number,
  payload: ArrayLike<number>,
): Uint8Array {
  const n = payload.length;
  return Uint8Array.from([
    n >>> 16,
    (n >>> 8) & 0xff,
    n & 0xff,
    type,
    flags,
    ...u32(stream),
    ...Array.from(payload),
  ]);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function chunk(
  sender: "client" | "server",
  time: number,
  ...parts: Uint8Array[]
): StreamChunk {
  const bytes = concat(...parts);
  return { sender, timeNs: BigInt(time), bytes, size: bytes.length };
}

/** An HPACK integer with an N-bit prefix after `first`'s high bits. */
function integer(prefixBits: number, first: number, value: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [first | value];
  const out = [first | max];
  value -= max;
  while (value >= 128) {
    out.push((value & 0x7f) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return out;
}

function indexed(index: number): number[] {
  return integer(7, 0x80, index);
}

function text(s: string): number[] {
  return [...integer(7, 0, s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
}

/** A literal with a new name, with or without indexing. */
function literal(name: string, value: string, indexing = false): number[] {
  return [indexing ? 0x40 : 0x00, ...text(name), ...text(value)];
}

/** A gRPC-like request HEADERS: POST, :path literal, :scheme http, content-type, then extra. */
function requestFrame(
  stream: number,
  path: string,
  endStream: boolean,
  extra: number[] = [],
): Uint8Array {
  return frame(
    HEADERS,
    END_HEADERS | (endStream ? END_STREAM : 0),
    stream,
    [
      ...indexed(3),
      ...integer(4, 0x00, 4),
      ...text(path),
      ...indexed(6),
      ...literal("content-type", "application/grpc"),
      ...extra,
    ],
  );
}

Deno.test("http2: trailers are flagged, and so are response headers that could not be decoded", () => {
  const parser = createHttp2Parser();
  const grpc = load("http2_grpc_js.txt").flatMap((c) => parser.push(c));
  assert.ok(grpc.length > 0);
  // gRPC always ends a stream with trailers; every field was decoded.
  assert.deepEqual(
    grpc.map((x) => [x.endedWithHeaders, x.responseUndecoded]),
    grpc.map(() => [true, undefined]),
  );
  // h2c GETs end with DATA, not trailers.
  const h2c = createHttp2Parser();
  const plain = load("http2_h2c_node.txt").flatMap((c) => h2c.push(c));
  assert.ok(plain.length > 0);
  assert.ok(plain.every((x) => x.endedWithHeaders === undefined));
});
