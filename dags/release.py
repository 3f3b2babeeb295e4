"""
# release

Ship one version of one system, end to end, and either **promote** it or **roll back app and data**.

Trigger it with the form: pick the *system* (a profile in `include/systems/`) and type the *version*.

| phase | what happens | if it fails |
|---|---|---|
| `preflight` | profile and connections checked, data targets reachable, the system's release lock taken, the running version recorded | nothing was changed; the run stops |
| `backup` | `pg_dump` of every data target, the archive read back by `pg_restore --list`, sha256 and a per-table fingerprint recorded | nothing was changed; the run stops |
| `migrate` | pending migrations applied, one transaction each, recorded | `decide` rolls back: data restored from the backup |
| `deploy` | previous version recorded, new version started, readiness awaited | `decide` rolls back: previous version restarted, data restored |
| `verify` | health and smoke checks, latency probe (p50/p95/p99, error rate), fingerprint of the data | the numbers go to `decide` |
| `decide` | the profile's rollback criteria (seed 003 by default) applied to what was measured | — |
| `ask_operator` | only for *investigate*: **Browse > Required Actions** asks you to *Proceed* or *Roll back*; no answer in time rolls back | — |
| `post_deploy` / `rollback` | promote and keep the numbers as the new baseline, or: previous app version, then data, then check the old version is healthy | a failed rollback alerts Slack loudly and keeps the lock |

`report_outcome` is green only when the release was promoted; when it was rolled back it is red and says why.
Every step, number and reason is in the release ledger (`rollout_release` and related tables), keyed by
the run id, and Slack hears each turn.
"""

from __future__ import annotations

from airflow.sdk import DAG, chain

from rollout.tasks import (
    backup_group,
    dag_settings,
    decide,
    decision_branches,
    deploy_group,
    migrate_group,
    post_deploy_group,
    preflight,
    report_outcome,
    rollback_group,
    verify_group,
)

with DAG(
    dag_id="release",
    doc_md=__doc__,
    description="Backup, migrate, deploy, verify, decide; then promote or roll back app and data",
    **dag_settings(tags=["release"], with_release_id=False),
):
    decision = decide()
    proceed, roll_back, ask_operator = decision_branches()
    post_deploy = post_deploy_group()
    rollback = rollback_group()
    chain(preflight(), backup_group(), migrate_group(), deploy_group(), verify_group(), decision)
    decision >> [proceed, roll_back, ask_operator]
    [proceed, ask_operator] >> post_deploy
    [roll_back, ask_operator] >> rollback
    [post_deploy, rollback] >> report_outcome()
