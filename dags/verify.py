"""
# verify

Check a deployed version, alone: health, smoke requests, latency probe, data fingerprint.

Runs the profile's HTTP checks (status, JSON fields such as the version served, JSON shape) and its
latency probes (N requests at concurrency C: p50, p95, p99, error rate), and fingerprints the data.
Every result is recorded in the ledger under the **release id**; a failed critical check turns its task red.

Pick the *system* and type the *version*; the tasks are the same ones the `release` DAG runs.
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_rollout.tasks import dag_settings, under_lock, verify_group

with DAG(
    dag_id="verify",
    doc_md=__doc__,
    schedule=None,  # triggered by an operator (the form) or another DAG
    description="Check a deployed version, alone: health, smoke requests, latency probe, data fingerprint.",
    **dag_settings(tags=["phase", "verify"], with_release_id=True),
):
    under_lock(verify_group().group)
