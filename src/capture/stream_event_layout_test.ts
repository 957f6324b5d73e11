import assert from "node:assert/strict";
import {
  decodeStreamEvent,
  L7_PROTOCOL,
  STREAM_EVENT,
  STREAM_EVENT_KIND,
  STREAM_SENDER,
} from "./stream_event_layout.ts";

function record(
  fields: { kind: number; sender: number; side?: number; data?: number[] },
): DataView {
  const data = fields.data ?? [];
  const bytes = new Uint8Array(STREAM_EVENT.size + data.length);
  const view = new DataView(bytes.buffer);
  const f = STREAM_EVENT.fields;
  view.setUint32(f.conn_id.offset, 7, true);
  view.setBigUint64(f.time_ns.offset, 123_456n, true);
  view.setUint32(f.pid.offset, 42, true);
  view.setUint32(f.size.offset, data.length + 10, true);
  view.setUint16(f.len.offset, data.length, true);
  view.setUint8(f.kind.offset, fields.kind);
  view.setUint8(f.protocol.offset, L7_PROTOCOL.redis);
  view.setUint8(f.side.offset, fields.side ?? 1);
  view.setUint8(f.sender.offset, fields.sender);
  bytes.set(data, STREAM_EVENT.size);
  return view;
}

Deno.test("stream_event_layout: data records carry their bytes and who sent them", () => {
  const event = decodeStreamEvent(
    record({
      kind: STREAM_EVENT_KIND.data,
      sender: STREAM_SENDER.client,
      data: [0x2a, 0x31],
    }),
  );
  assert.ok(typeof event !== "string");
  assert.equal(event.kind, "data");
  assert.equal(event.sender, "client");
  assert.equal(event.side, "server");
  assert.equal(event.connId, 7);
  assert.equal(event.size, 12);
  assert.deepEqual([...event.data], [0x2a, 0x31]);
});

Deno.test("stream_event_layout: a close record has no sender and is still a close", () => {
  const event = decodeStreamEvent(
    record({ kind: STREAM_EVENT_KIND.close, sender: 0 }),
  );
  assert.ok(typeof event !== "string");
  assert.equal(event.kind, "close");
  assert.equal(event.data.length, 0);
});

Deno.test("stream_event_layout: bad kinds, senders and sides are named", () => {
  assert.equal(
    decodeStreamEvent(record({ kind: 9, sender: 1 })),
    "bad_kind",
  );
  assert.equal(
    decodeStreamEvent(record({ kind: STREAM_EVENT_KIND.data, sender: 0 })),
    "bad_sender",
  );
  assert.equal(
    decodeStreamEvent(
      record({ kind: STREAM_EVENT_KIND.data, sender: 1, side: 5 }),
    ),
    "bad_side",
  );
  assert.equal(
    decodeStreamEvent(new DataView(new ArrayBuffer(10))),
    "short_record",
  );
});
