"""The demo service the embedded default releases: a small JSON API over a PostgreSQL database.

Each version's behaviour comes from `releases/<version>.json` beside this file (or in
$DEMO_RELEASES_DIR), standing in for the code of that version. Its keys, all optional:

  columns               the item columns this version reads (it fails if the schema lacks them)
  fail_every            every Nth /api request answers 500 (a bad build)
  latency_ms            time each /api request takes (a slow build)
  reports_version       the version /health claims (the wrong artifact deployed)
  crash_after_requests  the process dies after this many /api requests
  workers               pre-fork this many worker processes serving the same socket, as gunicorn does
  workers_ignore_sigterm  the workers finish "their jobs" on SIGTERM: only SIGKILL stops them
  daemon_worker         one more worker leaves the process group (setsid), as a daemonising job runner does
  schema_revisions      the schema revisions this build can run on; it refuses to start on any other, as
                        an Alembic- or Flyway-managed service does (absent: it runs on any schema)
  warmup_seconds        how long it warms up (loads a model, fills a cache) before it listens

A version without a manifest exits at once, as a build that does not start would.

    python server.py --version 1.1.0 --port 8765      (DATABASE_URL in the environment)
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import queue
import signal
import sys
import threading
import time
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import parse_qs, urlparse

import psycopg
from psycopg import sql

if TYPE_CHECKING:
    from collections.abc import Iterator

RELEASES_DIR = Path(os.environ.get("DEMO_RELEASES_DIR", Path(__file__).with_name("releases")))


class Pool:
    """A few reused connections; a broken one (the database was restored under us) is replaced."""

    def __init__(self, dsn: str, size: int = 8) -> None:
        self._dsn = dsn
        self._idle: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        self._slots = threading.Semaphore(size)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        with self._slots:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = psycopg.connect(self._dsn, autocommit=True, connect_timeout=5)
            try:
                yield conn
            except psycopg.OperationalError:
                conn.close()
                raise
            else:
                self._idle.put(conn)


def make_handler(version: str, manifest: dict[str, Any], pool: Pool) -> type[BaseHTTPRequestHandler]:
    columns = ["id", "name", *manifest.get("columns", [])]
    items_query = sql.SQL("SELECT {} FROM items ORDER BY id LIMIT %s").format(sql.SQL(", ").join(map(sql.Identifier, columns)))
    fail_every = int(manifest.get("fail_every", 0))
    latency = float(manifest.get("latency_ms", 0)) / 1000
    crash_after = int(manifest.get("crash_after_requests", 0))
    reported_version = str(manifest.get("reports_version", version))
    api_requests = itertools.count(1)
    counter_lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # else headers and body in two writes wait ~40 ms for a delayed ACK

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass  # one line per request would drown the log during a load probe

        def _send(self, status: int, payload: Any) -> None:
            body = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            try:
                if url.path == "/health":
                    with pool.connection() as conn:
                        conn.execute("SELECT 1")
                    self._send(200, {"status": "ok", "version": reported_version})
                elif url.path == "/api/items":
                    with counter_lock:
                        n = next(api_requests)
                    if crash_after and n > crash_after:
                        os._exit(70)  # dies mid-request, as a segfaulting build would
                    time.sleep(latency)
                    if fail_every and n % fail_every == 0:
                        self._send(500, {"error": "internal error"})
                        return
                    limit = min(int(parse_qs(url.query).get("limit", ["20"])[0]), 1000)
                    with pool.connection() as conn:
                        rows = conn.execute(items_query, (limit,)).fetchall()
                    self._send(200, [dict(zip(columns, row, strict=True)) for row in rows])
                else:
                    self._send(404, {"error": "not found"})
            except (psycopg.Error, ValueError) as exc:
                self._send(500, {"error": type(exc).__name__})

    return Handler


def schema_problem(dsn: str, known: list[str] | None) -> str | None:
    """Why this build cannot run on the database's schema revision; None when it can (or does not check)."""
    if known is None:
        return None
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        try:
            row = conn.execute("SELECT revision FROM schema_revision").fetchone()
        except psycopg.errors.UndefinedTable:
            return "the database has no schema_revision table: it was never migrated"
    revision = row[0] if row else None
    if revision not in known:
        return f"unknown schema revision {revision!r} (this build knows {', '.join(known)}): migrate to it, or restore its data"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--version", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    manifest_path = RELEASES_DIR / f"{args.version}.json"
    if not manifest_path.is_file():
        print(f"no build of version {args.version} ({manifest_path} missing)", file=sys.stderr)
        return 1
    manifest = json.loads(manifest_path.read_text())
    if (problem := schema_problem(os.environ["DATABASE_URL"], manifest.get("schema_revisions"))) is not None:
        print(f"demo app {args.version} refuses to start: {problem}", file=sys.stderr)
        return 1
    time.sleep(float(manifest.get("warmup_seconds", 0)))
    pool = Pool(os.environ["DATABASE_URL"])
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(args.version, manifest, pool))
    server.daemon_threads = True
    print(f"demo app {args.version} serving on 127.0.0.1:{args.port}", flush=True)
    # Forked before any thread or database connection exists, so each worker starts clean.
    for _ in range(int(manifest.get("workers", 0))):
        if os.fork() == 0:
            serve_as_worker(server, ignore_sigterm=bool(manifest.get("workers_ignore_sigterm")), leave_group=False)
    if manifest.get("daemon_worker") and os.fork() == 0:
        serve_as_worker(server, ignore_sigterm=False, leave_group=True)
    server.serve_forever()
    return 0


def serve_as_worker(server: ThreadingHTTPServer, *, ignore_sigterm: bool, leave_group: bool) -> NoReturn:
    """A worker process: accepts on the leader's listening socket until it is killed."""
    if ignore_sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if leave_group:  # the classic daemon: a session of its own, then a second fork so that init adopts it
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
    print(f"worker {os.getpid()} serving", flush=True)
    server.serve_forever()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
