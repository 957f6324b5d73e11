/**
 * The Coral RPC messages (proto/coral/agent/v1/agent.proto and
 * proto/coral/colony/v1/colony.proto) as protobufjs types, for the agent's
 * `QueryEbpfMetrics` service and the colony forwarder's `PushBatch`.
 *
 * Field names are protobufjs's camelCase (the proto3 JSON names); 64-bit
 * integers decode as long.js values, and `toObject(…, { longs: String })`
 * turns them into decimal strings as proto3 JSON requires.
 *
 * @module
 */
import protobuf from "protobufjs";
import { AGENT_PROTO, COLONY_PROTO } from "./coral_proto_text.ts";

let root: protobuf.Root | undefined;

/** Both protos in one root (parsed once). */
export function coralRoot(): protobuf.Root {
  if (root !== undefined) return root;
  const loaded = new protobuf.Root();
  protobuf.parse(AGENT_PROTO, loaded, { keepCase: false });
  protobuf.parse(COLONY_PROTO, loaded, { keepCase: false });
  loaded.resolveAll();
  root = loaded;
  return loaded;
}

/** A message type by its full name, e.g. `coral.agent.v1.EbpfHttpMetric`. */
export function coralType(name: string): protobuf.Type {
  return coralRoot().lookupType(name);
}

/** Options for `toObject` that give proto3 JSON values (uint64 as strings). */
export const JSON_OBJECT_OPTIONS: protobuf.IConversionOptions = {
  longs: String,
  enums: String,
  arrays: false,
  defaults: false,
};

/** A 64-bit value protobufjs decoded (long.js, number or string) as a number. */
export function longToNumber(value: unknown): number {
  if (value === null || value === undefined) return 0;
  if (typeof value === "number") return value;
  if (typeof value === "string") return Number(value);
  if (typeof value === "bigint") return Number(value);
  const long = value as { toNumber?: () => number };
  return typeof long.toNumber === "function" ? long.toNumber() : Number(value);
}
