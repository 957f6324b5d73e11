/**
 * SQL query text, as the PostgreSQL and MySQL parsers capture it, turned into
 * what is stored: the text with its literals taken out (`db.query.text`) and
 * a low-cardinality operation and table (`db.operation.name`,
 * `db.collection.name`). Plain functions over a string; nothing here throws,
 * whatever the text: what is not SQL comes back as it was (less its
 * literals), and its summary is empty.
 *
 * Both functions make one pass over the text with `charCodeAt` (no regular
 * expressions, no per-character strings), and copy unchanged runs of the text
 * as whole slices. Their results depend only on the text and the dialect, so
 * callers can memoize them by raw text: a client sends the same few
 * statements over and over (prepared statements, ORMs, pgbench), and a small
 * LRU keyed by the raw text saves nearly all of the work. Literals differ
 * between executions of the same statement, so key the cache of
 * {@linkcode summarizeSql} by the obfuscated text when the raw text varies.
 *
 * @example
 * ```ts
 * obfuscateSql("UPDATE pgbench_accounts SET abalance = abalance + -2473 WHERE aid = 62290;");
 * // "UPDATE pgbench_accounts SET abalance = abalance + ? WHERE aid = ?;"
 * summarizeSql("SELECT abalance FROM pgbench_accounts WHERE aid = 62290;");
 * // { operation: "SELECT", table: "pgbench_accounts" }
 * ```
 *
 * @module
 */

/** Whose lexical rules apply: strings, comments and quoting differ. */
export type SqlDialect = "postgresql" | "mysql";

/** Options of {@linkcode obfuscateSql} and {@linkcode summarizeSql}. */
export interface SqlTextOptions {
  /**
   * "postgresql" (the default, and the SQL standard's rules):
   * `"x"` is an identifier, `'…'` has no backslash escapes (but `E'…'` has),
   * `$$…$$` and `$tag$…$tag$` are strings, block comments nest, `#` is an
   * operator. "mysql": `"x"` is a string (the default sql_mode, without
   * ANSI_QUOTES), backslash escapes in strings, `#` and `-- ` comments,
   * `/*! … *\/` version comments are code.
   */
  dialect?: SqlDialect;
}

/** What a statement does and to which table, for metrics and span names. */
export interface SqlSummary {
  /**
   * The statement's first keyword, upper-case: SELECT, INSERT, UPDATE,
   * DELETE, MERGE, CREATE, ALTER, DROP, TRUNCATE, BEGIN, COMMIT, END, SET,
   * SHOW, CALL, COPY, EXPLAIN, PREPARE, EXECUTE, … A leading WITH gives the
   * main statement's operation ("WITH x AS (…) SELECT" → "SELECT"; "WITH"
   * when the text ends first). "" for empty text and for a first word that
   * is not a known SQL command (garbage must not create metric series).
   */
  operation: string;
  /**
   * The first table the statement names, as written ("schema.table" stays
   * qualified, quotes are removed, case is kept). "" when there is none
   * (SELECT 1, BEGIN) or when it is a subquery, a function or DUAL.
   */
  table: string;
}

// Token kinds.
const END = 0;
const SPACE = 1;
const COMMENT = 2;
const WORD = 3;
/** A quoted identifier: "x" (PostgreSQL), `x`. */
const QUOTED = 4;
const STRING = 5;
const NUMBER = 6;
/** $1, ? */
const PARAM = 7;
const OPEN = 8;
const CLOSE = 9;
const COMMA = 10;
const SEMI = 11;
/** Any other single character: operators, brackets, dots. */
const OTHER = 12;

// Character classes of ASCII; other code units are identifier characters.
const C_IDENT_START = 1;
const C_IDENT = 2;
const C_DIGIT = 4;
const C_SPACE = 8;
const C_HEX = 16;

const CLASS = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  let k = 0;
  const letter = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
  const digit = c >= 0x30 && c <= 0x39;
  if (letter || c === 0x5f) k |= C_IDENT_START | C_IDENT;
  if (digit) k |= C_DIGIT | C_IDENT | C_HEX;
  if (c === 0x24) k |= C_IDENT; // $ inside identifiers (both dialects)
  if ((c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)) k |= C_HEX;
  // Control characters are not SQL outside strings and comments: spaces.
  if (c <= 0x20 || c === 0x7f) k |= C_SPACE;
  CLASS[c] = k;
}

/** Class bits of a code unit (NaN past the end has none). A BOM and NBSP are spaces. */
function cls(c: number): number {
  if (c < 128) return CLASS[c]!;
  if (c === 0xfeff || c === 0xa0) return C_SPACE;
  return c >= 128 ? C_IDENT_START | C_IDENT : 0;
}

/** One token at a time; `kind`, `start` and `pos` (its end) describe it. */
class Lexer {
  pos = 0;
  start = 0;
  kind = END;
  /** Inside a MySQL `/*! … *\/` version comment, whose body is code. */
  private versioned = false;
  /** The last quoted run reached the text's end without its closing quote. */
  private unterminated = false;

  constructor(readonly text: string, readonly mysql: boolean) {}

  next(): number {
    const s = this.text;
    const n = s.length;
    const i = this.pos;
    this.start = i;
    if (i >= n) return this.kind = END;
    const c = s.charCodeAt(i);
    const k = cls(c);
    if (k & C_SPACE) {
      let j = i + 1;
      while (j < n && cls(s.charCodeAt(j)) & C_SPACE) j++;
      return this.token(SPACE, j);
    }
    if (k & C_IDENT_START) return this.word(i);
    if (k & C_DIGIT) return this.numberOrWord(i);
    const d = s.charCodeAt(i + 1);
    switch (c) {
      case 0x27: // '
        return this.token(STRING, this.quoted(i + 1, 0x27, this.mysql));
      case 0x22: // "
        return this.mysql
          ? this.token(STRING, this.quoted(i + 1, 0x22, true))
          : this.identifier(this.quoted(i + 1, 0x22, false));
      case 0x60: // `
        return this.identifier(this.quoted(i + 1, 0x60, false));
      case 0x2d: // -
        if (d === 0x2d) {
          // MySQL needs a space or control character after "--".
          const e = s.charCodeAt(i + 2);
          if (!this.mysql || !(e > 0x20)) return this.lineComment(i + 2);
        }
        break;
      case 0x23: // #
        if (this.mysql) return this.lineComment(i + 1);
        break;
      case 0x2f: // /
        if (d === 0x2a) return this.blockComment(i + 2);
        break;
      case 0x2a: // *
        if (this.versioned && d === 0x2f) {
          this.versioned = false;
          return this.token(COMMENT, i + 2);
        }
        break;
      case 0x24: // $
        return this.dollar(i);
      case 0x3f: // ?
        return this.token(PARAM, i + 1);
      case 0x2e: // .
        // .5 is a number, but not t.5 (the previous token ends here).
        if (
          cls(d) & C_DIGIT && this.kind !== WORD && this.kind !== QUOTED &&
          this.kind !== CLOSE
        ) return this.numberOrWord(i);
        break;
      case 0x28:
        return this.token(OPEN, i + 1);
      case 0x29:
        return this.token(CLOSE, i + 1);
      case 0x2c:
        return this.token(COMMA, i + 1);
      case 0x3b:
        return this.token(SEMI, i + 1);
    }
    return this.token(OTHER, i + 1);
  }

  private token(kind: number, end: number): number {
    this.pos = end;
    return this.kind = kind;
  }

  /**
   * A quoted identifier ending at `end`; one the text ends inside counts as
   * a string, since what it swallowed may be literals.
   */
  private identifier(end: number): number {
    return this.token(this.unterminated ? STRING : QUOTED, end);
  }

  /** An identifier or keyword, or a prefixed string: E'…', N'…', X'…', B'…', U&'…', _utf8mb4'…'. */
  private word(i: number): number {
    const s = this.text;
    let j = i + 1;
    while (cls(s.charCodeAt(j)) & C_IDENT) j++;
    const q = s.charCodeAt(j);
    if (q === 0x27) {
      const c = s.charCodeAt(i) | 0x20;
      if (j === i + 1) {
        // e, n, x, b: E'…' takes backslash escapes in both dialects.
        if (c === 0x65) return this.token(STRING, this.quoted(j + 1, q, true));
        if (c === 0x6e || c === 0x78 || c === 0x62) {
          return this.token(STRING, this.quoted(j + 1, q, this.mysql));
        }
      } else if (s.charCodeAt(i) === 0x5f) {
        // A MySQL character set introducer.
        return this.token(STRING, this.quoted(j + 1, q, this.mysql));
      }
    } else if (
      q === 0x26 && j === i + 1 && (s.charCodeAt(i) | 0x20) === 0x75 &&
      !this.mysql
    ) {
      const r = s.charCodeAt(j + 1);
      if (r === 0x27) return this.token(STRING, this.quoted(j + 2, r, false));
      if (r === 0x22) return this.identifier(this.quoted(j + 2, r, false));
    }
    return this.token(WORD, j);
  }

  /**
   * A number from i, or a MySQL identifier that starts with digits (1abc).
   * PostgreSQL reads 1abc as 1 and abc (before 15, "1 AS abc").
   */
  private numberOrWord(i: number): number {
    const s = this.text;
    const j = numberEnd(s, i);
    if (!this.mysql || !(cls(s.charCodeAt(j)) & C_IDENT)) {
      return this.token(NUMBER, j);
    }
    for (let k = i; k < j; k++) {
      if (s.charCodeAt(k) === 0x2e) return this.token(NUMBER, j); // 2.5e: 2.5, then e
    }
    let e = j + 1;
    while (cls(this.text.charCodeAt(e)) & C_IDENT) e++;
    return this.token(WORD, e);
  }

  /** The end of a quoted run whose body starts at i: after the closing quote, or the text's end. */
  private quoted(i: number, q: number, backslash: boolean): number {
    const s = this.text;
    const n = s.length;
    this.unterminated = false;
    if (!backslash) {
      const quote = q === 0x27 ? "'" : q === 0x22 ? '"' : "`";
      for (let j = s.indexOf(quote, i); j !== -1; j = s.indexOf(quote, j + 2)) {
        if (s.charCodeAt(j + 1) !== q) return j + 1;
      }
      i = n;
    }
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === q) {
        if (s.charCodeAt(i + 1) !== q) return i + 1;
        i += 2;
      } else i += c === 0x5c ? 2 : 1;
    }
    this.unterminated = true;
    return n;
  }

  private lineComment(i: number): number {
    const s = this.text;
    const n = s.length;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === 0x0a || c === 0x0d) break;
      i++;
    }
    return this.token(COMMENT, i);
  }

  /** From after "/*": PostgreSQL nests them; MySQL runs `/*! … *\/` and `/*M! … *\/`. */
  private blockComment(i: number): number {
    const s = this.text;
    const n = s.length;
    if (this.mysql) {
      const c = s.charCodeAt(i);
      const bang = c === 0x21
        ? i + 1
        : c === 0x4d && s.charCodeAt(i + 1) === 0x21
        ? i + 2
        : -1;
      if (bang !== -1 && !this.versioned) {
        // A version of 5 or 6 digits: /*!40101 …, /*M!100100 …
        let j = bang;
        while (cls(s.charCodeAt(j)) & C_DIGIT) j++;
        this.versioned = true;
        return this.token(COMMENT, j - bang === 5 || j - bang === 6 ? j : bang);
      }
      const close = s.indexOf("*/", i);
      return this.token(COMMENT, close === -1 ? n : close + 2);
    }
    let depth = 1;
    while (i < n) {
      const c = s.charCodeAt(i);
      if (c === 0x2a && s.charCodeAt(i + 1) === 0x2f) {
        i += 2;
        if (--depth === 0) break;
      } else if (c === 0x2f && s.charCodeAt(i + 1) === 0x2a) {
        i += 2;
        depth++;
      } else i++;
    }
    return this.token(COMMENT, Math.min(i, n));
  }

  /** $1 (a parameter), $$…$$ or $tag$…$tag$ (PostgreSQL strings), or a character. */
  private dollar(i: number): number {
    const s = this.text;
    let j = i + 1;
    const c = s.charCodeAt(j);
    if (cls(c) & C_DIGIT) {
      while (cls(s.charCodeAt(j)) & C_DIGIT) j++;
      return this.token(PARAM, j);
    }
    if (this.mysql) {
      // $ may start a MySQL identifier.
      while (cls(s.charCodeAt(j)) & C_IDENT) j++;
      return this.token(j > i + 1 ? WORD : OTHER, j);
    }
    if (cls(c) & C_IDENT_START) {
      while (j < s.length && s.charCodeAt(j) !== 0x24) {
        if (!(cls(s.charCodeAt(j)) & C_IDENT)) return this.token(OTHER, i + 1);
        j++;
      }
    }
    if (s.charCodeAt(j) !== 0x24) return this.token(OTHER, i + 1);
    const tag = s.slice(i, j + 1);
    const close = s.indexOf(tag, j + 1);
    return this.token(STRING, close === -1 ? s.length : close + tag.length);
  }
}

/** The end of the numeric literal at i (a digit, or "." and a digit): 12, 1_000, 1.5e-3, .5, 0x1F, 0b101, 0o17. */
function numberEnd(s: string, i: number): number {
  if (s.charCodeAt(i) === 0x30) {
    const p = s.charCodeAt(i + 1) | 0x20;
    const mask = p === 0x78 ? C_HEX : p === 0x62 || p === 0x6f ? C_DIGIT : 0;
    if (mask !== 0) {
      let j = i + 2;
      while (cls(s.charCodeAt(j)) & mask || s.charCodeAt(j) === 0x5f) j++;
      if (j > i + 2) return j;
    }
  }
  let j = i;
  while (cls(s.charCodeAt(j)) & C_DIGIT || digitSeparator(s, j)) j++;
  if (s.charCodeAt(j) === 0x2e) {
    j++;
    while (cls(s.charCodeAt(j)) & C_DIGIT || digitSeparator(s, j)) j++;
  }
  if ((s.charCodeAt(j) | 0x20) === 0x65) {
    let e = j + 1;
    const sign = s.charCodeAt(e);
    if (sign === 0x2b || sign === 0x2d) e++;
    if (cls(s.charCodeAt(e)) & C_DIGIT) {
      j = e;
      while (cls(s.charCodeAt(j)) & C_DIGIT) j++;
    }
  }
  return j;
}

/** An underscore between two digits (PostgreSQL 16: 1_000_000). */
function digitSeparator(s: string, j: number): boolean {
  return s.charCodeAt(j) === 0x5f &&
    (cls(s.charCodeAt(j - 1)) & C_DIGIT) !== 0 &&
    (cls(s.charCodeAt(j + 1)) & C_DIGIT) !== 0;
}

/** Whether text[start, end) is the upper-case ASCII word `upper`, in any case. */
function wordIs(
  text: string,
  start: number,
  end: number,
  upper: string,
): boolean {
  if (end - start !== upper.length) return false;
  for (let i = 0; i < upper.length; i++) {
    const c = text.charCodeAt(start + i);
    if ((c >= 0x61 && c <= 0x7a ? c - 0x20 : c) !== upper.charCodeAt(i)) {
      return false;
    }
  }
  return true;
}

/** The obfuscated text: slices of the input and replacements, with runs of whitespace made one space. */
class Output {
  readonly parts: string[] = [];
  private runStart = -1;
  private runEnd = -1;
  /** Whitespace or a comment came since the last token. */
  space = false;

  constructor(private readonly text: string) {}

  /** Keeps text[start, end), extending the current slice when only one space lies between. */
  keep(start: number, end: number): void {
    if (this.runStart !== -1) {
      if (
        start === this.runEnd ||
        (this.space && start === this.runEnd + 1 &&
          this.text.charCodeAt(this.runEnd) === 0x20)
      ) {
        this.runEnd = end;
        this.space = false;
        return;
      }
      this.flush();
    }
    if (this.space && this.parts.length > 0) this.parts.push(" ");
    this.space = false;
    this.runStart = start;
    this.runEnd = end;
  }

  /** Adds a replacement (a "?"). */
  put(text: string): void {
    this.flush();
    if (this.space && this.parts.length > 0) this.parts.push(" ");
    this.space = false;
    this.parts.push(text);
  }

  /** A position to come back to or to compare from. */
  mark(): number {
    this.flush();
    return this.parts.length;
  }

  /** Drops what came after a mark. */
  cut(mark: number): void {
    this.flush();
    this.parts.length = mark;
  }

  /** What lies between two marks, without spaces. */
  between(from: number, to: number): string {
    this.flush();
    return this.parts.slice(from, to).join("").replaceAll(" ", "");
  }

  finish(): string {
    this.flush();
    return this.parts.length === 1 ? this.parts[0]! : this.parts.join("");
  }

  private flush(): void {
    if (this.runStart === -1) return;
    this.parts.push(this.text.slice(this.runStart, this.runEnd));
    this.runStart = -1;
  }
}

/** Keywords after which "-1" and "+1" are signed numbers rather than a subtraction. */
const SIGN_AFTER = new Set([
  "ALL",
  "AND",
  "ANY",
  "BETWEEN",
  "BY",
  "CASE",
  "DEFAULT",
  "DISTINCT",
  "DIV",
  "ELSE",
  "ESCAPE",
  "FETCH",
  "HAVING",
  "ILIKE",
  "IN",
  "INTERVAL",
  "IS",
  "LIKE",
  "LIMIT",
  "MOD",
  "NOT",
  "OFFSET",
  "ON",
  "OR",
  "REGEXP",
  "RETURN",
  "RLIKE",
  "SELECT",
  "SET",
  "SOME",
  "THEN",
  "TO",
  "VALUE",
  "VALUES",
  "WHEN",
  "WHERE",
  "XOR",
]);

// What the last significant token leaves for a following "-" or "+".
const PREV_OPERATOR = 0; // start, operator, "(", ",", ";": a sign follows
const PREV_OPERAND = 1; // value, identifier, ")": an operator follows
const PREV_WORD = 2; // depends on the word

// States of the VALUES row collapsing.
const ROW_EXPECTED = 0;
const ROW_OPEN = 1;
const ROW_CLOSED = 2;

/**
 * Replaces the literals of SQL text with `?`, as the OpenTelemetry
 * "Sanitization of db.query.text" asks: string, numeric, date and time,
 * interval, binary and hexadecimal literals become `?`; TRUE, FALSE and NULL
 * are keywords and stay.
 *
 * - Strings become `?`: '…' with '' (and, for MySQL, backslash) escapes,
 *   E'…', N'…', U&'…', X'…', B'…', _charset'…', $$…$$, $tag$…$tag$, and
 *   "…" for MySQL (a string there). A string, quoted identifier or comment
 *   the text ends inside runs to the end of the text: a capture cut short
 *   stays obfuscated.
 * - Numbers become `?`: 12, 1_000, 12.34, .5, 1e-5, 0x1F, 0b101, 0o17. A
 *   "-" or "+" right before a number is part of it where a value is
 *   expected ("= -5", "+ -2473", "SELECT -1"), and an operator after a value
 *   ("a - 1" → "a - ?", "a-1" → "a-?"), so both signs give one text.
 * - Kept as written: keywords, identifiers (digits inside them too: t1,
 *   col2), quoted identifiers ("x" for PostgreSQL, `x`), operators, type
 *   names (DATE '…' → DATE ?), placeholders ($1, ?, :name, @var).
 * - Comments (-- …, /* … *\/, and # … for MySQL) are removed; a MySQL
 *   version comment `/*!40101 SET NAMES utf8 *\/` keeps its body.
 * - Runs of whitespace, comments and control characters become one space;
 *   none at either end.
 * - Lists collapse, to keep the number of distinct texts low: `IN (?, ?,
 *   ?)` → `IN (?)` when the list holds only literals and `?` (the conventions
 *   allow this); VALUES rows that read the same as the first row once
 *   obfuscated are dropped: `VALUES (?, ?), (?, ?)` → `VALUES (?, ?)`. Rows
 *   of another shape stay, and so do lists of `$n`.
 *
 * The conventions advise leaving parameterized text unsanitized; this
 * function keeps its placeholders and still replaces the literals it holds
 * ("LIMIT 10"), so it can be applied to every statement. Multi-statement
 * text is obfuscated whole. The result is not truncated.
 */
export function obfuscateSql(
  text: string,
  options: SqlTextOptions = {},
): string {
  const lx = new Lexer(text, options.dialect === "mysql");
  const out = new Output(text);
  let prev = PREV_OPERATOR;
  let prevStart = 0;
  let prevEnd = 0;
  let depth = 0;
  let afterIn = false;
  // "-" characters in a row with nothing between: MySQL reads "-- " as a comment.
  let dashes = 0;
  // The IN list being read: its depth inside the "(", where it starts, its literals.
  let inDepth = -1;
  let inMark = 0;
  let inCount = 0;
  // VALUES rows: the depth of the VALUES keyword, the state, marks, the first row's text.
  let valuesDepth = -1;
  let rowState = ROW_EXPECTED;
  let rowMark = 0;
  let commaMark = 0;
  // The first row, between two marks; its text is only made when a second row comes.
  let firstStart = -1;
  let firstEnd = 0;
  let firstRow: string | undefined;

  for (;;) {
    let kind = lx.next();
    if (kind === END) break;
    if (kind === SPACE || kind === COMMENT) {
      out.space = true;
      continue;
    }
    const start = lx.start;
    if (kind === OTHER && prev !== PREV_OPERAND) {
      // A sign and a number, where a value is expected: one literal.
      const c = text.charCodeAt(start);
      if (c === 0x2d || c === 0x2b) {
        const d = text.charCodeAt(start + 1);
        if (
          cls(d) & C_DIGIT ||
          (d === 0x2e && cls(text.charCodeAt(start + 2)) & C_DIGIT)
        ) {
          const end = numberEnd(text, start + 1);
          if (
            !(cls(text.charCodeAt(end)) & C_IDENT) &&
            (prev === PREV_OPERATOR ||
              SIGN_AFTER.has(text.slice(prevStart, prevEnd).toUpperCase()))
          ) {
            lx.pos = end;
            kind = lx.kind = NUMBER;
          }
        }
      }
    }
    const end = lx.pos;
    if (out.space && dashes >= 2 && lx.mysql) out.space = false;
    const c = text.charCodeAt(start);
    dashes = kind === OTHER && c === 0x2d ? (out.space ? 1 : dashes + 1) : 0;

    // Leaving a VALUES list: anything but rows and commas at its depth.
    if (valuesDepth !== -1 && depth === valuesDepth) {
      if (kind === OPEN && rowState === ROW_EXPECTED) {
        rowMark = out.mark();
        rowState = ROW_OPEN;
      } else if (kind === COMMA && rowState === ROW_CLOSED) {
        commaMark = out.mark();
        rowState = ROW_EXPECTED;
      } else valuesDepth = -1;
    }
    // An IN list stays collapsible while it holds literals, "?" and commas.
    if (inDepth !== -1 && depth === inDepth) {
      if (kind === STRING || kind === NUMBER) {
        inCount++;
      } else if (kind === PARAM && text.charCodeAt(start) === 0x3f) {
        inCount++;
      } else if (kind !== COMMA && kind !== CLOSE) inDepth = -1;
    } else if (inDepth !== -1 && depth > inDepth) inDepth = -1;

    switch (kind) {
      case STRING:
      case NUMBER:
        out.put("?");
        prev = PREV_OPERAND;
        break;
      case WORD:
        out.keep(start, end);
        prev = PREV_WORD;
        prevStart = start;
        prevEnd = end;
        if (wordIs(text, start, end, "IN")) {
          afterIn = true;
          continue;
        }
        if (
          wordIs(text, start, end, "VALUES") ||
          wordIs(text, start, end, "VALUE")
        ) {
          valuesDepth = depth;
          rowState = ROW_EXPECTED;
          firstStart = -1;
          firstRow = undefined;
        }
        break;
      case OPEN:
        out.keep(start, end);
        depth++;
        prev = PREV_OPERATOR;
        if (afterIn) {
          inDepth = depth;
          inMark = out.mark();
          inCount = 0;
        }
        break;
      case CLOSE:
        if (depth === inDepth && inCount > 0) {
          out.cut(inMark);
          out.space = false;
          out.put("?");
        }
        if (depth === inDepth) inDepth = -1;
        out.keep(start, end);
        if (depth > 0) depth--;
        prev = PREV_OPERAND;
        if (
          valuesDepth !== -1 && depth === valuesDepth && rowState === ROW_OPEN
        ) {
          const rowEnd = out.mark();
          if (firstStart === -1) {
            firstStart = rowMark;
            firstEnd = rowEnd;
          } else {
            firstRow ??= out.between(firstStart, firstEnd);
            if (out.between(rowMark, rowEnd) === firstRow) out.cut(commaMark);
          }
          rowState = ROW_CLOSED;
        }
        break;
      case QUOTED:
      case PARAM:
        out.keep(start, end);
        prev = PREV_OPERAND;
        break;
      case OTHER:
        out.keep(start, end);
        prev = c === 0x5d ? PREV_OPERAND : PREV_OPERATOR; // ]
        break;
      default: // COMMA, SEMI
        out.keep(start, end);
        prev = PREV_OPERATOR;
    }
    afterIn = false;
  }
  return out.finish();
}

/** Keywords that can start a statement; a text starting with another word has no operation. */
const OPERATIONS = new Set([
  "ABORT",
  "ALTER",
  "ANALYZE",
  "ANALYSE",
  "BEGIN",
  "CALL",
  "CHECKPOINT",
  "CLOSE",
  "CLUSTER",
  "COMMENT",
  "COMMIT",
  "COPY",
  "CREATE",
  "DEALLOCATE",
  "DECLARE",
  "DELETE",
  "DESC",
  "DESCRIBE",
  "DISCARD",
  "DO",
  "DROP",
  "END",
  "EXECUTE",
  "EXPLAIN",
  "FETCH",
  "FLUSH",
  "GRANT",
  "HANDLER",
  "IMPORT",
  "INSERT",
  "KILL",
  "LISTEN",
  "LOAD",
  "LOCK",
  "MERGE",
  "MOVE",
  "NOTIFY",
  "OPTIMIZE",
  "PREPARE",
  "REFRESH",
  "REINDEX",
  "RELEASE",
  "RENAME",
  "REPLACE",
  "RESET",
  "REVOKE",
  "ROLLBACK",
  "SAVEPOINT",
  "SELECT",
  "SET",
  "SHOW",
  "START",
  "TABLE",
  "TRUNCATE",
  "UNLISTEN",
  "UNLOCK",
  "UPDATE",
  "UPSERT",
  "USE",
  "VACUUM",
  "VALUES",
  "WITH",
  "XA",
]);

/** Statements a WITH clause or an EXPLAIN leads to. */
const MAIN_STATEMENTS = new Set([
  "SELECT",
  "INSERT",
  "UPDATE",
  "DELETE",
  "MERGE",
  "VALUES",
  "TABLE",
  "REPLACE",
  "UPSERT",
  "WITH",
  "CREATE",
  "DECLARE",
  "EXECUTE",
]);

/** Words that, where a table name is expected, mean there is none. */
const NOT_TABLES = new Set([
  "SELECT",
  "VALUES",
  "WHERE",
  "SET",
  "ON",
  "USING",
  "AS",
  "LATERAL",
  "UNNEST",
  "DUAL",
  "DEFAULT",
  "STDIN",
  "STDOUT",
]);

const SKIP_INSERT = new Set([
  "LOW_PRIORITY",
  "DELAYED",
  "HIGH_PRIORITY",
  "IGNORE",
  "INTO",
]);
const SKIP_UPDATE = new Set(["LOW_PRIORITY", "IGNORE", "ONLY"]);
const SKIP_DELETE = new Set(["LOW_PRIORITY", "QUICK", "IGNORE"]);
const SKIP_CREATE = new Set([
  "OR",
  "REPLACE",
  "TEMP",
  "TEMPORARY",
  "UNLOGGED",
  "GLOBAL",
  "LOCAL",
  "UNIQUE",
  "FOREIGN",
]);
const SKIP_IF_EXISTS = new Set(["IF", "NOT", "EXISTS", "ONLY", "CONCURRENTLY"]);
const SKIP_TRUNCATE = new Set(["TABLE", "TABLES", "ONLY"]);
const SKIP_VACUUM = new Set([
  "FULL",
  "FREEZE",
  "VERBOSE",
  "ANALYZE",
  "ANALYSE",
  "TABLE",
  "NO_WRITE_TO_BINLOG",
  "LOCAL",
  "ONLY",
]);

/** Significant tokens (no whitespace or comments), with the parenthesis depth. */
class Cursor {
  readonly lx: Lexer;
  kind = END;
  depth = 0;

  constructor(readonly text: string, mysql: boolean) {
    this.lx = new Lexer(text, mysql);
  }

  next(): number {
    let k: number;
    do k = this.lx.next(); while (k === SPACE || k === COMMENT);
    if (k === OPEN) this.depth++;
    else if (k === CLOSE && this.depth > 0) this.depth--;
    return this.kind = k;
  }

  /** The current token, upper-case. */
  upper(): string {
    return this.text.slice(this.lx.start, this.lx.pos).toUpperCase();
  }

  is(upper: string): boolean {
    return this.kind === WORD &&
      wordIs(this.text, this.lx.start, this.lx.pos, upper);
  }

  /** Moves past words of a set. */
  skip(words: ReadonlySet<string>): void {
    while (this.kind === WORD && words.has(this.upper())) this.next();
  }

  /** Moves past a parenthesized group starting at the current "(". */
  skipGroup(): void {
    const outer = this.depth - 1;
    while (this.kind !== END && this.depth > outer) this.next();
    this.next();
  }
}

function none(): SqlSummary {
  return { operation: "", table: "" };
}

/**
 * The operation and the main table of the first statement of SQL text (the
 * first that is not empty: "BEGIN; UPDATE t …" → BEGIN). Upper-cases the
 * operation, unlike the OpenTelemetry advice to keep case, so that "select"
 * and "SELECT" are one metric series; keeps the table as written, as the
 * conventions ask for `db.collection.name` ("the first collection name
 * found in the query … including any schema and database name prefix").
 * The current conventions advise against parsing these two from query text
 * for systems that allow several tables per statement; this agent only has
 * the text, so it gives the main table and leaves joins and subqueries out.
 *
 * Tables come from: SELECT … FROM t (the first FROM outside parentheses; ""
 * for a subquery, a function or DUAL); INSERT/REPLACE/UPSERT [INTO] t;
 * UPDATE t; DELETE FROM t (MySQL: DELETE t FROM …); MERGE INTO t; CREATE
 * TABLE [IF NOT EXISTS] t; CREATE INDEX … ON t; ALTER TABLE t; DROP TABLE
 * [IF EXISTS] t; TRUNCATE [TABLE] t; COPY t; LOCK [TABLE] t; VACUUM and
 * ANALYZE t; DESCRIBE t; TABLE t. WITH … and EXPLAIN … take the main
 * statement's table; EXPLAIN stays the operation.
 */
export function summarizeSql(
  text: string,
  options: SqlTextOptions = {},
): SqlSummary {
  const c = new Cursor(text, options.dialect === "mysql");
  let k = c.next();
  while (k === SEMI || k === OPEN) k = c.next();
  if (k !== WORD) return none();
  let operation = "";
  // A statement's first word; WITH and EXPLAIN lead on to the main one.
  for (;;) {
    const word = c.upper();
    if (!OPERATIONS.has(word)) return { operation, table: "" };
    if (word !== "WITH" && word !== "EXPLAIN") {
      if (operation === "") operation = word;
      return { operation, table: tableOf(c, word) };
    }
    if (word === "EXPLAIN" && operation === "") operation = "EXPLAIN";
    const base = c.depth;
    do k = c.next(); while (
      k !== END && k !== SEMI &&
      !(k === WORD && c.depth === base && MAIN_STATEMENTS.has(c.upper()))
    );
    if (k !== WORD) {
      return { operation: operation === "" ? word : operation, table: "" };
    }
  }
}

/** The table of a statement whose first word (upper-case) is the cursor's. */
function tableOf(c: Cursor, op: string): string {
  const base = c.depth;
  c.next();
  switch (op) {
    case "SELECT":
      return fromTable(c, base);
    case "INSERT":
    case "REPLACE":
    case "UPSERT":
      c.skip(SKIP_INSERT);
      return tableName(c);
    case "UPDATE":
      c.skip(SKIP_UPDATE);
      return tableName(c);
    case "DELETE":
      c.skip(SKIP_DELETE);
      if (c.is("FROM")) {
        c.next();
        c.skip(SKIP_UPDATE);
      }
      return tableName(c);
    case "MERGE":
      if (c.is("INTO")) c.next();
      c.skip(SKIP_UPDATE);
      return tableName(c);
    case "CREATE":
      c.skip(SKIP_CREATE);
      if (c.is("TABLE")) {
        c.next();
        c.skip(SKIP_IF_EXISTS);
        return tableName(c);
      }
      if (c.is("INDEX")) {
        c.next();
        c.skip(SKIP_IF_EXISTS);
        if (!c.is("ON")) c.next(); // the index's name
        if (!c.is("ON")) return "";
        c.next();
        c.skip(SKIP_IF_EXISTS);
        return tableName(c);
      }
      return "";
    case "ALTER":
    case "DROP":
      if (c.is("TEMPORARY")) c.next();
      if (!c.is("TABLE")) return "";
      c.next();
      c.skip(SKIP_IF_EXISTS);
      return tableName(c);
    case "TRUNCATE":
    case "LOCK":
      c.skip(SKIP_TRUNCATE);
      return tableName(c);
    case "VACUUM":
    case "ANALYZE":
    case "ANALYSE":
    case "OPTIMIZE":
      for (;;) {
        if (c.kind === OPEN) c.skipGroup();
        else if (c.kind === WORD && SKIP_VACUUM.has(c.upper())) c.next();
        else break;
      }
      return tableName(c);
    case "COPY":
    case "DESCRIBE":
    case "DESC":
    case "TABLE":
      return tableName(c);
    default:
      return "";
  }
}

/** The table after the first FROM of a SELECT outside parentheses. */
function fromTable(c: Cursor, base: number): string {
  for (let k = c.kind; k !== END && k !== SEMI; k = c.next()) {
    if (k === WORD && c.depth <= base && c.is("FROM")) {
      c.next();
      if (c.is("ONLY")) c.next();
      const table = tableName(c);
      // A name followed by "(" is a set-returning function: generate_series(1, 3).
      return table !== "" && c.next() === OPEN ? "" : table;
    }
  }
  return "";
}

/** A table name at the cursor: parts joined by ".", unquoted. "" when there is none. */
function tableName(c: Cursor): string {
  const lx = c.lx;
  const text = c.text;
  if (c.kind === WORD) {
    if (NOT_TABLES.has(c.upper())) return "";
  } else if (c.kind !== QUOTED) return "";
  let name = namePart(text, lx.start, lx.pos);
  while (text.charCodeAt(lx.pos) === 0x2e) {
    lx.pos++;
    const k = lx.next();
    if (k !== WORD && k !== QUOTED) break;
    name += "." + namePart(text, lx.start, lx.pos);
  }
  c.kind = WORD;
  return name;
}

/** An identifier without its quotes: "a""b" → a"b, `x` → x, U&"x" → x. */
function namePart(text: string, start: number, end: number): string {
  let q = text.charCodeAt(start);
  if (q !== 0x22 && q !== 0x60) {
    if ((q | 0x20) !== 0x75 || text.charCodeAt(start + 1) !== 0x26) {
      return text.slice(start, end);
    }
    start += 2; // U&"…"
    q = 0x22;
  }
  const closed = end - start >= 2 && text.charCodeAt(end - 1) === q;
  const inner = text.slice(start + 1, closed ? end - 1 : end);
  const quote = q === 0x22 ? '"' : "`";
  return inner.includes(quote) ? inner.replaceAll(quote + quote, quote) : inner;
}
