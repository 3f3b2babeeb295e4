"""SQL-file migrations against a real PostgreSQL: order, version scoping, atomicity, tamper detection; command migrations."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from airflow_rollout.config import INCLUDE_DIR, MIGRATION_PLACEHOLDERS, CommandMigrations, SqlFileMigrations, load_profile
from airflow_rollout.notify import Redactor
from airflow_rollout.targets.migrations import CommandMigrator, MigrationError, SqlFileMigrator, migrations_for
from airflow_rollout.targets.postgres import PostgresDataTarget, PostgresTarget
from airflow_rollout.versions import VersionScheme


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


@pytest.fixture
def patch_tree(tmp_path):
    # Seed 003's tags: v1.0-p2 is v1.0 with its P2 improvements, released after v1.0.
    for relative in ["0001_base.sql", "v1.1/0001_c.sql", "v1.0-p2/0001_b.sql", "v1.0/0001_a.sql", "v1.0-rc1/0001_rc.sql"]:
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("SELECT 1;")
    return tmp_path


def ids(directory, version, scheme=None):
    return [m.migration_id for m in (migrations_for(directory, version, scheme) if scheme else migrations_for(directory, version))]


def test_version_directories_follow_the_profiles_scheme(patch_tree):
    patch = VersionScheme.PATCH_SUFFIX
    in_order = ["0001_base.sql", "v1.0-rc1/0001_rc.sql", "v1.0/0001_a.sql", "v1.0-p2/0001_b.sql", "v1.1/0001_c.sql"]
    assert ids(patch_tree, "v1.1", patch) == in_order
    assert ids(patch_tree, "v1.0", patch) == ["0001_base.sql", "v1.0-rc1/0001_rc.sql", "v1.0/0001_a.sql"]  # the patch comes later
    assert ids(patch_tree, "v1.0-p2", patch)[-1] == "v1.0-p2/0001_b.sql"


def test_under_semver_a_patch_suffix_is_a_pre_release(patch_tree):
    # Semver, the default, reads "-p2" as a pre-release: before v1.0 (and "p2" < "rc1"), so a v1.0 release already
    # applies it. This is why seed 003's profile says `version_scheme: patch_suffix`.
    expected = ["0001_base.sql", "v1.0-p2/0001_b.sql", "v1.0-rc1/0001_rc.sql", "v1.0/0001_a.sql", "v1.1/0001_c.sql"]
    assert ids(patch_tree, "v1.1") == ids(patch_tree, "v1.1", VersionScheme.SEMVER) == expected
    assert "v1.0-p2/0001_b.sql" in ids(patch_tree, "v1.0")


def test_a_directory_or_release_the_scheme_cannot_order_is_an_error(patch_tree):
    with pytest.raises(MigrationError, match=r"v1\.0-p2: a migrations sub-directory must be named after a version .*PEP 440"):
        migrations_for(patch_tree, "1.1", VersionScheme.PEP440)
    with pytest.raises(MigrationError, match=r"cannot choose the migrations for release '1\.1\.post1'.*version_scheme: pep440"):
        migrations_for(patch_tree, "1.1.post1")


def test_the_migrator_applies_in_the_scheme_it_is_given(scratch_db, patch_tree):
    target = PostgresDataTarget(config=PostgresTarget.model_validate({"kind": "postgres", "name": "unit", "conn_id": "unit_db"}))
    config = SqlFileMigrations(kind="sql_files", path=str(patch_tree))
    m = SqlFileMigrator(target=target, config=config, scheme=VersionScheme.PATCH_SUFFIX)
    assert [p.migration_id for p in m.pending("v1.1")] == ids(patch_tree, "v1.1", VersionScheme.PATCH_SUFFIX)
    assert [p.migration_id for p in SqlFileMigrator(target=target, config=config).pending("v1.0")][1] == "v1.0-p2/0001_b.sql"


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


# --- command migrations ------------------------------------------------------------------------------------

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "profiles"
TRACEBACK_SCRIPT = """
import sys
print("INFO  [alembic.runtime.migration] Running upgrade 1a2b -> 3c4d, add priority")
print("noise " * 400, file=sys.stderr)
raise RuntimeError('column "priority" of relation "items" already exists')
"""


def command_migrations(**fields) -> CommandMigrations:
    return CommandMigrations.model_validate({"kind": "command", **fields})


def test_the_migrator_expands_exactly_the_placeholders_a_profile_may_use():
    assert set(CommandMigrator(config=command_migrations(command=["x"]), version="1.0.0").placeholders()) == MIGRATION_PLACEHOLDERS


def test_placeholders_are_expanded_in_the_command_and_the_env():
    config = command_migrations(
        command=["{python}", "-c", "import os, sys; print(sys.argv[1], os.environ['TAG'], os.environ['ROOT'])", "{version}"],
        env={"TAG": "v{version}", "ROOT": "{include}"},
    )
    assert CommandMigrator(config=config, version="1.2.0").run() == f"1.2.0 v1.2.0 {INCLUDE_DIR}"


def test_a_failing_command_leads_with_the_command_and_ends_with_the_exception_line(caplog, tmp_path):
    script = tmp_path / "migrate.py"
    script.write_text(TRACEBACK_SCRIPT)
    config = command_migrations(command=["{python}", str(script), "upgrade", "{version}"])
    with caplog.at_level(logging.ERROR, logger="airflow_rollout.targets.migrations"), pytest.raises(MigrationError) as caught:
        CommandMigrator(config=config, version="1.2.0").run()
    # As configured, placeholders unexpanded; then the traceback's last line, not the last 2,000 characters of output.
    assert str(caught.value) == (
        f"migration command `{{python}} {script} upgrade {{version}}` exited with 1: "
        """RuntimeError: column "priority" of relation "items" already exists"""
    )
    # The whole output is in the task log.
    logged = caplog.text
    assert "Traceback (most recent call last)" in logged and "Running upgrade 1a2b -> 3c4d" in logged and "noise " * 400 in logged


def test_an_inline_script_is_cut_in_the_message():
    config = command_migrations(
        command=["{python}", "-c", "import sys\n" + "x = 1\n" * 100 + "sys.exit('schema is newer than this build')"]
    )
    with pytest.raises(MigrationError) as caught:
        CommandMigrator(config=config, version="1.2.0").run()
    message = str(caught.value)
    assert message.startswith("migration command `{python} -c 'import sys\nx = 1\n")
    assert message.endswith("…` exited with 1: schema is newer than this build")
    assert len(message) < 300 and sys.executable not in message


def test_a_url_only_tool_gets_its_url_from_the_environment_through_sh(monkeypatch):
    # The README's idiom: sh -c 'exec tool db upgrade "$DATABASE_URL"' migrate, with the URL from a connection.
    profile = load_profile("url_argument", FIXTURES / "valid")
    configured = profile.data_targets[0].migrations
    assert isinstance(configured, CommandMigrations)
    uri = "postgresql://app@db.example.com:5432/orders"  # no password: nothing secret to echo
    monkeypatch.setenv("AIRFLOW_CONN_ORDERS_DB", uri)
    # The same shape with a harmless tool in place of `tool db upgrade`: printf shows the argument it was given.
    harmless = configured.model_copy(update={"command": ["sh", "-c", 'exec printf "argv: %s\\n" "$DATABASE_URL"', "migrate"]})
    assert CommandMigrator(config=harmless, version="1.0.0").run() == f"argv: {uri}"


def test_exec_hands_the_exit_status_of_the_tool_back(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_ORDERS_DB", "postgresql://app@db.example.com:5432/orders")
    config = command_migrations(
        command=["sh", "-c", 'exec sh -c \'echo "FATAL: cannot reach $1" >&2; exit 3\' tool "$DATABASE_URL"', "migrate"],
        env_from_connections={"DATABASE_URL": "orders_db"},
    )
    with pytest.raises(MigrationError) as caught:
        CommandMigrator(config=config, version="1.0.0").run()
    assert str(caught.value).endswith("exited with 3: FATAL: cannot reach postgresql://app@db.example.com:5432/orders")


def test_a_password_the_tool_prints_is_redacted_before_slack_and_the_ledger(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SECRET_DB", "postgresql://app:S3cret-Pa55@db.example.com:5432/orders")
    config = command_migrations(
        command=["sh", "-c", 'echo "error: could not connect to $DATABASE_URL" >&2; exit 2', "migrate"],
        env_from_connections={"DATABASE_URL": "secret_db"},
    )
    with pytest.raises(MigrationError) as caught:
        CommandMigrator(config=config, version="1.0.0").run()
    # As tasks.run_step words and redacts it; the command is shown as configured, never with the URI in it.
    error = Redactor.for_connections(["secret_db"])(f"{type(caught.value).__name__}: {caught.value}")
    assert error == (
        "MigrationError: migration command `sh -c 'echo \"error: could not connect to $DATABASE_URL\" >&2; exit 2' migrate` "
        "exited with 2: error: could not connect to postgresql://app:***@db.example.com:5432/orders"
    )
