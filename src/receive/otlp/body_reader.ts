/**
 * Reads a request body with a size limit that also holds after gzip
 * decompression, so neither a large body nor a small zip bomb gets in.
 */
import { OtlpRequestError } from "./errors.ts";

export async function readLimitedBody(
  request: Request,
  maxBytes: number,
): Promise<Uint8Array> {
  const declared = Number(request.headers.get("content-length") ?? "NaN");
  if (declared > maxBytes) throw tooLarge(maxBytes, `${declared} bytes`);
  const encoding = (request.headers.get("content-encoding") ?? "identity")
    .trim().toLowerCase();
  if (!request.body) return new Uint8Array(0);
  if ((encoding === "identity" || encoding === "") && declared <= maxBytes) {
    // Content-Length is known and within the limit: one native read.
    try {
      return new Uint8Array(await request.arrayBuffer());
    } catch (error) {
      throw new OtlpRequestError(
        "bad_request",
        `cannot read body: ${(error as Error).message}`,
        { cause: error },
      );
    }
  }
  let stream: ReadableStream<Uint8Array> = request.body;
  if (encoding === "gzip") {
    stream = stream.pipeThrough(
      new DecompressionStream("gzip") as unknown as ReadableWritablePair<
        Uint8Array,
        Uint8Array
      >,
    );
  } else if (encoding !== "identity" && encoding !== "") {
    throw new OtlpRequestError(
      "unsupported_media_type",
      `unsupported Content-Encoding "${encoding}": use gzip or none`,
    );
  }
  return await collect(stream, maxBytes, encoding === "gzip");
}

async function collect(
  stream: ReadableStream<Uint8Array>,
  maxBytes: number,
  gzip: boolean,
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let total = 0;
  const reader = stream.getReader();
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > maxBytes) {
        await reader.cancel().catch(() => {});
        throw tooLarge(maxBytes, gzip ? "after gzip decompression" : "");
      }
      parts.push(value);
    }
  } catch (error) {
    if (error instanceof OtlpRequestError) throw error;
    const detail = error instanceof Error ? error.message : String(error);
    throw new OtlpRequestError(
      "bad_request",
      gzip ? `invalid gzip body: ${detail}` : `cannot read body: ${detail}`,
      { cause: error },
    );
  }
  if (parts.length === 1) return parts[0]!;
  const body = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    body.set(part, offset);
    offset += part.byteLength;
  }
  return body;
}

function tooLarge(maxBytes: number, detail: string): OtlpRequestError {
  return new OtlpRequestError(
    "too_large",
    `request body exceeds otlp.max_body_bytes (${maxBytes} bytes)` +
      (detail ? `: ${detail}` : ""),
  );
}
