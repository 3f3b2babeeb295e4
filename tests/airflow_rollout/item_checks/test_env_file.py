"""`env_file` items on real files: a .env held against its .env.example, values never shown."""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING

import pytest
from pydantic import ValidationError

from airflow_rollout.checklist_run import evaluate
from airflow_rollout.item_checks.env_file import EnvFileItemCheck

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_rollout.evidence import Evidence

EXAMPLE = "DATABASE_URL=postgresql://app:change-me@db/app\nSECRET_KEY=change-me-secret\n# optional\nLOG_LEVEL=INFO\n"
SECRET = "s3cr3t-value-of-forty-characters-exactly"


def env_check(tmp_path: Path, env: str, **fields: object) -> Evidence:
    (tmp_path / ".env.example").write_text(EXAMPLE)
    (tmp_path / ".env").write_text(env)
    check = EnvFileItemCheck.model_validate({"kind": "env_file", "path": str(tmp_path / ".env"), **fields})
    return evaluate(SimpleNamespace(), check)  # type: ignore[arg-type]


GOOD = f"DATABASE_URL=postgresql://app:pw@db/app\nSECRET_KEY={SECRET}\nLOG_LEVEL=INFO\n"


def test_a_env_with_every_key_changed_and_long_enough_passes(tmp_path: Path) -> None:
    evidence = env_check(tmp_path, GOOD, complete=True, changed=["SECRET_KEY", "DATABASE_URL"], min_length={"SECRET_KEY": 32})
    assert evidence.passed, evidence.detail
    assert evidence.detail.endswith(
        "against .env.example: all 3 keys of the example set; SECRET_KEY, DATABASE_URL differ from the example; "
        "SECRET_KEY 40 characters (at least 32)"
    )
    assert SECRET not in evidence.detail and "pw@" not in evidence.detail
    assert evidence.numbers["SECRET_KEY_length"] == 40


@pytest.mark.parametrize(
    ("env", "fields", "problem"),
    [
        ("DATABASE_URL=x\nLOG_LEVEL=INFO\n", {"complete": True}, "not set: SECRET_KEY"),
        ("DATABASE_URL=x\nSECRET_KEY=\nLOG_LEVEL=INFO\n", {"complete": True}, "not set: SECRET_KEY"),
        (GOOD.replace(SECRET, "change-me-secret"), {"changed": ["SECRET_KEY"]}, "still the example's value: SECRET_KEY"),
        (GOOD.replace(SECRET, "short-one"), {"min_length": {"SECRET_KEY": 32}}, "SECRET_KEY has 9 characters, fewer than 32"),
        ("LOG_LEVEL=INFO\n", {"changed": ["SECRET_KEY"]}, "absent: SECRET_KEY"),
    ],
    ids=["key-missing", "key-empty", "default-kept", "secret-short", "changed-key-absent"],
)
def test_a_env_that_misses_the_example_fails_naming_the_key_never_the_value(
    tmp_path: Path, env: str, fields: dict[str, object], problem: str
) -> None:
    evidence = env_check(tmp_path, env, **fields)
    assert not evidence.passed
    assert evidence.detail.endswith(problem)
    assert "change-me-secret" not in evidence.detail and "short-one" not in evidence.detail


def test_a_missing_example_fails(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(GOOD)
    check = EnvFileItemCheck(kind="env_file", path=str(tmp_path / ".env"), example="missing.example", complete=True)
    evidence = evaluate(SimpleNamespace(), check)  # type: ignore[arg-type]
    assert not evidence.passed
    assert evidence.detail == f"{tmp_path / 'missing.example'} not found"


def test_min_length_alone_needs_no_example(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(GOOD)
    check = EnvFileItemCheck(kind="env_file", path=str(tmp_path / ".env"), example=None, min_length={"SECRET_KEY": 32})
    evidence = evaluate(SimpleNamespace(), check)  # type: ignore[arg-type]
    assert evidence.passed, evidence.detail
    assert evidence.detail == f"{tmp_path / '.env'}: SECRET_KEY 40 characters (at least 32)"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "needs something to compare"),
        ({"example": None, "complete": True}, "complete and changed compare with the example"),
        ({"min_length": {"SECRET KEY": 3}}, "String should match pattern"),
    ],
)
def test_a_check_that_asks_nothing_or_names_a_bad_key_is_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EnvFileItemCheck.model_validate({"kind": "env_file", **fields})
