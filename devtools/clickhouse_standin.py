"""A local stand-in for ClickHouse's HTTP interface (port 8123), for the checklist's `clickhouse` items.

Debian's only ClickHouse package is 18.16 (2018) and PyPI ships none that serves HTTP, so the tests play the server:
a GET with `query=... FORMAT JSON`, the user and password in `X-ClickHouse-User` / `X-ClickHouse-Key`, answered as
ClickHouse answers (the `JSON` format's `meta`, `data`, `rows`; a failed login `516 Authentication failed`, a write in a
GET `164 readonly`). The `system` tables a check reads (`settings`, `tables`, `columns`, `replicas`, `disks`) are SQLite tables of
an attached database named `system`, so the statements a checklist holds run as written.

    server = ClickHouseStandIn(password="pw", settings={"max_threads": "16"})
    server.start()  # server.port; server.stop()
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

SCHEMA = (
    "CREATE TABLE system.settings (name TEXT PRIMARY KEY, value TEXT)",
    "CREATE TABLE system.tables (database TEXT, name TEXT, engine TEXT, partition_key TEXT DEFAULT '', engine_full TEXT DEFAULT '')",
    "CREATE TABLE system.columns (database TEXT, \"table\" TEXT, name TEXT, compression_codec TEXT DEFAULT '')",
    "CREATE TABLE system.replicas (database TEXT, table_name TEXT, is_readonly INTEGER, absolute_delay INTEGER,"
    " total_replicas INTEGER, active_replicas INTEGER)",
    "CREATE TABLE system.disks (name TEXT, free_space INTEGER, total_space INTEGER)",
)
FORMAT_JSON = re.compile(r"\s+FORMAT\s+JSON\s*$", re.IGNORECASE)
READS = re.compile(r"^\s*(SELECT|WITH|SHOW|DESCRIBE)\b", re.IGNORECASE)


class ClickHouseStandIn:
    def __init__(self, user: str = "default", password: str = "", settings: dict[str, str] | None = None) -> None:
        self.user, self.password = user, password
        self.db = sqlite3.connect(":memory:", check_same_thread=False)
        self.db.execute("ATTACH DATABASE ':memory:' AS system")
        for statement in SCHEMA:
            self.db.execute(statement)
        self.lock = threading.Lock()
        self.queries: list[str] = []
        self.set_settings(settings or {})
        self.server: ThreadingHTTPServer | None = None

    def set_settings(self, settings: dict[str, str]) -> None:
        with self.lock:
            self.db.executemany("INSERT OR REPLACE INTO system.settings VALUES (?, ?)", settings.items())

    def execute(self, statement: str, rows: list[tuple[Any, ...]]) -> None:
        """Fill a system table, e.g. `INSERT INTO system.tables VALUES (?, ?, ?, ?, ?)`."""
        with self.lock:
            self.db.executemany(statement, rows)

    def answer(self, user: str, key: str, query: str) -> tuple[int, str]:
        if (user, key) != (self.user, self.password):
            return (
                516,
                f"Code: 516. DB::Exception: {user}: Authentication failed: password is incorrect, or there is no user with such name.",
            )
        with self.lock:
            self.queries.append(query)
            if not READS.match(query):
                return 164, "Code: 164. DB::Exception: Cannot execute query in readonly mode."
            try:
                cursor = self.db.execute(FORMAT_JSON.sub("", query))
            except sqlite3.Error as exc:
                return 400, f"Code: 62. DB::Exception: Syntax error: {exc}"
            names = [column[0] for column in cursor.description or []]
            data = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        meta = [{"name": name, "type": "String"} for name in names]
        return 200, json.dumps({"meta": meta, "data": data, "rows": len(data)})

    def start(self) -> None:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
                pass

            def do_GET(self) -> None:
                query = parse_qs(urlsplit(self.path).query).get("query", [""])[0]
                user, key = self.headers.get("X-ClickHouse-User", "default"), self.headers.get("X-ClickHouse-Key", "")
                status, body = standin.answer(user, key, query)
                encoded = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8" if status == 200 else "text/plain; charset=UTF-8")
                self.send_header("Content-Length", str(len(encoded)))
                self.end_headers()
                self.wfile.write(encoded)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        assert self.server is not None  # noqa: S101 - start() first
        return int(self.server.server_address[1])

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
