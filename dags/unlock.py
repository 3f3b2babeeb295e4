"""
# unlock

Free a system's lock when it is stuck, **giving a reason**.

Every run that changes a system holds its lock; a failed rollback keeps it on purpose, so that no release
starts on top of a half-rolled-back system. Once a human has looked (the release record and Slack say what
state the system was left in) and made it safe, this DAG frees the lock.

Pick the *system* and write the *reason* (required). Who triggered it and why go into the ledger
(`rollout_unlock`), into the record of the release that held the lock, and into Slack. The release keeps its
status (`failed` stays `failed`); only the lock is freed. Nothing else is changed.
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_rollout.tasks import dag_settings, reason_param, system_param, unlock

settings = dag_settings(tags=["lock"], with_release_id=False)
settings["params"] = {"system": system_param(), "reason": reason_param("Why it is safe to free the lock: kept with your name.")}

with DAG(
    dag_id="unlock",
    doc_md=__doc__,
    schedule=None,  # triggered by an operator (the form) or another DAG
    description="Free a stuck lock of a system, with a reason kept in the ledger and said in Slack.",
    **settings,
):
    unlock()
