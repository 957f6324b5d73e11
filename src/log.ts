/** A small leveled logger: one line per event on stderr, fields as key=value. */
export type LogLevel = "debug" | "info" | "warn" | "error";
const ORDER: Record<LogLevel, number> = {
  debug: 0,
  info: 1,
  warn: 2,
  error: 3,
};

export type LogFields = Record<string, string | number | boolean | undefined>;

export class Logger {
  constructor(private readonly minimum: LogLevel = "info") {}

  debug(message: string, fields?: LogFields): void {
    this.#write("debug", message, fields);
  }
  info(message: string, fields?: LogFields): void {
    this.#write("info", message, fields);
  }
  warn(message: string, fields?: LogFields): void {
    this.#write("warn", message, fields);
  }
  error(message: string, fields?: LogFields): void {
    this.#write("error", message, fields);
  }

  #write(level: LogLevel, message: string, fields?: LogFields): void {
    if (ORDER[level] < ORDER[this.minimum]) return;
    let line = `${new Date().toISOString()} ${level.toUpperCase()} ${message}`;
    for (const [key, value] of Object.entries(fields ?? {})) {
      if (value !== undefined) line += ` ${key}=${JSON.stringify(value)}`;
    }
    console.error(line);
  }
}
