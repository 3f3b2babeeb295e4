"""
# maintenance_daily

Every night at 02:00 UTC (seed 003's backup cron), for **every configured system**, each as its own
mapped task so that one system's trouble does not stop the others:

| task | does | red when |
|---|---|---|
| `back_up` | the release's backup code on a schedule: `pg_dump`, read back, sha256 and fingerprint recorded | the dump fails |
| `apply_retention` | deletes scheduled backups older than the profile's `retention_days` (default 30); never the newest intact one, never one a release record points to | no intact backup is left |
| `check_backup_age` | the newest intact backup against the profile's RPO (`rpo_hours`) | it is older than the RPO |
| `check_running_version` | the critical health checks against the version that should be running | a check fails |
| `check_daily_items` | the automated daily items of the system's checklist (`include/checklists/<system>.yaml`) | an item fails |
| `review_airflow_runs` | failed DAG runs and tasks of the last day, through Airflow's REST API (`airflow_api` connection) | the API cannot be read |
| `send_digest` | one Slack message per system: one line when all is well, every failure spelled out when not | — |

Every finding is kept in the ledger (`rollout_maintenance_finding`) under this run's id.
"""

from __future__ import annotations

from airflow.sdk import DAG, TriggerRule

from airflow_rollout.maintenance_tasks import check_task, list_systems, maintenance_dag_settings, review_airflow_runs, send_digest

with DAG(
    dag_id="maintenance_daily",
    doc_md=__doc__,
    schedule="0 2 * * *",
    description="Nightly backup, retention, backup age against the RPO, health, failed runs; a Slack digest",
    **maintenance_dag_settings(tags=["daily"]),
):
    systems = list_systems()
    backups = check_task("back_up", "backup", "scheduled_backup").expand(system=systems)
    # Retention and the age check run after the backup, whether or not it worked: they say what is left.
    retention = check_task("apply_retention", "retention", "apply_retention", trigger_rule=TriggerRule.ALL_DONE).expand(system=systems)
    age = check_task("check_backup_age", "backup age", "check_backup_age", trigger_rule=TriggerRule.ALL_DONE).expand(system=systems)
    health = check_task("check_running_version", "health", "check_running_version").expand(system=systems)
    items = check_task("check_daily_items", "checklist", "checklist_daily_items", trigger_rule=TriggerRule.ALL_DONE).expand(system=systems)
    airflow_runs = review_airflow_runs()
    backups >> retention >> age >> items
    digest = send_digest.partial(kind="daily", airflow_findings=airflow_runs).expand(system=systems)
    [items, health] >> digest
