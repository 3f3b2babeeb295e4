"""SQL-file migrations against a real PostgreSQL: order, version scoping, atomicity, tamper detection."""

from __future__ import annotations

import pytest

from rollout.config import PostgresTarget, SqlFileMigrations
from rollout.targets.migrations import MigrationError, SqlFileMigrator, migrations_for
from rollout.targets.postgres import PostgresDataTarget


@pytest.fixture
def tree(tmp_path):
    for relative, sql in {
        "0001_always.sql": "CREATE TABLE t (id int PRIMARY KEY);",
        "1.10.0/0001_later.sql": "ALTER TABLE t ADD COLUMN later int;",
        "1.2.0/0002_second.sql": "ALTER TABLE t ADD COLUMN second int;",
        "1.2.0/0001_first.sql": "INSERT INTO t VALUES (1), (2);",
        "2.0.0-rc.1/0001_rc.sql": "ALTER TABLE t ADD COLUMN rc int;",
    }.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sql)
    return tmp_path


def test_migrations_run_top_level_first_then_by_version_up_to_the_target(tree):
    assert [m.migration_id for m in migrations_for(tree, "1.2.0")] == ["0001_always.sql", "1.2.0/0001_first.sql", "1.2.0/0002_second.sql"]
    assert [m.migration_id for m in migrations_for(tree, "2.0.0-rc.1")][-2:] == ["1.10.0/0001_later.sql", "2.0.0-rc.1/0001_rc.sql"]
    assert "2.0.0-rc.1/0001_rc.sql" not in [m.migration_id for m in migrations_for(tree, "1.99.0")]


def test_a_directory_not_named_after_a_version_is_an_error(tree):
    (tree / "next").mkdir()
    with pytest.raises(MigrationError, match="named after a version"):
        migrations_for(tree, "1.0.0")


def migrator(path) -> SqlFileMigrator:
    target = PostgresDataTarget(config=PostgresTarget.model_validate({"kind": "postgres", "name": "unit", "conn_id": "unit_db"}))
    return SqlFileMigrator(target=target, config=SqlFileMigrations(kind="sql_files", path=str(path)))


def test_a_failing_migration_is_rolled_back_alone_and_a_retry_resumes(scratch_db, tree):
    (tree / "1.2.0" / "0003_broken.sql").write_text("ALTER TABLE t ADD COLUMN third int; INSERT INTO t VALUES (1);")
    m = migrator(tree)
    applied = []
    with pytest.raises(MigrationError, match=r"1\.2\.0/0003_broken\.sql failed and was rolled back: .*duplicate key"):
        for migration in m.pending("1.2.0"):
            m.apply(migration, "r1")
            applied.append(migration.migration_id)
    assert applied == ["0001_always.sql", "1.2.0/0001_first.sql", "1.2.0/0002_second.sql"]
    assert "third" not in scratch_db.psql(
        "unit", "SELECT string_agg(column_name, ',') FROM information_schema.columns WHERE table_name = 't'"
    )
    assert [p.migration_id for p in m.pending("1.2.0")] == ["1.2.0/0003_broken.sql"]


def test_editing_an_applied_migration_is_refused(scratch_db, tree):
    m = migrator(tree)
    for migration in m.pending("1.2.0"):
        m.apply(migration, "r1")
    (tree / "1.2.0" / "0001_first.sql").write_text("INSERT INTO t VALUES (3);")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        m.pending("1.2.0")
