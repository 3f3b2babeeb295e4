"""
# maintenance_weekly

Every Sunday at 03:00 UTC, for **every configured system** (mapped, one system's trouble stops no other):

| task | does | red when |
|---|---|---|
| `drill_restore` | restores the newest backup into a scratch database, compares its fingerprint with the one recorded when it was taken, measures the restore time (RTO) and the backup's age (RPO), records both in the ledger (`rollout_drill`), drops the scratch database | the backup is damaged, the data differs, or the restore took longer than `rto_hours` |
| `vacuum_analyze` | `VACUUM (ANALYZE)` of every table of the data targets (seed 004's monthly database maintenance; weekly by default, `maintenance.vacuum` in the profile) | a statement fails |
| `check_weekly_items` | the automated weekly items of the system's checklist, e.g. seed 001's feature completeness, drift and job success SQL | an item fails |
| `drill_disaster_recovery` | seed 004's quarterly drill (first week of Jan, Apr, Jul, Oct, or when triggered with *force_dr_drill*): the newest backups restored into scratch databases, the running version started against them on a spare port, its critical checks run there; the live service is not touched | the copy does not come up or fails a check |
| `report_trends` | p50/p95 latency and error rate of every release as a PNG plot and a Markdown table, under `$ROLLOUT_STATE_DIR/reports/` | — |
| `send_digest` | one Slack message per system, with the drill's numbers, the report's location and, in the first week of a month or quarter, the seeds' items that need a person | — |
"""

from __future__ import annotations

from airflow.sdk import DAG, Param, TriggerRule

from airflow_rollout.maintenance_tasks import check_task, drill_disaster_recovery, list_systems, maintenance_dag_settings, send_digest

with DAG(
    dag_id="maintenance_weekly",
    doc_md=__doc__,
    schedule="0 3 * * 0",
    description="Restore drill with RTO/RPO, VACUUM (ANALYZE), release trend report; a Slack digest",
    **maintenance_dag_settings(
        tags=["weekly"],
        params={
            "force_dr_drill": Param(
                False, type="boolean", title="Run the disaster-recovery drill now", description="It runs by itself once a quarter."
            )
        },
    ),
):
    systems = list_systems()
    drill = check_task("drill_restore", "restore drill", "restore_drill").expand(system=systems)
    # After the drill, not at the same time as it, but whatever its outcome.
    vacuum = check_task("vacuum_analyze", "vacuum", "vacuum", trigger_rule=TriggerRule.ALL_DONE).expand(system=systems)
    trends = check_task("report_trends", "trend report", "trend").expand(system=systems)
    items = check_task("check_weekly_items", "checklist", "checklist_weekly_items", trigger_rule=TriggerRule.ALL_DONE).expand(
        system=systems
    )
    drill >> vacuum >> items
    disaster_recovery = drill_disaster_recovery.expand(system=systems)
    drill >> disaster_recovery
    [items, trends, disaster_recovery] >> send_digest.partial(kind="weekly").expand(system=systems)
