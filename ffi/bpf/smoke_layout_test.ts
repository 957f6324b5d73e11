import assert from "node:assert/strict";
import { embeddedObject, embeddedObjectNames } from "./objects.ts";
import {
  decodeSmokeWriteEvent,
  SMOKE_CONFIG,
  SMOKE_WRITE_EVENT,
  writeSmokeConfig,
} from "./smoke_layout.ts";

Deno.test("smoke_layout: decodes a known smoke_write_event", () => {
  // pid 0x01020304, fd -1, count 4096, ts_ns 0x1122334455667788, little-endian.
  // deno-fmt-ignore
  const bytes = Uint8Array.from([
    0x04, 0x03, 0x02, 0x01, 0xff, 0xff, 0xff, 0xff,
    0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,
  ]);
  assert.deepEqual(decodeSmokeWriteEvent(new DataView(bytes.buffer)), {
    pid: 0x01020304,
    fd: -1,
    count: 4096n,
    tsNs: 0x1122334455667788n,
  });
});

Deno.test("smoke_layout: a short record is a RangeError, not garbage", () => {
  assert.throws(
    () => decodeSmokeWriteEvent(new DataView(new ArrayBuffer(23))),
    RangeError,
  );
});

Deno.test("smoke_layout: writes smoke_config into .rodata bytes", () => {
  const rodata = new DataView(new ArrayBuffer(8));
  writeSmokeConfig(rodata, { minCount: 0x0102n });
  assert.deepEqual([...new Uint8Array(rodata.buffer)], [
    0x02,
    0x01,
    0,
    0,
    0,
    0,
    0,
    0,
  ]);
});

Deno.test("objects: the build embedded smoke, and unknown names say how to add one", async () => {
  assert.ok((await embeddedObjectNames()).includes("smoke"));
  const elf = await embeddedObject("smoke");
  assert.deepEqual([...elf.subarray(0, 4)], [0x7f, 0x45, 0x4c, 0x46]); // \x7fELF
  await assert.rejects(
    embeddedObject("nope"),
    /BPF object nope not embedded .*bash ffi\/bpf\/build.sh/,
  );
});

// --- The TS view against the object's own BTF (needs bpftool, not privileges) ---

interface BtfMember {
  name: string;
  type_id: number;
  bits_offset: number;
}
interface BtfType {
  id: number;
  kind: string;
  name: string;
  size?: number;
  type_id?: number;
  members?: BtfMember[];
  vars?: { type_id: number; offset: number; size: number }[];
}

const bpftool = (() => {
  try {
    new Deno.Command("bpftool", {
      args: ["version"],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return true;
  } catch {
    return false;
  }
})();
const requireEbpf = Deno.env.get("CORAL_REQUIRE_EBPF") === "1";
if (!bpftool && !requireEbpf) {
  console.log(
    "smoke_layout_test: skipping the BTF check: bpftool not found (apt-get install -y bpftool)",
  );
}

Deno.test({
  name: "smoke_layout: every offset and size matches the BTF of smoke.bpf.o",
  ignore: !bpftool && !requireEbpf,
  async fn() {
    const types = await btfOf(await embeddedObject("smoke"));
    const byId = new Map(types.map((t) => [t.id, t]));
    const struct = (name: string) => {
      const t = types.find((t) => t.kind === "STRUCT" && t.name === name);
      assert.ok(t?.members, `struct ${name} not in the object's BTF`);
      return t;
    };
    const sizeOf = (id: number): number => {
      const t = byId.get(id);
      assert.ok(t, `BTF type ${id}`);
      return t.size ?? sizeOf(t.type_id ?? 0); // through TYPEDEF, CONST, VOLATILE
    };
    const layout = (name: string) => {
      const t = struct(name);
      const fields = Object.fromEntries(
        (t.members ?? []).map((
          m,
        ) => [m.name, { offset: m.bits_offset / 8, size: sizeOf(m.type_id) }]),
      );
      return { size: t.size, fields };
    };

    assert.deepEqual(layout("smoke_write_event"), SMOKE_WRITE_EVENT);
    const config = layout("smoke_config");
    const rodata = types.find((t) =>
      t.kind === "DATASEC" && t.name === ".rodata"
    );
    const variable = rodata?.vars?.find((v) =>
      byId.get(v.type_id)?.name === "smoke_config"
    );
    assert.ok(variable, "smoke_config not in .rodata");
    assert.deepEqual(
      { rodataOffset: variable.offset, ...config },
      SMOKE_CONFIG,
    );
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
    }).types;
  } finally {
    await Deno.remove(path);
  }
}
