"""
# backup

Back up every data target of a system, alone.

Takes a `pg_dump` of each data target in the profile, reads the archive back with `pg_restore --list`,
and records its location, sha256 and a per-table fingerprint (row count and content checksum) in the ledger.

Give a **release id** to (re)take the backup of that release; leave it empty for an ad-hoc backup recorded
under this run's id. A backup already recorded for the release and still intact is not taken twice.

Pick the *system* and type the *version*; the tasks are the same ones the `release` DAG runs.
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_rollout.tasks import backup_group, dag_settings, under_lock

with DAG(
    dag_id="backup",
    doc_md=__doc__,
    schedule=None,  # triggered by an operator (the form) or another DAG
    description="Back up every data target of a system, alone.",
    **dag_settings(tags=["phase", "backup"], with_release_id=True),
):
    under_lock(backup_group().group)
