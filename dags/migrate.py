"""
# migrate

Apply the pending migrations of a release, alone.

Applies, in order, every migration the *version* needs that the database has not recorded yet, each in
its own transaction together with its row in `rollout_schema_migrations`.

Refuses to run unless the **release id** has a verified backup (run `backup` with the same release id
first): a migration is never applied without a way back.

Pick the *system* and type the *version*; the tasks are the same ones the `release` DAG runs.
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_rollout.tasks import dag_settings, migrate_group, under_lock

with DAG(
    dag_id="migrate",
    doc_md=__doc__,
    schedule=None,  # triggered by an operator (the form) or another DAG
    description="Apply the pending migrations of a release, alone.",
    **dag_settings(tags=["phase", "migrate"], with_release_id=True),
):
    under_lock(migrate_group().group)
