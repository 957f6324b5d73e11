/** Starting HTTP servers on a validated "host:port" (IPv6 in brackets). */

/** Splits "host:port" for `Deno.serve`. */
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

/**
 * `Deno.serve` on `listen`, listening when it returns. A failure to bind
 * throws "Cannot listen for WHAT on LISTEN" and the cause.
 */
export function serveOn(
  listen: string,
  what: string,
  handler: Deno.ServeHandler<Deno.NetAddr>,
  onError?: (error: unknown) => Response,
): Deno.HttpServer<Deno.NetAddr> {
  const { hostname, port } = splitHostPort(listen);
  // Deno.serve binds synchronously: it returns only once listening, and
  // throws (AddrInUse, PermissionDenied) when it cannot.
  try {
    return Deno.serve(
      { hostname, port, onListen: () => {}, onError },
      handler,
    );
  } catch (error) {
    throw new Error(`Cannot listen for ${what} on ${listen}`, { cause: error });
  }
}

/** "host:port" a server is bound to (useful with port 0); "" if none. */
export function boundAddress(
  server: Deno.HttpServer<Deno.NetAddr> | undefined,
): string {
  const addr = server?.addr;
  return addr ? `${addr.hostname}:${addr.port}` : "";
}
