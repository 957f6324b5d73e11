import assert from "node:assert/strict";
import {
  decodeHuffman,
  HPACK_STATIC_TABLE,
  HpackDecoder,
  huffmanCodes,
} from "./hpack.ts";

const hex = (s: string) =>
  Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
const pairs = (list: { name: string | undefined; value: string }[]) =>
  list.map(({ name, value }) => [name, value]);

interface Example {
  block: string;
  headers: [string, string][];
  /** The dynamic table after the block, newest first. */
  table: [string, string][];
  size: number;
}

/** Runs RFC 7541 Appendix C examples in order on one decoder. */
function checkExamples(examples: Example[], tableSizeLimit = 4096): void {
  const decoder = new HpackDecoder({ tableSizeLimit });
  for (const example of examples) {
    const result = decoder.decode(hex(example.block));
    assert.deepEqual(result, {
      headers: example.headers.map(([name, value]) => ({ name, value })),
      unknown: 0,
    }, example.block);
    assert.deepEqual(pairs(decoder.tableEntries()), example.table);
    assert.equal(decoder.tableSize, example.size);
    assert.equal(decoder.broken, false);
  }
}

// RFC 7541 Appendix C (the hex blocks were also re-encoded byte for byte by
// the python hpack 4.2.0 Encoder as a check of the transcription).
const AUTHORITY: [string, string] = [":authority", "www.example.com"];
const NO_CACHE: [string, string] = ["cache-control", "no-cache"];
const CUSTOM: [string, string] = ["custom-key", "custom-value"];
const REQUEST_1: [string, string][] = [
  [":method", "GET"],
  [":scheme", "http"],
  [":path", "/"],
  AUTHORITY,
];
const REQUEST_2 = [...REQUEST_1, NO_CACHE];
const REQUEST_3: [string, string][] = [
  [":method", "GET"],
  [":scheme", "https"],
  [":path", "/index.html"],
  AUTHORITY,
  CUSTOM,
];
const DATE_21: [string, string] = ["date", "Mon, 21 Oct 2013 20:13:21 GMT"];
const DATE_22: [string, string] = ["date", "Mon, 21 Oct 2013 20:13:22 GMT"];
const PRIVATE: [string, string] = ["cache-control", "private"];
const LOCATION: [string, string] = ["location", "https://www.example.com"];
const COOKIE: [string, string] = [
  "set-cookie",
  "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1",
];
const RESPONSE_1: [string, string][] = [
  [":status", "302"],
  PRIVATE,
  DATE_21,
  LOCATION,
];
const RESPONSE_2: [string, string][] = [
  [":status", "307"],
  PRIVATE,
  DATE_21,
  LOCATION,
];
const RESPONSE_3: [string, string][] = [
  [":status", "200"],
  PRIVATE,
  DATE_22,
  LOCATION,
  ["content-encoding", "gzip"],
  COOKIE,
];
const RESPONSE_TABLES: [string, string][][] = [
  [LOCATION, DATE_21, PRIVATE, [":status", "302"]],
  [[":status", "307"], LOCATION, DATE_21, PRIVATE],
  [COOKIE, ["content-encoding", "gzip"], DATE_22],
];

Deno.test("hpack: RFC 7541 C.2 header field representations", () => {
  checkExamples([{
    block: "400a637573746f6d2d6b65790d637573746f6d2d686561646572",
    headers: [["custom-key", "custom-header"]],
    table: [["custom-key", "custom-header"]],
    size: 55,
  }]);
  checkExamples([{
    block: "040c2f73616d706c652f70617468",
    headers: [[":path", "/sample/path"]],
    table: [],
    size: 0,
  }]);
  checkExamples([{
    block: "100870617373776f726406736563726574",
    headers: [["password", "secret"]],
    table: [],
    size: 0,
  }]);
  checkExamples([{
    block: "82",
    headers: [[":method", "GET"]],
    table: [],
    size: 0,
  }]);
});

Deno.test("hpack: RFC 7541 C.3 requests without Huffman coding", () => {
  checkExamples([
    {
      block: "828684410f7777772e6578616d706c652e636f6d",
      headers: REQUEST_1,
      table: [AUTHORITY],
      size: 57,
    },
    {
      block: "828684be58086e6f2d6361636865",
      headers: REQUEST_2,
      table: [NO_CACHE, AUTHORITY],
      size: 110,
    },
    {
      block: "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565",
      headers: REQUEST_3,
      table: [CUSTOM, NO_CACHE, AUTHORITY],
      size: 164,
    },
  ]);
});

Deno.test("hpack: RFC 7541 C.4 requests with Huffman coding", () => {
  checkExamples([
    {
      block: "828684418cf1e3c2e5f23a6ba0ab90f4ff",
      headers: REQUEST_1,
      table: [AUTHORITY],
      size: 57,
    },
    {
      block: "828684be5886a8eb10649cbf",
      headers: REQUEST_2,
      table: [NO_CACHE, AUTHORITY],
      size: 110,
    },
    {
      block: "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf",
      headers: REQUEST_3,
      table: [CUSTOM, NO_CACHE, AUTHORITY],
      size: 164,
    },
  ]);
});

Deno.test("hpack: RFC 7541 C.5 responses without Huffman coding (table of 256)", () => {
  checkExamples([
    {
      block: "4803333032580770726976617465611d4d6f6e2c203231204f637420323031" +
        "332032303a31333a323120474d546e1768747470733a2f2f7777772e6578616d70" +
        "6c652e636f6d",
      headers: RESPONSE_1,
      table: RESPONSE_TABLES[0]!,
      size: 222,
    },
    {
      block: "4803333037c1c0bf",
      headers: RESPONSE_2,
      table: RESPONSE_TABLES[1]!,
      size: 222,
    },
    {
      block: "88c1611d4d6f6e2c203231204f637420323031332032303a31333a32322047" +
        "4d54c05a04677a69707738666f6f3d4153444a4b48514b425a584f5157454f50" +
        "495541585157454f49553b206d61782d6167653d333630303b2076657273696f" +
        "6e3d31",
      headers: RESPONSE_3,
      table: RESPONSE_TABLES[2]!,
      size: 215,
    },
  ], 256);
});

Deno.test("hpack: RFC 7541 C.6 responses with Huffman coding (table of 256)", () => {
  checkExamples([
    {
      block: "488264025885aec3771a4b6196d07abe941054d444a8200595040b8166e082" +
        "a62d1bff6e919d29ad171863c78f0b97c8e9ae82ae43d3",
      headers: RESPONSE_1,
      table: RESPONSE_TABLES[0]!,
      size: 222,
    },
    {
      block: "4883640effc1c0bf",
      headers: RESPONSE_2,
      table: RESPONSE_TABLES[1]!,
      size: 222,
    },
    {
      block: "88c16196d07abe941054d444a8200595040b8166e084a62d1bffc05a839bd9" +
        "ab77ad94e7821dd7f2e6c7b335dfdfcd5b3960d5af27087f3672c1ab270fb529" +
        "1f9587316065c003ed4ee5b1063d5007",
      headers: RESPONSE_3,
      table: RESPONSE_TABLES[2]!,
      size: 215,
    },
  ], 256);
});

Deno.test("hpack: static table and Huffman code are RFC 7541's", () => {
  assert.equal(HPACK_STATIC_TABLE.length, 61);
  assert.deepEqual(HPACK_STATIC_TABLE[0], [":authority", ""]);
  assert.deepEqual(HPACK_STATIC_TABLE[15], [
    "accept-encoding",
    "gzip, deflate",
  ]);
  assert.deepEqual(HPACK_STATIC_TABLE[60], ["www-authenticate", ""]);
  const { codes, lengths } = huffmanCodes();
  // A few codes from Appendix B, and the code is complete (Kraft sum 1).
  assert.deepEqual([codes[48], lengths[48]], [0x0, 5]); // '0'
  assert.deepEqual([codes[97], lengths[97]], [0x3, 5]); // 'a'
  assert.deepEqual([codes[0], lengths[0]], [0x1ff8, 13]);
  assert.deepEqual([codes[10], lengths[10]], [0x3ffffffc, 30]); // LF
  assert.deepEqual([codes[255], lengths[255]], [0x3ffffee, 26]);
  assert.deepEqual([codes[256], lengths[256]], [0x3fffffff, 30]); // EOS
  assert.equal(lengths.reduce((sum, len) => sum + 2 ** (30 - len), 0), 2 ** 30);
});

Deno.test("hpack: Huffman strings with EOS or bad padding are refused", () => {
  const out = new Uint8Array(64);
  const decode = (s: string) => {
    const bytes = hex(s);
    return decodeHuffman(bytes, 0, bytes.length, out);
  };
  assert.equal(decode("ffffffff"), -1); // EOS, 30 ones
  assert.equal(decode("00"), -1); // '0' then 000: padding not all ones
  assert.equal(decode("ff"), -1); // 8 bits of padding
  assert.equal(decode("1fff"), -1); // 'a' then 11 ones
  assert.equal(decode("fe"), -1); // a code cut short
  assert.equal(decode(""), 0);
  assert.equal(decode("183f"), 2); // 'a' '0' then 6 ones of padding
  assert.deepEqual([...out.subarray(0, 2)], [97, 48]);
  const decoder = new HpackDecoder();
  assert.deepEqual(decoder.decode(hex("048100")), {
    headers: [],
    unknown: 0,
    error: "bad-huffman",
  });
  assert.equal(decoder.broken, true);
});

Deno.test("hpack: blocks of another encoder (python hpack) with evictions and size updates", async () => {
  // See the file's comment: python hpack 4.2.0 encoded them, its decoder agreed.
  const fixture = JSON.parse(
    await Deno.readTextFile(
      new URL("./testdata/hpack_python_blocks.json", import.meta.url),
    ),
  ) as { blocks: { hex: string; headers: [string, string][] }[] };
  assert.equal(fixture.blocks.length, 40);
  const decoder = new HpackDecoder();
  let everyOctet = 0;
  for (const [i, block] of fixture.blocks.entries()) {
    const result = decoder.decode(hex(block.hex));
    assert.deepEqual(
      result,
      {
        headers: block.headers.map(([name, value]) => ({ name, value })),
        unknown: 0,
      },
      `block ${i}`,
    );
    for (const { name, value } of result.headers) {
      if (name !== "x-every-octet") continue;
      everyOctet++;
      assert.equal(value.length, 256);
      for (let c = 0; c < 256; c++) assert.equal(value.charCodeAt(c), c);
    }
    if (i === 30) assert.equal(decoder.tableSize, 0); // size update to 0
    assert.ok(decoder.tableSize <= decoder.maxTableSize);
  }
  assert.equal(everyOctet, 1);
  assert.equal(decoder.maxTableSize, 300);
  assert.equal(decoder.broken, false);
});

Deno.test("hpack: bad blocks are returned as errors and break the decoder", () => {
  const cases: [string, string, number][] = [
    ["80", "bad-index", 0], // index 0
    ["be", "bad-index", 0], // dynamic index 62 in an empty table
    ["827e00", "bad-index", 1], // a name index past both tables
    ["ff", "truncated", 0], // an integer announcing more octets
    ["ff80", "truncated", 0],
    ["ff8080808080808001", "bad-integer", 0],
    ["40", "truncated", 0], // a literal without its name
    ["400561", "truncated", 0], // a string longer than the block
    ["8204", "truncated", 1], // a value missing
    ["0484ffffffff", "bad-huffman", 0],
    ["8220", "bad-size-update", 1], // a size update after a field
    ["3fe21f", "bad-size-update", 0], // 4097 > the limit of 4096
  ];
  for (const [block, error, fields] of cases) {
    const decoder = new HpackDecoder();
    const result = decoder.decode(hex(block));
    assert.equal(result.error, error, block);
    assert.equal(result.headers.length, fields, block);
    assert.equal(decoder.broken, true, block);
  }
  // The fields before the error are returned.
  const decoder = new HpackDecoder();
  assert.deepEqual(decoder.decode(hex("8286be")), {
    headers: [{ name: ":method", value: "GET" }, {
      name: ":scheme",
      value: "http",
    }],
    unknown: 0,
    error: "bad-index",
  });
});

Deno.test("hpack: a broken decoder gives only what is certain", () => {
  const decoder = new HpackDecoder({ broken: true });
  assert.equal(decoder.broken, true);
  // Static entries and literals are certain; dynamic 62 (and a literal whose
  // name is dynamic 63) are not.
  let result = decoder.decode(hex("8288be7f0003787878" + "400178017a"));
  assert.deepEqual(result, {
    headers: [
      { name: ":method", value: "GET" },
      { name: ":status", value: "200" },
      { name: "x", value: "z" },
    ],
    unknown: 2,
  });
  // The entries inserted since the break are known: "x: z" was inserted
  // last (62), the unknown-name "xxx" before it (63), the rest is unknown.
  assert.deepEqual(pairs(decoder.tableEntries()), [["x", "z"], [
    undefined,
    "xxx",
  ]]);
  result = decoder.decode(hex("bebfc0"));
  assert.deepEqual(result, {
    headers: [{ name: "x", value: "z" }],
    unknown: 2,
  });
  assert.equal(decoder.broken, true);
  // A size update to 0 empties the table: its state is known again.
  result = decoder.decode(hex("20" + "3fe11f" + "82")); // 0, then 4096
  assert.deepEqual(result, {
    headers: [{ name: ":method", value: "GET" }],
    unknown: 0,
  });
  assert.equal(decoder.broken, false);
  assert.equal(decoder.decode(hex("be")).error, "bad-index");
  // markBroken forgets the table.
  const d2 = new HpackDecoder();
  d2.decode(hex("400178017a"));
  d2.markBroken();
  assert.deepEqual(d2.decode(hex("be")), { headers: [], unknown: 1 });
});

Deno.test("hpack: long strings are cut but the table counts their full length", () => {
  const decoder = new HpackDecoder({ maxStringLength: 4 });
  // "x-long: abcdefgh" with indexing.
  const result = decoder.decode(hex("4006782d6c6f6e6708616263646566676882"));
  assert.deepEqual(result.headers, [
    { name: "x-lo", value: "abcd" },
    { name: ":method", value: "GET" },
  ]);
  assert.equal(decoder.tableSize, 32 + 6 + 8);
});

Deno.test("hpack: random bytes never throw", () => {
  let seed = 42;
  const random = () =>
    (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x80000000;
  const decoder = new HpackDecoder();
  let errors = 0;
  for (let i = 0; i < 5000; i++) {
    const block = Uint8Array.from(
      { length: Math.floor(random() * 40) },
      () => Math.floor(random() * 256),
    );
    const result = decoder.decode(block);
    if (result.error !== undefined) errors++;
    if (i % 7 === 0) decoder.markBroken();
  }
  assert.ok(errors > 1000, `${errors}`);
});
