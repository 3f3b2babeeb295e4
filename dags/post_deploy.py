"""
# post_deploy

Promote a release, alone: mark it promoted and keep its numbers as the baseline.

Marks the **release id** promoted, frees the system's release lock, and keeps the release's latency
numbers as the baseline the next release is compared with. Slack hears the promotion.

Pick the *system* and type the *version*; the tasks are the same ones the `release` DAG runs.
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_rollout.tasks import dag_settings, post_deploy_group, under_lock

with DAG(
    dag_id="post_deploy",
    doc_md=__doc__,
    schedule=None,  # triggered by an operator (the form) or another DAG
    description="Promote a release, alone: mark it promoted and keep its numbers as the baseline.",
    **dag_settings(tags=["phase", "post_deploy"], with_release_id=True),
):
    under_lock(post_deploy_group().group)
