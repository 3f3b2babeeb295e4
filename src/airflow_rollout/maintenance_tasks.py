"""Airflow wiring of the maintenance DAGs: each check mapped over every configured system.

A system whose check fails turns its own map index red and leaves the others alone; every finding is
kept in the ledger under the run id, where the digest task, which runs whatever happened, reads it.

Every task takes its time from the run (`maintenance_run`), never from the wall clock: a retry, or the
same run cleared and run again, names, judges and records exactly what its first attempt did.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from airflow.sdk import TriggerRule, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from airflow_rollout.config import configured_systems

if TYPE_CHECKING:
    from airflow_rollout.context import SystemContext
    from airflow_rollout.maintenance import Finding, MaintenanceRun

log = logging.getLogger(__name__)
AIRFLOW_API_CONN_ID = "airflow_api"
AIRFLOW_SCOPE = "airflow"  # findings about Airflow itself, shown in every system's digest

# The checks of `airflow_rollout.maintenance` a task runs, by name (as tasks.PhaseAction, for the same reason).
MaintenanceAction = Literal[
    "scheduled_backup",
    "apply_retention",
    "check_backup_age",
    "check_running_version",
    "checklist_daily_items",
    "restore_drill",
    "vacuum",
    "trend",
    "checklist_weekly_items",
    "disaster_recovery_drill",
]


def maintenance_dag_settings(*, tags: list[str], params: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything but the schedule, which each DAG file states itself (ruff's AIR002)."""
    import pendulum

    from airflow_rollout.tasks import DEFAULT_ARGS

    return {
        "start_date": pendulum.datetime(2026, 1, 1, tz="UTC"),
        "catchup": False,
        "max_active_runs": 1,
        "max_active_tasks": 4,
        "default_args": DEFAULT_ARGS,
        "tags": ["rollout", "maintenance", *tags],
        "params": params or {},
    }


@task
def list_systems() -> list[str]:
    """Every profile in include/systems/: each gets its own mapped tasks."""
    return configured_systems()


def system_context(system: str) -> SystemContext:
    from airflow_rollout.config import load_profile
    from airflow_rollout.context import SystemContext
    from airflow_rollout.release.preflight import check_connections

    ctx = SystemContext(profile=load_profile(system), at=maintenance_run().at)
    check_connections(ctx.profile)
    ctx.ledger.ensure_schema()
    return ctx


def maintenance_run() -> MaintenanceRun:
    """This task's run: its id, and its time.

    The time is context.run_time's: the same in every attempt of every task of the run, where the wall clock would
    not be.
    """
    from airflow_rollout.context import run_time
    from airflow_rollout.maintenance import MaintenanceRun

    dag_run = get_current_context()["dag_run"]
    return MaintenanceRun(run_id=dag_run.run_id, at=run_time(dag_run))


def record(ctx: SystemContext, findings: list[Finding]) -> list[dict[str, Any]]:
    """Keep this task's findings for the system under the run, in place of those of its earlier attempts."""
    context = get_current_context()
    ctx.maintenance_store.record_findings(
        context["dag_run"].run_id, ctx.profile.name, context["ti"].task_id, [f.as_dict() for f in findings]
    )
    failed = [f for f in findings if not f.ok]
    if failed:
        raise AirflowFailException("; ".join(f"{f.check}: {f.detail}" for f in failed))
    return [f.as_dict() for f in findings]


def run_check(system: str, check: str, action_name: MaintenanceAction) -> list[dict[str, Any]]:
    """Run `airflow_rollout.maintenance.<action_name>` for one system; an exception becomes a failed finding."""
    from airflow_rollout import maintenance

    ctx = system_context(system)
    action = getattr(maintenance, action_name)
    try:
        findings = action(ctx, maintenance_run())
    except Exception as exc:  # noqa: BLE001 - recorded and re-raised below as a red task with the reason
        findings = [maintenance.Finding(system, check, False, ctx.redact(f"{type(exc).__name__}: {exc}"))]
    try:
        return record(ctx, findings)
    finally:
        ctx.ledger.close()  # the task's one ledger connection


def check_task(task_id: str, check: str, action_name: MaintenanceAction, **task_kwargs: Any) -> Any:
    """A task mapped over the systems, labelled with the system's name in the UI."""

    @task(task_id=task_id, map_index_template="{{ task.op_kwargs['system'] }}", **task_kwargs)
    def _check(system: str) -> list[dict[str, Any]]:
        return run_check(system, check, action_name)

    return _check


@task(trigger_rule=TriggerRule.ALL_DONE, map_index_template="{{ task.op_kwargs['system'] }}")
def drill_disaster_recovery(system: str) -> list[dict[str, Any]]:
    """Seed 004's quarterly disaster-recovery drill, or on demand with the `force_dr_drill` param."""
    from airflow_rollout.maintenance import Finding, dr_drill_due

    if get_current_context()["params"].get("force_dr_drill") or dr_drill_due(maintenance_run().at):
        return run_check(system, "disaster recovery drill", "disaster_recovery_drill")
    not_due = Finding(system, "disaster recovery drill", True, "not due (quarterly: the first week of Jan, Apr, Jul and Oct)")
    return record(system_context(system), [not_due])


@task(retries=1)
def review_airflow_runs() -> list[dict[str, Any]]:
    """The seeds' "check DAG execution status / review error logs": failed runs and tasks of the day before the run's time.

    Read through Airflow's REST API with the `airflow_api` connection (host, port, login, password);
    without it the digest says the review is not configured.
    """
    import httpx
    from airflow.sdk import BaseHook

    from airflow_rollout.maintenance import Finding

    try:
        conn = BaseHook.get_connection(AIRFLOW_API_CONN_ID)
    except Exception:  # noqa: BLE001 - not configured is a state to report, not an error
        return [Finding(AIRFLOW_SCOPE, "airflow runs", True, f"not reviewed: no `{AIRFLOW_API_CONN_ID}` connection").as_dict()]
    # A window that ends at the run's time: a retry reads the same one, and consecutive daily runs read each failure once.
    until = maintenance_run().at
    since, before = (until - timedelta(days=1)).isoformat(), until.isoformat()
    base = f"{conn.schema or 'http'}://{conn.host}:{conn.port or 8080}"
    with httpx.Client(base_url=base, timeout=30) as client:
        token = client.post("/auth/token", json={"username": conn.login, "password": conn.password})
        token.raise_for_status()
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        runs = client.get(
            "/api/v2/dags/~/dagRuns", params={"state": "failed", "run_after_gte": since, "run_after_lt": before, "limit": 100}
        ).json()
        tasks = client.get(
            "/api/v2/dags/~/dagRuns/~/taskInstances",
            params={"state": "failed", "start_date_gte": since, "start_date_lt": before, "limit": 100},
        ).json()
    failed_runs = [f"{r['dag_id']} {r['dag_run_id']}" for r in runs.get("dag_runs", [])]
    failed_tasks = [f"{t['dag_id']}.{t['task_id']}" for t in tasks.get("task_instances", [])]
    detail = f"{len(failed_runs)} failed DAG runs and {len(failed_tasks)} failed tasks in the last day" + (
        ": " + ", ".join(sorted(set(failed_tasks))[:10]) if failed_tasks else ""
    )
    # A rolled-back release ends red on purpose, so failures here are news to read, not a maintenance fault.
    return [Finding(AIRFLOW_SCOPE, "airflow runs", True, detail).as_dict()]


@task(trigger_rule=TriggerRule.ALL_DONE, map_index_template="{{ task.op_kwargs['system'] }}")
def send_digest(system: str, kind: str, airflow_findings: list[dict[str, Any]] | None = None) -> str:
    """One Slack message per system and run: a short one when all is well, every failure when not."""
    from airflow_rollout.maintenance import MANUAL_REMINDERS, Finding, digest
    from airflow_rollout.notify import AirflowRun, Event

    ctx = system_context(system)
    run = get_current_context()["dag_run"]
    ctx.notifier.run = AirflowRun(run.dag_id, run.run_id)  # the digest links to this run
    findings = [Finding(f.system, f.check, f.ok, f.detail) for f in ctx.maintenance_store.findings(run.run_id, [system])]
    findings += [Finding(**f) for f in airflow_findings or []]
    now = maintenance_run().at
    reminders = [f"reminder (monthly, a person): {item}" for item in MANUAL_REMINDERS["monthly"] if now.day <= 7 and kind == "weekly"]
    reminders += [
        f"reminder (quarterly, a person): {item}"
        for item in MANUAL_REMINDERS["quarterly"]
        if now.month % 3 == 1 and now.day <= 7 and kind == "weekly"
    ]
    all_well, headline, lines = digest(system, kind, findings, reminders)
    ctx.notifier.send(Event.MAINTENANCE_OK if all_well else Event.MAINTENANCE_FAILED, None, headline, lines)
    text = "\n".join([headline, *lines])
    log.info("digest:\n%s", text)
    return text
