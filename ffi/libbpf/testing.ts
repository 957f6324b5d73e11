/**
 * `ebpfTest`: a Deno test that needs to load BPF programs. It runs when
 * `probeCapabilities()` says programs can be loaded; otherwise it is skipped
 * with the reason printed, or, under `CORAL_REQUIRE_EBPF=1` (CI), it fails.
 */
import { probeCapabilities } from "./capabilities.ts";
import { nativeSymbols } from "./symbols.ts";

const report = probeCapabilities();
// Open the libraries now, outside any test: they stay open for the process'
// life, which Deno's resource sanitizer would otherwise blame on a test.
if (report.canLoad) nativeSymbols();
const requireEbpf = Deno.env.get("CORAL_REQUIRE_EBPF") === "1";
const unavailable = report.canLoad ? undefined : report.missing.join("; ");
let announced = false;

export function ebpfTest(
  name: string,
  fn: () => Promise<void> | void,
  options: { sanitize?: boolean } = {},
): void {
  const sanitize = options.sanitize ?? true;
  if (unavailable === undefined) {
    Deno.test({ name, fn, sanitizeOps: sanitize, sanitizeResources: sanitize });
  } else if (requireEbpf) {
    Deno.test(name, () => {
      throw new Error(
        `CORAL_REQUIRE_EBPF=1 but eBPF cannot be used here: ${unavailable}`,
      );
    });
  } else {
    if (!announced) {
      announced = true;
      console.log(
        `skipping eBPF tests (set CORAL_REQUIRE_EBPF=1 to fail instead): ${unavailable}`,
      );
    }
    Deno.test({ name, ignore: true, fn });
  }
}
