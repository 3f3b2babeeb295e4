"""snapshot_keep: promoted releases keep their database copies (the newest N, the older ones dropped), each recorded in
the ledger under its release; a later rollback switches in its own release's copy only, and a kept one only once its
fingerprint proves it. The release's own functions against the real PostgreSQL and ledger."""

from __future__ import annotations

import pytest
from observe import databases

from airflow_rollout.config import parse_profile
from airflow_rollout.context import ReleaseContext
from airflow_rollout.ledger import FingerprintStage, ReleaseStatus, SnapshotState
from airflow_rollout.release.backup import backup
from airflow_rollout.release.migrate import take_snapshots
from airflow_rollout.release.post_deploy import keep_or_drop_snapshots
from airflow_rollout.release.rollback import restore_data


@pytest.fixture
def releases(scratch_db, tmp_path):
    """Releases of a system (named after the test: the ledger is the session's) keeping one promoted copy of `unit`."""
    scratch_db.psql(
        "unit", "CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 500) g"
    )
    profile = parse_profile(
        {
            "name": f"keep-{tmp_path.name[-20:]}".replace("_", "-"),
            "ledger_conn_id": "rollout_ledger",
            "deploy_order": "stop_first",
            "data_targets": [{"name": "db", "kind": "postgres", "conn_id": "unit_db", "snapshot": "database_copy", "snapshot_keep": 1}],
            "app_targets": [{"name": "web", "kind": "local_process", "command": ["{python}", "-m", "http.server", "{port}"], "port": 8080}],
            "checks": [{"name": "health", "kind": "http", "app": "web", "path": "/health"}],
        },
        "the test",
    )

    def release(version: str, change: str) -> ReleaseContext:
        """Backed up, copied, changed by `change` (its migration) and promoted."""
        ctx = ReleaseContext(profile=profile, release_id=f"{profile.name}-{version}", version=version, state=tmp_path)
        ctx.ledger.ensure_schema()
        ctx.ledger.open_release(release_id=ctx.release_id, system=profile.name, version=version, triggered_by="test")
        backup(ctx)
        take_snapshots(ctx)
        scratch_db.psql("unit", change)
        ctx.ledger.set_status(ctx.release_id, ReleaseStatus.PROMOTED, final=True)
        keep_or_drop_snapshots(ctx)
        return ctx

    yield release
    for name in databases(scratch_db):
        if name.startswith("unit_before_"):
            scratch_db.psql("postgres", f'DROP DATABASE "{name}" WITH (FORCE)')


def copy_of(ctx: ReleaseContext) -> str:
    row = ctx.ledger.snapshot(ctx.release_id, "db")
    assert row is not None
    return row.name


def test_promoted_releases_keep_the_newest_copies_and_drop_the_older_ones(releases, postgres):
    first = releases("1.1.0", "UPDATE items SET v = 'one' WHERE id = 1")
    assert copy_of(first).startswith("unit_before_1_1_0_") and copy_of(first) in databases(postgres)
    assert first.ledger.snapshot(first.release_id, "db").state == SnapshotState.KEPT.value

    second = releases("1.2.0", "UPDATE items SET v = 'two' WHERE id = 2")
    assert copy_of(second) in databases(postgres) and copy_of(first) not in databases(postgres)  # snapshot_keep: 1
    assert first.ledger.snapshot(first.release_id, "db").state == SnapshotState.DROPPED.value
    assert second.ledger.snapshot(second.release_id, "db").state == SnapshotState.KEPT.value
    record = second.ledger.record_as_json(second.release_id)
    assert copy_of(second) in record and '"state": "kept"' in record

    assert keep_or_drop_snapshots(second) == {"db": f"kept {copy_of(second)}"}  # run again: the same, nothing twice


def test_a_later_rollback_of_a_promoted_release_switches_in_its_kept_copy_once_its_fingerprint_proves_it(releases, postgres):
    ctx = releases("1.1.0", "UPDATE items SET v = 'changed' WHERE id < 10")
    before = ctx.ledger.fingerprint(ctx.release_id, "db", FingerprintStage.BEFORE)
    copy = copy_of(ctx)

    done = restore_data(ctx)

    assert done["db"].startswith(f"switched in {copy}, the copy taken before the migration, its fingerprint equal to before the release")
    assert ctx.data_targets[0].fingerprint() == before and copy not in databases(postgres)
    assert ctx.ledger.snapshot(ctx.release_id, "db").state == SnapshotState.SWITCHED_IN.value


def test_a_kept_copy_altered_since_is_left_alone_and_the_dump_restored(releases, postgres):
    ctx = releases("1.1.0", "UPDATE items SET v = 'changed' WHERE id < 10")
    before = ctx.ledger.fingerprint(ctx.release_id, "db", FingerprintStage.BEFORE)
    copy = copy_of(ctx)
    postgres.psql(copy, "DELETE FROM items WHERE id = 400")  # someone wrote into the kept copy

    done = restore_data(ctx)

    assert done["db"].startswith("restored from ") and f"({copy} not switched in: its fingerprint differs" in done["db"]
    assert ctx.data_targets[0].fingerprint() == before
    assert copy in databases(postgres)  # left as it was, not dropped
    assert ctx.ledger.snapshot(ctx.release_id, "db").state == SnapshotState.KEPT.value


def test_a_rollback_never_switches_in_another_releases_kept_copy(releases, postgres):
    older = releases("1.1.0", "UPDATE items SET v = 'older' WHERE id = 1")
    newer = releases("1.2.0", "UPDATE items SET v = 'newer' WHERE id = 2")  # keeps its copy; the older one's is dropped
    before = older.ledger.fingerprint(older.release_id, "db", FingerprintStage.BEFORE)

    done = restore_data(older)

    assert done["db"].startswith("restored from ")  # its own copy is gone: the dump, not the newer release's copy
    assert older.data_targets[0].fingerprint() == before
    assert copy_of(newer) in databases(postgres)
    assert newer.ledger.snapshot(newer.release_id, "db").state == SnapshotState.KEPT.value
