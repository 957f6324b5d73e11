/**
 * The protobufjs static root that `@opentelemetry/otlp-transformer` 0.214
 * ships (~850 kB of generated code, evaluated when this module is first
 * imported). A plain import, not `createRequire`, so that `deno bundle` and
 * `deno compile` carry the file inside the program.
 *
 * @module
 */
import root from "@opentelemetry/otlp-transformer/build/src/generated/root.js";

/** `opentelemetry.proto.…` message types; callers cast to the shape they use. */
export const TRANSFORMER_ROOT: unknown = root;
