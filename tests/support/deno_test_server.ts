// HTTP/1.1 test server on Deno.serve (recvfrom/sendto syscalls through
// tokio), with the routes of http_test_server.py. Usage:
// deno run --allow-net deno_test_server.ts
// Prints "listening PORT" once it accepts connections.

const text = (body: string, status = 200) =>
  new Response(body, { status, headers: { "content-type": "text/plain" } });

Deno.serve({
  hostname: "127.0.0.1",
  port: 0,
  onListen: ({ port }) => console.log(`listening ${port}`),
}, async (req) => {
  const url = new URL(req.url);
  const path = url.pathname;
  if (req.method === "POST") {
    return text(await req.text(), path === "/echo" ? 200 : 404);
  }
  if (path === "/ok") return text("ok");
  if (path === "/missing") return text("missing", 404);
  if (path === "/fail") return text("fail", 500);
  if (path.startsWith("/sleep/")) {
    await new Promise((r) => setTimeout(r, Number(path.split("/")[2])));
    return text("slept");
  }
  if (path.startsWith("/users/")) return text("user");
  if (path === "/call") {
    const port = url.searchParams.get("port");
    const target = url.searchParams.get("path") ?? "/ok";
    const upstream = await fetch(`http://127.0.0.1:${port}${target}`);
    await upstream.text();
    return text(String(upstream.status));
  }
  if (path === "/chunked") {
    const n = Number(url.searchParams.get("n") ?? "3");
    const body = new ReadableStream({
      start(controller) {
        for (let i = 0; i < n; i++) {
          controller.enqueue(new TextEncoder().encode(`chunk ${i}\n`));
        }
        controller.close();
      },
    });
    return new Response(body);
  }
  return text("no such route", 404);
});
