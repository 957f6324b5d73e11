"""HTTP/1.1 test server for the eBPF capture tests (tests/ebpf_http_test.ts).

Usage: python3 http_test_server.py [PORT]   (0 or nothing: a free port)
Prints "listening PORT" once it accepts connections. Keep-alive throughout.

  GET  /ok                 200 "ok"
  GET  /missing            404
  GET  /fail               500
  GET  /sleep/MS           200 after sleeping MS milliseconds
  GET  /users/ID           200
  GET  /call?port=P&path=X 200 after calling http://127.0.0.1:P/X once
                           (a client request from this process); the
                           upstream status is in the body
  GET  /chunked?n=N        200, Transfer-Encoding: chunked, N chunks
  POST /echo               200, the request body back
"""
import http.client
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def reply(self, status, body=b""):
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/ok":
            self.reply(200, b"ok")
        elif url.path == "/missing":
            self.reply(404, b"missing")
        elif url.path == "/fail":
            self.reply(500, b"fail")
        elif url.path.startswith("/sleep/"):
            time.sleep(int(url.path.split("/")[2]) / 1000)
            self.reply(200, b"slept")
        elif url.path.startswith("/users/"):
            self.reply(200, b"user")
        elif url.path == "/call":
            conn = http.client.HTTPConnection("127.0.0.1", int(query["port"][0]), timeout=10)
            conn.request("GET", query.get("path", ["/ok"])[0])
            upstream = conn.getresponse()
            upstream.read()
            conn.close()
            self.reply(200, str(upstream.status).encode())
        elif url.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(int(query.get("n", ["3"])[0])):
                data = f"chunk {i}\n".encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.reply(404, b"no such route")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.reply(200 if self.path == "/echo" else 404, body)


def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print(f"listening {server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
