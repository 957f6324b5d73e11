/**
 * Named counters for everything the agent receives, stores, rejects or
 * drops. `status` prints them, so nothing is lost silently.
 *
 * Names are dot-separated, most general first, with the reason last:
 * `otlp.spans.received`, `otlp.spans.rejected.invalid_span_id`,
 * `otlp.metrics.unused.process.cpu.time`, `store.spans.duplicate`.
 */
export class Counters {
  readonly #values = new Map<string, number>();

  add(name: string, n = 1): void {
    if (n === 0) return;
    this.#values.set(name, (this.#values.get(name) ?? 0) + n);
  }

  get(name: string): number {
    return this.#values.get(name) ?? 0;
  }

  /** All counters whose name starts with `prefix`, sorted by name. */
  snapshot(prefix = ""): Record<string, number> {
    const out: Record<string, number> = {};
    for (const name of [...this.#values.keys()].sort()) {
      if (name.startsWith(prefix)) out[name] = this.#values.get(name)!;
    }
    return out;
  }
}
