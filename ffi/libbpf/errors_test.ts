import assert from "node:assert/strict";
import { check, errnoName, LibbpfError } from "./errors.ts";

Deno.test("errors: the message names the call and the errno, as name and text", () => {
  const error = new LibbpfError("bpf_object__load", 1);
  assert.equal(
    error.message,
    "bpf_object__load failed: EPERM (Operation not permitted)",
  );
  assert.equal(error.name, "LibbpfError");
  assert.equal(error.code, "EPERM");
  assert.equal(error.errno, 1);
});

Deno.test("errors: negative errno from an int-returning call, with subject and cause", () => {
  const cause = new Error("inner");
  assert.throws(
    () =>
      check("bpf_map__set_max_entries", -16, {
        subject: "smoke_pids, 10",
        cause,
      }),
    {
      name: "LibbpfError",
      message:
        "bpf_map__set_max_entries(smoke_pids, 10) failed: EBUSY (Device or resource busy)",
      cause,
    },
  );
  assert.equal(check("bpf_object__load", 0), 0);
});

Deno.test("errors: errno names, including libbpf's own codes", () => {
  assert.equal(errnoName(95), "EOPNOTSUPP");
  assert.equal(errnoName(4007), "LIBBPF_ERRNO__LOAD");
  assert.equal(errnoName(9999), "E9999");
});
