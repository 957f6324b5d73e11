/**
 * The benchmark's baseline: an HTTP server that reads each request body and
 * answers 200, doing nothing else. Port from argv; prints "ready".
 */
const port = Number(Deno.args[0]);
Deno.serve({
  hostname: "127.0.0.1",
  port,
  onListen: () => console.log("ready"),
}, async (request) => {
  await request.arrayBuffer();
  return new Response(new Uint8Array(0), {
    headers: { "content-type": "application/x-protobuf" },
  });
});
