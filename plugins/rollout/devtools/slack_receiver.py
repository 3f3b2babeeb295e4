"""A local stand-in for a Slack incoming webhook: answers 200 "ok" and appends each message to a file.

The demo and the tests point a `slackwebhook` connection at it, so the real Slack provider hook sends
real HTTP requests and what it sent can be read back.

    python -m rollout.devtools.slack_receiver --port 8766 --out .state/slack.jsonl
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def make_server(port: int, out: Path) -> ThreadingHTTPServer:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                payload = json.loads(body or b"{}")
            except ValueError:
                payload = {"raw": body.decode(errors="replace")}
            record = {"received_at": time.time(), "path": self.path, "payload": payload}
            with lock, out.open("a") as handle:
                handle.write(json.dumps(record) + "\n")
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    out.parent.mkdir(parents=True, exist_ok=True)
    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def read_messages(out: Path) -> list[str]:
    """The text of every message received so far, oldest first."""
    if not out.exists():
        return []
    return [json.loads(line)["payload"].get("text", "") for line in out.read_text().splitlines() if line.strip()]


def webhook_conn_json(port: int) -> str:
    # The full URL goes in the password: a port given in the host field is silently dropped.
    return json.dumps({"conn_type": "slackwebhook", "password": f"http://127.0.0.1:{port}/services/T000/B000/local"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    make_server(args.port, args.out).serve_forever()


if __name__ == "__main__":
    main()
