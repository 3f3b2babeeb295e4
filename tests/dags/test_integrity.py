"""DAG integrity: every DAG imports, carries what an operator needs, and parses without I/O."""

from __future__ import annotations

import copy
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from airflow_rollout.config import configured_systems

ROOT = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((ROOT / "dags").glob("*.py"))
PHASES = ["backup", "migrate", "deploy", "verify", "post_deploy", "rollback"]


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_every_dag_file_imports_cleanly(dagbag):
    assert dagbag.import_errors == {}
    assert sorted(dagbag.dag_ids) == sorted(p.stem for p in DAG_FILES)


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.stem)
def test_dag_carries_what_an_operator_needs(dagbag, dag_file):
    dag = dagbag.dags[dag_file.stem]
    assert dag.dag_id == dag_file.stem
    assert "rollout" in dag.tags and len(dag.tags) >= 2
    assert dag.default_args["owner"] not in {"", "airflow"}
    assert dag.default_args["retries"] >= 1
    assert dag.doc_md and dag.doc_md.lstrip().startswith(f"# {dag.dag_id}")
    assert dag.catchup is False
    if dag.dag_id.startswith("maintenance_"):
        assert dag.schedule is not None  # scheduled: nobody triggers it
        assert dag.max_active_runs == 1
    elif dag.dag_id == "unlock":
        assert set(dag.params) == {"system", "reason"}
        assert "default" not in dag.params.get_param("reason").serialize()  # a reason must be typed
    else:
        assert dag.schedule is None  # triggered by an operator, with the form
        assert set(dag.params) >= {"system", "version"}
    for task in dag.tasks:
        assert task.owner == dag.default_args["owner"]


@pytest.mark.parametrize("phase", PHASES)
def test_release_runs_the_same_tasks_as_each_phase_dag(dagbag, phase):
    release_tasks = set(dagbag.dags["release"].task_ids)
    # Alone, a phase takes the system's lock first; in a release, preflight has taken it.
    assert set(dagbag.dags[phase].task_ids) <= release_tasks | {"take_lock"}
    assert dagbag.dags[phase].get_task("hand_back_lock").is_teardown


def test_release_graph_branches_on_the_decision(dagbag):
    dag = dagbag.dags["release"]
    decide = dag.get_task("decide.decide")
    assert decide.trigger_rule == "all_done"  # runs after a failed phase, so that it can roll back
    assert decide.downstream_task_ids == {"decide.proceed", "decide.roll_back", "decide.ask_operator"}
    assert dag.get_task("decide.ask_operator").downstream_task_ids == {"post_deploy.promote", "rollback.stop_apps"}
    assert dag.get_task("post_deploy.promote").upstream_task_ids == {"decide.proceed", "decide.ask_operator"}
    assert dag.get_task("rollback.stop_apps").upstream_task_ids == {"decide.roll_back", "decide.ask_operator"}
    # A question to a human that fails rolls back (its default); promotion needs an answer. The rollback DAG's
    # rollback waits for its lock instead: a failure before it stops it.
    assert dag.get_task("rollback.stop_apps").trigger_rule == "one_done"
    assert dag.get_task("post_deploy.promote").trigger_rule == "none_failed_min_one_success"
    assert dagbag.dags["rollback"].get_task("rollback.stop_apps").trigger_rule == "none_failed_min_one_success"
    order = [
        "preflight",
        "sign_off.list_pre_deploy_items",
        "sign_off.check_pre_deploy_items",
        "sign_off.list_sign_off_roles",
        "sign_off.sign_off",
        "backup.backup_data",
        "migrate.migrate_data",
        "deploy.deploy_apps",
        "verify.check_endpoints",
    ]
    for upstream, downstream in itertools.pairwise(order):
        assert downstream in dag.get_task(upstream).downstream_task_ids
    # Most services refuse to start on a schema revision they do not know: stop, restore, then start.
    rollback = ["stop_apps", "restore_data", "start_previous", "verify_restored", "finish_rollback"]
    for upstream, downstream in itertools.pairwise(rollback):
        assert dag.get_task(f"rollback.{upstream}").downstream_task_ids == {f"rollback.{downstream}"}
    # The checklist of every other phase runs beside the chain and feeds the decision; it never gates a phase.
    for phase in ("backup", "migrate", "deploy", "verify"):
        assert dag.get_task(f"{phase}.check_{phase}_items").downstream_task_ids == {"decide.decide"}
    assert dag.get_task("complete_checklist").upstream_task_ids == {"post_deploy.check_post_deploy_items", "rollback.finish_rollback"}
    assert dag.get_task("report_outcome").upstream_task_ids == {"complete_checklist"}
    # The lock preflight took is handed back whatever happened, without changing the run's colour.
    hand_back = dag.get_task("hand_back_lock")
    assert hand_back.is_teardown and hand_back.upstream_task_ids == {"report_outcome"}


def grid_rows(dag) -> list[tuple[str, list[str]]]:
    """The release grid as the UI shows it: each top-level row with the rows it expands to, in the order the API
    server serves them (the grid view's own code, over the DAG serialized as the scheduler stores it)."""
    from airflow.api_fastapi.core_api.services.ui.task_group import get_task_group_children_getter, task_group_to_dict_grid
    from airflow.serialization.serialized_objects import DagSerialization

    serialized = DagSerialization.from_dict(DagSerialization.to_dict(dag))
    groups = serialized.task_group.get_task_group_dict()
    nodes = [task_group_to_dict_grid(node, group_dict=groups) for node in get_task_group_children_getter()(serialized.task_group, groups)]
    return [(node["id"], [child["id"] for child in node.get("children") or []]) for node in nodes]


def test_release_grid_reads_as_its_phases(dagbag):
    """An operator sees the phases in the order they run, and expands one for its steps and checklist items."""
    rows = dict(grid_rows(dagbag.dags["release"]))
    assert list(rows) == [
        "preflight",
        "sign_off",
        "backup",
        "migrate",
        "deploy",
        "verify",
        "decide",
        "post_deploy",
        "rollback",
        "complete_checklist",
        "report_outcome",
        "hand_back_lock",
    ]
    assert rows["sign_off"] == [
        "sign_off.list_pre_deploy_items",
        "sign_off.check_pre_deploy_items",
        "sign_off.list_sign_off_roles",
        "sign_off.sign_off",
    ]
    for phase, steps in {
        "backup": ["backup_data"],
        "migrate": ["migrate_data"],
        "deploy": ["deploy_apps"],
        "verify": ["check_endpoints", "probe_latency", "fingerprint_data"],
        "post_deploy": ["promote"],
    }.items():
        assert rows[phase] == [f"{phase}.{step}" for step in steps] + [f"{phase}.list_{phase}_items", f"{phase}.check_{phase}_items"]
    assert rows["decide"] == ["decide.decide", "decide.proceed", "decide.roll_back", "decide.ask_operator"]
    rollback = ["stop_apps", "restore_data", "start_previous", "verify_restored", "finish_rollback"]
    assert rows["rollback"] == [f"rollback.{step}" for step in rollback]
    # Every task of the release is in one of these rows: none is left loose at the top level.
    assert {task for phase, children in rows.items() for task in children or [phase]} == set(dagbag.dags["release"].task_ids)
    # The DAG's documentation (its Docs tab) walks the same rows, in the same order.
    documented = [
        name.strip(" `")
        for line in dagbag.dags["release"].doc_md.splitlines()
        if line.startswith("| `")
        for name in line.split("|")[1].split(" / ")
    ]
    assert documented == list(rows)


def test_params_refuse_unknown_systems_and_malformed_versions(dagbag):
    from airflow.sdk.exceptions import ParamValidationError

    params = dagbag.dags["release"].params
    assert params.get_param("system").schema["enum"] == configured_systems()
    assert "demo" in configured_systems()
    for conf in ({"system": "other", "version": "1.0.0"}, {"system": "demo", "version": "1.0.0 && reboot"}):
        candidate = copy.deepcopy(params)
        with pytest.raises(ParamValidationError):
            candidate.update(conf)
            candidate.validate()
    accepted = copy.deepcopy(params)
    accepted.update({"system": "demo", "version": "v1.0-p2"})
    assert accepted.validate() == {"system": "demo", "version": "v1.0-p2"}


PARSE_WITHOUT_IO = """
import json, socket, sys, time

def refuse(*args, **kwargs):
    raise AssertionError("network I/O while parsing a DAG file")

socket.socket.connect = refuse
socket.create_connection = refuse
from airflow.dag_processing.dagbag import DagBag
timings = {}
for path in sys.argv[1:]:
    began = time.perf_counter()
    bag = DagBag(dag_folder=path)
    timings[path] = time.perf_counter() - began
    assert not bag.import_errors, bag.import_errors
HEAVY = ("psycopg", "airflow_rollout.release", "airflow_rollout.targets.postgres", "kubernetes", "databricks.sql")
heavy = sorted(m for m in HEAVY if m in sys.modules)
print(json.dumps({"heavy": heavy, "timings": timings}))
"""


def test_parsing_does_no_network_or_database_io(tmp_path):
    env = {
        **os.environ,
        # A metadata database that cannot exist: any attempt to use it while parsing fails loudly.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{tmp_path}/missing-dir/never.db",
        "AIRFLOW_HOME": str(tmp_path),
        "PYTHONPATH": "",  # the DAG files need only the installed package
    }
    result = subprocess.run(
        [sys.executable, "-c", PARSE_WITHOUT_IO, *map(str, DAG_FILES)], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["heavy"] == [], f"DAG parsing imported heavy modules: {report['heavy']}"
    assert not (tmp_path / "missing-dir").exists()
