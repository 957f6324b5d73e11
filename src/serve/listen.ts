/** Splits a validated "host:port" (IPv6 in brackets) for `Deno.serve`. */
export function splitHostPort(
  listen: string,
): { hostname: string; port: number } {
  const colon = listen.lastIndexOf(":");
  const host = listen.slice(0, colon);
  return {
    hostname: host.startsWith("[") ? host.slice(1, -1) : host,
    port: Number(listen.slice(colon + 1)),
  };
}
