"""
# release

Ship one version of one system, end to end, and either **promote** it or **roll back app and data**.

Trigger it with the form: pick the *system* (a profile in `include/systems/`) and type the *version*.

| phase | what happens | if it fails |
|---|---|---|
| `preflight` | profile and connections checked, data targets reachable, the system's release lock taken, the running version recorded | nothing was changed; the run stops |
| `list_pre_deploy_items`, `check_pre_deploy_items` | the system's checklist (`include/checklists/<system>.yaml`): its automated pre-deploy items run, one mapped task per item | a failed *blocking* item stops the run; nothing was changed |
| `sign_off` | only when the checklist has required manual items: each role is asked in **Browse > Required Actions** to *Approve* | *Reject* or no answer stops the run; nothing was changed |
| `backup` | `pg_dump` of every data target, the archive read back by `pg_restore --list`, sha256 and a per-table fingerprint recorded | nothing was changed; the run stops |
| `migrate` | pending migrations applied, one transaction each, recorded | `decide` rolls back: data restored from the backup |
| `deploy` | previous version recorded, new version started, readiness awaited | `decide` rolls back: previous version restarted, data restored |
| `verify` | health and smoke checks, latency probe (p50/p95/p99, error rate), fingerprint of the data | the numbers go to `decide` |
| `decide` | the profile's rollback criteria (seed 003 by default) applied to what was measured | — |
| `ask_operator` | only for *investigate*: **Browse > Required Actions** asks you to *Proceed* or *Roll back*; no answer in time rolls back | — |
| `post_deploy` / `rollback` | promote and keep the numbers as the new baseline, or: stop the new version, restore the data, start the previous version, check it is healthy | a failed rollback alerts Slack loudly and keeps the lock |
| `hand_back_lock` | the system's lock, taken by `preflight`, is freed — or kept by the release when it changed the system and did not finish (a failed rollback): no release starts on top of it until the `unlock` DAG is run with a reason | — |

Each phase's automated checklist items run beside it (`check_<phase>_items`, labelled per item); a failed
*blocking* item there rolls the release back. `complete_checklist` ends every run with the checklist ticked:
the evidence of each item, who signed off and when, the deployment log and the performance baselines (its
XCom and log in the UI, and `.state/checklists/<system>/<run id>.md`).

`report_outcome` is green only when the release was promoted; when it was rolled back it is red and says why.
Every step, number and reason is in the release ledger (`rollout_release` and related tables), keyed by
the run id, and Slack hears each turn.
"""

from __future__ import annotations

from airflow.sdk import DAG, chain

from airflow_rollout.tasks import (
    backup_group,
    check_items,
    complete_checklist,
    dag_settings,
    decide,
    decision_branches,
    deploy_group,
    hand_back_lock,
    migrate_group,
    post_deploy_group,
    preflight,
    report_outcome,
    rollback_group,
    sign_off,
    verify_group,
)

with DAG(
    dag_id="release",
    doc_md=__doc__,
    schedule=None,  # triggered by an operator (the form) or another DAG
    description="Backup, migrate, deploy, verify, decide; then promote or roll back app and data",
    **dag_settings(tags=["release"], with_release_id=False),
):
    decision = decide()
    proceed, roll_back, ask_operator = decision_branches()
    phases = {"backup": backup_group(), "migrate": migrate_group(), "deploy": deploy_group(), "verify": verify_group()}
    post_deploy = post_deploy_group()
    rollback = rollback_group()
    completed = complete_checklist()
    signed = sign_off(after=check_items("pre-deploy", after=preflight()))
    chain(signed, *phases.values(), decision)
    for phase, group in phases.items():
        # Beside the chain, not in it: a phase without items must not skip the phases after it.
        check_items(phase, after=group) >> decision
    decision >> [proceed, roll_back, ask_operator]
    [proceed, ask_operator] >> post_deploy
    [roll_back, ask_operator] >> rollback
    check_items("post-deploy", after=post_deploy) >> completed
    rollback >> completed
    completed >> report_outcome() >> hand_back_lock()
