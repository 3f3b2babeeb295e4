"""System profiles: the fixtures under tests/fixtures/profiles pin what loads and how each mistake is reported."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from airflow_rollout.config import (
    BackupFormat,
    CommandMigrations,
    HttpCheck,
    LatencyCheck,
    ProfileError,
    RollbackCriteria,
    SqlFileMigrations,
    SystemProfile,
    configured_systems,
    load_profile,
    parse_profile,
)
from airflow_rollout.targets.local_process import LocalProcessTarget

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "profiles"
VALID_DIR = FIXTURES / "valid"
INVALID_DIR = FIXTURES / "invalid"
INVALID_FIXTURES = sorted(INVALID_DIR.glob("*.yaml"))


def expectations(path: Path) -> list[str]:
    """The `# expect: ...` lines a fixture opens with; the first line must be one, so none is forgotten."""
    lines = path.read_text().splitlines()
    assert lines and lines[0].startswith("# expect: "), f"{path.name} must start with '# expect: <substring>'"
    found: list[str] = []
    for line in lines:
        if not line.startswith("# expect: "):
            break
        found.append(line.removeprefix("# expect: "))
    return found


def minimal_data() -> dict[str, Any]:
    """The minimal fixture as a dict, for tests that break it in one place."""
    loaded: dict[str, Any] = yaml.safe_load((VALID_DIR / "minimal.yaml").read_text())
    return loaded


def unset_fields(model: BaseModel, where: str) -> list[str]:
    """Fields left at their default anywhere in the tree, as dotted paths."""
    missing = [f"{where}.{name}" for name in type(model).model_fields if name not in model.model_fields_set]
    for name in type(model).model_fields:
        value = getattr(model, name)
        children = value if isinstance(value, list) else [value]
        for index, child in enumerate(children):
            if isinstance(child, BaseModel):
                missing += unset_fields(child, f"{where}.{name}[{index}]")
    return missing


# --- valid profiles ------------------------------------------------------------------------------------


def test_at_least_three_valid_fixtures() -> None:
    assert {"minimal", "full", "command_migrations"} <= set(configured_systems(VALID_DIR))


@pytest.mark.parametrize("system", configured_systems(VALID_DIR))
def test_valid_fixture_loads(system: str) -> None:
    profile = load_profile(system, VALID_DIR)
    assert profile.name == system


def test_minimal_profile_takes_the_seed_defaults() -> None:
    profile = load_profile("minimal", VALID_DIR)
    assert profile.data_targets == []
    assert profile.slack_conn_id is None
    assert profile.approvers == []
    assert profile.rollback_criteria == RollbackCriteria()
    check = profile.checks[0]
    assert isinstance(check, HttpCheck)
    assert (check.method, check.expect_status, check.critical) == ("GET", 200, True)
    app = profile.app("web")
    assert app.base_url == "http://127.0.0.1:8080"
    assert (app.readiness.path, app.readiness.timeout_seconds) == ("/health", 60)


def test_full_fixture_really_sets_every_field() -> None:
    # If a field is added to the models, this fixture must grow with it or the test says which one is missing.
    profile = load_profile("full", VALID_DIR)
    assert unset_fields(profile, "full") == []
    assert {type(c) for c in profile.checks} == {HttpCheck, LatencyCheck}
    assert isinstance(profile.data_targets[0].migrations, SqlFileMigrations)
    assert profile.data_targets[0].migrations.resolved_path() == ROOT / "include" / "migrations" / "full"
    assert profile.approvers[0].name == "Alice Admin"


def test_command_migrations_with_parallel_directory_backup() -> None:
    profile = load_profile("command_migrations", VALID_DIR)
    target = profile.data_targets[0]
    assert target.backup.format is BackupFormat.DIRECTORY
    assert target.backup.jobs == 3
    assert isinstance(target.migrations, CommandMigrations)
    assert target.migrations.command == ["alembic", "upgrade", "head"]
    assert target.migrations.timeout_seconds == 600


def test_shipped_demo_profile_loads_with_seed_criteria() -> None:
    profile = load_profile("demo", ROOT / "include" / "systems")
    assert profile.name == "demo"
    assert [a.name for a in profile.app_targets] == ["web"]
    assert [c.name for c in profile.checks] == ["health", "items_smoke", "items_latency"]
    assert profile.connection_ids() == ["rollout_ledger", "demo_db", "slack_demo", "slack_demo_files"]
    # The demo says it shows seed 003's numbers; they must be the code's defaults too.
    assert profile.rollback_criteria == RollbackCriteria()


# --- invalid profiles ----------------------------------------------------------------------------------


def test_at_least_ten_invalid_fixtures() -> None:
    assert len(INVALID_FIXTURES) >= 10


@pytest.mark.parametrize("path", INVALID_FIXTURES, ids=lambda p: p.stem)
def test_invalid_fixture_is_rejected_naming_file_and_field(path: Path) -> None:
    expected = expectations(path)
    with pytest.raises(ProfileError) as caught:
        load_profile(path.stem, INVALID_DIR)
    message = str(caught.value)
    assert str(path) in message
    for substring in expected:
        assert substring in message
    # Each fixture is broken in exactly one way, so one mistake must not be reported as several.
    if "problem(s) in the system profile" in message:
        assert f"{path}: 1 problem(s)" in message


def test_parse_profile_reports_every_problem_with_its_source() -> None:
    data: dict[str, Any] = {
        "name": "Bad Name",
        "ledger_conn_id": "ledger",
        "app_targets": [{"name": "web", "kind": "local_process", "command": ["x"], "port": 80, "colour": "red"}],
        "checks": [{"name": "health", "kind": "http", "app": "web", "path": "/health", "expect_status": 999}],
    }
    with pytest.raises(ProfileError) as caught:
        parse_profile(data, source="somewhere.yaml")
    message = str(caught.value)
    assert message.startswith("somewhere.yaml: 4 problem(s) in the system profile:")
    assert "  - name: 'Bad Name' does not match ^[a-z][a-z0-9_-]{0,62}$" in message
    assert "  - app_targets[0].port: Input should be greater than or equal to 1024" in message
    assert "  - app_targets[0].colour: unknown field (check its spelling and indentation)" in message
    assert "  - checks[0].expect_status: Input should be less than or equal to 599" in message


def test_env_connection_with_a_bad_id_names_the_variable() -> None:
    data = minimal_data()
    data["app_targets"][0]["env_from_connections"] = {"DATABASE_URL": "demo db"}
    with pytest.raises(ProfileError, match=r"app_targets\[0\]\.env_from_connections\.DATABASE_URL: 'demo db' does not match"):
        parse_profile(data, source="x.yaml")


def test_unknown_kind_is_named() -> None:
    data = minimal_data()
    data["checks"][0]["kind"] = "grpc"
    with pytest.raises(ProfileError) as caught:
        parse_profile(data, source="x.yaml")
    assert "checks[0]:" in str(caught.value)
    assert "'http', 'latency'" in str(caught.value)


def test_minimal_dict_helper_is_itself_valid() -> None:
    # The two tests above break the minimal fixture in one place; that only means something if it parses.
    assert isinstance(parse_profile(minimal_data(), source="minimal.yaml"), SystemProfile)


# --- finding profiles ----------------------------------------------------------------------------------


def test_unknown_system_lists_the_configured_ones(tmp_path: Path) -> None:
    for name in ("beta", "alpha"):
        (tmp_path / f"{name}.yaml").write_text("name: " + name)
    with pytest.raises(ProfileError) as caught:
        load_profile("nope", tmp_path)
    message = str(caught.value)
    assert "unknown system 'nope'" in message
    assert str(tmp_path / "nope.yaml") in message
    assert "configured systems: alpha, beta" in message


def test_unknown_system_in_an_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match=r"configured systems: none"):
        load_profile("nope", tmp_path)


@pytest.mark.parametrize("system", ["../demo", "Demo", "", "demo.yaml", "a b", "x" * 64], ids=repr)
def test_system_name_is_checked_before_touching_the_file_system(system: str, tmp_path: Path) -> None:
    # A name from the trigger form must never become a path outside the profiles directory.
    with pytest.raises(ProfileError, match=r"is not a system name"):
        load_profile(system, tmp_path)


def test_configured_systems_ignores_files_that_are_not_profile_names(tmp_path: Path) -> None:
    for file_name in (
        "alpha.yaml",
        "beta-2.yaml",
        "c_3.yaml",
        "Bad.yaml",
        "_private.yaml",
        "1st.yaml",
        "with space.yaml",
        "dotted.name.yaml",
        "gamma.yml",
        "notes.txt",
    ):
        (tmp_path / file_name).write_text("")
    assert configured_systems(tmp_path) == ["alpha", "beta-2", "c_3"]


def test_configured_systems_reads_the_environment_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "only.yaml").write_text("")
    monkeypatch.setenv("ROLLOUT_SYSTEMS_DIR", str(tmp_path))
    assert configured_systems() == ["only"]


# --- connection ids ------------------------------------------------------------------------------------


def test_connection_ids_order_and_deduplication() -> None:
    app = {"kind": "local_process", "command": ["serve"], "port": 8000}
    profile = parse_profile(
        {
            "name": "conns",
            "ledger_conn_id": "ledger",
            "slack_conn_id": "slack",
            "data_targets": [
                {
                    "name": "first",
                    "kind": "postgres",
                    "conn_id": "db_a",
                    "migrations": {"kind": "command", "command": ["migrate"], "env_from_connections": {"A": "db_b", "L": "ledger"}},
                },
                {"name": "second", "kind": "postgres", "conn_id": "db_a", "migrations": {"kind": "sql_files", "path": "m"}},
                {"name": "third", "kind": "postgres", "conn_id": "db_d"},
            ],
            "app_targets": [
                {**app, "name": "one", "env_from_connections": {"X": "db_c", "Y": "db_b"}},
                {**app, "name": "two", "port": 8001, "env_from_connections": {"S": "slack"}},
            ],
            "checks": [{"name": "health", "kind": "http", "app": "one", "path": "/"}],
        },
        source="conns.yaml",
    )
    # Ledger first (nothing is recorded without it), Slack last; each id once, where it first appears.
    assert profile.connection_ids() == ["ledger", "db_a", "db_b", "db_d", "db_c", "slack"]


def test_the_connection_a_check_is_sent_as_is_one_the_release_needs() -> None:
    # preflight refuses a release whose smoke user or token connection is missing, and its secret is redacted
    assert "web_writer" in load_profile("full", VALID_DIR).connection_ids()
    assert "routing_smoke_user" in load_profile("routing-ml-platform").connection_ids()


def test_connection_ids_without_slack_or_data() -> None:
    profile = load_profile("minimal", VALID_DIR)
    assert profile.connection_ids() == ["rollout_ledger"]


def test_connection_ids_of_command_migrations_fixture() -> None:
    profile = load_profile("command_migrations", VALID_DIR)
    assert profile.connection_ids() == ["rollout_ledger", "orders_db", "audit_db", "cache_redis", "slack_release"]


# --- placeholders ----------------------------------------------------------------------------------------


def with_migration(**fields: Any) -> dict[str, Any]:
    """The minimal fixture with one postgres target migrated by a command."""
    data = minimal_data()
    migrations = {"kind": "command", "command": ["alembic", "upgrade", "head"], **fields}
    data["data_targets"] = [{"name": "app_db", "kind": "postgres", "conn_id": "app_db", "migrations": migrations}]
    return data


def test_migration_command_takes_what_the_migrator_expands() -> None:
    command = ["{python}", "{include}/migrate.py", "--to", "{version}"]
    profile = parse_profile(with_migration(command=command, env={"TAG": "{version}", "ROOT": "{include}"}), source="x.yaml")
    migrations = profile.data_targets[0].migrations
    assert isinstance(migrations, CommandMigrations)
    assert migrations.command == command


@pytest.mark.parametrize("placeholder", ["{typo}", "{port}", "{state_dir}", "{app_dir}", "{Version}"])
def test_unknown_placeholder_in_a_migration_command_is_refused(placeholder: str) -> None:
    # {port}, {state_dir} and {app_dir} belong to app commands: a migration would get them literally.
    with pytest.raises(ProfileError) as caught:
        parse_profile(with_migration(command=["tool", f"--arg={placeholder}"]), source="x.yaml")
    message = str(caught.value)
    assert "x.yaml: 1 problem(s)" in message
    assert (
        f"  - data_targets[0].migrations.command: unknown placeholder {placeholder} in '--arg={placeholder}'; "
        "allowed: {include}, {python}, {version}"
    ) in message


def test_unknown_placeholder_in_a_migration_env_value_is_refused() -> None:
    with pytest.raises(ProfileError, match=r"data_targets\[0\]\.migrations\.env: unknown placeholder \{tag\} in '\{tag\}'"):
        parse_profile(with_migration(env={"BACKEND_TAG": "{tag}"}), source="x.yaml")


def test_app_and_migration_commands_share_one_placeholder_message() -> None:
    data = with_migration(command=["tool", "{typo}"])
    data["app_targets"][0]["command"] = ["serve", "{typo}"]
    with pytest.raises(ProfileError) as caught:
        parse_profile(data, source="x.yaml")
    lines = str(caught.value).splitlines()[1:]
    assert [line.split(": ", 1)[1].split("; allowed: ")[0] for line in lines] == ["unknown placeholder {typo} in '{typo}'"] * 2
    assert lines[0].endswith("allowed: {include}, {python}, {version}")
    assert lines[1].endswith("allowed: {app_dir}, {include}, {port}, {python}, {state_dir}, {version}")


def test_a_shell_variable_in_braces_gets_a_hint() -> None:
    with pytest.raises(ProfileError, match=r"unknown placeholder \{HOME\} .*; for a shell variable in a shell script write \$HOME"):
        parse_profile(with_migration(command=["sh", "-c", 'exec tool "${HOME}"', "migrate"]), source="x.yaml")


def test_app_command_takes_state_dir_and_app_dir() -> None:
    data = minimal_data()
    data["app_targets"][0]["command"] = ["serve", "--pid-dir", "{app_dir}", "--models", "{state_dir}/models"]
    app = parse_profile(data, source="x.yaml").app("web")
    assert isinstance(app, LocalProcessTarget)
    assert app.command[2::2] == ["{app_dir}", "{state_dir}/models"]


def test_url_argument_fixture_keeps_the_url_in_the_environment() -> None:
    # The README's idiom for a tool that takes the database URL only as an argument: no placeholder carries a URI.
    profile = load_profile("url_argument", VALID_DIR)
    migrations = profile.data_targets[0].migrations
    assert isinstance(migrations, CommandMigrations)
    assert migrations.command == ["sh", "-c", 'exec tool db upgrade "$DATABASE_URL"', "migrate"]
    assert migrations.env_from_connections == {"DATABASE_URL": "orders_db"}
    assert profile.connection_ids() == ["rollout_ledger", "orders_db"]


# --- plain-text HTTP expectations -------------------------------------------------------------------------


def test_text_expectations_load() -> None:
    checks = load_profile("url_argument", VALID_DIR).checks
    assert isinstance(checks[0], HttpCheck) and isinstance(checks[1], HttpCheck)
    assert (checks[0].expect_text, checks[0].expect_text_regex) == ("{version}", None)
    assert (checks[1].expect_text, checks[1].expect_text_regex) == (None, r"{version}\+[0-9a-f]{7,40}")


@pytest.mark.parametrize("regex", ["[0-9", "*x", "(?P<v>1)(?P<v>2)", "{version}(", r"\p"])
def test_a_text_regex_that_does_not_compile_is_refused_at_load(regex: str) -> None:
    data = minimal_data()
    data["checks"][0]["expect_text_regex"] = regex
    with pytest.raises(ProfileError) as caught:
        parse_profile(data, source="x.yaml")
    assert f"  - checks[0].expect_text_regex: `{regex}` is not a valid Python regular expression: " in str(caught.value)


def test_a_status_out_of_range_in_a_list_of_statuses_is_refused_once() -> None:
    data = minimal_data()
    data["checks"] = [{"name": "health", "kind": "http", "app": "web", "path": "/health", "expect_status": [200, 700]}]
    with pytest.raises(ProfileError) as caught:
        parse_profile(data, source="x.yaml")
    assert str(caught.value).startswith("x.yaml: 1 problem(s) in the system profile:")
    assert "  - checks[0].expect_status: Input should be less than or equal to 599" in str(caught.value)
