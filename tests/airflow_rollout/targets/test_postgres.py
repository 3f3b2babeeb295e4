"""The postgres target against a real PostgreSQL: fingerprint, backup, tamper detection, restore."""

from __future__ import annotations

from pathlib import Path

import pytest
from observe import databases

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


def test_a_dump_whose_write_fails_raises_that_error_and_leaves_no_pg_dump_blocked(loaded, tmp_path, monkeypatch):
    import errno

    from airflow_rollout.targets import postgres

    # Megabytes more than a pipe holds: pg_dump would block on a full pipe if nobody closed it.
    loaded.psql("unit", "CREATE TABLE big AS SELECT g AS id, md5(g::text) || md5((g + 1)::text) AS v FROM generate_series(1, 200000) g")

    def disk_fills_up(source, destination):
        source.read(1 << 16)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(postgres, "write_hashed", disk_fills_up)
    with pytest.raises(OSError, match="No space left on device"):
        target().backup(tmp_path / "unit.dump")
    assert not (tmp_path / "unit.dump").exists()


def test_the_fingerprint_and_the_dump_describe_the_same_snapshot(loaded, tmp_path):
    data = target()
    record = data.backup(tmp_path / "unit.dump")
    loaded.psql("unit", "DELETE FROM b")
    data.restore(record.location, record.sha256)
    assert data.fingerprint() == record.fingerprint


# --- snapshot: database_copy -------------------------------------------------------------------------------


def copying() -> PostgresDataTarget:
    config = PostgresTarget.model_validate({"kind": "postgres", "name": "unit", "conn_id": "unit_db", "snapshot": "database_copy"})
    return PostgresDataTarget(config=config)


def test_the_copy_taken_before_a_change_is_switched_in_and_brings_back_exactly_the_data(loaded):
    data = copying()
    before = data.fingerprint()
    copy = data.snapshot_name("release:1")
    assert "copied unit" in data.take_snapshot("release:1")
    assert "kept" in data.take_snapshot("release:1")  # a retried step keeps the copy it took before the migration

    loaded.psql("unit", "DELETE FROM a WHERE id > 100; ALTER TABLE b ADD COLUMN c int")
    assert data.fingerprint() != before
    assert "switched in" in data.switch_in_snapshot("release:1")

    assert data.fingerprint() == before
    assert copy not in databases(loaded) and "unit" in databases(loaded)
    assert data.switch_in_snapshot("release:1") is None  # switched in already: nothing left to switch


def test_a_switch_interrupted_after_the_live_database_was_dropped_is_finished_by_running_it_again(loaded):
    data = copying()
    before = data.fingerprint()
    copy = data.snapshot_name("interrupted")
    data.take_snapshot("interrupted")
    loaded.psql("unit", "DELETE FROM a")
    loaded.psql("postgres", "DROP DATABASE unit WITH (FORCE)")  # where a worker killed between the two statements leaves it

    assert "finishing the switch an earlier attempt began" in data.switch_in_snapshot("interrupted")
    assert data.fingerprint() == before and copy not in databases(loaded)


def test_without_a_copy_there_is_nothing_to_switch_in_and_the_copy_is_dropped_after_promotion(loaded):
    data = copying()
    assert data.switch_in_snapshot("never-copied") is None
    data.take_snapshot("promoted")
    assert data.drop_snapshot("promoted") == f"dropped {data.snapshot_name('promoted')}"
    assert data.snapshot_name("promoted") not in databases(loaded)
    assert target().take_snapshot("promoted") is None  # the default, snapshot: none, takes none


def test_a_copy_that_would_not_fit_is_refused_before_anything_is_copied(loaded, monkeypatch):
    import shutil

    from airflow_rollout.targets.base import SnapshotRefusedError

    real = shutil.disk_usage(".")
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: real._replace(free=1000))
    data = copying()
    with pytest.raises(SnapshotRefusedError, match=r"the copy needs [\d,]+ bytes and the data directory .* has 1,000 free"):
        data.take_snapshot("too-big")
    assert data.snapshot_name("too-big") not in databases(loaded)


def test_a_copy_is_refused_while_another_session_uses_the_database(loaded):
    import psycopg

    from airflow_rollout.targets.base import SnapshotRefusedError

    data = copying()
    refused = r"1 other session\(s\) are connected: pid \d+ \(\w+, still-running-app\)"
    with psycopg.connect(loaded.uri("unit"), application_name="still-running-app"), pytest.raises(SnapshotRefusedError, match=refused):
        data.take_snapshot("in-use")
    assert data.snapshot_name("in-use") not in databases(loaded)


def test_the_servers_own_df_reports_the_free_space_this_machine_sees(loaded):
    """The way a remote server's free space is learned, checked here against the local answer."""
    import shutil

    data = copying()
    with data._on_server().connect() as conn:
        directory = conn.execute("SELECT current_setting('data_directory')").fetchone()[0]
        on_server = PostgresDataTarget.free_bytes_on_server(conn, directory)
    assert abs(on_server - shutil.disk_usage(directory).free) < 256 * 1024 * 1024  # other work writes meanwhile
