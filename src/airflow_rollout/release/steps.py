"""The step each task runs, by the name the DAG wiring gives it: importing this imports every phase.

The DAG wiring names a step by its `PhaseAction` and the task looks it up in `STEPS` when it runs, never at parse
time. mypy checks each key against `PhaseAction`, and tests/airflow_rollout/test_tasks.py checks that every action
has its step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_rollout.release import adopt, backup, deploy, migrate, post_deploy, preflight, rollback, verify

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_rollout.context import ReleaseContext
    from airflow_rollout.tasks import PhaseAction

# The step each task runs, by the name the DAG wiring gives it.
STEPS: dict[PhaseAction, Callable[[ReleaseContext], Any]] = {
    "preflight": preflight.preflight,
    "take_lock": preflight.take_lock,
    "hand_back_lock": preflight.hand_back_lock,
    "backup": backup.backup,
    "migrate": migrate.migrate,
    "deploy": deploy.deploy,
    "check_endpoints": verify.check_endpoints,
    "probe_latency": verify.probe_latency,
    "fingerprint_after_verify": verify.fingerprint_after_verify,
    "promote": post_deploy.promote,
    "stop_apps": rollback.stop_apps,
    "restore_data": rollback.restore_data,
    "start_previous": rollback.start_previous,
    "verify_restored": rollback.verify_restored,
    "finish_rollback": rollback.finish_rollback,
    "take_over": adopt.take_over,
    "check_running": adopt.check_running,
    "record_adopted": adopt.record_adopted,
}

# What a phase's last failed attempt does besides the usual Slack message: a failed rollback is an alarm, a failed
# adoption frees the lock it took.
FINAL_FAILURE_HANDLERS: dict[str, Callable[[ReleaseContext, str], None]] = {
    "rollback": rollback.rollback_failed,
    "adopt": adopt.adoption_failed,
}
