"""The operator every release step runs in: `airflow_rollout.tasks.run_step`, deferring its long waits.

A step that meets a long wait (`airflow_rollout.waits.wait_for`) ends its run with `WaitDeferred`; this operator hands
the wait's trigger to the triggerer, so no worker slot is held while a migration Job or a rollout runs, and runs
the step again when the trigger fires (see `airflow_rollout.waits` for why the step itself is the continuation).
The step's ledger row stays `running` across the deferral: the same attempt (run id, try number) resumes and
finishes it, so the ledger, the idempotency per attempt and the failure handling are `run_step`'s, unchanged.

Importing this module is cheap (DAG parsing imports it): the steps are imported when the task runs.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_rollout.tasks import PhaseAction

RESUME_METHOD = "resume_step"
TRIGGER_FAILED = "__fail__"  # Airflow's next_method when the trigger failed or its timeout passed
TIMEOUT_MARGIN_SECONDS = 30


class StepOperator(BaseOperator):
    """Step `step` of `phase`: the function `action_name` of `airflow_rollout.release.steps.STEPS`."""

    ui_color = "#e8f0fe"

    def __init__(self, *, phase: str, step: str, action_name: PhaseAction, **kwargs: Any) -> None:
        super().__init__(task_id=step, **kwargs)
        self.phase = phase
        self.step = step
        self.action_name = action_name

    def execute(self, context: Context) -> Any:
        return self._run_step(failure=None, sent={})

    def resume_step(self, context: Context, event: dict[str, Any] | None = None, sent: dict[str, str] | None = None) -> Any:
        """The trigger fired: the step runs again and finds the operation it waited for finished, or the wait failed.
        `sent`: the journal of what its runs so far sent (`airflow_rollout.waits.sent_before`)."""
        from airflow_rollout.waits import WAIT_FAILED

        del context  # the step reads the outcome from the outside system itself
        if event and event.get("status") == WAIT_FAILED:  # one of our triggers gave up: as a trigger timeout is handled
            return self._run_step(failure=str(event.get("message") or "the wait failed"), sent=sent or {})
        return self._run_step(failure=None, sent=sent or {})

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Context) -> Any:
        # Airflow fails a task whose trigger failed or timed out without calling it; run the step instead, so its
        # wait raises and the failure is the step's: recorded in the ledger, Slack told, retried as any failure.
        # Airflow's kwargs then hold only the error: the journal is gone, so the run fails before sending anything.
        if next_method == TRIGGER_FAILED:
            return self._run_step(failure=str((next_kwargs or {}).get("error") or "the trigger failed"), sent={})
        return super().resume_execution(next_method, next_kwargs, context)

    def _run_step(self, *, failure: str | None, sent: dict[str, str]) -> Any:
        from airflow_rollout.release.steps import FINAL_FAILURE_HANDLERS, STEPS
        from airflow_rollout.tasks import run_step
        from airflow_rollout.waits import WaitDeferred, deferring

        try:
            with deferring(failure=failure, sent=sent):
                return run_step(self.phase, self.step, STEPS[self.action_name], on_final_failure=FINAL_FAILURE_HANDLERS.get(self.phase))
        except WaitDeferred as wait:
            self.log.info("%s.%s: %s, in the triggerer; this worker slot is free meanwhile", self.phase, self.step, wait)
            # Airflow's timeout is the backstop: our triggers end at their own deadline, saying what they still saw.
            backstop = timedelta(seconds=wait.timeout + TIMEOUT_MARGIN_SECONDS)
            self.defer(trigger=wait.trigger, method_name=RESUME_METHOD, kwargs={"sent": wait.sent}, timeout=backstop)
