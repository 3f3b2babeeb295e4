"""The errors a release step raises, and which of them a retry cannot mend."""

from __future__ import annotations

from airflow_rollout.config import ProfileError
from airflow_rollout.ledger import LedgerConflictError, ReleaseNotFoundError
from airflow_rollout.targets.base import AppNotReadyError, AppStopError, BackupIntegrityError, RestoreMismatchError
from airflow_rollout.targets.compose import ComposeError
from airflow_rollout.targets.migrations import MigrationError
from airflow_rollout.versions import InvalidVersionError


class PreflightError(RuntimeError):
    """The release cannot start; nothing has been changed."""


class ChecksFailedError(RuntimeError):
    """One or more critical checks failed; the results are in the ledger."""


class RollbackError(RuntimeError):
    """A rollback step could not do its part; the message says what state it left the system in."""


class LockHeldError(PreflightError):
    """Another release, or another run of this one, works on the system: this run changes nothing."""


class StepNotApplicableError(Exception):
    """The step has nothing to do in this run (the task is marked skipped, with this reason)."""


# Errors a retry cannot mend: the task fails at once instead of trying again. Only this package's own types:
# a ValueError or LookupError from a library may be transient, and gets the task's retries.
PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    PreflightError,  # and LockHeldError
    MigrationError,
    BackupIntegrityError,
    RestoreMismatchError,
    ChecksFailedError,
    RollbackError,
    AppStopError,
    AppNotReadyError,  # a build that exits or never answers does not improve on a second start
    ComposeError,
    ProfileError,  # and ChecklistError
    InvalidVersionError,
    ReleaseNotFoundError,
    LedgerConflictError,
)


def is_permanent(error: BaseException) -> bool:
    """A failure a retry cannot mend: the task fails at once."""
    return isinstance(error, PERMANENT_ERRORS)
