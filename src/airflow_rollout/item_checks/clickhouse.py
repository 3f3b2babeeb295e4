"""`clickhouse`: a setting or a read-only query of the ClickHouse server behind a connection, over its HTTP interface.

`settings` reads `system.settings` (seed 002's max_memory_usage, max_threads, max_query_size: each must equal what the
seed sets); `query` runs one read-only statement (system.tables, system.replicas, system.disks) whose first value is
compared with `equals` / `at_least` / `at_most`. Requests are GETs, which ClickHouse runs read-only whatever the user
may do; the user and password go in its `X-ClickHouse-User` / `X-ClickHouse-Key` headers, never in the URL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from airflow_rollout.config import ConnId
from airflow_rollout.item_checks.expectation import ValueExpectation, read_only_statement, same

if TYPE_CHECKING:
    from airflow_rollout.context import SystemContext
    from airflow_rollout.evidence import Evidence

SettingName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
HTTP_PORT = 8123


class ClickHouseItemCheck(ValueExpectation):
    """`settings` (each equal to its value) or `query` (its first value against the expectation)."""

    kind: Literal["clickhouse"]
    conn_id: ConnId = Field(description="host, port (8123), login, password; extra `secure: true` for HTTPS")
    settings: dict[SettingName, str | int] = Field(default_factory=dict, description="system.settings name: the value it must have")
    query: str | None = Field(default=None, min_length=1, max_length=4000)
    timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 30

    @field_validator("query")
    @classmethod
    def _read_only(cls, query: str | None) -> str | None:
        return read_only_statement(query) if query is not None else None

    @model_validator(mode="after")
    def _one_question(self) -> ClickHouseItemCheck:
        if bool(self.settings) == (self.query is not None):
            raise ValueError("needs exactly one of settings or query")
        return self

    def reads_value(self) -> bool:
        return self.query is not None


def select(conn_id: str, query: str, timeout_seconds: float) -> tuple[str, list[dict[str, Any]]]:
    """(where, rows) of one read-only query through the HTTP interface; an error answer raises with ClickHouse's text."""
    import httpx
    from airflow.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    scheme = "https" if conn.extra_dejson.get("secure") else "http"
    where = f"{scheme}://{conn.host}:{conn.port or HTTP_PORT}"
    headers = {"X-ClickHouse-User": conn.login or "default", **({"X-ClickHouse-Key": conn.password} if conn.password else {})}
    response = httpx.get(where + "/", params={"query": f"{query} FORMAT JSON"}, headers=headers, timeout=timeout_seconds)
    if response.status_code != 200:
        raise RuntimeError(f"ClickHouse at {where} answered HTTP {response.status_code}: {response.text.strip()[:300]}")
    return where, response.json()["data"]


def run(_ctx: SystemContext, check: ClickHouseItemCheck) -> Evidence:
    from airflow_rollout.evidence import Evidence

    if check.query is not None:
        where, rows = select(check.conn_id, check.query, check.timeout_seconds)
        if not rows:
            return Evidence(False, f"ClickHouse {where} ({check.conn_id}): {check.query.strip()} -> no row")
        value = next(iter(rows[0].values()))
        problems = check.value_problems(value)
        detail = f"ClickHouse {where} ({check.conn_id}): {check.query.strip()} -> {value!r}" + (
            f" ({'; '.join(problems)})" if problems else ""
        )
        return Evidence(not problems, detail, {"value": value})
    names = ", ".join(f"'{name}'" for name in check.settings)  # each name is patterned: letters, digits, underscores
    query = f"SELECT name, value FROM system.settings WHERE name IN ({names})"  # noqa: S608 - names patterned above
    where, rows = select(check.conn_id, query, check.timeout_seconds)
    found = {row["name"]: row["value"] for row in rows}
    compared = [f"{name} = {found.get(name, 'unknown')!r} (expected {wanted!r})" for name, wanted in check.settings.items()]
    wrong = [name for name, wanted in check.settings.items() if name not in found or not same(found[name], wanted)]
    verdict = f"; not as expected: {', '.join(wrong)}" if wrong else ""
    return Evidence(not wrong, f"ClickHouse {where} ({check.conn_id}) system.settings: {', '.join(compared)}{verdict}", found)
