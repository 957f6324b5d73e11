// HTTP/1.1 test server on Node (read/write/writev syscalls through libuv),
// with the routes of http_test_server.py. Usage: node node_test_server.mjs
// Prints "listening PORT" once it accepts connections.
import http from "node:http";

function reply(res, status, body) {
  res.statusCode = status;
  res.setHeader("Content-Type", "text/plain");
  res.setHeader("Content-Length", Buffer.byteLength(body));
  res.end(body);
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://localhost");
  const path = url.pathname;
  if (req.method === "POST") {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on(
      "end",
      () => reply(res, path === "/echo" ? 200 : 404, Buffer.concat(chunks)),
    );
    return;
  }
  if (path === "/ok") return reply(res, 200, "ok");
  if (path === "/missing") return reply(res, 404, "missing");
  if (path === "/fail") return reply(res, 500, "fail");
  if (path.startsWith("/sleep/")) {
    setTimeout(() => reply(res, 200, "slept"), Number(path.split("/")[2]));
    return;
  }
  if (path.startsWith("/users/")) return reply(res, 200, "user");
  if (path === "/call") {
    const port = url.searchParams.get("port");
    const target = url.searchParams.get("path") ?? "/ok";
    http.get(
      { host: "127.0.0.1", port, path: target, agent: false },
      (upstream) => {
        upstream.resume();
        upstream.on("end", () => reply(res, 200, String(upstream.statusCode)));
      },
    ).on("error", (e) => reply(res, 502, String(e)));
    return;
  }
  if (path === "/chunked") {
    res.statusCode = 200;
    const n = Number(url.searchParams.get("n") ?? "3");
    for (let i = 0; i < n; i++) res.write(`chunk ${i}\n`);
    res.end();
    return;
  }
  reply(res, 404, "no such route");
});
server.keepAliveTimeout = 60_000;
server.listen(
  0,
  "127.0.0.1",
  () => console.log(`listening ${server.address().port}`),
);
