"""
# rollback

Roll back a release, alone: previous app version, then data, then check.

For the **release id** given: restarts the version that ran before it, restores every data target
from the backup taken at the start of that release (after checking its sha256) so that the data
fingerprint equals the one recorded then, and checks that the previous version is healthy.

Each step first looks at what is already true, so running it twice restores nothing twice.
Data written since that release's backup is replaced by the backup: the rollback of an old release is a
decision for a human.

Pick the *system* and type the *version*; the tasks are the same ones the `release` DAG runs.
"""

from __future__ import annotations

from airflow.sdk import DAG

from rollout.tasks import dag_settings, rollback_group

with DAG(
    dag_id="rollback",
    doc_md=__doc__,
    description="Roll back a release, alone: previous app version, then data, then check.",
    **dag_settings(tags=["phase", "rollback"], with_release_id=True),
):
    rollback_group()
