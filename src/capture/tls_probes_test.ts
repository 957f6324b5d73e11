import assert from "node:assert/strict";
import { mappedLibssl, SSL_PROBES, SSL_PROGRAMS } from "./tls_probes.ts";

Deno.test("tls_probes: finds the mapped libssl in /proc/PID/maps text", () => {
  const maps = [
    "55d0c1a00000-55d0c1a2b000 r--p 00000000 08:01 1234 /usr/sbin/nginx",
    "7f1c2a000000-7f1c2a0a0000 r--p 00000000 08:01 5678 /usr/lib/x86_64-linux-gnu/libcrypto.so.3",
    "7f1c2b000000-7f1c2b020000 r-xp 00020000 08:01 9012 /usr/lib/x86_64-linux-gnu/libssl.so.3",
    "7ffd1c000000-7ffd1c021000 rw-p 00000000 00:00 0 [stack]",
  ].join("\n");
  assert.equal(mappedLibssl(maps), "/usr/lib/x86_64-linux-gnu/libssl.so.3");
  assert.equal(
    mappedLibssl("7f-8f r-xp 0 08:01 1 /opt/lib/libssl.so.1.1"),
    "/opt/lib/libssl.so.1.1",
  );
  assert.equal(
    mappedLibssl("7f-8f r-xp 0 08:01 1 /opt/libssl.so.3.bak"),
    undefined,
  );
  assert.equal(mappedLibssl("7f-8f rw-p 0 00:00 0 [heap]"), undefined);
});

Deno.test("tls_probes: SSL_set_fd, and an entry and a return probe on the handshake and the four data functions", () => {
  assert.equal(SSL_PROBES.length, 11);
  assert.deepEqual(
    SSL_PROBES.filter((p) => p.retprobe).map((p) => p.func),
    [
      "SSL_do_handshake",
      "SSL_read",
      "SSL_read_ex",
      "SSL_write",
      "SSL_write_ex",
    ],
  );
  assert.ok(SSL_PROGRAMS.every((name) => name.startsWith("coral_http_ssl_")));
});
