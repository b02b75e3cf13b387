"""A small HTTP server for the I/O lesson: each GET waits a set latency (like
a remote API would), then answers a few bytes.

    python -m crew._cli.latency_server LATENCY_SECONDS    # prints its port
"""
import http.server
import sys
import time


class Handler(http.server.BaseHTTPRequestHandler):
    latency = 0.05
    protocol_version = "HTTP/1.0"

    def do_GET(self):
        time.sleep(self.latency)
        body = b"x" * 512
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


class Server(http.server.ThreadingHTTPServer):
    request_queue_size = 256
    daemon_threads = True


def main():
    Handler.latency = float(sys.argv[1]) if len(sys.argv) > 1 else 0.05
    srv = Server(("127.0.0.1", 0), Handler)
    print(srv.server_address[1], flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
