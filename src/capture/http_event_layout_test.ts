import assert from "node:assert/strict";
import { embeddedObject } from "../../ffi/bpf/objects.ts";
import {
  decodeHttpEvent,
  formatAddress,
  HTTP_CONFIG,
  HTTP_COUNTER,
  HTTP_COUNTER_MAX,
  HTTP_ENDPOINTS,
  HTTP_EVENT,
  HTTP_EVENT_MIN_SIZE,
  HTTP_PID_BITS,
  HTTP_SIDE,
  HttpEventError,
  writeHttpConfig,
} from "./http_event_layout.ts";
import {
  L7_PROTOCOL,
  STREAM_EVENT,
  STREAM_EVENT_KIND,
  STREAM_SENDER,
} from "./stream_event_layout.ts";

/** A record as the kernel writes it: a server pair 127.0.0.1:8080 ← 127.0.0.1:40000. */
function knownRecord(): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(HTTP_EVENT.size);
  const view = new DataView(bytes.buffer);
  const f = HTTP_EVENT.fields;
  const ep = HTTP_ENDPOINTS.fields;
  const e = f.endpoints.offset;
  view.setBigUint64(f.start_ns.offset, 1_000_000_000n, true);
  view.setBigUint64(f.end_ns.offset, 1_050_000_000n, true);
  view.setBigUint64(f.request_bytes.offset, 77n, true);
  view.setBigUint64(f.response_bytes.offset, 123n, true);
  view.setUint32(f.pid.offset, 4242, true);
  view.setInt32(f.fd.offset, 7, true);
  bytes.set([127, 0, 0, 1], e + ep.local_addr.offset);
  bytes.set([127, 0, 0, 1], e + ep.remote_addr.offset);
  view.setUint16(e + ep.local_port.offset, 8080, true);
  view.setUint16(e + ep.remote_port.offset, 40000, true);
  view.setUint16(e + ep.family.offset, 2, true);
  view.setUint8(f.side.offset, HTTP_SIDE.server);
  const request = new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n");
  const response = new TextEncoder().encode("HTTP/1.1 200 OK\r\n");
  view.setUint16(f.request_len.offset, request.length, true);
  view.setUint8(f.response_len.offset, response.length);
  bytes.set(request, f.request.offset);
  bytes.set(response, f.response.offset);
  return bytes;
}

Deno.test("http_event_layout: decodes a known http_event", () => {
  const bytes = knownRecord();
  const event = decodeHttpEvent(new DataView(bytes.buffer));
  assert.deepEqual(
    { ...event, request: undefined, response: undefined },
    {
      startNs: 1_000_000_000n,
      endNs: 1_050_000_000n,
      requestBytes: 77,
      responseBytes: 123,
      pid: 4242,
      fd: 7,
      side: "server",
      localAddress: "127.0.0.1",
      localPort: 8080,
      remoteAddress: "127.0.0.1",
      remotePort: 40000,
      request: undefined,
      response: undefined,
    },
  );
  assert.equal(
    new TextDecoder().decode(event.request),
    "GET / HTTP/1.1\r\n\r\n",
  );
  assert.equal(new TextDecoder().decode(event.response), "HTTP/1.1 200 OK\r\n");
  // The copies outlive the record's bytes (the ring reader reuses them).
  bytes.fill(0);
  assert.equal(event.request[0], 0x47);
});

Deno.test("http_event_layout: a record holds only the valid request bytes", () => {
  const bytes = knownRecord();
  const request = "GET / HTTP/1.1\r\n\r\n";
  const cut = bytes.slice(0, HTTP_EVENT_MIN_SIZE + request.length);
  const event = decodeHttpEvent(new DataView(cut.buffer));
  assert.equal(new TextDecoder().decode(event.request), request);
  // request_len beyond the record's end is cut to what the record holds.
  const short = bytes.slice(0, HTTP_EVENT_MIN_SIZE + 3);
  assert.equal(decodeHttpEvent(new DataView(short.buffer)).request.length, 3);
});

Deno.test("http_event_layout: short records and unknown sides are typed errors", () => {
  assert.throws(
    () =>
      decodeHttpEvent(new DataView(new ArrayBuffer(HTTP_EVENT_MIN_SIZE - 1))),
    (e: unknown) => e instanceof HttpEventError && e.reason === "short_record",
  );
  const bytes = knownRecord();
  bytes[HTTP_EVENT.fields.side.offset] = 9;
  assert.throws(
    () => decodeHttpEvent(new DataView(bytes.buffer)),
    (e: unknown) => e instanceof HttpEventError && e.reason === "bad_side",
  );
});

Deno.test("http_event_layout: addresses", () => {
  const v6 = (groups: number[]) => {
    const out = new Uint8Array(16);
    groups.forEach((g, i) => {
      out[2 * i] = g >> 8;
      out[2 * i + 1] = g & 0xff;
    });
    return out;
  };
  assert.equal(formatAddress(2, Uint8Array.of(10, 1, 2, 3)), "10.1.2.3");
  assert.equal(formatAddress(10, v6([0, 0, 0, 0, 0, 0, 0, 1])), "::1");
  assert.equal(
    formatAddress(10, v6([0, 0, 0, 0, 0, 0xffff, 0x7f00, 1])),
    "127.0.0.1",
  );
  assert.equal(
    formatAddress(10, v6([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1])),
    "2001:db8::1:0:0:1",
  );
  assert.equal(
    formatAddress(10, v6([1, 2, 3, 4, 5, 6, 7, 8])),
    "1:2:3:4:5:6:7:8",
  );
  assert.equal(formatAddress(10, new Uint8Array(16)), "::");
  assert.equal(formatAddress(1, new Uint8Array(16)), "");
});

Deno.test("http_event_layout: writes http_config into .rodata bytes", () => {
  const rodata = new DataView(new ArrayBuffer(16));
  writeHttpConfig(rodata, { maxConns: 0x01020304 });
  assert.deepEqual([...new Uint8Array(rodata.buffer, 0, 8)], [
    4,
    3,
    2,
    1,
    0,
    0,
    0,
    0,
  ]);
});

// --- The TS view against the object's own BTF (needs bpftool, not privileges) ---

interface BtfType {
  id: number;
  kind: string;
  name: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  members?: { name: string; type_id: number; bits_offset: number }[];
  vars?: { type_id: number; offset: number; size: number }[];
  values?: { name: string; val: number }[];
}

const bpftool = (() => {
  try {
    new Deno.Command("bpftool", {
      args: ["version"],
      stdout: "null",
      stderr: "null",
    })
      .outputSync();
    return true;
  } catch {
    return false;
  }
})();
const requireEbpf = Deno.env.get("CORAL_REQUIRE_EBPF") === "1";
if (!bpftool && !requireEbpf) {
  console.log(
    "http_event_layout_test: skipping the BTF check: bpftool not found (apt-get install -y bpftool)",
  );
}

Deno.test({
  name:
    "http_event_layout: every offset, size and counter matches the BTF of http.bpf.o",
  ignore: !bpftool && !requireEbpf,
  async fn() {
    const types = await btfOf(await embeddedObject("http"));
    const byId = new Map(types.map((t) => [t.id, t]));
    const sizeOf = (id: number): number => {
      const t = byId.get(id);
      assert.ok(t, `BTF type ${id}`);
      if (t.kind === "ARRAY") return (t.nr_elems ?? 0) * sizeOf(t.type_id ?? 0);
      return t.size ?? sizeOf(t.type_id ?? 0); // through TYPEDEF, CONST, VOLATILE
    };
    const named = (kind: string, name: string) => {
      const t = types.find((t) => t.kind === kind && t.name === name);
      assert.ok(t, `${kind} ${name} not in the object's BTF`);
      return t;
    };
    const layout = (name: string) => {
      const t = named("STRUCT", name);
      const fields = Object.fromEntries(
        (t.members ?? []).map((m) => [
          m.name,
          { offset: m.bits_offset / 8, size: sizeOf(m.type_id) },
        ]),
      );
      return { size: t.size, fields };
    };
    const enumValues = (name: string) =>
      Object.fromEntries(
        (named("ENUM", name).values ?? []).map((v) => [v.name, v.val]),
      );

    assert.deepEqual(layout("http_event"), HTTP_EVENT);
    assert.deepEqual(layout("http_endpoints"), HTTP_ENDPOINTS);

    const rodata = named("DATASEC", ".rodata");
    const variable = rodata.vars?.find((v) =>
      byId.get(v.type_id)?.name === "http_config"
    );
    assert.ok(variable, "http_config not in .rodata");
    assert.deepEqual({
      rodataOffset: variable.offset,
      ...layout("http_config"),
    }, HTTP_CONFIG);

    // The bitmap alone in its section: user space maps it from offset 0.
    const bss = named("DATASEC", HTTP_PID_BITS.section);
    assert.deepEqual(
      bss.vars?.map((v) => ({ name: byId.get(v.type_id)?.name, size: v.size })),
      [{ name: HTTP_PID_BITS.variable, size: HTTP_PID_BITS.size }],
    );

    const counters = Object.fromEntries(
      Object.entries(HTTP_COUNTER).map((
        [name, index],
      ) => [`HTTP_COUNTER_${name.toUpperCase()}`, index]),
    );
    assert.deepEqual(enumValues("http_counter"), {
      ...counters,
      HTTP_COUNTER_MAX: HTTP_COUNTER_MAX,
    });
    assert.deepEqual(layout("stream_event"), STREAM_EVENT);
    assert.deepEqual(
      enumValues("l7_protocol"),
      Object.fromEntries(
        Object.entries(L7_PROTOCOL).map(([name, id]) => [
          `L7_${name.toUpperCase()}`,
          id,
        ]),
      ),
    );
    assert.deepEqual(enumValues("stream_event_kind"), {
      STREAM_DATA: STREAM_EVENT_KIND.data,
      STREAM_CLOSE: STREAM_EVENT_KIND.close,
      STREAM_FORK: STREAM_EVENT_KIND.fork,
    });
    assert.deepEqual(enumValues("stream_sender"), {
      STREAM_SENDER_CLIENT: STREAM_SENDER.client,
      STREAM_SENDER_SERVER: STREAM_SENDER.server,
      STREAM_SENDER_SELF: STREAM_SENDER.self,
      STREAM_SENDER_PEER: STREAM_SENDER.peer,
    });
    assert.deepEqual(enumValues("http_side"), {
      HTTP_SIDE_SERVER: HTTP_SIDE.server,
      HTTP_SIDE_CLIENT: HTTP_SIDE.client,
    });
  },
});

async function btfOf(elf: Uint8Array): Promise<BtfType[]> {
  const path = await Deno.makeTempFile({ suffix: ".bpf.o" });
  try {
    await Deno.writeFile(path, elf);
    const out = await new Deno.Command("bpftool", {
      args: ["-j", "btf", "dump", "file", path],
    }).output();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    return (JSON.parse(new TextDecoder().decode(out.stdout)) as {
      types: BtfType[];
    })
      .types;
  } finally {
    await Deno.remove(path);
  }
}
