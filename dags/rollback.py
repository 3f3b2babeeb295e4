"""
# rollback

Roll back a release, alone: stop the new version, restore the data, start the previous version, check.

For the **release id** given, and a **reason** (required: it goes into the release record, the completed
checklist and Slack, with your name): takes the system's lock (refused, nothing changed, while another
release or another run of this one works on it), stops every app the release touched, restores every data
target from the backup taken at the start of that release (after checking its sha256) so that the data
fingerprint equals the one recorded then, starts the version that ran before it, and checks that it is
healthy. The order matters: most services refuse to start on a schema revision they do not know.

A rollback that fails keeps the system's lock, so that no release starts on top of it; `unlock` frees it,
with a reason, once a human has made the system safe.

Each step first looks at what is already true, so running it twice restores nothing twice.
Data written since that release's backup is replaced by the backup: the rollback of an old release is a
decision for a human.

Pick the *system* and type the *version*; the tasks are the same ones the `release` DAG runs.
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_rollout.tasks import complete_checklist, dag_settings, report_outcome, rollback_group, under_lock

with DAG(
    dag_id="rollback",
    doc_md=__doc__,
    schedule=None,  # triggered by an operator (the form) or another DAG
    description="Roll back a release, alone: stop the new version, restore the data, start the previous version, check.",
    **dag_settings(tags=["phase", "rollback"], with_release_id=True, with_reason=True),
):
    under_lock(rollback_group().group, complete_checklist(), report_outcome("rolled_back"))
