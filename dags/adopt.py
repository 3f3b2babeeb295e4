"""
# adopt

Take over a system that **already runs**, outside this package, before its first release: nothing is
deployed, migrated or restarted.

Pick the *system* and type the *version* running now.

| task | what happens | if it fails |
|---|---|---|
| `take_over` | the system's lock is taken; a `local_process` app is found by its port (the process listening there and its process group) and recorded as that version; other kinds are read from their platform and must run the version typed | nothing was changed; the lock is freed |
| `check_running` | the profile's health, smoke and latency checks, at the version typed | a critical check failing means the version typed is not what runs: nothing is recorded as adopted |
| `backup_data` | the first verified backup of every data target (`pg_dump`, read back, sha256, per-table fingerprint) | nothing was changed; the lock is freed |
| `record_adopted` | the version is recorded as **promoted**, its latency numbers as the baseline; the lock is freed; Slack hears it | — |

After it, the next `release` records this version as the one to roll back to, and a rollback starts it with
the profile's command (an adopted process is stopped with its whole process group, like one this package
started).
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_rollout.tasks import adopt_tasks, dag_settings

with DAG(
    dag_id="adopt",
    doc_md=__doc__,
    schedule=None,  # triggered by an operator (the form) or another DAG
    description="Take over a system already running: check it, back it up, record it as the baseline; nothing is changed.",
    **dag_settings(tags=["adopt"], with_release_id=False),
):
    adopt_tasks()
