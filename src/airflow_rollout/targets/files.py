"""files data target: model files and configuration (seed 003's `models/` and `.env`) backed up with the data.

The backup is a tar.gz of the listed paths under `root`, checksummed; the fingerprint is each file's
sha256, size and mode, so a restore is proven byte for byte, permissions included (`.env` stays 0600).
A restore checks the archive and extracts it into a scratch directory beside the files before it touches
them, so a damaged or altered archive never replaces good files.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from airflow_rollout.config import DataTargetConfig, IncludePath, resolve_path
from airflow_rollout.targets.base import (
    BackupIntegrityError,
    BackupRecord,
    DataTarget,
    file_sha256,
    owner_only,
    private_directory,
    safe_file_name,
    verify_sha256,
)
from airflow_rollout.targets.registry import register_data_kind

if TYPE_CHECKING:
    from airflow_rollout.context import SystemContext

FileFingerprint = dict[str, dict[str, Any]]


class FilesTarget(DataTargetConfig):
    """Files backed up and restored with the data: seed 003's `models/` directory and `.env` file."""

    kind: Literal["files"]
    root: IncludePath = Field(description="the directory holding the paths; absolute, {state_dir}/..., or relative to include/")
    paths: list[IncludePath] = Field(min_length=1, description="files or directories under root, e.g. [models, .env]")

    def resolved_root(self) -> Path:
        return resolve_path(self.root)


class FilesDataTarget(DataTarget):
    config: FilesTarget
    capabilities = frozenset()  # no database: nothing to restore into a scratch copy or to VACUUM

    def __init__(self, *, config: FilesTarget) -> None:
        self.config = config

    @property
    def root(self) -> Path:
        return self.config.resolved_root()

    def ping(self) -> None:
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.config.name}: {self.root} is not a directory")

    def fingerprint(self) -> FileFingerprint:
        """Per file under the listed paths: sha256, size and mode; a listed path that is absent says so."""
        result: FileFingerprint = {}
        for relative in self.config.paths:
            path = self.root / relative
            if not path.exists():
                result[relative] = {"absent": True}
                continue
            files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
            for file in files:
                digest = hashlib.sha256(file.read_bytes()).hexdigest()
                stat = file.stat()
                result[str(file.relative_to(self.root))] = {"sha256": digest, "size": stat.st_size, "mode": f"0{stat.st_mode & 0o777:o}"}
        return result

    def backup_path(self, directory: Path, release_id: str) -> Path:
        return directory / f"{self.config.name}-{safe_file_name(release_id)}.tar.gz"

    def backup(self, destination: Path) -> BackupRecord:
        private_directory(destination.parent)
        fingerprint = self.fingerprint()
        partial = destination.with_suffix(".partial")
        with tarfile.open(partial, "w:gz") as archive:
            for relative in self.config.paths:
                if (self.root / relative).exists():
                    archive.add(self.root / relative, arcname=relative)
        owner_only(partial)
        partial.replace(destination)
        entries = self.check_readable(destination)
        return BackupRecord(
            location=str(destination),
            format="tar.gz",
            sha256=file_sha256(destination),
            size_bytes=destination.stat().st_size,
            fingerprint=fingerprint,
            toc_entries=entries,
        )

    @staticmethod
    def check_readable(path: Path) -> int:
        try:
            with tarfile.open(path, "r:gz") as archive:
                return len(archive.getmembers())
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise BackupIntegrityError(f"{path}: not a readable tar.gz: {exc}") from None

    def verify_integrity(self, location: str, expected_sha256: str) -> None:
        self.check_readable(verify_sha256(location, expected_sha256))

    def restore(self, location: str, expected_sha256: str) -> None:
        """Put every listed path back as the archive holds it; a path absent at backup time is removed."""
        self.verify_integrity(location, expected_sha256)
        with tempfile.TemporaryDirectory(prefix=".restore-", dir=self.root) as scratch:
            with tarfile.open(location, "r:gz") as archive:
                archive.extractall(scratch, filter="data")
            for relative in self.config.paths:
                current, restored = self.root / relative, Path(scratch) / relative
                if current.is_dir() and not current.is_symlink():
                    shutil.rmtree(current)
                elif current.exists() or current.is_symlink():
                    current.unlink()
                if restored.exists():
                    current.parent.mkdir(parents=True, exist_ok=True)
                    restored.replace(current)

    def query_value(self, query: str) -> Any:
        raise TypeError(f"{self.config.name} is a files target: it answers no SQL ({query!r})")


def item_path(ctx: SystemContext, target: str | None, path: str) -> Path:
    """Where an item's file is: under a files target's root, or a profile path (absolute, {state_dir}/..., include/)."""
    if target is None:
        return resolve_path(path)
    config = next(t for t in ctx.profile.data_targets if t.name == target)
    if not isinstance(config, FilesTarget):
        raise ValueError(f"{target} is a {config.kind} target, not a files target: it has no file {path}")
    return config.resolved_root() / path


register_data_kind(FilesTarget, lambda config, _environment: FilesDataTarget(config=config))
