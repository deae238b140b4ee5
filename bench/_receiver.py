"""A webhook receiver in its own process: prints its port, then one JSON line per request.

Each line is ``{"t": <wall-clock arrival>, "body": <the JSON body>}``; the
latency benchmark pairs ``t`` with the publisher's send time.  A process of its
own so that receiving does not compete for the core's GIL.
"""

from __future__ import annotations

import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # a real receiver (nginx, any web framework) answers at once

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        arrived = time.time()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = {"raw": body.decode(errors="replace")}
        sys.stdout.write(json.dumps({"t": arrived, "body": parsed}) + "\n")
        sys.stdout.flush()

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(json.dumps({"port": server.server_address[1]}), flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
