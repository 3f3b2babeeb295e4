"""files data target: models/ and .env backed up, checked and restored byte for byte, modes included."""

from __future__ import annotations

import pytest

from airflow_rollout.targets.base import BackupIntegrityError
from airflow_rollout.targets.files import FilesDataTarget, FilesTarget


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "opt"
    (root / "models" / "default").mkdir(parents=True)
    (root / "models" / "default" / "encoder.joblib").write_bytes(bytes(range(256)) * 10)
    (root / "models" / "registry.db").write_text("v1\n")
    (root / ".env").write_text("JWT_SECRET_KEY=not-in-git\n")
    (root / ".env").chmod(0o600)
    return FilesDataTarget(config=FilesTarget(kind="files", name="model_files", root=str(root), paths=["models", ".env"]))


def test_restore_puts_back_every_byte_and_mode_and_removes_what_the_release_added(server, tmp_path):
    before = server.fingerprint()
    record = server.backup(server.backup_path(tmp_path / "backups", "release-1"))
    assert (tmp_path / "backups" / "model_files-release-1.tar.gz").stat().st_mode & 0o777 == 0o600
    assert record.fingerprint == before and record.toc_entries >= 4

    (server.root / "models" / "registry.db").write_text("v2\n")
    (server.root / "models" / "new_model.bin").write_bytes(b"\x00" * 10)
    (server.root / ".env").write_text("JWT_SECRET_KEY=changed\n")
    (server.root / ".env").chmod(0o644)
    assert server.fingerprint() != before

    server.restore(record.location, record.sha256)
    assert server.fingerprint() == before
    assert before[".env"]["mode"] == "0600"


def test_an_altered_archive_is_refused_before_the_files_are_touched(server, tmp_path):
    record = server.backup(server.backup_path(tmp_path / "backups", "release-1"))
    (server.root / "models" / "registry.db").write_text("v2\n")
    with open(record.location, "ab") as archive:
        archive.write(b"tampered")
    with pytest.raises(BackupIntegrityError, match="altered or truncated"):
        server.restore(record.location, record.sha256)
    assert (server.root / "models" / "registry.db").read_text() == "v2\n"


def test_a_path_absent_at_backup_time_is_absent_after_the_restore(server, tmp_path):
    (server.root / ".env").unlink()
    record = server.backup(server.backup_path(tmp_path / "backups", "r"))
    assert record.fingerprint[".env"] == {"absent": True}
    (server.root / ".env").write_text("NEW=1\n")
    server.restore(record.location, record.sha256)
    assert not (server.root / ".env").exists()
