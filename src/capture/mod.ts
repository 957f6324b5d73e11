/**
 * eBPF capture: probes, discovery of processes, windows of records.
 *
 * @module
 */

export {
  type CaptureLog,
  HttpCapture,
  type HttpCaptureOptions,
  type HttpCaptureStats,
  ringBufferBytes,
} from "./http_capture.ts";
export {
  compileRules,
  Discovery,
  type DiscoveryChange,
  type DiscoveryOptions,
  type DiscoveryRule,
  environValue,
  exeBaseName,
  exeMatcher,
  matchRule,
  parseProcNetTcp,
  portMatcher,
  type ProcessIdentity,
  processServiceName,
} from "./discovery.ts";
export {
  type HttpExchange,
  HttpWindows,
  type HttpWindowsOptions,
  isHttpError,
} from "./http_windows.ts";
export {
  decodeHttpEvent,
  HTTP,
  HTTP_COUNTER,
  type HttpCounterName,
  type HttpEvent,
} from "./http_event_layout.ts";
export { type ClockOffset, measureClockOffset, monotonicNs } from "./clock.ts";
