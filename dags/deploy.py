"""
# deploy

Switch the app targets of a system to a version, alone.

Records the version running now (the rollback target) in the ledger, stops it, starts *version*
and waits until its readiness path answers. Running it again on a release that already switched does
nothing more than check readiness.

Pick the *system* and type the *version*; the tasks are the same ones the `release` DAG runs.
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_rollout.tasks import dag_settings, deploy_group, under_lock

with DAG(
    dag_id="deploy",
    doc_md=__doc__,
    schedule=None,  # triggered by an operator (the form) or another DAG
    description="Switch the app targets of a system to a version, alone.",
    **dag_settings(tags=["phase", "deploy"], with_release_id=True),
):
    under_lock(deploy_group().group)
