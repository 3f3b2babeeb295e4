"""`kind: delta_table`: a Delta table's `DESCRIBE DETAIL` row or its `SHOW TBLPROPERTIES`, read on the unity_catalog
data target's SQL warehouse through the Databricks SQL Statement Execution API, held to expectations.

    check:
      kind: delta_table
      target: unity_catalog              # a unity_catalog data target: its connection, warehouse, catalog, schema
      table: sheets                      # omitted: every table of the target's `tables`, each held to the expectations
      read: properties                   # {key: value} of SHOW TBLPROPERTIES; `detail`: DESCRIBE DETAIL's columns
      expect:
        - {path: [delta.enableChangeDataFeed], equals: "true"}

The detail is a document of DESCRIBE DETAIL's column names (format, location, numFiles, properties, ...),
named by the statement's result manifest, so no column order is assumed.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from airflow_rollout.config import Name, SqlIdentifier, StrictModel
from airflow_rollout.json_expectations import Expectation, check_document

if TYPE_CHECKING:
    from airflow_rollout.context import ReleaseContext
    from airflow_rollout.evidence import Evidence
    from airflow_rollout.targets.databricks import Warehouse


class DeltaTableItemCheck(StrictModel):
    """A table of the target's schema: its detail or its properties held to expectations."""

    kind: Literal["delta_table"]
    target: Name = Field(description="a unity_catalog data target")
    table: SqlIdentifier | None = Field(default=None, description="omitted: every table the target names")
    read: Literal["detail", "properties"]
    expect: list[Expectation] = Field(min_length=1)


STRUCTURED = ("MAP", "ARRAY", "STRUCT")
WHOLE_NUMBERS = ("BYTE", "SHORT", "INT", "LONG")


def _value(text: str | None, type_name: str) -> Any:
    """A value as the statement API sends it (a string or null), typed by its column of the manifest."""
    if text is None:
        return None
    if type_name in STRUCTURED:
        return json.loads(text)
    if type_name in WHOLE_NUMBERS:
        return int(text)
    if type_name == "BOOLEAN":
        return text.lower() == "true"
    return text


def described(warehouse: Warehouse, statement: str) -> list[dict[str, Any]]:
    """The rows of one statement as {column: value}, named and typed by the answer's manifest.

    `Warehouse.execute` gives the rows without their column names; a DESCRIBE is answered within the request's
    wait (30 s), so an answer that is not SUCCEEDED by then is an error here rather than polled.
    """
    from airflow.providers.databricks.hooks.databricks import SQL_STATEMENTS_ENDPOINT

    from airflow_rollout.targets.databricks import api

    body = {"warehouse_id": warehouse.warehouse_id, "statement": statement, "wait_timeout": "30s", "on_wait_timeout": "CANCEL"}
    answer = api(warehouse.hook, "POST", SQL_STATEMENTS_ENDPOINT, body)
    status = answer["status"]
    if status["state"] != "SUCCEEDED":
        error = status.get("error") or {}
        raise RuntimeError(f"{statement}: {error.get('error_code', status['state'])} {error.get('message', '')}".strip())
    columns = [(c["name"], c.get("type_name", "STRING")) for c in answer["manifest"]["schema"]["columns"]]
    rows = (answer.get("result") or {}).get("data_array") or []
    return [{name: _value(text, type_name) for (name, type_name), text in zip(columns, row, strict=True)} for row in rows]


def run(ctx: ReleaseContext, check: DeltaTableItemCheck) -> Evidence:
    from airflow_rollout.evidence import Evidence

    target = next(t for t in ctx.data_targets if t.config.name == check.target)
    warehouse, qualify = getattr(target, "warehouse", None), getattr(target, "table", None)
    if warehouse is None or qualify is None:
        return Evidence(False, f"{check.target} is a {target.config.kind} target, not Unity Catalog: it has no Delta tables")
    tables = [check.table] if check.table else list(getattr(target.config, "tables", []))
    results = {table: _check_table(warehouse, qualify(table), check) for table in tables}
    numbers = {table: found for table, (_, _, found) in results.items()}
    return Evidence(
        all(passed for passed, _, _ in results.values()),
        "; ".join(detail for _, detail, _ in results.values()),
        numbers[tables[0]] if len(tables) == 1 else numbers,
    )


def _check_table(warehouse: Warehouse, table: str, check: DeltaTableItemCheck) -> tuple[bool, str, dict[str, Any]]:
    if check.read == "detail":
        statement = f"DESCRIBE DETAIL {table}"
        rows = described(warehouse, statement)
        document: Any = rows[0] if rows else {}
    else:
        statement = f"SHOW TBLPROPERTIES {table}"
        document = {row["key"]: row["value"] for row in described(warehouse, statement)}
    return check_document(document, check.expect, f"{statement} on warehouse {warehouse.warehouse_id}")
