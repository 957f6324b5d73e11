/**
 * HPACK (RFC 7541): the header compression of HTTP/2. One
 * {@linkcode HpackDecoder} per direction of a connection follows the
 * encoder's dynamic table block by block; a block that is lost, cut or bad
 * leaves the table state unknown ("broken"), and from then on only what is
 * certain comes out: static-table entries, literals, and dynamic entries the
 * encoder inserted after the break. Nothing here throws on bad input.
 *
 * @example
 * ```ts
 * const decoder = new HpackDecoder();
 * const block = decoder.decode(headerBlockBytes);
 * // { headers: [{ name: ":method", value: "GET" }, …], unknown: 0 }
 * if (block.error !== undefined) console.log(block.error); // "bad-index"
 * ```
 *
 * @module
 */

/** One header field, as decoded (names and values are octets, read as Latin-1). */
export interface HeaderField {
  /** Lowercase in HTTP/2, e.g. ":path" or "content-type". */
  name: string;
  /** Cut to the decoder's `maxStringLength`. */
  value: string;
}

/** Why a header block could not be decoded to its end. */
export type HpackError =
  /** The block ends inside a representation. */
  | "truncated"
  /** An index of 0, or beyond a dynamic table whose content is known. */
  | "bad-index"
  /** A Huffman string with the EOS symbol or with bad padding. */
  | "bad-huffman"
  /** An integer too large for any sane header block. */
  | "bad-integer"
  /** A table size update above the limit, or after a header field. */
  | "bad-size-update";

/** What one header block held. */
export interface HpackResult {
  /** The fields decoded for sure, in block order (up to the error, if any). */
  headers: HeaderField[];
  /**
   * Fields that were left out because they refer to dynamic-table entries
   * whose content is unknown (the decoder is broken).
   */
  unknown: number;
  /** Set when the block could not be decoded to its end; the decoder is broken then. */
  error?: HpackError;
}

/** Options of {@linkcode HpackDecoder}. */
export interface HpackDecoderOptions {
  /**
   * The table's maximum size at the start, and the limit on the table size
   * updates the encoder may send (the decoding endpoint's
   * SETTINGS_HEADER_TABLE_SIZE). Default 4096.
   */
  tableSizeLimit?: number;
  /** Names and values longer than this are cut to it (table sizes still use their full length). Default 4096. */
  maxStringLength?: number;
  /** Start broken: the table state is unknown (capture started mid-connection). */
  broken?: boolean;
}

/** A dynamic-table entry; `name` undefined when it referred to an unknown entry. */
interface Entry {
  name: string | undefined;
  /** Octets of the name (0 when unknown). */
  nameLength: number;
  value: string;
  /** Octets per RFC 7541 §4.1 (a lower bound when the name is unknown). */
  size: number;
}

/** The static table of RFC 7541 Appendix A, index 1 at position 0. */
export const HPACK_STATIC_TABLE: readonly (readonly [string, string])[] = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];

const STATIC_COUNT = HPACK_STATIC_TABLE.length; // 61
const DEFAULT_TABLE_SIZE = 4096;
/** No header block of ours is longer, so larger integers are garbage. */
const MAX_INTEGER = 1 << 30;

/**
 * Code lengths of the 257 symbols (0-255, then EOS) of RFC 7541 Appendix B,
 * one letter per symbol: "A" = 5 bits … "Z" = 30 bits. The code is canonical
 * (codes of equal length are consecutive in symbol order, shorter lengths
 * first), so the lengths alone give the codes.
 */
const HUFFMAN_LENGTHS =
  "ISXXXXXXXTZXXZXXXXXXXXZXXXXXXXXXBFFHIBDGFFDGDBBBAAABBBBBBBCDKBHFIBCCCCCCCC" +
  "CCCCCCCCCCCCCCDCDIOIJBKABABABBBACCBBBABCBAABCCCCCKGJIXPRPPRRRSRSSSSSTSTTRS" +
  "TSSSSQRSRSSTRQPRRSSQSRRTQRSSQQRQSRSSPRRRSRRSVVPORSRUVVVWWVTUOQVWWVWTQQVVXW" +
  "WWPTPQRQQSRRUUTTVSVWVVWWWWWXWWWWWVZ";

/** The Huffman codes (value, bit length) of symbols 0-256, from {@linkcode HUFFMAN_LENGTHS}. */
export function huffmanCodes(): { codes: number[]; lengths: number[] } {
  const lengths: number[] = [];
  for (let s = 0; s < 257; s++) {
    lengths.push(HUFFMAN_LENGTHS.charCodeAt(s) - 60);
  }
  const order = lengths.map((_, s) => s).sort((a, b) =>
    lengths[a]! - lengths[b]! || a - b
  );
  const codes: number[] = new Array(257).fill(0);
  let code = 0;
  let prev = lengths[order[0]!]!;
  for (let i = 0; i < order.length; i++) {
    const s = order[i]!;
    const len = lengths[s]!;
    if (i > 0) code = (code + 1) * 2 ** (len - prev);
    prev = len;
    codes[s] = code;
  }
  return { codes, lengths };
}

// The decoding table: one row of 256 entries per tree state (the 256 inner
// nodes of the code tree, 0 = root) and input byte. An entry packs the next
// state (bits 0-7), how many symbols the byte completes (bits 8-9, at most 2
// since codes have 5 bits or more), those symbols (bits 10-17, 18-25) and a
// failure bit (26: the byte completes EOS). ACCEPT marks the states a string
// may end in: the root, or up to 7 bits of a code's all-ones prefix (padding).
const H_FAIL = 1 << 26;
let huffmanTable: Uint32Array | undefined;
let huffmanAccept: Uint8Array | undefined;

function buildHuffmanTable(): Uint32Array {
  const { codes, lengths } = huffmanCodes();
  // Inner nodes: child[2n] and child[2n+1]; >= 0 an inner node, < 0 ~symbol.
  const child = new Int32Array(512).fill(0);
  let nodes = 1;
  for (let s = 0; s < 257; s++) {
    const len = lengths[s]!;
    const code = codes[s]!;
    let node = 0;
    for (let bit = len - 1; bit >= 0; bit--) {
      const b = Math.floor(code / 2 ** bit) & 1;
      const slot = 2 * node + b;
      if (bit === 0) child[slot] = ~s;
      else {
        if (child[slot] === 0) child[slot] = nodes++;
        node = child[slot]!;
      }
    }
  }
  const accept = new Uint8Array(256);
  for (let node = 0, depth = 0; depth < 8 && node >= 0; depth++) {
    accept[node] = 1;
    node = child[2 * node + 1]!;
  }
  // Per state and 4-bit nibble first (at most one symbol: codes have 5
  // bits or more), then each byte as two nibbles.
  const nibbleNext = new Uint8Array(256 * 16);
  const nibbleSym = new Int16Array(256 * 16).fill(-1); // 256: EOS
  for (let state = 0; state < 256; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      const at = state * 16 + nibble;
      for (let bit = 3; bit >= 0; bit--) {
        const next = child[2 * node + ((nibble >> bit) & 1)]!;
        if (next >= 0) {
          node = next;
          continue;
        }
        nibbleSym[at] = ~next;
        node = 0;
        if (~next === 256) break;
      }
      nibbleNext[at] = node;
    }
  }
  const table = new Uint32Array(256 * 256);
  for (let state = 0; state < 256; state++) {
    for (let byte = 0; byte < 256; byte++) {
      const hi = state * 16 + (byte >> 4);
      const lo = nibbleNext[hi]! * 16 + (byte & 15);
      const first = nibbleSym[hi]!;
      const second = nibbleSym[lo]!;
      let entry: number;
      if (first === 256 || second === 256) entry = H_FAIL;
      else if (first < 0 && second < 0) entry = nibbleNext[lo]!;
      else if (first < 0 || second < 0) {
        entry = (Math.max(first, second) << 10) | (1 << 8) | nibbleNext[lo]!;
      } else {
        entry = (second << 18) | (first << 10) | (2 << 8) | nibbleNext[lo]!;
      }
      table[(state << 8) | byte] = entry;
    }
  }
  huffmanAccept = accept;
  return table;
}

/**
 * Decodes the Huffman string bytes[start, end) into `out` from offset 0;
 * returns the number of octets, or -1 when the string is invalid (EOS, or
 * padding longer than 7 bits or not all ones). `out` must hold 2 × (end -
 * start) octets.
 */
export function decodeHuffman(
  bytes: Uint8Array,
  start: number,
  end: number,
  out: Uint8Array,
): number {
  const table = huffmanTable ??= buildHuffmanTable();
  let state = 0;
  let o = 0;
  for (let i = start; i < end; i++) {
    const e = table[(state << 8) | bytes[i]!]!;
    if (e & H_FAIL) return -1;
    const n = (e >>> 8) & 3;
    if (n !== 0) {
      out[o++] = (e >>> 10) & 0xff;
      if (n === 2) out[o++] = (e >>> 18) & 0xff;
    }
    state = e & 0xff;
  }
  return huffmanAccept![state] === 1 ? o : -1;
}

const EMPTY = new Uint8Array(0);
/** Where Huffman strings are decoded (decoding is synchronous: one is enough). */
let scratch = new Uint8Array(1024);

/** Latin-1 text of bytes[start, end) (a loop is faster below 16 octets). */
function latin1(bytes: Uint8Array, start: number, end: number): string {
  if (end - start < 16) {
    let s = "";
    for (let i = start; i < end; i++) s += String.fromCharCode(bytes[i]!);
    return s;
  }
  let s = "";
  for (let i = start; i < end; i += 8192) {
    const part = bytes.subarray(i, Math.min(end, i + 8192));
    s += String.fromCharCode.apply(null, part as unknown as number[]);
  }
  return s;
}

/**
 * Decodes the header blocks one encoder sends, keeping its dynamic table.
 * One per direction of an HTTP/2 connection; blocks must be fed whole and in
 * order. When a block is lost or cut, call {@linkcode HpackDecoder.markBroken}.
 *
 * A broken decoder still decodes what is certain. An encoder only refers to
 * entries its table holds, and those are always its latest insertions, so
 * dynamic index 62 + i is the i-th newest insertion the decoder has seen
 * since the break; an index past those is reported as unknown (not an
 * error). A table size update to 0 empties the table: its state is known
 * again and the decoder is no longer broken.
 */
export class HpackDecoder {
  /** Dynamic table, oldest first from #first (newest last). */
  #entries: Entry[] = [];
  #first = 0;
  #size = 0;
  #maxSize = DEFAULT_TABLE_SIZE;
  #limit: number;
  #maxString: number;
  /** Whether #entries is the whole table (else only its newest entries). */
  #complete: boolean;
  // Parse state of the block being decoded.
  #block: Uint8Array = EMPTY;
  #p = 0;
  #error: HpackError | undefined;
  /** Octets of the last string read (before cutting to #maxString). */
  #stringLength = 0;

  /** A decoder whose table starts empty (or unknown, with `broken`). */
  constructor(options: HpackDecoderOptions = {}) {
    this.#limit = options.tableSizeLimit ?? DEFAULT_TABLE_SIZE;
    this.#maxSize = this.#limit;
    this.#maxString = options.maxStringLength ?? 4096;
    this.#complete = options.broken !== true;
  }

  /** Whether the table state is unknown (a block was lost, cut or bad). */
  get broken(): boolean {
    return !this.#complete;
  }

  /** Octets in the dynamic table (of the known entries when broken). */
  get tableSize(): number {
    return this.#size;
  }

  /** The table's current maximum size, as the last size update set it. */
  get maxTableSize(): number {
    return this.#maxSize;
  }

  /** The dynamic table's known entries, newest first (for tests and debugging). */
  tableEntries(): { name: string | undefined; value: string }[] {
    const out = [];
    for (let i = this.#entries.length - 1; i >= this.#first; i--) {
      const e = this.#entries[i]!;
      out.push({ name: e.name, value: e.value });
    }
    return out;
  }

  /**
   * Sets the limit for table size updates: the SETTINGS_HEADER_TABLE_SIZE
   * the decoding endpoint advertised.
   */
  setTableSizeLimit(limit: number): void {
    this.#limit = limit;
  }

  /** The table state is unknown from now on: a header block was lost or cut. */
  markBroken(): void {
    this.#complete = false;
    this.#entries = [];
    this.#first = 0;
    this.#size = 0;
  }

  /**
   * Decodes one complete header block (HEADERS or PUSH_PROMISE fragment plus
   * its CONTINUATIONs). On error the fields before it are returned and the
   * decoder is broken.
   */
  decode(block: Uint8Array): HpackResult {
    this.#block = block;
    this.#p = 0;
    this.#error = undefined;
    const headers: HeaderField[] = [];
    let unknown = 0;
    const end = block.length;
    while (this.#p < end && this.#error === undefined) {
      const b = block[this.#p]!;
      if (b & 0x80) {
        const index = this.#integer(7);
        if (index < 0) break;
        const entry = this.#lookup(index);
        if (entry === undefined || entry.name === undefined) {
          if (this.#error === undefined) unknown++;
          continue;
        }
        headers.push({ name: entry.name, value: entry.value });
      } else if ((b & 0xe0) === 0x20) {
        const size = this.#integer(5);
        if (size < 0) break;
        if (size > this.#limit || headers.length > 0 || unknown > 0) {
          this.#error = "bad-size-update";
          break;
        }
        this.#resize(size);
      } else {
        const indexing = (b & 0x40) !== 0;
        const nameIndex = this.#integer(indexing ? 6 : 4);
        if (nameIndex < 0) break;
        let name: string | undefined;
        let nameLength = 0;
        if (nameIndex === 0) {
          name = this.#string();
          nameLength = this.#stringLength;
        } else {
          const entry = this.#lookup(nameIndex);
          name = entry?.name;
          if (entry !== undefined) nameLength = entry.nameLength;
        }
        if (this.#error !== undefined) break;
        const value = this.#string();
        if (value === undefined) break;
        if (indexing) {
          this.#insert({
            name,
            nameLength,
            value,
            size: 32 + nameLength + this.#stringLength,
          });
        }
        if (name === undefined) unknown++;
        else headers.push({ name, value });
      }
    }
    this.#block = EMPTY;
    const error = this.#error;
    if (error === undefined) return { headers, unknown };
    this.markBroken();
    return { headers, unknown, error };
  }

  /** Reads an integer with an N-bit prefix at #p; -1 (and #error) when bad. */
  #integer(prefixBits: number): number {
    const block = this.#block;
    const max = (1 << prefixBits) - 1;
    let value = block[this.#p++]! & max;
    if (value < max) return value;
    let shift = 0;
    for (;;) {
      const b = block[this.#p++];
      if (b === undefined) {
        this.#error = "truncated";
        return -1;
      }
      value += (b & 0x7f) * 2 ** shift;
      if (value > MAX_INTEGER) {
        this.#error = "bad-integer";
        return -1;
      }
      if ((b & 0x80) === 0) return value;
      shift += 7;
    }
  }

  /** Reads a string literal; undefined (and #error) when bad. */
  #string(): string | undefined {
    const block = this.#block;
    if (this.#p >= block.length) {
      this.#error = "truncated";
      return undefined;
    }
    const huffman = (block[this.#p]! & 0x80) !== 0;
    const length = this.#integer(7);
    if (length < 0) return undefined;
    const start = this.#p;
    const end = start + length;
    if (end > block.length) {
      this.#error = "truncated";
      return undefined;
    }
    this.#p = end;
    if (!huffman) {
      this.#stringLength = length;
      return latin1(block, start, Math.min(end, start + this.#maxString));
    }
    if (scratch.length < 2 * length) {
      scratch = new Uint8Array(Math.max(2 * length, 2 * scratch.length));
    }
    const n = decodeHuffman(block, start, end, scratch);
    if (n < 0) {
      this.#error = "bad-huffman";
      return undefined;
    }
    this.#stringLength = n;
    return latin1(scratch, 0, Math.min(n, this.#maxString));
  }

  /**
   * The entry at a 1-based index; undefined when it lies beyond the known
   * entries (with #error "bad-index" when the table is complete).
   */
  #lookup(index: number): Entry | undefined {
    if (index <= STATIC_COUNT) {
      const entry = staticEntries[index - 1];
      if (entry === undefined) this.#error = "bad-index"; // index 0
      return entry;
    }
    const i = this.#entries.length - 1 - (index - STATIC_COUNT - 1);
    if (i >= this.#first) return this.#entries[i];
    if (this.#complete) this.#error = "bad-index";
    return undefined;
  }

  #insert(entry: Entry): void {
    this.#evict(this.#maxSize - entry.size);
    if (entry.size > this.#maxSize) return; // the table is now empty
    this.#entries.push(entry);
    this.#size += entry.size;
  }

  #resize(size: number): void {
    this.#maxSize = size;
    this.#evict(size);
    // An empty table is a known table: a lost state is found again.
    if (size === 0) this.#complete = true;
  }

  /** Evicts the oldest entries until the table holds at most `room` octets. */
  #evict(room: number): void {
    const entries = this.#entries;
    while (this.#size > room && this.#first < entries.length) {
      this.#size -= entries[this.#first++]!.size;
    }
    if (this.#first === entries.length) {
      this.#entries = [];
      this.#first = 0;
      this.#size = 0;
    } else if (this.#first > 32 && this.#first * 2 > entries.length) {
      this.#entries = entries.slice(this.#first);
      this.#first = 0;
    }
  }
}

const staticEntries: Entry[] = HPACK_STATIC_TABLE.map(([name, value]) => ({
  name,
  nameLength: name.length,
  value,
  size: 32 + name.length + value.length,
}));
