"""Only the package's own errors fail a task at once; anything else a library raises gets the task's retries."""

from __future__ import annotations

import pytest

from airflow_rollout.checklists import ChecklistError
from airflow_rollout.config import ProfileError
from airflow_rollout.ledger import LedgerConflictError, ReleaseNotFoundError
from airflow_rollout.release.errors import ChecksFailedError, LockHeldError, PreflightError, RollbackError, is_permanent
from airflow_rollout.targets.base import AppNotReadyError, AppStopError, BackupIntegrityError, RestoreMismatchError
from airflow_rollout.targets.migrations import MigrationError
from airflow_rollout.versions import InvalidVersionError


@pytest.mark.parametrize(
    "error",
    [
        PreflightError("x"),
        LockHeldError("x"),
        MigrationError("x"),
        BackupIntegrityError("x"),
        RestoreMismatchError("x"),
        ChecksFailedError("x"),
        RollbackError("x"),
        AppStopError("x"),
        AppNotReadyError("x"),
        ProfileError("x"),
        ChecklistError("x"),
        InvalidVersionError("x"),
        ReleaseNotFoundError("x"),
        LedgerConflictError("x"),
    ],
    ids=lambda error: type(error).__name__,
)
def test_the_package_s_own_errors_are_permanent(error):
    assert is_permanent(error)


@pytest.mark.parametrize(
    "error",
    [ValueError("invalid literal for int()"), LookupError("x"), KeyError("x"), RuntimeError("x"), OSError("x"), TimeoutError("x")],
    ids=lambda error: type(error).__name__,
)
def test_anything_else_gets_the_task_s_retries(error):
    assert not is_permanent(error)
