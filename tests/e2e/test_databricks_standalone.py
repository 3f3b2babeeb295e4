"""End to end under a real scheduler, worker and triggerer: seed 000's Ontos ML Workbench released by `airflow
standalone` (the LocalExecutor's task processes, not dag.test()) through the databricks provider's hooks and
triggers, against the Databricks stand-in.

The workspace is test_databricks_release.py's (its fixtures, run once for this module): the five Delta tables at
1.0.0 with rows, the app serving 1.0.0. The release's backup copies each table with `CREATE TABLE ... AS SELECT`;
the copy of qa_pairs is made to outlast the 30 s a statement request waits, so the backup step defers with the
provider's DatabricksSQLStatementExecutionTrigger and its next run follows the statements it had sent (the
journal the deferral carries) instead of sending them again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest
import test_databricks_release as dbx_release
from airflow_standalone import (
    Standalone,
    assert_promoted_after_one_deferred_try,
    fixture_at_module_scope,
    release_seen_deferred,
    standalone_for,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.e2e

SYSTEM = "ontos-ml-workbench"
CONNECTIONS = ("ROLLOUT_LEDGER", "SLACK_ONTOS", "ONTOS_DATABRICKS", "ONTOS_APP_TOKEN", "ONTOS_PUBLIC")
SLOW_COPY = "`qa_pairs_backup_"  # in the backup's copy of qa_pairs only: CREATE TABLE `ontos_ml_backups`.`workbench`.`qa_pairs_backup_...`
STATEMENT_TRIGGER = "airflow.providers.databricks.triggers.databricks.DatabricksSQLStatementExecutionTrigger"


@pytest.fixture(scope="module")
def workspace(postgres, slack, tmp_path_factory):
    """The stand-in workspace with seed 000 at 1.0.0, as test_databricks_release.py sets it up; connections in os.environ."""
    with fixture_at_module_scope(dbx_release.workspace, postgres, slack, tmp_path_factory.mktemp("dbx")) as server:
        dbx_release.ontos.__wrapped__(server)
        yield server


@pytest.fixture(scope="module")
def standalone(workspace, postgres, tmp_path_factory) -> Iterator[Standalone]:
    """`make up` over the profile alone, on a free port; stopped by `up stop`, every process of its session gone."""
    with standalone_for(SYSTEM, tmp_path_factory.mktemp("standalone"), CONNECTIONS, postgres) as airflow:
        yield airflow


def test_a_long_backup_statement_is_waited_for_by_the_triggerer_and_sent_once(standalone, workspace):
    """Ten minutes of workspace time for the copy of qa_pairs (30 s here at time scale 0.05): while it runs the backup
    task is `deferred` with the provider's statement trigger; then the same try resumes, follows what it had sent by
    statement id, and the release is promoted: each statement of the backup was sent once."""
    version = "1.1.0"
    sent_before = len(workspace.statements())
    workspace.set_time_scale(0.05)
    workspace.set_slow_statements({SLOW_COPY: 600})
    try:
        run_id, seen = release_seen_deferred(standalone, SYSTEM, version, "backup.backup_data", lambda: copying(workspace))
    finally:
        workspace.set_slow_statements({})
        workspace.set_time_scale(1.0)

    assert_promoted_after_one_deferred_try(standalone, run_id, seen, "backup.backup_data", STATEMENT_TRIGGER)
    copies = [s["statement"] for s in workspace.statements()[sent_before:] if s["statement"].startswith("CREATE TABLE `ontos_ml_backups`")]
    assert sorted(copies) == sorted(set(copies)) and len(copies) == len(dbx_release.ONTOS_TABLES), copies  # each sent once
    assert [s for s in copies if SLOW_COPY in s], copies


def copying(workspace: Any) -> bool:
    """Whether the slow copy of qa_pairs has been sent and is still running, as GET /api/2.0/sql/statements/{id} says."""
    return any(
        workspace.workspace.get_statement(s["statement_id"])["status"]["state"] == "RUNNING"
        for s in workspace.statements()
        if SLOW_COPY in s["statement"] and s.get("statement_id")
    )
