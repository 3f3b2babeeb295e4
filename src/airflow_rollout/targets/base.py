"""The contract every target kind keeps, and the types the kinds share.

A data target is something a release backs up, migrates and restores (a PostgreSQL database, files, Unity
Catalog tables); an app target is something it deploys and rolls back (a local process, a compose service,
a Kubernetes Deployment, a Databricks App, an MLflow alias). Each kind is one module: its config model (a
`DataTargetConfig` or `AppTargetConfig` with a `kind` literal), its runtime class (a `DataTarget` or
`AppTarget`), and one `register_data_kind` / `register_app_kind` call (`airflow_rollout.targets.registry`).

What a kind can do beyond the contract is declared, never inferred: `capabilities` lists it, and the
maintenance DAGs report a target whose kind lacks a capability as "not applicable" instead of leaving it out.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from contextlib import AbstractContextManager

    from airflow_rollout.config import AppTargetConfig, DataTargetConfig, ServingAppConfig
    from airflow_rollout.maintenance_store import BackupOnRecord
    from airflow_rollout.targets.registry import TargetEnvironment
    from airflow_rollout.versions import VersionScheme


# --- errors a release reacts to, whatever the kind ---------------------------------------------------------


class BackupIntegrityError(RuntimeError):
    """The backup on disk is not the one that was taken: restoring it could lose data."""


class RestoreMismatchError(RuntimeError):
    """The restore finished but the data differs from the pre-release fingerprint."""


class AppNotReadyError(RuntimeError):
    """The new version did not answer its readiness check in time (or exited)."""


class AppStopError(RuntimeError):
    """An app could not be stopped: something of it still runs."""


class SnapshotRefusedError(RuntimeError):
    """A fast snapshot was not taken (it would not fit, or the data is in use) or not switched in (its fingerprint does
    not prove it is the data before the release); nothing was changed."""


class CapabilityMissingError(NotImplementedError):
    """A target was asked for something its kind does not declare (a defect: callers check `capabilities`)."""


# --- shared values and helpers -----------------------------------------------------------------------------

TableFingerprint = dict[str, Any]  # {"rows": int, "content": str, "columns": str}
Fingerprint = dict[str, TableFingerprint]  # keyed by "schema.table" (or a file's path)


def differing_tables(before: Fingerprint, after: Fingerprint) -> list[str]:
    """The tables (or files) whose fingerprint differs between the two, or that only one of them has, in name order."""
    return sorted(t for t in set(before) | set(after) if before.get(t) != after.get(t))


@dataclass(frozen=True)
class BackupRecord:
    location: str
    format: str
    sha256: str
    size_bytes: int
    fingerprint: Fingerprint
    toc_entries: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def file_sha256(path: Path) -> str:
    """sha256 of a file, or of a directory's files in name order (pg_dump's directory format)."""
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        if path.is_dir():
            digest.update(str(file.relative_to(path)).encode() + b"\0")
        with file.open("rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()


def write_hashed(source: IO[bytes], destination: Path) -> str:
    """Write what `source` yields to `destination` (owner-only from the start), hashing it on the way.

    The sha256 of exactly the bytes written, equal to `file_sha256(destination)` without reading the file again:
    a backup streamed through here costs its writing alone.
    """
    digest = hashlib.sha256()
    with os.fdopen(os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as out:
        for chunk in iter(lambda: source.read(1 << 20), b""):
            digest.update(chunk)
            out.write(chunk)
    return digest.hexdigest()


def safe_file_name(text: str) -> str:
    """`text` (a release or run id) as a file name: anything but letters, digits, `_.-` becomes `_`."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", text)


def verify_sha256(location: str, expected_sha256: str) -> Path:
    """The backup file (a dump, an archive, a manifest) is there and is the one recorded when it was taken."""
    path = Path(location)
    if not path.exists():
        raise BackupIntegrityError(f"backup {location} is missing")
    actual = file_sha256(path)
    if actual != expected_sha256:
        raise BackupIntegrityError(
            f"backup {location} has sha256 {actual}, but {expected_sha256} was recorded when it was taken: "
            "it was altered or truncated, and restoring it could lose data"
        )
    return path


def private_directory(path: Path) -> None:
    """Create `path` and whichever of its parents are missing, each 0700 (mkdir's mode covers only the last)."""
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for directory in reversed(missing):
        directory.mkdir(mode=0o700, exist_ok=True)


def owner_only(path: Path) -> None:
    """A backup holds the system's data: readable by its owner alone."""
    path.chmod(0o700 if path.is_dir() else 0o600)
    for child in path.rglob("*") if path.is_dir() else []:
        child.chmod(0o700 if child.is_dir() else 0o600)


def remove_backup(path: Path) -> None:
    """Delete a backup: a file, or a directory tree (pg_dump's directory format)."""
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def http_problem(url: str) -> str | None:
    """None when `url` answers 2xx; otherwise what is wrong, for the message when waiting runs out."""
    import httpx

    try:
        response = httpx.get(url, timeout=2.0)
    except httpx.HTTPError as exc:
        return type(exc).__name__
    return None if response.is_success else f"HTTP {response.status_code}"


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on now (for a drill's spare copy of an app)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _declares_capabilities(cls: type, base: type) -> None:
    """A concrete kind says what it can do beyond the contract; inheriting a parent's answer silently is refused."""
    # ABCMeta sets __abstractmethods__ only after this hook runs: look at the methods themselves.
    abstract = any(getattr(getattr(cls, name, None), "__isabstractmethod__", False) for name in dir(cls))
    if "capabilities" not in vars(cls) and not abstract:
        raise TypeError(f"{cls.__name__} must declare `capabilities` (an empty frozenset for none beyond the {base.__name__} contract)")


# --- data targets ------------------------------------------------------------------------------------------


class DataCapability(StrEnum):
    SCRATCH_RESTORE = "scratch_restore"  # a backup restored beside the live data: restore and disaster-recovery drills
    VACUUM = "vacuum"  # VACUUM (ANALYZE) on the weekly run
    # Its fingerprint may change only by migration: a change between migrate and verify is data the release
    # corrupted, and the decision rolls it back (tables the app writes to are named in `volatile_tables`).
    CORRUPTION_CHECK = "corruption_check"


@dataclass(frozen=True)
class MigrationRun:
    """What a data target needs to apply a release's migrations, and where it reports each one applied."""

    version: str
    release_id: str
    system: str
    scheme: VersionScheme
    redact: Callable[[str], str]
    record: Callable[[str, str | None], None]  # (migration id, checksum) into the release record


@dataclass
class ScratchCopy:
    """A backup restored beside the live data; `error` says why it is not a faithful copy."""

    target: DataTarget
    restore_seconds: float | None = None
    error: str | None = None
    # connection id -> URL of the copy: a drill starts the app against these instead of the live data
    connection_urls: dict[str, str] | None = None


class DataTarget(ABC):
    """Backed up before a release, migrated by it, restored on rollback, proven equal by its fingerprint."""

    config: DataTargetConfig
    capabilities: ClassVar[frozenset[DataCapability]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _declares_capabilities(cls, DataTarget)

    @property
    def name(self) -> str:
        return self.config.name

    @abstractmethod
    def ping(self) -> None:
        """Raise when the target cannot be reached (preflight)."""

    @abstractmethod
    def fingerprint(self) -> Fingerprint:
        """What the data is, per table (or file), comparable before and after."""

    @abstractmethod
    def backup_path(self, directory: Path, release_id: str) -> Path: ...

    @abstractmethod
    def backup(self, destination: Path) -> BackupRecord:
        """Take a backup, read it back, and describe it (sha256, size, fingerprint)."""

    @abstractmethod
    def verify_integrity(self, location: str, expected_sha256: str) -> None:
        """Raise BackupIntegrityError unless the backup is there, unaltered and readable."""

    @abstractmethod
    def restore(self, location: str, expected_sha256: str) -> None:
        """Put the backup's data back in place of the live data."""

    @abstractmethod
    def query_value(self, query: str) -> Any:
        """One value from the target (a checklist item's evidence)."""

    def backup_directory(self, default: Path) -> Path:
        """Where this target's backups go: `default` unless its config names a directory."""
        return default

    def migrate(self, run: MigrationRun) -> list[str]:
        """Apply the release's migrations, reporting each through `run.record`; the ids applied. None by default."""
        return []

    def snapshot_name(self, release_id: str, version: str) -> str | None:
        """What this target calls its snapshot of the data before release `release_id` (of `version`), named so that the
        release it belongs to can be read off it; None: this target keeps the backup alone."""
        return None

    def snapshots_to_keep(self) -> int:
        """How many promoted releases keep their snapshot (the newest); 0: a promoted release's snapshot is dropped."""
        return 0

    def take_snapshot(self, name: str, kept: Sequence[str] = ()) -> str | None:
        """A fast copy of the data beside the backup, called `name`, taken right before the migration with no app
        connected (what a rollback switches in within seconds); `kept` are the snapshots kept for earlier releases,
        which the space it needs is weighed against. What was done, or None: this target keeps the backup alone."""
        return None

    def switch_in_snapshot(self, name: str, *, proof: Fingerprint | None = None) -> str | None:
        """Rollback, the apps stopped: snapshot `name` put in place of the live data, finishing a switch an earlier
        attempt began; what was done, or None when there is no such snapshot (the backup is restored). With `proof`,
        only a snapshot whose own fingerprint equals it is switched in: else SnapshotRefusedError, nothing changed."""
        return None

    def drop_snapshot(self, name: str) -> str | None:
        """Snapshot `name` removed, once it is no longer needed (its release promoted, and not among those kept)."""
        return None

    def scratch_copy(self, backup: BackupOnRecord, scratch: str) -> AbstractContextManager[ScratchCopy]:
        """DataCapability.SCRATCH_RESTORE: `backup` restored into a copy named `scratch`, removed on exit."""
        raise CapabilityMissingError(f"{type(self).__name__} cannot restore into a scratch copy")

    def volatile_tables(self) -> frozenset[str]:
        """DataCapability.CORRUPTION_CHECK: the tables the running app writes to, left out of the check."""
        return frozenset()

    def vacuum(self) -> str:
        """DataCapability.VACUUM: reclaim space and refresh statistics; what was done."""
        raise CapabilityMissingError(f"{type(self).__name__} has no VACUUM")


# --- app targets -------------------------------------------------------------------------------------------


class AppCapability(StrEnum):
    # Rolled back by putting back what was recorded before the release touched it (a pod template, a source
    # path, an alias), not by deploying a version number.
    SNAPSHOT_RESTORE = "snapshot_restore"
    SPARE_COPY = "spare_copy"  # can run a second copy on a spare port (the disaster-recovery drill)


class AppTarget(ABC):
    """Deployed by a release and rolled back by it; quiesced while its data is restored."""

    config: AppTargetConfig
    capabilities: ClassVar[frozenset[AppCapability]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _declares_capabilities(cls, AppTarget)

    @property
    def name(self) -> str:
        return self.config.name

    @abstractmethod
    def current(self) -> Any:
        """What runs now (an object with a `version`), or None."""

    @abstractmethod
    def recorded_version(self) -> str | None:
        """The version this package last deployed, or learned by adopting."""

    @abstractmethod
    def switch_to(self, version: str) -> float:
        """Serve `version`; seconds until it was ready."""

    @abstractmethod
    def wait_ready(self, version: str) -> float:
        """Wait until `version` serves; seconds waited."""

    def stop(self) -> None:
        """Stop serving: what a first release rolled back leaves (before it, nothing ran)."""
        self.quiesce()
        self.wait_quiesced()

    @abstractmethod
    def quiesce(self) -> dict[str, Any]:
        """Stop serving and writing before the data is restored; what `resume` needs to bring it back.

        A target whose stop takes long only begins it here and waits in `wait_quiesced`: what it returns is
        recorded before that wait, which a task hands to the triggerer, and the step run after it must not
        record the stopped state (0 replicas) as what was stopped.
        """

    def wait_quiesced(self) -> None:
        """Until what `quiesce` began is done; nothing to wait for where `quiesce` returns stopped."""
        return

    @abstractmethod
    def resume(self, quiesced: dict[str, Any], version: str | None = None) -> float:
        """Serve `version`, or what `quiesce` stopped; seconds until ready."""

    @abstractmethod
    def base_url(self) -> str:
        """Where the app answers HTTP (checks and probes go there)."""

    def adopt(self, version: str) -> str:
        """Learn that `version` runs now, changing nothing; raise AppNotReadyError when something else runs."""
        running = self.current()
        if running is None or running.version != version:
            raise AppNotReadyError(f"{self.name} runs {running.version if running else 'nothing'}, not {version}: nothing was adopted")
        return f"runs {version}"

    def snapshot(self) -> dict[str, Any]:
        """AppCapability.SNAPSHOT_RESTORE: what the app is now, to be put back by `restore`."""
        raise CapabilityMissingError(f"{type(self).__name__} takes no snapshot")

    def restore(self, snapshot: dict[str, Any]) -> float:
        """AppCapability.SNAPSHOT_RESTORE: put back what `snapshot` recorded; seconds until ready."""
        raise CapabilityMissingError(f"{type(self).__name__} restores no snapshot")

    def spare_copy(self, port: int, connection_urls: dict[str, str], state_dir: Path) -> AppTarget:
        """AppCapability.SPARE_COPY: a second instance on `port`, reaching the connections `connection_urls`
        names (connection id -> URL: a drill's scratch databases) instead of the live ones."""
        raise CapabilityMissingError(f"{type(self).__name__} runs no spare copy")


class StopStartApp(AppTarget):
    """An app that runs one version at a time: quiesced by stopping it, resumed by starting a version again."""

    @abstractmethod
    def stop(self) -> None: ...

    def quiesce(self) -> dict[str, Any]:
        running = self.current()
        self.stop()
        return {"version": running.version} if running else {}

    def resume(self, quiesced: dict[str, Any], version: str | None = None) -> float:
        target = version or quiesced.get("version")
        return self.switch_to(target) if target else 0.0


class LocallyPolledApp(StopStartApp):
    """A stop-start app whose readiness is a look from this machine (its process and URL, docker's health check).

    Past the first few seconds (`airflow_rollout.waits.SHORT_WAIT_SECONDS`) the look repeats in the triggerer
    (`airflow_rollout.triggers.AppReadyTrigger`), which builds the app again from its kind, config and
    `target_environment`: such an app runs beside Airflow, so the triggerer sees what the worker sees.
    """

    config: ServingAppConfig
    target_environment: TargetEnvironment
    poll_seconds: ClassVar[float]

    @abstractmethod
    def readiness_problem(self, version: str) -> str | None:
        """None when `version` serves; else what is awaited. Raises AppNotReadyError when it never will (it exited)."""

    @abstractmethod
    def begin_switch(self, version: str) -> None:
        """Put `version` in the place of what runs, without waiting for it to get ready."""

    def switch_to(self, version: str) -> float:
        """Begin the switch, unless a run of the step before a deferred wait began it, and wait until ready."""
        from airflow_rollout.waits import WaitFailedError, raise_failed_wait

        began = time.monotonic()
        try:
            raise_failed_wait(f"{self.name} {version} to get ready")  # after a failed wait: that failure, not a second start
        except WaitFailedError as exc:
            raise AppNotReadyError(str(exc)) from None
        running = self.current()
        if running is None or running.version != version:
            self.begin_switch(version)
        self.wait_ready(version)
        return time.monotonic() - began

    def wait_ready(self, version: str) -> float:
        from airflow_rollout import waits
        from airflow_rollout.triggers import AppReadyTrigger

        began = time.monotonic()
        if self.readiness_problem(version) is None:
            return 0.0
        seconds = self.config.readiness.timeout_seconds
        trigger = AppReadyTrigger(
            kind=self.config.kind,
            config=self.config.model_dump(mode="json"),
            system=self.target_environment.system,
            state_dir=str(self.target_environment.state_dir),
            version=version,
            poll_interval=self.poll_seconds,
            deadline=time.time() + seconds,
        )
        what = f"{self.name} {version} to get ready"
        waits.wait_until_done(trigger, what, timeout=seconds, error=AppNotReadyError, in_place_first=waits.SHORT_WAIT_SECONDS)
        return time.monotonic() - began
