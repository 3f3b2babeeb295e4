"""A failed tool's error leads with what failed and the line that says why; its whole output goes to the task log."""

from __future__ import annotations

import logging
import textwrap

import pytest

from airflow_rollout.targets.compose import ComposeError, ComposeServiceApp, ComposeServiceTarget
from airflow_rollout.targets.postgres import _run
from airflow_rollout.targets.registry import TargetEnvironment
from airflow_rollout.tool_output import MAX_ERROR_LINE, error_line, shown_command

PYTHON_TRACEBACK = """\
INFO  [alembic.runtime.migration] Context impl PostgresqlImpl.
INFO  [alembic.runtime.migration] Running upgrade 1a2b -> 3c4d, add priority
Traceback (most recent call last):
  File "/app/.venv/bin/alembic", line 8, in <module>
    sys.exit(main())
  File "/app/.venv/lib/python3.11/site-packages/sqlalchemy/engine/default.py", line 941, in do_execute
    cursor.execute(statement, parameters)
psycopg.errors.DuplicateColumn: column "priority" of relation "items" already exists

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "/app/.venv/bin/alembic", line 8, in <module>
    raise ProgrammingError(...)
sqlalchemy.exc.ProgrammingError: (psycopg.errors.DuplicateColumn) column "priority" of relation "items" already exists
[SQL: ALTER TABLE items ADD COLUMN priority INTEGER]
(Background on this error at: https://sqlalche.me/e/20/f405)
"""


@pytest.mark.parametrize(
    ("output", "line"),
    [
        (
            PYTHON_TRACEBACK,
            'sqlalchemy.exc.ProgrammingError: (psycopg.errors.DuplicateColumn) column "priority" of relation "items" already exists',
        ),
        ('Traceback (most recent call last):\n  File "x", line 1\nKeyboardInterrupt\n', "KeyboardInterrupt"),
        (
            'psql:<stdin>:12: ERROR:  relation "t" does not exist\nLINE 1: ALTER TABLE t ADD x int;\n                    ^\n',
            'psql:<stdin>:12: ERROR:  relation "t" does not exist',
        ),
        (
            "pg_dump: error: could not write to output file: No space left on device\n",
            "pg_dump: error: could not write to output file: No space left on device",
        ),
        (
            "ERROR [alembic.util.messaging] Can't locate revision\n  FAILED: Can't locate revision identified by 'ab12'\n",
            "FAILED: Can't locate revision identified by 'ab12'",
        ),
        (
            "pulling backend\nError response from daemon: manifest for repo/backend:9.9.9 not found\n",
            "Error response from daemon: manifest for repo/backend:9.9.9 not found",
        ),
        ("step 1 done\nstep 2 went wrong somehow\n\n", "step 2 went wrong somehow"),
        ("", "(no output)"),
        ("  \n\n", "(no output)"),
    ],
)
def test_error_line_picks_what_says_why(output: str, line: str) -> None:
    assert error_line(output) == line


def test_error_line_is_cut_to_its_limit() -> None:
    line = error_line("RuntimeError: " + "x" * 1000)
    assert len(line) == MAX_ERROR_LINE and line.startswith("RuntimeError: xxx") and line.endswith("…")


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (["alembic", "upgrade", "head"], "alembic upgrade head"),
        (["{python}", "{include}/migrate.py", "--to={version}"], "{python} {include}/migrate.py --to={version}"),
        (["sh", "-c", 'exec tool db upgrade "$DATABASE_URL"', "migrate"], "sh -c 'exec tool db upgrade \"$DATABASE_URL\"' migrate"),
        (["echo", ""], "echo ''"),
    ],
)
def test_shown_command(args: list[str], shown: str) -> None:
    assert shown_command(args) == shown


def test_a_postgres_client_error_leads_with_its_error_line(caplog: pytest.LogCaptureFixture) -> None:
    script = "echo 'psql:<stdin>:12: ERROR:  relation \"t\" does not exist' >&2; echo 'LINE 1: ALTER TABLE t' >&2; exit 3"
    with caplog.at_level(logging.ERROR), pytest.raises(RuntimeError) as caught:
        _run(["sh", "-c", script], env={}, what="psql restore")
    assert str(caught.value) == 'psql restore exited with 3: psql:<stdin>:12: ERROR:  relation "t" does not exist'
    assert "LINE 1: ALTER TABLE t" in caplog.text


def test_a_compose_error_leads_with_the_daemon_s_words(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    docker = tmp_path / "docker"
    docker.write_text(
        textwrap.dedent(
            """\
            #!/bin/sh
            i=0
            while [ $i -lt 100 ]; do
                echo 'time="2026-01-01T00:00:00Z" level=warning msg="/srv/compose.yml: the attribute `version` is obsolete"' >&2
                i=$((i + 1))
            done
            echo 'Error response from daemon: manifest for registry.example.com/backend:9.9.9 not found' >&2
            exit 18
            """
        )
    )
    docker.chmod(0o755)
    config = ComposeServiceTarget.model_validate(
        {
            "kind": "compose",
            "name": "backend",
            "compose_file": str(tmp_path / "compose.yml"),
            "project": "unit",
            "service": "backend",
            "tag_variable": "BACKEND_TAG",
            "url": "http://127.0.0.1:9",
            "docker": [str(docker)],
        }
    )
    with caplog.at_level(logging.ERROR), pytest.raises(ComposeError) as caught:
        ComposeServiceApp(config=config, environment=TargetEnvironment(system="unit", state_dir=tmp_path)).service_state()
    assert str(caught.value) == (
        f"{docker} compose ps -a --format json backend exited with 18: "
        "Error response from daemon: manifest for registry.example.com/backend:9.9.9 not found"
    )
    assert caplog.text.count("level=warning") == 100
