/**
 * Small value conversions shared by the protobuf and JSON decoders: ids to
 * hex, 64-bit integers to exact numbers, nanosecond times to µs + ns.
 */
import type { Attributes, AttributeValue } from "../../model/records.ts";

/** protobufjs represents 64-bit integers as long.js objects. */
export interface LongLike {
  low: number;
  high: number;
  unsigned: boolean;
}

const HEX_BYTE: string[] = [];
for (let i = 0; i < 256; i++) HEX_BYTE.push(i.toString(16).padStart(2, "0"));

/** Lowercase hex of the bytes; "" for null or empty. */
export function bytesToHex(bytes: Uint8Array | null | undefined): string {
  if (bytes == null) return "";
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += HEX_BYTE[bytes[i]!]!;
  return s;
}

/**
 * The hex string in lowercase, or null when it is not hex of whole bytes
 * (odd length or a character outside 0-9a-fA-F).
 */
export function normaliseHex(s: string): string | null {
  if ((s.length & 1) !== 0) return null;
  let upper = false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if ((c >= 48 && c <= 57) || (c >= 97 && c <= 102)) continue;
    if (c >= 65 && c <= 70) {
      upper = true;
      continue;
    }
    return null;
  }
  return upper ? s.toLowerCase() : s;
}

const TWO_POW_32 = 4294967296;

/** An unsigned 64-bit value as a number (exact below 2^53). */
export function unsignedToNumber(v: LongLike | number | null | undefined) {
  if (v == null) return 0;
  if (typeof v === "number") return v;
  return (v.high >>> 0) * TWO_POW_32 + (v.low >>> 0);
}

/**
 * A signed 64-bit value as a number when it is a safe integer, otherwise as
 * its decimal string (so nothing is silently rounded).
 */
export function int64ToValue(v: LongLike | number): number | string {
  if (typeof v === "number") return v;
  return v.unsigned && v.high < 0
    ? uint64PartsToValue(v.low, v.high)
    : int64PartsToValue(v.low, v.high);
}

/** A two's complement 64-bit integer from 32-bit halves: number or string. */
export function int64PartsToValue(low: number, high: number): number | string {
  const n = (high | 0) * TWO_POW_32 + (low >>> 0);
  if (Number.isSafeInteger(n)) return n;
  return ((BigInt(high | 0) << 32n) | BigInt(low >>> 0)).toString();
}

function uint64PartsToValue(low: number, high: number): number | string {
  const n = (high >>> 0) * TWO_POW_32 + (low >>> 0);
  if (Number.isSafeInteger(n)) return n;
  return ((BigInt(high >>> 0) << 32n) | BigInt(low >>> 0)).toString();
}

/** A decimal integer string as a number when safe, else canonical string. */
export function decimalToValue(s: string): number | string | null {
  if (!isDecimal(s)) return null;
  if (s.length <= 15) return Number(s);
  const big = BigInt(s);
  const n = Number(big);
  return Number.isSafeInteger(n) ? n : big.toString();
}

/** Optional "-", then one or more ASCII digits. */
export function isDecimal(s: string): boolean {
  const n = s.length;
  let i = n > 0 && s.charCodeAt(0) === 45 ? 1 : 0;
  if (i === n) return false;
  for (; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/**
 * A nanosecond time split into exact parts. `us` = floor(ns / 1000),
 * `ns` = ns % 1000. The decoders reuse this one object: copy its fields out
 * at once.
 */
export const nanos = { us: 0, ns: 0 };

/** Splits an unsigned 64-bit nanosecond value into `nanos`. */
export function splitNanosLong(v: LongLike | number | null | undefined): void {
  if (v == null) {
    nanos.us = 0;
    nanos.ns = 0;
  } else if (typeof v === "number") {
    splitNanosNumber(v);
  } else {
    splitNanosParts(v.low, v.high);
  }
}

/** Splits an unsigned 64-bit nanosecond value given as 32-bit halves. */
export function splitNanosParts(low: number, high: number): void {
  // value = high·2^32 + low and 2^32 = 4294967·1000 + 296.
  const h = high >>> 0;
  const rest = h * 296 + (low >>> 0);
  const restUs = Math.floor(rest / 1000);
  nanos.us = h * 4294967 + restUs;
  nanos.ns = rest - restUs * 1000;
}

/** Splits a non-negative integer number of nanoseconds into `nanos`. */
export function splitNanosNumber(v: number): void {
  if (v <= Number.MAX_SAFE_INTEGER) {
    const us = Math.floor(v / 1000);
    nanos.us = us;
    nanos.ns = v - us * 1000;
  } else {
    const big = BigInt(v);
    nanos.us = Number(big / 1000n);
    nanos.ns = Number(big % 1000n);
  }
}

/**
 * Splits a decimal string of nanoseconds into `nanos`. False when the string
 * is not a non-negative decimal integer.
 */
export function splitNanosDecimal(s: string): boolean {
  const n = s.length;
  if (n === 0 || n > 20) return false;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  if (n <= 15) {
    splitNanosNumber(Number(s));
  } else {
    nanos.us = Number(s.slice(0, n - 3));
    nanos.ns = Number(s.slice(n - 3));
  }
  return true;
}

/** Base64 of bytes (the OTLP/JSON form of bytes values). */
export function bytesToBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

/** Sets an attribute, also when the key is "__proto__". */
export function setAttribute(
  target: Attributes,
  key: string,
  value: AttributeValue,
): void {
  if (key === "__proto__") {
    Object.defineProperty(target, key, {
      value,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  } else {
    target[key] = value;
  }
}
