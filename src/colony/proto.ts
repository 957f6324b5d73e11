/**
 * The colony's protobuf messages, loaded with protobufjs from proto/
 * (field names as written): `coral.colony.v1` (PushBatch) and
 * `coral.agent.v1` (QueryEbpfMetrics, for pulling).
 *
 * @module
 */
import protobuf from "protobufjs";

const PROTO_DIR = new URL("../../proto/", import.meta.url);

let root: protobuf.Root | undefined;

/** The loaded root, parsed once. */
export function colonyProtoRoot(): protobuf.Root {
  if (root !== undefined) return root;
  const loaded = new protobuf.Root();
  for (
    const file of ["coral/colony/v1/colony.proto", "coral/agent/v1/agent.proto"]
  ) {
    const text = Deno.readTextFileSync(new URL(file, PROTO_DIR));
    protobuf.parse(text, loaded, { keepCase: true });
  }
  loaded.resolveAll();
  root = loaded;
  return loaded;
}

/** A message type by full name, e.g. "coral.colony.v1.PushBatchRequest". */
export function messageType(name: string): protobuf.Type {
  return colonyProtoRoot().lookupType(name);
}

/** Plain object of a decoded message: numbers for 64-bit integers, defaults filled in. */
export function toPlain(
  type: protobuf.Type,
  message: protobuf.Message,
): Record<string, unknown> {
  return type.toObject(message, {
    longs: Number,
    defaults: true,
    arrays: true,
    objects: true,
  });
}

/** Proto3 JSON names ("agentId") to the proto's names ("agent_id"), recursively. */
export function snakeKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(snakeKeys);
  if (value === null || typeof value !== "object") return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, child]) => [
      key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`),
      snakeKeys(child),
    ]),
  );
}
