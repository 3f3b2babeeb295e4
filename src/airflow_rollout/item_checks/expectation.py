"""What a check expects of the one value it reads (a query's answer, a server setting): `equals`, `at_least`, `at_most`.

Shared by the kinds that read a value (`sql`, `redis`, `clickhouse`), so that "1", 1 and 1.0 compare alike everywhere,
and the one rule for the queries they send: a single read-only statement.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import model_validator

from airflow_rollout.config import StrictModel


class ValueExpectation(StrictModel):
    """`equals` a value, or lies within `at_least` .. `at_most`; without one any answer would pass."""

    at_least: float | None = None
    at_most: float | None = None
    equals: str | float | bool | None = None

    @model_validator(mode="after")
    def _expects_something(self) -> ValueExpectation:
        # without an expectation any answer passes: the item would be proven by the server answering at all
        if self.reads_value() and self.at_least is None and self.at_most is None and self.equals is None:
            raise ValueError("needs an expectation of its value: at_least, at_most or equals")
        return self

    def reads_value(self) -> bool:
        """Whether this check compares a value it reads (a kind with other ways of proving says when it does not)."""
        return True

    def value_problems(self, value: Any) -> list[str]:
        """How `value` misses the expectation: empty when it holds."""
        problems = []
        if self.equals is not None and not same(value, self.equals):
            problems.append(f"expected {self.equals!r}")
        if self.at_least is None and self.at_most is None:
            return problems
        try:
            number = float(value)
        except (TypeError, ValueError):
            return [*problems, "not a number"]
        if self.at_least is not None and number < self.at_least:
            problems.append(f"below {self.at_least:g}")
        if self.at_most is not None and number > self.at_most:
            problems.append(f"above {self.at_most:g}")
        return problems


def same(value: Any, expected: str | float | bool) -> bool:
    """YAML reads `equals: 1` as a number and a server may answer 1, 1.0 or '1': compare as numbers when both are."""
    if isinstance(expected, bool) or isinstance(value, bool):
        return str(value).lower() == str(expected).lower()
    try:
        return float(value) == float(expected)
    except (TypeError, ValueError):
        return str(value) == str(expected)


READ_ONLY_SQL = re.compile(r"^\s*(SELECT|WITH|SHOW|DESCRIBE)\b", re.IGNORECASE)


def read_only_statement(query: str) -> str:
    """`query` if it is one read-only statement; a checklist item never changes what it reads."""
    if not READ_ONLY_SQL.match(query) or ";" in query.strip().rstrip(";"):
        raise ValueError("must be one read-only statement (SELECT, WITH, SHOW or DESCRIBE)")
    return query
