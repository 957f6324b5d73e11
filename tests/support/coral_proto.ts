/**
 * The agent's own .proto files (proto/), loaded with protobufjs keeping the
 * snake_case field names, so tests can check that JSON the agent prints
 * carries exactly the proto's names.
 */
import protobuf from "protobufjs";

const PROTO = new URL("../../proto/", import.meta.url).pathname;

/** proto/coral/mesh/v1/ebpf.proto and proto/coral/agent/v1/agent.proto, resolved. */
export const PROTO_FILES = [
  "coral/mesh/v1/ebpf.proto",
  "coral/agent/v1/agent.proto",
];

let root: protobuf.Root | undefined;

/** Both files in one root; field names as written (keepCase). */
export function coralProto(): protobuf.Root {
  if (root !== undefined) return root;
  const loaded = new protobuf.Root();
  loaded.loadSync(PROTO_FILES.map((file) => `${PROTO}${file}`), {
    keepCase: true,
  });
  loaded.resolveAll();
  root = loaded;
  return loaded;
}

/** `[name, number, type]` of every field of a message, in number order ("repeated " and "map<string, …>" spelled out). */
export function fieldsOf(typeName: string): [string, number, string][] {
  return coralProto().lookupType(typeName).fieldsArray
    .map((f): [string, number, string] => {
      const type = f instanceof protobuf.MapField
        ? `map<${f.keyType}, ${f.type}>`
        : f.repeated
        ? `repeated ${f.type}`
        : f.type;
      return [f.name, f.id, type];
    })
    .sort((a, b) => a[1] - b[1]);
}

/**
 * Encodes `object` (protobuf JSON with the proto's field names) as
 * `typeName`, decodes it back and returns the plain object, defaults
 * included: a key whose name the proto does not have comes back missing or
 * as its default.
 */
export function roundTrip(
  typeName: string,
  object: Record<string, unknown>,
): Record<string, unknown> {
  const type = coralProto().lookupType(typeName);
  const problem = type.verify(object);
  if (problem !== null) throw new Error(`${typeName}: ${problem}`);
  const bytes = type.encode(type.fromObject(object)).finish();
  return type.toObject(type.decode(bytes), {
    defaults: true,
    arrays: true,
    objects: true,
    longs: String,
  });
}
