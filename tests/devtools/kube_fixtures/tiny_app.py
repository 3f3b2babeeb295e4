"""A tiny HTTP service for the Kubernetes stand-in's tests: /health answers its version and a secret from its env.

python tiny_app.py --version 1.2.0 --port 8080
"""

from __future__ import annotations

import argparse
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--version", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    if args.version == "broken":
        raise SystemExit("this build does not start")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path not in ("/health", "/ready"):
                self.send_response(404)
                self.end_headers()
                return
            body = json.dumps({"version": args.version, "greeting": os.environ.get("GREETING"), "token": os.environ.get("API_TOKEN")})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, format: str, *a: object) -> None:  # noqa: A002
            pass

    print(f"tiny_app {args.version} on {args.port}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
