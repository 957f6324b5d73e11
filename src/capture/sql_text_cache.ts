/**
 * Query text → what is stored of it (obfuscated or raw, per
 * `protocols.sql.obfuscate_queries`) and its operation and table, memoized:
 * clients send the same statements over and over.
 *
 * @module
 */
import {
  obfuscateSql,
  type SqlDialect,
  summarizeSql,
} from "../decode/sql_text.ts";

/** What is kept of one query text. */
export interface SqlText {
  /** The text to store: obfuscated unless configured otherwise; "" when unknown. */
  text: string;
  operation: string;
  table: string;
}

const EMPTY: SqlText = { text: "", operation: "", table: "" };
const MAX_ENTRIES = 10_000;

export class SqlTextCache {
  readonly #obfuscate: boolean;
  #entries = new Map<string, SqlText>();

  constructor(options: { obfuscate: boolean }) {
    this.#obfuscate = options.obfuscate;
  }

  get(query: string, dialect: SqlDialect): SqlText {
    if (query === "") return EMPTY;
    const key = dialect === "mysql" ? `m${query}` : `p${query}`;
    let entry = this.#entries.get(key);
    if (entry === undefined) {
      const summary = summarizeSql(query, { dialect });
      entry = {
        text: this.#obfuscate ? obfuscateSql(query, { dialect }) : query,
        operation: summary.operation,
        table: summary.table,
      };
      if (this.#entries.size >= MAX_ENTRIES) this.#entries.clear();
      this.#entries.set(key, entry);
    }
    return entry;
  }
}
