"""Answering Airflow's Required Actions from a test thread while dag.test() runs the DAG.

dag.test() has no API server and no scheduler, so nothing answers a HITL task or enforces its timeout.
`answer` does to the metadata database what `PATCH .../hitlDetails` does (airflow/api_fastapi/core_api/
routes/public/hitl.py); `expire` does what the scheduler's timeout sweep does.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable


# Set when the run a responder plays the human for has ended: a responder still waiting then must stop, not
# answer the next test's run.
_run_ended = threading.Event()


class RunEndedError(AssertionError):
    """The run ended without the task ever waiting for input."""


def wait_for_awaiting_input(dag_id: str, task_id: str, timeout: float = 180.0, map_index: int = -1) -> str:
    """Run id of the first run whose `task_id` waits for input."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _run_ended.is_set():
            raise RunEndedError(f"the run ended and {dag_id}.{task_id} never waited for input")
        with create_session() as session:
            ti = session.scalars(
                select(TaskInstance).where(
                    TaskInstance.dag_id == dag_id,
                    TaskInstance.task_id == task_id,
                    TaskInstance.map_index == map_index,
                    TaskInstance.state == TaskInstanceState.AWAITING_INPUT,
                )
            ).first()
            if ti is not None:
                return str(ti.run_id)
        time.sleep(0.3)
    raise TimeoutError(f"{dag_id}.{task_id} never waited for input")


def answer(dag_id: str, run_id: str, task_id: str, option: str, user_id: str, user_name: str, map_index: int = -1) -> None:
    from airflow._shared.timezones import timezone
    from airflow.models.hitl import HITLDetail, HITLUser
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import handle_event_submit
    from airflow.triggers.base import TriggerEvent
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        ti = session.scalars(
            select(TaskInstance).where(
                TaskInstance.dag_id == dag_id,
                TaskInstance.run_id == run_id,
                TaskInstance.task_id == task_id,
                TaskInstance.map_index == map_index,
            )
        ).one()
        detail = session.scalar(select(HITLDetail).where(HITLDetail.ti_id == ti.id))
        assert detail is not None and not detail.response_received
        assert option in detail.options
        detail.responded_by = HITLUser(id=user_id, name=user_name)
        detail.responded_at = timezone.utcnow()
        detail.chosen_options = [option]
        detail.params_input = {}
        session.add(detail)
        handle_event_submit(TriggerEvent(detail.as_resume_event_payload()), task_instance=ti, session=session)
        ti_id = ti.id
    _confirm_resumed(ti_id)


def _confirm_resumed(ti_id: object, settle: float = 3.0) -> None:
    """An answer given while dag.test() is still deferring the task can be overwritten by that deferral (the task
    goes back to awaiting input with the answer recorded): submit the recorded answer again until it resumes.
    No human answers within those milliseconds; a test thread does."""
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.trigger import handle_event_submit
    from airflow.triggers.base import TriggerEvent
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

    for _ in range(20):
        time.sleep(settle / 3)
        with create_session() as session:
            ti = session.scalars(select(TaskInstance).where(TaskInstance.id == ti_id)).one()
            if ti.state != TaskInstanceState.AWAITING_INPUT:
                return
            detail = session.scalar(select(HITLDetail).where(HITLDetail.ti_id == ti_id))
            assert detail is not None and detail.response_received
            handle_event_submit(TriggerEvent(detail.as_resume_event_payload()), task_instance=ti, session=session)
    raise TimeoutError("the answered task never resumed")


def expire_waiting_tasks() -> None:
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner

    class _Sweeper:  # the sweep uses nothing of the runner but its logger
        log = logging.getLogger("tests.hitl.sweep")

    SchedulerJobRunner.check_awaiting_input_timeouts(_Sweeper())  # type: ignore[arg-type]


def fail_waiting_tasks() -> None:
    """Last resort when the answering thread broke: otherwise dag.test() waits for ever."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState
    from sqlalchemy import select

    with create_session() as session:
        for ti in session.scalars(select(TaskInstance).where(TaskInstance.state == TaskInstanceState.AWAITING_INPUT)):
            ti.state = TaskInstanceState.FAILED


def run_with_responder(run: Callable[[], Any], responder: Callable[[], None]) -> Any:
    """Run `run` (a dag.test call) while `responder` plays the human (or the clock) in a thread."""
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            responder()
        except BaseException as exc:
            errors.append(exc)
            fail_waiting_tasks()

    _run_ended.clear()
    thread = threading.Thread(target=guarded, daemon=True)
    thread.start()
    try:
        result = run()
    finally:
        _run_ended.set()
    thread.join(timeout=30)
    if errors:
        raise errors[0]
    return result
