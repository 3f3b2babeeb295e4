"""The postgres target against a real PostgreSQL: fingerprint, backup, tamper detection, restore."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_rollout.targets.base import BackupIntegrityError, file_sha256
from airflow_rollout.targets.postgres import PostgresDataTarget, PostgresTarget


def target(**backup) -> PostgresDataTarget:
    config = PostgresTarget.model_validate({"kind": "postgres", "name": "unit", "conn_id": "unit_db", "backup": backup})
    return PostgresDataTarget(config=config)


@pytest.fixture
def loaded(scratch_db):
    scratch_db.psql(
        "unit",
        "CREATE TABLE a (id int PRIMARY KEY, v text); INSERT INTO a SELECT g, md5(g::text) FROM generate_series(1, 2000) g;"
        "CREATE TABLE b (id int PRIMARY KEY, n numeric); INSERT INTO b SELECT g, g / 3.0 FROM generate_series(1, 500) g;",
    )
    return scratch_db


def test_fingerprint_counts_rows_and_sees_any_change_but_not_row_order(loaded):
    data = target()
    first = data.fingerprint()
    assert {t: f["rows"] for t, f in first.items()} == {"public.a": 2000, "public.b": 500}

    loaded.psql("unit", "CREATE TABLE a2 AS SELECT * FROM a ORDER BY id DESC; DROP TABLE a; ALTER TABLE a2 RENAME TO a;")
    reordered = data.fingerprint()
    assert reordered["public.a"]["content"] == first["public.a"]["content"]

    loaded.psql("unit", "UPDATE a SET v = v || 'x' WHERE id = 1234")
    assert data.fingerprint()["public.a"]["content"] != first["public.a"]["content"]
    loaded.psql("unit", "ALTER TABLE b ADD COLUMN c int")
    assert data.fingerprint()["public.b"]["columns"] != first["public.b"]["columns"]


@pytest.mark.parametrize("settings", [{"format": "custom"}, {"format": "directory", "jobs": 2}], ids=["custom", "directory-2-jobs"])
def test_backup_then_restore_brings_back_exactly_the_data(loaded, tmp_path, settings):
    data = target(**settings)
    record = data.backup(data.backup_path(tmp_path, "release:1/2"))
    assert "/" not in Path(record.location).name.removeprefix("unit-")
    assert record.sha256 == file_sha256(Path(record.location)) and record.toc_entries > 0

    loaded.psql("unit", "DELETE FROM a WHERE id > 100; CREATE TABLE added (x int); ALTER TABLE b DROP COLUMN n;")
    assert data.fingerprint() != record.fingerprint

    data.restore(record.location, record.sha256)
    assert data.fingerprint() == record.fingerprint


def test_an_altered_backup_is_refused_and_nothing_is_touched(loaded, tmp_path):
    data = target()
    record = data.backup(tmp_path / "unit.dump")
    loaded.psql("unit", "DELETE FROM a WHERE id > 1000")
    changed = data.fingerprint()
    dump = Path(record.location)
    dump.write_bytes(dump.read_bytes()[: dump.stat().st_size // 2])  # truncated, e.g. a full disk

    with pytest.raises(BackupIntegrityError, match="altered or truncated"):
        data.restore(record.location, record.sha256)
    assert data.fingerprint() == changed


def test_client_programs_never_get_the_password_on_their_command_line(loaded, tmp_path, monkeypatch):
    import subprocess

    seen: list[list[str]] = []
    real_run, real_popen = subprocess.run, subprocess.Popen

    def spy_run(args, *rest, **kwargs):
        seen.append(list(args))
        return real_run(args, *rest, **kwargs)

    def spy_popen(args, *rest, **kwargs):
        seen.append(list(args))
        return real_popen(args, *rest, **kwargs)

    monkeypatch.setattr(subprocess, "run", spy_run)
    monkeypatch.setattr(subprocess, "Popen", spy_popen)
    data = target()
    record = data.backup(tmp_path / "unit.dump")
    data.restore(record.location, record.sha256)
    programs = {Path(args[0]).name for args in seen}
    assert {"pg_dump", "pg_restore", "psql"} <= programs
    assert not any(loaded.password in " ".join(args) for args in seen)


def test_the_fingerprint_and_the_dump_describe_the_same_snapshot(loaded, tmp_path):
    data = target()
    record = data.backup(tmp_path / "unit.dump")
    loaded.psql("unit", "DELETE FROM b")
    data.restore(record.location, record.sha256)
    assert data.fingerprint() == record.fingerprint
