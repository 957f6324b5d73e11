/**
 * The libbpf binding: one symbol table (symbols.ts) and thin typed wrappers.
 *
 * @module
 */

export {
  type AttachAllOptions,
  BpfObject,
  type BpfObjectState,
} from "./object.ts";
export {
  attachAuto,
  attachTracepoint,
  attachUprobe,
  BpfLink,
  type BpfProgram,
  type Tracepoint,
  type UprobeOptions,
} from "./links.ts";
export {
  BpfMap,
  type MapShape,
  readU64,
  u32,
  type UpdateMode,
} from "./maps.ts";
export {
  type RecordHandler,
  type RingBufferOptions,
  RingBufferReader,
  type RingBufferStats,
} from "./ring_buffer.ts";
export {
  type LibbpfLogger,
  type LibbpfLogLevel,
  type LibbpfLogOptions,
  setLibbpfLogger,
} from "./log.ts";
export {
  errnoName,
  errnoText,
  LibbpfError,
  type LibbpfErrorOptions,
} from "./errors.ts";
export {
  type Capability,
  type CapabilityReport,
  probeCapabilities,
} from "./capabilities.ts";
