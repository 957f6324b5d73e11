/**
 * Column builders that fill a DuckDB data chunk straight from typed arrays,
 * for the store's write path. This file is the only one that touches
 * `@duckdb/node-bindings` (the C API under `@duckdb/node-api`).
 *
 * Why not `DuckDBDataChunk.setColumns`: measured on the project's 2-core
 * machines, value objects cost ≈8 µs a row for an HTTP metric row (a
 * `DuckDBListValue` and BigInts per row, one native call per list element
 * on flush). Here a column is a typed array copied with one native call;
 * 64-bit integers are written as two 32-bit halves (no BigInt); a list
 * column copies its flat child array once; a column whose rows are all
 * equal becomes a constant vector (one native call for the whole chunk);
 * strings of up to 12 UTF-8 bytes are written inline into DuckDB's 16-byte
 * `string_t` slots, and only longer strings cost a native call each.
 * Reusing one chunk per table keeps DuckDB's buffers allocated: fresh
 * buffers cost a page fault per 4 KiB touched, which dominated here.
 *
 * Integers must be exact in a double (|x| ≤ 2^53): timestamps in µs
 * (≈1.7e15) and counts are.
 *
 * @module
 */
// The same package and version node-api loads.
import duckdb from "@duckdb/node-bindings";
import {
  type DuckDBAppender,
  DuckDBDataChunk,
  type DuckDBType,
} from "@duckdb/node-api";

/** Rows per data chunk: DuckDB's vector size. */
export const CHUNK_ROWS: number = duckdb.vector_size();

const TWO_32 = 4294967296;
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
if (!LITTLE_ENDIAN) {
  throw new Error("Cannot load the store: big-endian hosts are not supported");
}

type Vector = duckdb.Vector;

/** Writes `x` (an integer, |x| ≤ 2^53) as int64 at slot `i` of `words`. */
function putInt64(words: Uint32Array, i: number, x: number): void {
  const hi = Math.floor(x / TWO_32);
  words[2 * i] = x - hi * TWO_32;
  words[2 * i + 1] = hi >>> 0;
}

/** Row validity as DuckDB stores it: one bit per row, 1 = not null. */
class Validity {
  readonly #words: Uint32Array<ArrayBuffer>;
  #hasNull = false;

  constructor(capacity: number) {
    this.#words = new Uint32Array(Math.ceil(capacity / 64) * 2);
  }

  setNull(i: number): void {
    if (!this.#hasNull) {
      this.#words.fill(0xffffffff);
      this.#hasNull = true;
    }
    this.#words[i >>> 5]! &= ~(1 << (i & 31));
  }

  /** Copies the null bits (if any) to `vector` and clears them here. */
  flush(vector: Vector): void {
    if (!this.#hasNull) return;
    duckdb.vector_ensure_validity_writable(vector);
    duckdb.copy_data_to_vector_validity(
      vector,
      0,
      this.#words.buffer,
      0,
      this.#words.byteLength,
    );
    this.#hasNull = false;
  }
}

/** A column the chunk writer flushes into its vector. */
interface Column {
  flush(vector: Vector, rows: number): void;
}

/** BIGINT, UBIGINT or TIMESTAMP (µs) column from JS numbers. */
export class Int64Column implements Column {
  readonly #words: Uint32Array<ArrayBuffer>;

  constructor(capacity: number) {
    this.#words = new Uint32Array(capacity * 2);
  }

  set(i: number, value: number): void {
    putInt64(this.#words, i, value);
  }

  flush(vector: Vector, rows: number): void {
    duckdb.copy_data_to_vector(vector, 0, this.#words.buffer, 0, rows * 8);
  }
}

/** INTEGER column. */
export class Int32Column implements Column {
  readonly #values: Int32Array<ArrayBuffer>;

  constructor(capacity: number) {
    this.#values = new Int32Array(capacity);
  }

  set(i: number, value: number): void {
    this.#values[i] = value;
  }

  flush(vector: Vector, rows: number): void {
    duckdb.copy_data_to_vector(vector, 0, this.#values.buffer, 0, rows * 4);
  }
}

/** DOUBLE column; `null` is stored as NULL. */
export class Float64Column implements Column {
  readonly #values: Float64Array<ArrayBuffer>;
  readonly #validity: Validity;

  constructor(capacity: number) {
    this.#values = new Float64Array(capacity);
    this.#validity = new Validity(capacity);
  }

  set(i: number, value: number | null): void {
    if (value === null) {
      this.#values[i] = 0;
      this.#validity.setNull(i);
    } else {
      this.#values[i] = value;
    }
  }

  flush(vector: Vector, rows: number): void {
    duckdb.copy_data_to_vector(vector, 0, this.#values.buffer, 0, rows * 8);
    this.#validity.flush(vector);
  }
}

const encoder = new TextEncoder();
const INLINE_CACHE_LIMIT = 8192;

/**
 * VARCHAR (or JSON) column, never NULL. See the module notes for the
 * inline and constant paths.
 */
export class StringColumn implements Column {
  readonly #values: string[];
  readonly #slots: Uint8Array<ArrayBuffer>;
  /** Encoded 16-byte slot per short string; null for strings that are not. */
  readonly #inline = new Map<string, Uint8Array | null>();

  constructor(capacity: number) {
    this.#values = new Array<string>(capacity).fill("");
    this.#slots = new Uint8Array(capacity * 16);
  }

  set(i: number, value: string): void {
    this.#values[i] = value;
  }

  flush(vector: Vector, rows: number): void {
    const values = this.#values;
    if (rows === 0) return;
    const first = values[0]!;
    let constant = true;
    for (let i = 1; i < rows; i++) {
      if (values[i] !== first) {
        constant = false;
        break;
      }
    }
    if (constant && !first.includes("\0")) {
      duckdb.vector_reference_value(vector, duckdb.create_varchar(first));
      return;
    }
    let long: number[] | undefined;
    for (let i = 0; i < rows; i++) {
      const slot = this.#slot(values[i]!);
      if (slot === null) (long ??= []).push(i);
      else this.#slots.set(slot, i * 16);
    }
    duckdb.copy_data_to_vector(vector, 0, this.#slots.buffer, 0, rows * 16);
    if (long === undefined) return;
    for (const i of long) assignString(vector, i, values[i]!);
  }

  #slot(value: string): Uint8Array | null {
    if (value.length > 12) return null;
    let slot = this.#inline.get(value);
    if (slot !== undefined) return slot;
    slot = null;
    const bytes = encoder.encode(value);
    if (bytes.length <= 12) {
      slot = new Uint8Array(16);
      new DataView(slot.buffer).setUint32(0, bytes.length, true);
      slot.set(bytes, 4);
    }
    if (this.#inline.size >= INLINE_CACHE_LIMIT) this.#inline.clear();
    this.#inline.set(value, slot);
    return slot;
  }
}

function assignString(vector: Vector, i: number, value: string): void {
  // The plain call passes a C string, which would end at an embedded NUL.
  if (value.includes("\0")) {
    duckdb.vector_assign_string_element_len(vector, i, encoder.encode(value));
  } else {
    duckdb.vector_assign_string_element(vector, i, value);
  }
}

/** `DOUBLE[]` or `UBIGINT[]` column from number arrays, never NULL. */
export class NumberListColumn implements Column {
  readonly #lists: (readonly number[])[];
  readonly #entries: Uint32Array<ArrayBuffer>;
  readonly #unsigned: boolean;
  #child: Float64Array<ArrayBuffer> = new Float64Array(0);

  /** `unsigned` selects UBIGINT elements (negative values become 0). */
  constructor(capacity: number, options: { unsigned: boolean }) {
    this.#lists = new Array<readonly number[]>(capacity).fill([]);
    this.#entries = new Uint32Array(capacity * 4);
    this.#unsigned = options.unsigned;
  }

  set(i: number, list: readonly number[]): void {
    this.#lists[i] = list;
  }

  flush(vector: Vector, rows: number): void {
    const lists = this.#lists;
    if (rows === 0) return;
    const first = lists[0]!;
    let constant = true;
    for (let i = 1; i < rows && constant; i++) {
      constant = sameNumbers(lists[i]!, first);
    }
    if (constant) {
      duckdb.vector_reference_value(vector, this.#listValue(first));
      return;
    }
    const entries = this.#entries;
    let total = 0;
    for (let i = 0; i < rows; i++) {
      const length = lists[i]!.length;
      entries[4 * i] = total;
      entries[4 * i + 2] = length;
      total += length;
    }
    if (this.#child.length < total) {
      this.#child = new Float64Array(Math.max(total, this.#child.length * 2));
    }
    const child = this.#child;
    let k = 0;
    if (this.#unsigned) {
      const words = new Uint32Array(child.buffer);
      for (let i = 0; i < rows; i++) {
        const list = lists[i]!;
        for (let j = 0; j < list.length; j++) {
          const x = list[j]!;
          putInt64(words, k++, x > 0 ? x : 0);
        }
      }
    } else {
      for (let i = 0; i < rows; i++) {
        const list = lists[i]!;
        for (let j = 0; j < list.length; j++) child[k++] = list[j]!;
      }
    }
    duckdb.list_vector_reserve(vector, total);
    duckdb.list_vector_set_size(vector, total);
    const childVector = duckdb.list_vector_get_child(vector);
    duckdb.copy_data_to_vector(childVector, 0, child.buffer, 0, total * 8);
    duckdb.copy_data_to_vector(vector, 0, entries.buffer, 0, rows * 16);
  }

  #listValue(list: readonly number[]): duckdb.Value {
    const type = duckdb.create_logical_type(
      this.#unsigned ? duckdb.Type.UBIGINT : duckdb.Type.DOUBLE,
    );
    const items = this.#unsigned
      ? list.map((x) => duckdb.create_uint64(BigInt(x > 0 ? Math.round(x) : 0)))
      : list.map((x) => duckdb.create_double(x));
    return duckdb.create_list_value(type, items);
  }
}

function sameNumbers(a: readonly number[], b: readonly number[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * One reusable data chunk for one appender, with a builder per column in
 * the appender's column order.
 *
 *     const writer = new ChunkWriter(appender, [seq, name]);
 *     // for each slice of ≤ CHUNK_ROWS rows:
 *     seq.set(0, 1); name.set(0, "a");
 *     writer.append(1);
 */
export class ChunkWriter {
  readonly #appender: DuckDBAppender;
  readonly #columns: readonly Column[];
  readonly #chunk: DuckDBDataChunk;

  constructor(appender: DuckDBAppender, columns: readonly Column[]) {
    const types: DuckDBType[] = [];
    for (let i = 0; i < appender.columnCount; i++) {
      types.push(appender.columnType(i));
    }
    if (types.length !== columns.length) {
      throw new Error(
        `Cannot build chunks: the table has ${types.length} columns, the writer ${columns.length}`,
      );
    }
    this.#appender = appender;
    this.#columns = columns;
    this.#chunk = DuckDBDataChunk.create(types);
  }

  /** Copies rows 0..rows-1 of every column into the chunk and appends it. */
  append(rows: number): void {
    if (rows === 0) return;
    const chunk = this.#chunk;
    chunk.reset();
    chunk.rowCount = rows;
    const raw = chunk.chunk;
    for (let c = 0; c < this.#columns.length; c++) {
      this.#columns[c]!.flush(duckdb.data_chunk_get_vector(raw, c), rows);
    }
    this.#appender.appendDataChunk(chunk);
  }
}
