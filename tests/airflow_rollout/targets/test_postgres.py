"""The postgres target against a real PostgreSQL: fingerprint, backup, tamper detection, restore."""

from __future__ import annotations

import os
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
    yield scratch_db
    for copy in databases(scratch_db):
        if copy.startswith("unit_before_"):  # copies a test took and left: the next test's copies must be its own
            scratch_db.psql("postgres", f'DROP DATABASE "{copy}" WITH (FORCE)')


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


def test_the_sampled_fingerprint_sees_what_docs_guarantees_says_and_misses_what_it_says(loaded, tmp_path):
    config = PostgresTarget.model_validate({"kind": "postgres", "name": "unit", "conn_id": "unit_db", "fingerprint": "sampled"})
    data = PostgresDataTarget(config=config)
    loaded.psql(
        "unit", "CREATE TABLE c (name text PRIMARY KEY, n int); INSERT INTO c SELECT md5(g::text), g FROM generate_series(1, 300) g"
    )
    first = data.fingerprint()
    assert first["public.a"]["content"].startswith("keys ") and "rows with id % 64 = 0: " in first["public.a"]["content"]
    assert first["public.c"] == target().fingerprint()["public.c"]  # no integer key: every row hashed, as with `rows`

    # The sample is chosen by key, not by where rows lie on disk: a dump restored compares equal.
    record = data.backup(tmp_path / "unit.dump")
    assert record.fingerprint == first
    loaded.psql("unit", "DELETE FROM a WHERE id > 1000")
    data.restore(record.location, record.sha256)
    assert data.fingerprint() == first

    seen = {
        "a row deleted": ("DELETE FROM a WHERE id = 5", "INSERT INTO a VALUES (5, md5('5'))"),
        "a key changed": ("UPDATE a SET id = 5000 WHERE id = 5", "UPDATE a SET id = 5 WHERE id = 5000"),
        "a sampled row updated": ("UPDATE a SET v = 'x' WHERE id = 640", "UPDATE a SET v = md5('640') WHERE id = 640"),
        "a column added": ("ALTER TABLE a ADD COLUMN w int", "ALTER TABLE a DROP COLUMN w"),
    }
    for what, (change, undo) in seen.items():
        loaded.psql("unit", change)
        assert data.fingerprint()["public.a"] != first["public.a"], what
        loaded.psql("unit", undo)
    assert data.fingerprint()["public.a"]["content"] == first["public.a"]["content"]

    full = target().fingerprint()
    loaded.psql("unit", "UPDATE a SET v = 'x' WHERE id = 641")  # not a multiple of 64: outside the sample
    assert data.fingerprint() == first  # what `sampled` cannot see, and docs/guarantees.md says so
    assert target().fingerprint()["public.a"] != full["public.a"]  # `rows` sees it


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


def copying(**settings) -> PostgresDataTarget:
    config = PostgresTarget.model_validate(
        {"kind": "postgres", "name": "unit", "conn_id": "unit_db", "snapshot": "database_copy", **settings}
    )
    return PostgresDataTarget(config=config)


def copy_of(data: PostgresDataTarget, release_id: str) -> str:
    name = data.snapshot_name(release_id, "1.2.0")
    assert name is not None
    return name


def test_the_copy_taken_before_a_change_is_switched_in_and_brings_back_exactly_the_data(loaded):
    data = copying()
    before = data.fingerprint()
    copy = copy_of(data, "release:1")
    assert "copied unit" in data.take_snapshot(copy)
    assert "kept" in data.take_snapshot(copy)  # a retried step keeps the copy it took before the migration

    loaded.psql("unit", "DELETE FROM a WHERE id > 100; ALTER TABLE b ADD COLUMN c int")
    assert data.fingerprint() != before
    assert "switched in" in data.switch_in_snapshot(copy)

    assert data.fingerprint() == before
    assert copy not in databases(loaded) and "unit" in databases(loaded)
    assert data.switch_in_snapshot(copy) is None  # switched in already: nothing left to switch


def test_a_copy_is_named_after_the_database_the_version_and_the_release(loaded):
    import hashlib

    data = copying()
    digest = hashlib.sha256(b"manual__2026-12-02T01:00:00+00:00").hexdigest()[:8]
    assert data.snapshot_name("manual__2026-12-02T01:00:00+00:00", "1.2.0-RC.1") == f"unit_before_1_2_0_rc_1_{digest}"
    long_version = data.snapshot_name("r", "v" + "9." * 40)
    assert long_version is not None and len(long_version) <= 63  # PostgreSQL's limit on a name
    assert target().snapshot_name("r", "1.2.0") is None  # snapshot: none keeps none


def test_a_switch_interrupted_after_the_live_database_was_dropped_is_finished_by_running_it_again(loaded):
    data = copying()
    before = data.fingerprint()
    copy = copy_of(data, "interrupted")
    data.take_snapshot(copy)
    loaded.psql("unit", "DELETE FROM a")
    loaded.psql("postgres", "DROP DATABASE unit WITH (FORCE)")  # where a worker killed between the two statements leaves it

    assert "finishing the switch an earlier attempt began" in data.switch_in_snapshot(copy)
    assert data.fingerprint() == before and copy not in databases(loaded)


def test_without_a_copy_there_is_nothing_to_switch_in_and_a_copy_can_be_dropped(loaded):
    data = copying()
    assert data.switch_in_snapshot(copy_of(data, "never-copied")) is None
    copy = copy_of(data, "promoted")
    data.take_snapshot(copy)
    assert data.drop_snapshot(copy) == f"dropped {copy}"
    assert copy not in databases(loaded)
    assert target().take_snapshot(copy) is None  # the default, snapshot: none, takes none


def test_a_copy_asked_for_proof_is_switched_in_only_when_its_own_fingerprint_equals_it(loaded):
    from airflow_rollout.targets.base import SnapshotRefusedError

    data = copying()
    before = data.fingerprint()
    copy = copy_of(data, "kept")
    data.take_snapshot(copy)
    loaded.psql(copy, "UPDATE b SET n = n + 1 WHERE id = 7")  # the kept copy altered while it was kept
    loaded.psql("unit", "DELETE FROM a WHERE id > 100")  # the release's change
    changed = data.fingerprint()

    with pytest.raises(SnapshotRefusedError, match=f"{copy} not switched in: its fingerprint differs .* in public.b; it is left as it is"):
        data.switch_in_snapshot(copy, proof=before)
    assert data.fingerprint() == changed and copy in databases(loaded)  # nothing dropped, nothing renamed

    loaded.psql(copy, "UPDATE b SET n = n - 1 WHERE id = 7")
    assert "its fingerprint equal to before the release" in data.switch_in_snapshot(copy, proof=before)
    assert data.fingerprint() == before and copy not in databases(loaded)


def test_a_copy_that_would_not_fit_is_refused_before_anything_is_copied(loaded, monkeypatch):
    import shutil

    from airflow_rollout.targets.base import SnapshotRefusedError

    real = shutil.disk_usage(".")
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: real._replace(free=1000))
    data = copying()
    copy = copy_of(data, "too-big")
    with pytest.raises(SnapshotRefusedError, match=r"the copy needs [\d,]+ bytes and the data directory .* has 1,000 free"):
        data.take_snapshot(copy)
    assert copy not in databases(loaded)


def test_the_disk_check_counts_the_copies_kept_for_earlier_releases(loaded, monkeypatch):
    import shutil

    from airflow_rollout.targets.base import SnapshotRefusedError

    data = copying(snapshot_keep=2)
    older, newer = copy_of(data, "older"), copy_of(data, "newer")
    data.take_snapshot(older)
    data.take_snapshot(newer)
    size = int(loaded.psql("postgres", "SELECT pg_database_size('unit')").strip())
    kept = int(loaded.psql("postgres", f"SELECT pg_database_size('{older}') + pg_database_size('{newer}')").strip())
    assert f"2 copies kept for earlier releases hold {kept:,} bytes there ({older}, {newer})" in data.take_snapshot(
        copy_of(data, "fits"), [older, newer]
    )

    real = shutil.disk_usage(".")
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: real._replace(free=size // 2))  # the oldest copy's room would do
    third = copy_of(data, "third")
    with pytest.raises(SnapshotRefusedError) as refused:
        data.take_snapshot(third, [older, newer])
    assert f"2 copies kept for earlier releases hold {kept:,} bytes there" in str(refused.value)
    assert f"dropping the oldest kept copy, {older}, would make room (lower snapshot_keep)" in str(refused.value)
    assert third not in databases(loaded)


def test_the_disk_check_looks_where_the_databases_tablespace_keeps_its_files(loaded, monkeypatch):
    import os
    import pwd
    import shutil

    from airflow_rollout.targets.base import SnapshotRefusedError
    from devtools import local_postgres

    # Beside the cluster, not under pytest's tmp_path: a pytest run started meanwhile prunes old tmp_path directories.
    directory = loaded.data_dir.parent / "unit_space"
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir()
    if os.geteuid() == 0:  # the server runs as its own user, which must own the tablespace's directory
        local_postgres._open_path_to_others(directory)
        entry = pwd.getpwnam(local_postgres.SERVICE_USER)
        os.chown(directory, entry.pw_uid, entry.pw_gid)
    loaded.psql("postgres", f"CREATE TABLESPACE unit_space LOCATION '{directory}'")
    try:
        loaded.psql("postgres", "ALTER DATABASE unit SET TABLESPACE unit_space")
        asked: list[str] = []
        real = shutil.disk_usage(".")
        monkeypatch.setattr(shutil, "disk_usage", lambda path: asked.append(str(path)) or real._replace(free=1000))
        data = copying()
        with pytest.raises(SnapshotRefusedError, match=f"the tablespace directory {directory} has 1,000 free"):
            data.take_snapshot(copy_of(data, "in-a-tablespace"))
        assert asked == [str(directory)]
    finally:
        loaded.psql("postgres", "DROP DATABASE IF EXISTS unit WITH (FORCE)")
        loaded.psql("postgres", "DROP TABLESPACE unit_space")


def test_a_copy_whose_killed_creator_lingers_on_the_server_is_taken_afresh_after_ending_that_session(loaded):
    import signal
    import subprocess
    import threading
    import time

    import psycopg

    from airflow_rollout.targets.postgres import pg_program

    data = copying()
    before = data.fingerprint()
    copy = copy_of(data, "lingering")

    def waiting_to_copy() -> list[int]:
        waiting = f"SELECT pid FROM pg_stat_activity WHERE query LIKE 'CREATE DATABASE \"{copy}\"%' AND wait_event_type = 'Lock'"
        return [int(pid) for pid in loaded.psql("postgres", waiting).split()]

    def wait_until(condition) -> None:
        deadline = time.monotonic() + 60
        while not condition():
            assert time.monotonic() < deadline, "the server never showed the CREATE DATABASE waiting"
            time.sleep(0.05)

    # An uncommitted COMMENT ON DATABASE holds the template's lock, so a CREATE DATABASE … TEMPLATE unit waits on it: the
    # earlier attempt's creator is caught mid-copy, and its client (the worker) is killed there.
    with psycopg.connect(loaded.uri("postgres")) as holder:
        holder.execute("COMMENT ON DATABASE unit IS 'held by the test'")
        creator = subprocess.Popen(
            [pg_program("psql"), "-X", "-d", loaded.uri("postgres"), "-c", f'CREATE DATABASE "{copy}" TEMPLATE unit STRATEGY FILE_COPY'],
            env={**os.environ, "PGAPPNAME": f"airflow-rollout copy {copy}"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_until(lambda: len(waiting_to_copy()) == 1)
        [lingering] = waiting_to_copy()
        creator.send_signal(signal.SIGKILL)
        creator.wait()
        assert lingering in waiting_to_copy()  # the server session lives on without its client

        retried: list[str] = []
        retry = threading.Thread(target=lambda: retried.append(data.take_snapshot(copy)))
        retry.start()
        wait_until(lambda: waiting_to_copy() not in ([], [lingering]))  # the retry's own CREATE DATABASE now waits
        holder.rollback()
        retry.join()

    assert retried[0].startswith("copied unit (") and lingering not in waiting_to_copy()
    assert PostgresDataTarget(config=data.config, database=copy).fingerprint() == before


def test_a_copy_is_refused_while_another_session_uses_the_database(loaded):
    import psycopg

    from airflow_rollout.targets.base import SnapshotRefusedError

    data = copying()
    refused = r"1 other session\(s\) are connected: pid \d+ \(\w+, still-running-app\)"
    with psycopg.connect(loaded.uri("unit"), application_name="still-running-app"), pytest.raises(SnapshotRefusedError, match=refused):
        data.take_snapshot(copy_of(data, "in-use"))
    assert copy_of(data, "in-use") not in databases(loaded)


def test_the_servers_own_df_reports_the_free_space_this_machine_sees(loaded):
    """The way a remote server's free space is learned, checked here against the local answer."""
    import shutil

    data = copying()
    with data._on_server().connect() as conn:
        directory = conn.execute("SELECT current_setting('data_directory')").fetchone()[0]
        on_server = PostgresDataTarget.free_bytes_on_server(conn, directory)
    assert abs(on_server - shutil.disk_usage(directory).free) < 256 * 1024 * 1024  # other work writes meanwhile
