"""A local stand-in for Slack: an incoming webhook, and the Web API's three-step file upload.

The demo and the tests point a `slackwebhook` connection (messages) and a `slack` connection with
`base_url` (files) at it, so the real Slack provider hooks send real HTTP requests, and what they sent
can be read back: messages as lines of the output file, uploaded files beside it in `<out>.files/`.

    python -m devtools.slack_receiver --port 8766 --out .state/slack.jsonl
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs


def make_server(port: int, out: Path) -> ThreadingHTTPServer:
    lock = threading.Lock()
    files = files_dir(out)
    pending: dict[str, str] = {}  # file id -> file name, between the three steps of an upload

    def append(payload: dict[str, Any], path: str) -> None:
        with lock, out.open("a") as handle:
            handle.write(json.dumps({"received_at": time.time(), "path": path, "payload": payload}) + "\n")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
            pass

        def _answer(self, body: bytes, content_type: str = "application/json", status: int = 200) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _form(self, body: bytes) -> dict[str, str]:
            if self.headers.get("Content-Type", "").startswith("application/json"):
                return {k: v if isinstance(v, str) else json.dumps(v) for k, v in json.loads(body or b"{}").items()}
            return {k: v[0] for k, v in parse_qs(body.decode()).items()}

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.path.startswith("/api/files.getUploadURLExternal"):
                with lock:
                    file_id = f"F{len(pending) + 1:06d}"
                    pending[file_id] = Path(self._form(body).get("filename", file_id)).name
                url = f"http://127.0.0.1:{port}/upload/{file_id}"
                self._answer(json.dumps({"ok": True, "file_id": file_id, "upload_url": url}).encode())
            elif self.path.startswith("/upload/"):
                file_id = self.path.rsplit("/", 1)[1]
                (files / f"{file_id}-{pending.get(file_id, 'file')}").write_bytes(body)
                self._answer(f"OK - {len(body)}".encode(), "text/plain")
            elif self.path.startswith("/api/files.completeUploadExternal"):
                form = self._form(body)
                append({"file_upload": form}, self.path)
                self._answer(json.dumps({"ok": True, "files": json.loads(form.get("files", "[]"))}).encode())
            elif self.path.endswith("/revoked"):
                # Slack's answer to a webhook that was removed or disabled: the message reaches nobody
                self._answer(b"no_service", "text/plain", status=404)
            else:
                try:
                    payload = json.loads(body or b"{}")
                except ValueError:
                    payload = {"raw": body.decode(errors="replace")}
                append(payload, self.path)
                self._answer(b"ok", "text/plain")

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)


def files_dir(out: Path) -> Path:
    directory = out.with_name(out.name + ".files")
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line)["payload"] for line in out.read_text().splitlines() if line.strip()] if out.exists() else []


def read_messages(out: Path) -> list[str]:
    """The text of every webhook message received so far, oldest first."""
    return [record.get("text", "") for record in read_payloads(out)]


def read_payloads(out: Path) -> list[dict[str, Any]]:
    """Every webhook message received so far as it was sent (text, blocks, ...), oldest first."""
    return [record for record in _records(out) if "file_upload" not in record]


def read_uploads(out: Path) -> list[dict[str, str]]:
    """The form of every completed file upload (channel_id, initial_comment, files), oldest first."""
    return [record["file_upload"] for record in _records(out) if "file_upload" in record]


def webhook_conn_json(port: int) -> str:
    # The full URL goes in the password: a port given in the host field is silently dropped.
    return json.dumps({"conn_type": "slackwebhook", "password": f"http://127.0.0.1:{port}/services/T000/B000/local"})


def api_conn_json(port: int) -> str:
    """A `slack` (Web API) connection for the stand-in; the token is a placeholder it does not check."""
    return json.dumps({"conn_type": "slack", "password": "local-stand-in-token", "extra": {"base_url": f"http://127.0.0.1:{port}/api/"}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    make_server(args.port, args.out).serve_forever()


if __name__ == "__main__":
    main()
