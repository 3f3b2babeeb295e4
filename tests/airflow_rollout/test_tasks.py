"""Steps are named in the DAG wiring (parsing must not import the phases): every name must have its step."""

from __future__ import annotations

import inspect
import typing

import pytest

from airflow_rollout import maintenance
from airflow_rollout.maintenance_tasks import MaintenanceAction
from airflow_rollout.release.steps import STEPS
from airflow_rollout.tasks import PhaseAction


@pytest.mark.parametrize("name", typing.get_args(PhaseAction))
def test_every_phase_action_has_its_step_taking_the_release(name):
    action = STEPS.get(name)
    assert inspect.isfunction(action), f"airflow_rollout.release.steps.STEPS has no step {name}: a task would fail at run time"
    assert next(iter(inspect.signature(action).parameters)) == "ctx"


@pytest.mark.parametrize("name", typing.get_args(MaintenanceAction))
def test_every_maintenance_action_is_a_check_of_the_maintenance_module(name):
    action = getattr(maintenance, name, None)
    assert inspect.isfunction(action), f"airflow_rollout.maintenance has no function {name}"
    assert list(inspect.signature(action).parameters) == ["ctx", "run"]


@pytest.mark.parametrize(
    ("preflight", "backup", "reason"),
    [
        ("failed", None, "preflight failed"),
        (None, None, "preflight did not run"),
        ("succeeded", None, "the backup never ran: a step before it did not succeed"),
        ("succeeded", "failed", "the backup failed"),
    ],
)
def test_a_release_stopped_before_any_change_names_the_step_that_stopped_it(preflight, backup, reason):
    from airflow_rollout.tasks import stopped_before_backup

    assert stopped_before_backup(preflight, backup).startswith(reason)
