"""Long waits on outside systems (a migration Job, a Deployment's rollout): a trigger, never a sleeping worker.

A step that finds an outside operation unfinished calls `wait_for(trigger, ...)` with a trigger that fires once the
operation ends (the provider's trigger where one fits, else one of `airflow_rollout.triggers`).

- Inside `deferring()` (a release step running as a task, `airflow_rollout.step_operator.StepOperator`) it raises
  `WaitDeferred`: the operator hands the trigger to Airflow's triggerer and gives its worker slot back. When the
  trigger fires, the operator runs the same step again. Steps are written to be run again (each reads the ledger and
  the target before acting: an earlier attempt's Job is found, not created twice), so the step itself is the
  continuation: the second run finds the operation finished and carries on; only the journal below is carried across.
- Anywhere else (maintenance, the tools, a test calling a target) the same trigger runs here to its first event.

A step that sends several operations it cannot ask twice (SQL statements: an INSERT sent again inserts again) keeps
a journal through `sent_before`: the run after a deferral follows each operation an earlier run sent, by its id.

`wait_in_place` always runs the trigger here, holding the worker: for the first seconds of a short wait
(`in_place_first`), and for the tools and maintenance, which are not deferred.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow.triggers.base import BaseTrigger


# The status of a trigger's event when the trigger gave up (its deadline passed) rather than seeing the end.
WAIT_FAILED = "wait_failed"

# A wait on something local (a process getting ready, or stopping) runs in the task for its first seconds: most end
# within them, and a deferral costs a task start, more than the worker slot it frees for so short a time.
SHORT_WAIT_SECONDS = 5.0


class WaitFailedError(RuntimeError):
    """The wait ended without its operation finishing: its deadline passed, or the trigger itself failed."""


class WaitTimedOutError(WaitFailedError):
    """`wait_in_place` ran out of time before the trigger fired."""


class WaitDeferred(BaseException):
    """Raised by `wait_for` inside `deferring()`: hand `trigger` to the triggerer, run the step again when it fires.

    A BaseException, as Airflow's TaskDeferred is: a step's `except Exception` (a check that reports any error as a
    failed check) must not take it for a failure. `sent`: the step's journal so far, for its next run.
    """

    def __init__(self, trigger: BaseTrigger, what: str, timeout: float, sent: dict[str, str]) -> None:
        super().__init__(f"waiting for {what}")
        self.trigger = trigger
        self.what = what
        self.timeout = timeout
        self.sent = sent


@dataclass
class _Deferring:
    failure: str | None  # why the last deferral failed (deadline passed, trigger crashed); consumed by the next wait
    # The journal of this try: each outside operation the step sent (a SQL statement), by its place in the step's run
    # and what was asked, -> its id. Carried across deferrals, so a run after one follows what was sent, never resends.
    sent: dict[str, str]
    operations: int = 0  # how many the current run has met so far


_DEFERRING: contextvars.ContextVar[_Deferring | None] = contextvars.ContextVar("airflow_rollout_deferring", default=None)


@contextmanager
def deferring(*, failure: str | None = None, sent: dict[str, str] | None = None) -> Iterator[None]:
    """Waits inside raise `WaitDeferred`. `failure`: the previous deferral of this step failed for that reason.
    `sent`: the journal of the runs before, as the last `WaitDeferred` carried it.

    The step is run again the same way, so the first wait it meets is the one that failed (every wait before it
    had finished): that wait raises `WaitFailedError`, and the step fails as any step does, in the ledger too.
    """
    token = _DEFERRING.set(_Deferring(failure=failure, sent=dict(sent or {})))
    try:
        yield
    finally:
        _DEFERRING.reset(token)


def sent_before(request: str) -> tuple[str | None, Callable[[str], None]]:
    """For an outside operation a step is about to send (`request`: what it asks, e.g. a statement and its values):
    the id an earlier run of this try sent it under, if any, and the function to record the id of a new one.

    A step that defers runs again from its start, and meets its operations in the same order: the n-th, asking the
    same, is the one sent then. Its id is followed rather than the operation sent twice (a statement inserting rows,
    before the one the step waited for). Outside `deferring()` nothing is kept: nothing runs twice there. A run after
    a failed wait fails at its first operation, as at its first wait: the journal did not survive the failure.
    """
    if (state := _DEFERRING.get()) is None:
        return None, lambda _id: None
    if state.failure is not None:
        failure, state.failure = state.failure, None
        raise WaitFailedError(f"the wait this step was deferred on failed: {failure}")
    key = f"{state.operations}:{hashlib.sha256(request.encode()).hexdigest()[:16]}"
    state.operations += 1
    return state.sent.get(key), lambda operation_id: state.sent.__setitem__(key, operation_id)


def wait_for(trigger: BaseTrigger, what: str, *, timeout: float, in_place_first: float = 0.0) -> dict[str, Any]:
    """Wait until `trigger` fires (at most `timeout` seconds); the payload of its event.

    `in_place_first`: inside `deferring()`, run the trigger here that many seconds before deferring. For a wait
    that usually ends in a second or two (a local process getting ready): a deferral costs a task start, more than
    the slot it frees for so short a time.
    """
    if (state := _DEFERRING.get()) is not None:
        if state.failure is not None:
            failure, state.failure = state.failure, None
            raise WaitFailedError(f"{what}: {failure}")
        if in_place_first > 0:
            with suppress(WaitTimedOutError):
                return wait_in_place(trigger, what, timeout=min(in_place_first, timeout))
            timeout -= min(in_place_first, timeout)
        raise WaitDeferred(trigger, what, timeout, dict(state.sent))
    return wait_in_place(trigger, what, timeout=timeout)


def wait_until_done(trigger: BaseTrigger, what: str, *, timeout: float, error: type[Exception], in_place_first: float = 0.0) -> None:
    """`wait_for` an operation that must succeed: a failed wait or a failure event raises `error`."""
    try:
        event = wait_for(trigger, what, timeout=timeout, in_place_first=in_place_first)
    except WaitFailedError as exc:
        raise error(str(exc)) from None
    if event["status"] != "success":
        raise error(event["message"])


def raise_failed_wait(what: str) -> None:
    """In a step's run after its wait failed: raise that failure now. For a step that would otherwise begin the
    operation again before reaching the wait (a failed deployment leaves nothing under way to follow)."""
    if (state := _DEFERRING.get()) is not None and state.failure is not None:
        failure, state.failure = state.failure, None
        raise WaitFailedError(f"{what}: {failure}")


def wait_in_place(trigger: BaseTrigger, what: str, *, timeout: float) -> dict[str, Any]:
    """Run `trigger` in this process until its first event (at most `timeout` seconds); the event's payload."""
    waiting = _first_event(trigger, what, timeout)
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # the usual case: no event loop runs in this thread
        return asyncio.run(waiting)
    # Called under a running event loop (a notebook, Playwright's sync API, an async caller): asyncio.run refuses to
    # nest, so the trigger gets a loop of its own in a thread; this one waits for it, as it would for asyncio.run.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="wait-in-place") as pool:
        return pool.submit(asyncio.run, waiting).result()


async def _first_event(trigger: BaseTrigger, what: str, timeout: float) -> dict[str, Any]:
    async def first() -> dict[str, Any]:
        async for event in trigger.run():
            payload: dict[str, Any] = event.payload
            return payload
        raise WaitFailedError(f"{what}: the trigger ended without an event")

    try:
        return await asyncio.wait_for(first(), timeout)
    except TimeoutError:
        # Our triggers keep what they last saw: the operator reads what it was still waiting for.
        last = getattr(trigger, "waiting_for", None)
        raise WaitTimedOutError(f"{what}: not done within {timeout:.0f} s" + (f" ({last})" if last else "")) from None
