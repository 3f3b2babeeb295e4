"""What the stand-ins of a JSON REST API share (a system's own Airflow webserver, GitHub): a threaded HTTP server on
127.0.0.1 (a free port) that answers each GET with `answer(path, authorization, query)` as JSON, and starts and stops
as a context manager. A subclass says what each path answers."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

if TYPE_CHECKING:
    from types import TracebackType


class JsonApiStandin:
    """`with Subclass(...) as api:` serves on 127.0.0.1 at `api.port` until the block ends."""

    def __init__(self, name: str) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, name=name, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def answer(self, path: str, authorization: str | None, query: dict[str, list[str]]) -> tuple[int, Any]:
        """The status and JSON body of a GET of `path` (unquoted) with this Authorization header and query."""
        raise NotImplementedError

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                status, body = standin.answer(unquote(url.path), self.headers.get("Authorization"), parse_qs(url.query))
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
                """Quiet: the tests read the answers, not an access log."""

        return Handler

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
