/**
 * The colony's protobuf messages, parsed with protobufjs from the proto
 * texts carried in the program (src/serve/coral_proto_text.ts, generated
 * from proto/; field names as written): `coral.colony.v1` (PushBatch) and
 * `coral.agent.v1` (QueryEbpfMetrics, for pulling).
 *
 * @module
 */
import protobuf from "protobufjs";
import { AGENT_PROTO, COLONY_PROTO } from "../serve/coral_proto_text.ts";

let root: protobuf.Root | undefined;

/** The loaded root, parsed once. */
export function colonyProtoRoot(): protobuf.Root {
  if (root !== undefined) return root;
  const loaded = new protobuf.Root();
  for (const text of [COLONY_PROTO, AGENT_PROTO]) {
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
