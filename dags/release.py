"""
# release

Ship one version of one system, end to end, and either **promote** it or **roll back app and data**.

Trigger it with the form: pick the *system* (a profile in `include/systems/`) and type the *version*.

The grid shows one row per phase, in the order they run; expand a phase for its steps and its checklist items.

| phase | what happens | if it fails |
|---|---|---|
| `preflight` | profile and connections checked, data targets reachable, the system's release lock taken, the running version recorded | nothing was changed; the run stops |
| `sign_off` | the pre-deploy part of the system's checklist (`include/checklists/<system>.yaml`): its automated items run (`list_pre_deploy_items`, then `check_pre_deploy_items`, one mapped task per item); then, only when the checklist has required manual items, each role is asked in **Browse > Required Actions** to *Approve* (`sign_off`, one per role) | a failed *blocking* item, *Reject* or no answer stops the run; nothing was changed |
| `backup` | `pg_dump` of every data target, the archive read back by `pg_restore --list`, sha256 and a per-table fingerprint recorded | nothing was changed; the run stops |
| `migrate` | pending migrations applied, one transaction each, recorded | `decide` rolls back: data restored from the backup |
| `deploy` | previous version recorded, new version started, readiness awaited | `decide` rolls back: previous version restarted, data restored |
| `verify` | health and smoke checks, latency probe (p50/p95/p99, error rate), fingerprint of the data | the numbers go to `decide` |
| `decide` | the profile's rollback criteria (seed 003 by default) applied to what was measured, then one branch: `proceed`, `roll_back`, or `ask_operator` (only for *investigate*: **Browse > Required Actions** asks you to *Proceed* or *Roll back*; no answer in time rolls back) | — |
| `post_deploy` / `rollback` | promote and keep the numbers as the new baseline, or: stop the new version, restore the data, start the previous version, check it is healthy | a failed rollback alerts Slack loudly and keeps the lock |
| `complete_checklist` | the checklist ticked: the evidence of each item, who signed off and when, the deployment log and the performance baselines (its XCom and log in the UI, and `.state/checklists/<system>/<run id>.md`) | — |
| `report_outcome` | green only when the release was promoted; when it was rolled back it is red and says why | — |
| `hand_back_lock` | the system's lock, taken by `preflight`, is freed — or kept by the release when it changed the system and did not finish (a failed rollback): no release starts on top of it until the `unlock` DAG is run with a reason | — |

Inside `backup`, `migrate`, `deploy`, `verify` and `post_deploy`, after the phase's steps, its automated checklist items
run (`list_<phase>_items`, then `check_<phase>_items`, labelled per item): beside the sequence, so a phase without items
holds nothing up; a failed *blocking* item there rolls the release back.

Every step, number and reason is in the release ledger (`rollout_release` and related tables), keyed by
the run id, and Slack hears each turn.
"""

from __future__ import annotations

from airflow.sdk import DAG

from airflow_rollout.tasks import (
    backup_group,
    complete_checklist,
    dag_settings,
    decision_group,
    deploy_group,
    hand_back_lock,
    in_sequence,
    migrate_group,
    post_deploy_group,
    preflight,
    report_outcome,
    rollback_group,
    sign_off_group,
    verify_group,
)

with DAG(
    dag_id="release",
    doc_md=__doc__,
    schedule=None,  # triggered by an operator (the form) or another DAG
    description="Backup, migrate, deploy, verify, decide; then promote or roll back app and data",
    **dag_settings(tags=["release"], with_release_id=False),
):
    # One group per phase, in the grid's order; each holds its phase's checklist items.
    lock = preflight()
    signed = sign_off_group()
    phases = [backup_group(checklist=True), migrate_group(checklist=True), deploy_group(checklist=True), verify_group(checklist=True)]
    decision = decision_group()
    post_deploy = post_deploy_group(checklist=True)
    rollback = rollback_group(after_decision=True)
    completed = complete_checklist()
    in_sequence(lock, signed, *phases) >> decision.group
    for phase in phases:
        # Beside the sequence, not in it: a phase without items must not skip the phases after it.
        phase.items >> decision.group
    [decision.proceed, decision.ask_operator] >> post_deploy.group
    [decision.roll_back, decision.ask_operator] >> rollback.group
    [post_deploy.items, rollback.last] >> completed
    completed >> report_outcome() >> hand_back_lock()
