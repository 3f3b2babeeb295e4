"""Airflow wiring: the tasks and task groups the DAG files put together.

Each phase is built by one function here, so the phase DAGs (`backup`, `migrate`, ...) and the
`release` DAG that chains them run the very same tasks. Everything a task does lives in
`airflow_rollout.release` (one module per phase); a task only loads the release context, keeps the step's row in the ledger, and turns
errors a retry cannot mend into an immediate failure.

Importing this module is cheap (DAG parsing imports it): heavy imports happen inside the tasks.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.hitl import HITLBranchOperator, HITLOperator
from airflow.sdk import Param, TaskGroup, TriggerRule, chain, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

from airflow_rollout.config import configured_systems
from airflow_rollout.step_operator import StepOperator
from airflow_rollout.versions import VERSION_PATTERN

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow.sdk import Context
    from airflow.sdk.bases.operator import BaseOperator

    from airflow_rollout.context import ReleaseContext

log = logging.getLogger(__name__)

OWNER = "platform"
DEFAULT_ARGS: dict[str, Any] = {
    "owner": OWNER,
    "retries": 1,
    "retry_delay": timedelta(seconds=20),
}
APPROVE_OPTION = "Approve"
REJECT_OPTION = "Reject"
PROCEED_OPTION = "Proceed"
ROLLBACK_OPTION = "Roll back"
# Empty (a new release) or an id without "..": see VERSION_PATTERN on the trailing-newline look-ahead.
RELEASE_ID_PATTERN = r"^(?!\n)$|^(?!.*\.\.)[A-Za-z0-9_.:+-]{1,250}(?!\n)$"


def release_params(*, with_release_id: bool, with_reason: bool = False) -> dict[str, Param]:
    """The trigger form: a dropdown of configured systems and a strictly patterned version."""
    params = {
        "system": system_param(),
        "version": Param(
            type="string",
            pattern=VERSION_PATTERN,
            title="Version",
            description="The version to release, e.g. 1.2.0 or v1.0-p2.",
        ),
    }
    if with_release_id:
        params["release_id"] = Param(
            "",
            type="string",
            pattern=RELEASE_ID_PATTERN,
            title="Release id",
            description="Continue an existing release (its id is in the ledger and in Slack); empty: a new one.",
        )
    if with_reason:
        params["reason"] = reason_param("Why roll back: it goes into the release record, the completed checklist and Slack.")
    return params


def system_param() -> Param:
    systems = configured_systems() or ["(no profile in include/systems)"]
    return Param(
        systems[0], type="string", enum=systems, title="System", description="The system, one of the profiles in include/systems/."
    )


def reason_param(description: str) -> Param:
    """A required free-text reason, kept with who gave it; never reaches a shell or SQL text (a bound parameter)."""
    return Param(type="string", minLength=5, maxLength=500, title="Reason", description=description)


def dag_settings(*, tags: list[str], with_release_id: bool, with_reason: bool = False) -> dict[str, Any]:
    """What every DAG of this package shares: manual trigger, owner, retries, the release form."""
    import pendulum

    return {
        "start_date": pendulum.datetime(2026, 1, 1, tz="UTC"),
        "catchup": False,
        "max_active_tasks": 4,
        "default_args": DEFAULT_ARGS,
        "params": release_params(with_release_id=with_release_id, with_reason=with_reason),
        "tags": ["rollout", *tags],
    }


def release_context() -> ReleaseContext:
    """The release this task works on, from the run's params; validates everything first."""
    from airflow_rollout.config import ProfileError
    from airflow_rollout.context import ReleaseContext, run_time
    from airflow_rollout.notify import AirflowRun
    from airflow_rollout.release.errors import PreflightError
    from airflow_rollout.release.preflight import check_connections
    from airflow_rollout.versions import InvalidVersionError

    context = get_current_context()
    params = context["params"]
    dag_run = context["dag_run"]
    try:
        ctx = ReleaseContext.load(
            system=params["system"],
            version=params["version"],
            release_id=params.get("release_id") or dag_run.run_id,
            triggered_by=getattr(dag_run, "triggering_user_name", None),
            run_id=dag_run.run_id,
            reason=params.get("reason"),
            airflow_run=AirflowRun(dag_run.dag_id, dag_run.run_id),
        )
        ctx.at = run_time(dag_run)
        check_connections(ctx.profile)
    except (ProfileError, InvalidVersionError, PreflightError) as exc:
        raise AirflowFailException(str(exc)) from None
    ctx.ledger.ensure_schema()
    ctx.ledger.open_release(release_id=ctx.release_id, system=ctx.profile.name, version=ctx.version, triggered_by=ctx.triggered_by)
    return ctx


def run_step(
    phase: str, step: str, action: Callable[[ReleaseContext], Any], *, on_final_failure: Callable[[ReleaseContext, str], None] | None = None
) -> Any:
    """Run `action` as one recorded step of `phase`; returns what it returns (shown as the task's XCom)."""
    ctx = release_context()
    try:
        return _recorded_step(ctx, phase, step, action, on_final_failure)
    finally:
        ctx.ledger.close()  # the task's one ledger connection


def _recorded_step(
    ctx: ReleaseContext,
    phase: str,
    step: str,
    action: Callable[[ReleaseContext], Any],
    on_final_failure: Callable[[ReleaseContext, str], None] | None,
) -> Any:
    from airflow.sdk.exceptions import AirflowSkipException

    from airflow_rollout.ledger import Attempt
    from airflow_rollout.notify import Event
    from airflow_rollout.release.errors import ChecksFailedError, LockHeldError, StepNotApplicableError, is_permanent
    from airflow_rollout.release.preflight import hold_lock

    ti = get_current_context()["ti"]
    attempt = Attempt(run_id=ctx.run_id, try_number=ti.try_number)
    ctx.notifier.step = f"{phase}.{step}"
    ctx.ledger.step_started(ctx.release_id, phase, step, attempt)
    try:
        if phase in LOCKED_PHASES:
            hold_lock(ctx)
        result = action(ctx)
    except StepNotApplicableError as exc:
        ctx.ledger.step_finished(ctx.release_id, phase, step, attempt, status="skipped", detail=str(exc))
        raise AirflowSkipException(str(exc)) from None
    except LockHeldError as exc:  # refused before changing anything: not a failure of the release it would have touched
        ctx.ledger.step_finished(ctx.release_id, phase, step, attempt, status="refused", error=str(exc))
        ctx.notifier.send(Event.PHASE_FAILED, ctx.release_id, f"{ctx.version}: {phase}.{step} refused", [str(exc)])
        raise AirflowFailException(str(exc)) from None
    except Exception as exc:
        error = ctx.redact(f"{type(exc).__name__}: {exc}")
        status = "checks_failed" if isinstance(exc, ChecksFailedError) else "failed"
        ctx.ledger.step_finished(ctx.release_id, phase, step, attempt, status=status, error=error)
        permanent = is_permanent(exc)
        if permanent or ti.try_number > ti.max_tries:
            if on_final_failure:
                on_final_failure(ctx, error)
            else:
                ctx.notifier.send(Event.PHASE_FAILED, ctx.release_id, f"{ctx.version}: {phase}.{step} failed", [error])
        if permanent:
            raise AirflowFailException(error) from None
        raise
    ctx.ledger.step_finished(ctx.release_id, phase, step, attempt, status="succeeded", detail=result)
    return result


# The phases that change a system, or read it for a decision: each step works under the system's lock.
LOCKED_PHASES = frozenset({"backup", "migrate", "deploy", "verify", "post_deploy", "rollback", "adopt"})

# The steps a task runs, by name: the functions themselves are in `airflow_rollout.release.steps.STEPS`, imported when
# the task runs, because importing them would make every DAG file's parse import the phases (psycopg, the
# Kubernetes and Databricks clients). mypy checks each name a task uses and each key of STEPS against this list,
# and tests/airflow_rollout/test_tasks.py checks that every name has its step, so a renamed step fails
# `make lint` and `make test`, not a release.
PhaseAction = Literal[
    "preflight",
    "take_lock",
    "hand_back_lock",
    "backup",
    "migrate",
    "deploy",
    "check_endpoints",
    "probe_latency",
    "fingerprint_after_verify",
    "promote",
    "stop_apps",
    "restore_data",
    "start_previous",
    "verify_restored",
    "finish_rollback",
    "take_over",
    "check_running",
    "record_adopted",
]


def step_task(phase: str, step: str, action_name: PhaseAction, **task_kwargs: Any) -> Any:
    """A task running the step `action_name` (`airflow_rollout.release.steps.STEPS`) as step `step` of `phase`.

    An operator rather than a @task: a step's long waits defer to the triggerer, which needs a method to resume in.
    """
    return StepOperator(phase=phase, step=step, action_name=action_name, **task_kwargs)


# --- phases ----------------------------------------------------------------------------------------------


def preflight() -> Any:
    return step_task("preflight", "preflight", "preflight", retries=0)


@dataclass(frozen=True)
class PhaseGroup:
    """One phase as one row of the grid: its steps, and in a release the phase's checklist items after them.

    `last` is the phase's last step: what comes next waits for it, never for the checklist items, which run
    beside the sequence (a phase without items, all of them skipped, must not skip the phases after it). The
    items follow the phase's first steps inside the group, so the group's roots are its first steps.
    """

    group: TaskGroup
    last: Any
    items: Any = None  # check_<phase>_items (mapped), when the group holds the phase's checklist


def _phase_group(
    phase: str, tooltip: str, steps: Callable[[], list[Any]], *, checklist: bool, checklist_phase: str | None = None
) -> PhaseGroup:
    """A TaskGroup `phase` of `steps` in order, then (with `checklist`) the phase's checklist items."""
    with TaskGroup(phase, tooltip=tooltip + ("; then the phase's checklist items" if checklist else "")) as group:
        built = steps()
        chain(*built)
        items = check_items(checklist_phase or phase, after=built[-1]) if checklist else None
    return PhaseGroup(group=group, last=built[-1], items=items)


def backup_group(*, checklist: bool = False) -> PhaseGroup:
    # NONE_FAILED: in a release the pre-deploy checklist and the sign-off come first and may have nothing to do (skipped).
    return _phase_group(
        "backup",
        "pg_dump every data target, check the archive, record sha256 and fingerprint",
        lambda: [step_task("backup", "backup_data", "backup", trigger_rule=TriggerRule.NONE_FAILED)],
        checklist=checklist,
    )


def migrate_group(*, checklist: bool = False) -> PhaseGroup:
    return _phase_group(
        "migrate",
        "apply pending migrations, each in its own transaction",
        lambda: [step_task("migrate", "migrate_data", "migrate")],
        checklist=checklist,
    )


def deploy_group(*, checklist: bool = False) -> PhaseGroup:
    return _phase_group(
        "deploy",
        "record the running version, switch to the new one, wait until ready",
        lambda: [step_task("deploy", "deploy_apps", "deploy")],
        checklist=checklist,
    )


def verify_group(*, checklist: bool = False) -> PhaseGroup:
    return _phase_group(
        "verify",
        "health and smoke checks, latency probe, data fingerprint",
        lambda: [
            step_task("verify", "check_endpoints", "check_endpoints"),
            # The probe and the fingerprint run even when an endpoint check failed: the decision wants their numbers.
            step_task("verify", "probe_latency", "probe_latency", trigger_rule=TriggerRule.ALL_DONE),
            step_task("verify", "fingerprint_data", "fingerprint_after_verify", trigger_rule=TriggerRule.ALL_DONE),
        ],
        checklist=checklist,
    )


def post_deploy_group(*, checklist: bool = False) -> PhaseGroup:
    return _phase_group(
        "post_deploy",
        "mark the release promoted, keep its numbers as the new baseline",
        lambda: [step_task("post_deploy", "promote", "promote", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS)],
        checklist=checklist,
        checklist_phase="post-deploy",
    )


def rollback_group(*, after_decision: bool = False) -> PhaseGroup:
    """The rollback steps. `after_decision`: in the release, where the decision's roll_back branch or the question to a
    human leads here, a question that failed also rolls back (its default answer): nothing may leave the new version
    serving with no decision (Airflow 3.3.2 can fail a Required Action answered while its task is parked; see
    tests/airflow_standalone.py). Elsewhere (the rollback DAG's lock) a failure before it stops it."""
    start_rule = TriggerRule.ONE_DONE if after_decision else TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS
    return _phase_group(
        "rollback",
        "stop the new version, restore the data, start the previous version, check",
        lambda: [
            step_task("rollback", "stop_apps", "stop_apps", trigger_rule=start_rule),
            step_task("rollback", "restore_data", "restore_data"),
            # Runs when the restore failed too: it then starts again what the stop had stopped (never the previous
            # version on data that was not restored). Skipped with the rest when the rollback branch is not taken.
            step_task("rollback", "start_previous", "start_previous", trigger_rule=TriggerRule.NONE_SKIPPED),
            step_task("rollback", "verify_restored", "verify_restored"),
            step_task("rollback", "finish_rollback", "finish_rollback"),
        ],
        checklist=False,
    )


def in_sequence(first: Any, *phases: PhaseGroup) -> Any:
    """`first`, then each phase after the last step of the one before (never after its checklist items); returns the last step."""
    previous = first
    for phase in phases:
        previous >> phase.group
        previous = phase.last
    return previous


def adopt_tasks() -> None:
    """Take over what runs, check it at the version typed, back it up, record it as the promoted baseline."""
    under_lock(
        step_task("adopt", "take_over", "take_over", retries=0),
        step_task("adopt", "check_running", "check_running"),
        step_task("adopt", "backup_data", "backup"),
        step_task("adopt", "record_adopted", "record_adopted"),
    )


def under_lock(*work: Any) -> None:
    """`work` in order, under the system's lock: taken first, handed back at the end."""
    chain(step_task("lock", "take_lock", "take_lock", retries=0), *work, hand_back_lock())


def hand_back_lock() -> Any:
    """The lock handed back when the run ends, whatever happened.

    A teardown (without setup: the lock is taken by a task whose downstream need other trigger rules), so the
    run's colour stays the work's. It frees the lock, or leaves the release holding it when the release
    changed the system and has not finished (a failed rollback, a release driven phase by phase), so that
    nothing starts on top of it. A run that never got the lock hands back nothing.
    """
    return step_task("lock", "hand_back_lock", "hand_back_lock").as_teardown()


@task(task_id="unlock", retries=0)
def unlock() -> str:
    """Free the system's lock; who asked and why are kept in the ledger and said in Slack."""
    from airflow_rollout.config import ProfileError, load_profile
    from airflow_rollout.context import SystemContext
    from airflow_rollout.notify import AirflowRun
    from airflow_rollout.release.preflight import unlock_system

    context = get_current_context()
    params, dag_run = context["params"], context["dag_run"]
    try:
        ctx = SystemContext(profile=load_profile(params["system"]), airflow_run=AirflowRun(dag_run.dag_id, dag_run.run_id))
    except ProfileError as exc:
        raise AirflowFailException(str(exc)) from None
    return unlock_system(ctx, requester=getattr(dag_run, "triggering_user_name", None), reason=params["reason"])


# --- the checklist ---------------------------------------------------------------------------------------------


def check_items(phase: str, *, after: Any = None) -> Any:
    """The phase's automated checklist items, once `after` is done: listed, then one mapped task each, labelled in the UI.

    Without `after`, the listing is a root of the group it is built in: whatever leads into the group leads into it."""
    name = phase.replace("-", "_")

    # After preflight, only when it succeeded (it may have found another release running). Post-deploy: only when
    # promote ran; a release that did not ship has no post-deployment (its items show "not reached", and its grid
    # row skipped, not green). Other phases: the evidence is wanted whatever the phase did (a failed migration is
    # evidence too).
    rule = {"pre-deploy": TriggerRule.ALL_SUCCESS, "post-deploy": TriggerRule.NONE_SKIPPED}.get(phase, TriggerRule.ALL_DONE)

    @task(task_id=f"list_{name}_items", trigger_rule=rule, retries=0)
    def _list() -> Any:
        from airflow_rollout.checklist_run import plan

        return run_step(phase, "list checklist items", lambda ctx: plan(ctx)[phase])

    @task(task_id=f"check_{name}_items", map_index_template="{{ checklist_item }}", retries=0)
    def _check(item_id: str, label: str) -> Any:
        from airflow_rollout.checklist_run import run_item

        get_current_context()["checklist_item"] = label  # type: ignore[typeddict-unknown-key]
        return run_step(phase, f"checklist {item_id}", lambda ctx: run_item(ctx, item_id))

    listed = _list()
    if after is not None:
        after >> listed
    return _check.expand_kwargs(listed)


class SignOffOperator(HITLOperator):
    """Asks one role to approve the checklist's required manual items; *Reject* or no answer stops the release.

    Mapped over the roles the checklist requires; the users asked and the timeout come from the profile.
    """

    def __init__(self, *, role: str, **kwargs: Any) -> None:
        super().__init__(
            subject="Sign off {{ params.system }} {{ params.version }} as " + role,
            options=[APPROVE_OPTION, REJECT_OPTION],
            defaults=[REJECT_OPTION],
            **kwargs,
        )
        self.role = role

    def execute(self, context: Context) -> Any:
        from airflow_rollout.checklist_run import sign_off_request
        from airflow_rollout.notify import Event, RequiredAction

        ctx = release_context()
        self.body, users = sign_off_request(ctx, self.role)
        self.assigned_users = users  # type: ignore[assignment]
        minutes = ctx.profile.sign_off.timeout_minutes
        self.response_timeout = timedelta(minutes=minutes)
        ctx.notifier.send(
            Event.AWAITING_HUMAN,
            ctx.release_id,
            f"{ctx.version}: {self.role} must sign off within {minutes:g} min (Airflow > Browse > Required Actions)",
            [f"asked: {', '.join(u['name'] for u in users)}"],
            required_action=RequiredAction.of(context["ti"]),
        )
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        from airflow_rollout.release.decide import abort

        chosen = (event.get("chosen_options") or [REJECT_OPTION])[0]
        user = event.get("responded_by_user") or {}
        responder = (user.get("name") or user.get("id")) if isinstance(user, dict) else None
        ctx = release_context()
        approved = chosen == APPROVE_OPTION
        ctx.ledger.record_signoff(ctx.release_id, self.role, approved=approved, responder=responder)
        if not approved:
            reason = f"{self.role} sign-off {'rejected by ' + responder if responder else 'not given in time'}"
            abort(ctx, reason)
            raise AirflowFailException(f"release stopped before any change: {reason}")
        return super().execute_complete(context=context, event=event)


@task(task_id="list_sign_off_roles", trigger_rule=TriggerRule.NONE_FAILED, retries=0)
def list_sign_off_roles() -> Any:
    from airflow_rollout.checklist_run import plan

    return run_step("pre-deploy", "list sign-off roles", lambda ctx: plan(ctx)["roles"])


def sign_off(*, after: Any) -> Any:
    """One Required Action per role that must sign off; none when the checklist requires no sign-off."""
    roles = list_sign_off_roles()
    after >> roles
    return SignOffOperator.partial(task_id="sign_off", map_index_template="{{ task.role }}", retries=0).expand_kwargs(roles)


def sign_off_group() -> PhaseGroup:
    """The pre-deploy phase as one row of the grid: its automated checklist items, then each role's sign-off.

    In the sequence, not beside it: a failed blocking item, a *Reject* or no answer stops the release before the backup.
    """
    with TaskGroup("sign_off", tooltip="the pre-deploy checklist: its automated items, then each role's sign-off") as group:
        items = check_items("pre-deploy")
        signed = sign_off(after=items)
    return PhaseGroup(group=group, last=signed, items=items)


@task(task_id="complete_checklist", trigger_rule=TriggerRule.ALL_DONE, retries=1)
def complete_checklist() -> str:
    """The checklist as the seed writes it, ticked with this release's evidence and sign-offs (this task's XCom and log)."""
    from airflow_rollout.checklist_run import write_completed

    ctx = release_context()
    path, markdown = write_completed(ctx)
    log.info("completed checklist, also written to %s:\n%s", path, markdown)
    return markdown


# --- the decision --------------------------------------------------------------------------------------------


@task.branch(task_id="decide", trigger_rule=TriggerRule.ALL_DONE, retries=1)
def decide() -> str:
    """Branch on the decision; runs whatever happened upstream so that failures lead to a rollback."""
    from airflow_rollout.decision import Outcome
    from airflow_rollout.ledger import ReleaseStatus
    from airflow_rollout.release.decide import abort, backups_complete, make_decision

    ctx = release_context()
    release = ctx.release()
    if release.status == ReleaseStatus.ABORTED.value:
        raise AirflowFailException(f"release stopped before any change: {release.outcome_reason}")
    preflight = ctx.ledger.step_status(ctx.release_id, "preflight", "preflight")
    if preflight != "succeeded" or not backups_complete(ctx):
        reason = stopped_before_backup(preflight, ctx.ledger.step_status(ctx.release_id, "backup", "backup_data"))
        abort(ctx, reason)
        raise AirflowFailException(f"release stopped before any change: {reason}; see the red task upstream")
    decision = make_decision(ctx)
    log.info("decision: %s", decision.summary())
    branch = {Outcome.PROCEED: "proceed", Outcome.ROLLBACK: "roll_back", Outcome.INVESTIGATE: "ask_operator"}[decision.outcome]
    group = get_current_context()["ti"].task_id.rpartition(".")[0]  # the branches are in decide's group
    return f"{group}.{branch}" if group else branch


def stopped_before_backup(preflight: str | None, backup: str | None) -> str:
    """Why a release stopped before changing anything, naming the step that stopped it, for the record and Slack."""
    if preflight != "succeeded":
        return f"preflight {preflight or 'did not run'}"
    if backup is None:
        return "the backup never ran: a step before it did not succeed (a sign-off rejected or unanswered, a checklist item failed)"
    return f"the backup {backup}: not every data target has a verified backup"


class ReleaseReviewOperator(HITLBranchOperator):
    """Asks a human to proceed or roll back a release the criteria put in *investigate*.

    The timeout and the people asked come from the system's profile, read when the task runs; nobody
    answering in time rolls back.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(
            subject="Release {{ params.version }} of {{ params.system }}: proceed or roll back?",
            body="The release landed in *investigate*; the reasons follow when the task runs.",
            options=[PROCEED_OPTION, ROLLBACK_OPTION],
            defaults=[ROLLBACK_OPTION],
            options_mapping={PROCEED_OPTION: "post_deploy.promote", ROLLBACK_OPTION: "rollback.stop_apps"},
            **kwargs,
        )

    def execute(self, context: Context) -> Any:
        from airflow_rollout.notify import Event, RequiredAction

        ctx = release_context()
        release = ctx.release()
        minutes = ctx.profile.rollback_criteria.investigate_timeout_minutes
        self.response_timeout = timedelta(minutes=minutes)
        self.assigned_users = [{"id": a.id, "name": a.name or a.id} for a in ctx.profile.approvers] or None  # type: ignore[misc]
        reasons = release.decision_reasons or []
        self.body = "\n".join(
            [f"**{release.system} {release.version}** (was {release.previous_version or 'nothing'}), release `{release.release_id}`.", ""]
            + [f"- {reason}" for reason in reasons]
            + ["", f"Nobody answering within {minutes:g} minutes rolls the release back."]
        )
        ctx.notifier.send(
            Event.AWAITING_HUMAN,
            ctx.release_id,
            f"{release.version}: a human must decide within {minutes:g} min (Airflow > Browse > Required Actions)",
            reasons,
            required_action=RequiredAction.of(context["ti"]),
        )
        return super().execute(context)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        from airflow_rollout.release.decide import record_human_decision

        chosen = (event.get("chosen_options") or [ROLLBACK_OPTION])[0]
        user = event.get("responded_by_user") or {}
        responder = user.get("name") or user.get("id") if isinstance(user, dict) else None
        record_human_decision(release_context(), chosen, responder)
        return super().execute_complete(context=context, event=event)


class DecisionGroup(NamedTuple):
    """decide and its branches, one row of the grid; each branch leads on to post_deploy or rollback."""

    group: TaskGroup
    proceed: BaseOperator
    roll_back: BaseOperator
    ask_operator: BaseOperator


def decision_group() -> DecisionGroup:
    """decide -> proceed | roll_back | ask_operator (a human, for *investigate*), in one group."""
    with TaskGroup("decide", tooltip="the rollback criteria applied to what was measured: proceed, roll back, or ask a human") as group:
        proceed = EmptyOperator(task_id="proceed")
        roll_back = EmptyOperator(task_id="roll_back")
        ask = ReleaseReviewOperator(task_id="ask_operator", retries=0)
        decide() >> [proceed, roll_back, ask]
    return DecisionGroup(group=group, proceed=proceed, roll_back=roll_back, ask_operator=ask)


def report_outcome(goal: str = "promoted") -> Any:
    """Ends the run: green when the release reached `goal` (promoted; rolled back, for the rollback DAG), red with the reasons
    when it did not. The completed checklist before it runs whatever happened, so without this the run would be green."""

    @task(task_id="report_outcome", trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS, retries=0)
    def _report() -> dict[str, Any]:
        ctx = release_context()
        release = ctx.release()
        summary = {"release_id": release.release_id, "version": release.version, "status": release.status, "reason": release.outcome_reason}
        log.info("release record:\n%s", ctx.ledger.record_as_json(ctx.release_id))
        if release.status != goal:
            raise AirflowFailException(f"release {release.version} is {release.status}, not {goal}: {release.outcome_reason}")
        return summary

    return _report()
