"""Bad input gets a clear error before anything changes.

Trigger-form params, system profiles and connection ids, each broken in one way per case: the DAG
refuses the params before a task runs, a profile is refused naming its file and what is wrong, and a
missing connection stops the release in `preflight` with the app and data as they were.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from observe import fingerprint, ledger, served_version, task_states
from testenv import slack_messages

from airflow_rollout.config import MAX_PROFILE_BYTES, MAX_PROFILE_NODES, ProfileError, load_profile, parse_profile

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

# --- a) the trigger form -------------------------------------------------------------------------------

HOSTILE_VERSIONS = {
    "semicolon-rm": "1.2.0; rm -rf /",
    "and-reboot": "1.2.0 && reboot",
    "command-substitution": "$(id)",
    "backticks": "`id`",
    "backticks-after-version": "1.2.0`id`",
    "pipe": "1.2.0 | sh",
    "pipe-no-space": "1.2.0|sh",
    "trailing-newline": "1.2.0\n",
    "trailing-newline-then-command": "1.2.0\nrm -rf /",
    "leading-space": " 1.2.0",
    "trailing-space": "1.2.0 ",
    "ten-kilobytes": "1.2.0" + "0" * 10_000,
    "ten-kilobytes-of-digits-and-dots": ".".join(["1"] * 5_000),
    "path-traversal": "../../etc/passwd",
    "slash": "1.2.0/../../x",
    "full-width-digit": "１.2.0",
    "arabic-indic-digit": "١.2.0",
    "cyrillic-izhitsa-for-v": "\u04751.2.0",
    "one-dot-leaders-for-dots": "1\u20242\u20240",
    "nul-byte": "1.2.0\x00",
    "empty": "",
}


@pytest.fixture
def params_of(dags) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    """Validate `conf` against a copy of a DAG's params, as the trigger form and `dag.test` do."""

    def validate(dag_id: str, conf: dict[str, Any]) -> dict[str, Any]:
        candidate = copy.deepcopy(dags[dag_id].params)
        candidate.update(conf)
        return candidate.validate()

    return validate


def test_the_form_accepts_a_well_formed_release(params_of) -> None:
    # The refusals below only mean something if the same form accepts good input.
    assert params_of("release", {"system": "demo", "version": "1.2.0"}) == {"system": "demo", "version": "1.2.0"}
    run_id = "manual__2026-01-01T00:00:00+00:00"
    accepted = params_of("rollback", {"system": "demo", "version": "2.0.0-rc.1", "release_id": run_id, "reason": "p95 doubled"})
    assert accepted["release_id"] == run_id


@pytest.mark.parametrize("reason", [None, "", "no"], ids=["missing", "empty", "too-short"])
def test_rollback_alone_needs_a_reason(params_of, reason) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    conf = {"system": "demo", "version": "1.2.0", "release_id": "manual__2026-01-01T00:00:00+00:00"}
    if reason is not None:
        conf["reason"] = reason
    with pytest.raises(ParamValidationError, match="reason"):
        params_of("rollback", conf)


# An unknown extra key ({"system": "demo", "version": "1.2.0", "extra": "x"}) is accepted by Airflow's
# params validation and passed along unused, so it is not among the refusals here.


@pytest.mark.parametrize("version", HOSTILE_VERSIONS.values(), ids=HOSTILE_VERSIONS.keys())
def test_release_refuses_a_hostile_version(params_of, version: str) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match="version"):
        params_of("release", {"system": "demo", "version": version})


@pytest.mark.parametrize(
    "conf",
    [
        {"system": "other", "version": "1.2.0"},
        {"system": "Demo", "version": "1.2.0"},
        {"system": "demo ", "version": "1.2.0"},
        {"system": "../demo", "version": "1.2.0"},
        {"system": "demo; rm -rf /", "version": "1.2.0"},
        {"system": "", "version": "1.2.0"},
        {"system": None, "version": "1.2.0"},
        {"system": ["demo"], "version": "1.2.0"},
    ],
    ids=["unknown", "capitalised", "trailing-space", "path-traversal", "shell", "empty", "null", "list"],
)
def test_release_refuses_a_system_outside_the_dropdown(params_of, conf: dict[str, Any]) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match="system"):
        params_of("release", conf)


@pytest.mark.parametrize("version", [None, 120, 1.2, ["1.2.0"]], ids=["null", "int", "float", "list"])
def test_release_refuses_a_version_that_is_not_a_string(params_of, version: object) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match="version"):
        params_of("release", {"system": "demo", "version": version})


HOSTILE_RELEASE_IDS = {
    "parent-directory": "../x",
    "dots-alone": "..",
    "dots-inside": "a..b",
    "absolute-path": "/etc/passwd",
    "space": "my release",
    "trailing-newline": "abc\n",
    "newline-alone": "\n",
    "newline-inside": "abc\ndef",
    "shell": "x; rm -rf /",
    "command-substitution": "$(id)",
    "quote": "x'--",
    "too-long": "x" * 251,
}


@pytest.mark.parametrize("dag_id", ["backup", "migrate", "deploy", "verify", "post_deploy", "rollback"])
@pytest.mark.parametrize("release_id", HOSTILE_RELEASE_IDS.values(), ids=HOSTILE_RELEASE_IDS.keys())
def test_phase_dags_refuse_a_hostile_release_id(params_of, dag_id: str, release_id: str) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError, match="release_id"):
        params_of(dag_id, {"system": "demo", "version": "1.2.0", "release_id": release_id})


# --- b) the refusal happens before any task ------------------------------------------------------------


@pytest.mark.e2e
def test_a_hostile_version_is_refused_before_any_task_runs(release_dag, demo, postgres) -> None:
    from airflow.sdk.exceptions import ParamValidationError

    before = fingerprint(demo)

    with pytest.raises(ParamValidationError, match="version"):
        release_dag.test(run_conf={"system": "demo", "version": "1.2.0; rm -rf /"})

    assert served_version() == "1.0.0"
    assert fingerprint(demo) == before
    assert postgres.psql("rollout_ledger", "SELECT count(*) FROM rollout_release").strip() == "0"  # preflight never ran
    assert slack_messages() == []


# --- c) profiles ---------------------------------------------------------------------------------------

NAME = "hostile"


def base_profile() -> dict[str, Any]:
    """The shape of tests/fixtures/profiles/valid/minimal.yaml, plus a data target and the fields broken below."""
    return {
        "name": NAME,
        "ledger_conn_id": "rollout_ledger",
        "data_targets": [
            {
                "name": "app_db",
                "kind": "postgres",
                "conn_id": "app_db",
                "schemas": ["public"],
                "volatile_tables": ["sessions"],
                "backup": {"format": "custom", "compress": 6},
                "migrations": {"kind": "sql_files", "path": "migrations/hostile"},
            }
        ],
        "app_targets": [
            {
                "name": "web",
                "kind": "local_process",
                "command": ["{python}", "-m", "http.server", "{port}"],
                "port": 8080,
                "env_from_connections": {"DATABASE_URL": "app_db"},
                "readiness": {"path": "/health", "timeout_seconds": 20},
            }
        ],
        "checks": [{"name": "health", "kind": "http", "app": "web", "path": "/health"}],
        "rollback_criteria": {"error_rate_rollback": 0.1},
    }


def changed(where: str, value: Any) -> Callable[[], dict[str, Any]]:
    """The base profile with the field at the dotted path `where` (list indexes as numbers) set to `value`."""

    def build() -> dict[str, Any]:
        data = base_profile()
        *parents, last = [int(part) if part.isdigit() else part for part in where.split(".")]
        node: Any = data
        for part in parents:
            node = node[part]
        node[last] = value
        return data

    return build


UNKNOWN = "unknown field (check its spelling and indentation)"

# id: (the broken profile, what the message must say besides the file's path)
BROKEN_FIELDS: dict[str, tuple[Callable[[], dict[str, Any]], list[str]]] = {
    "schema-sql-injection": (
        changed("data_targets.0.schemas", ["public; DROP TABLE items"]),
        ["data_targets[0].schemas[0]: 'public; DROP TABLE items' does not match"],
    ),
    "volatile-table-quote-comment": (
        changed("data_targets.0.volatile_tables", ['x"; --']),
        ["data_targets[0].volatile_tables[0]: 'x\"; --' does not match"],
    ),
    "schema-with-space": (changed("data_targets.0.schemas", ["a b"]), ["data_targets[0].schemas[0]: 'a b' does not match"]),
    "schema-quoted-identifier": (changed("data_targets.0.schemas", ['"public"']), ["data_targets[0].schemas[0]:"]),
    "schema-too-long": (changed("data_targets.0.schemas", ["s" * 64]), ["data_targets[0].schemas[0]:"]),
    "migrations-parent-path": (changed("data_targets.0.migrations.path", "../../etc"), ["data_targets[0].migrations.path:", "climbs out"]),
    "migrations-path-climbing-midway": (
        changed("data_targets.0.migrations.path", "migrations/../../x"),
        ["data_targets[0].migrations.path:", "climbs out"],
    ),
    "migrations-absolute-path-climbing": (
        changed("data_targets.0.migrations.path", "/opt/migrations/../../etc"),
        ["data_targets[0].migrations.path:", "climbs out"],
    ),
    "unknown-key-top-level": (changed("colour", "red"), [f"colour: {UNKNOWN}"]),
    "unknown-key-in-data-target": (changed("data_targets.0.password", "hunter2"), [f"data_targets[0].password: {UNKNOWN}"]),
    "unknown-key-in-backup": (changed("data_targets.0.backup.colour", "red"), [f"data_targets[0].backup.colour: {UNKNOWN}"]),
    "unknown-key-in-migrations": (changed("data_targets.0.migrations.colour", "red"), [f"data_targets[0].migrations.colour: {UNKNOWN}"]),
    "unknown-key-in-readiness": (changed("app_targets.0.readiness.colour", "red"), [f"app_targets[0].readiness.colour: {UNKNOWN}"]),
    "unknown-key-in-check": (changed("checks.0.colour", "red"), [f"checks[0].colour: {UNKNOWN}"]),
    "unknown-key-in-rollback-criteria": (changed("rollback_criteria.colour", "red"), [f"rollback_criteria.colour: {UNKNOWN}"]),
    "ledger-conn-id-with-space": (
        changed("ledger_conn_id", "rollout ledger"),
        ["ledger_conn_id: 'rollout ledger' does not match"],
    ),
    "data-conn-id-with-slash": (changed("data_targets.0.conn_id", "app/db"), ["data_targets[0].conn_id: 'app/db' does not match"]),
    "env-conn-id-with-slash": (
        changed("app_targets.0.env_from_connections", {"DATABASE_URL": "../db"}),
        ["app_targets[0].env_from_connections.DATABASE_URL: '../db' does not match"],
    ),
    "placeholder-env": (
        changed("app_targets.0.command", ["serve", "--env={env}"]),
        ["app_targets[0].command:", "unknown placeholder {env}"],
    ),
    "placeholder-attribute-access": (
        changed("app_targets.0.command", ["serve", "{version.__class__}"]),
        ["app_targets[0].command:", "unknown placeholder {version.__class__}"],
    ),
    "port-below-1024": (changed("app_targets.0.port", 1023), ["app_targets[0].port: Input should be greater than or equal to 1024"]),
    "port-zero": (changed("app_targets.0.port", 0), ["app_targets[0].port: Input should be greater than or equal to 1024"]),
    "check-path-without-slash": (changed("checks.0.path", "health"), ["checks[0].path: expected a URL path starting with '/'"]),
    "check-path-with-space": (changed("checks.0.path", "/health check"), ["checks[0].path: expected a URL path", "without spaces"]),
    "check-path-with-newline": (changed("checks.0.path", "/health\nHost: evil"), ["checks[0].path: expected a URL path"]),
    "check-full-url": (changed("checks.0.path", "http://169.254.169.254/"), ["checks[0].path: expected a URL path"]),
    "readiness-path-without-slash": (
        changed("app_targets.0.readiness.path", "health"),
        ["app_targets[0].readiness.path: expected a URL path"],
    ),
}


def profile_text() -> str:
    return yaml.safe_dump(base_profile(), sort_keys=False)


def alias_bomb() -> str:
    """Nine levels of nine aliases: 9**9 nodes once expanded, from a few hundred bytes."""
    levels = ["l0: &a0 [" + ", ".join(["lol"] * 9) + "]"]
    levels += [f"l{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    return profile_text() + "bomb:\n" + "".join(f"  {level}\n" for level in levels)


# id: (the file's bytes, what the message must say besides the file's path)
BROKEN_FILES: dict[str, tuple[bytes, list[str]]] = {
    "alias-bomb-nine-levels-of-nine": (
        alias_bomb().encode(),
        ["YAML nodes through its aliases", f"at most {MAX_PROFILE_NODES}", "alias bomb?"],
    ),
    "recursive-alias-in-a-list": ((profile_text() + "loop: &loop [*loop]\n").encode(), ["alias refers to a node that contains it"]),
    "recursive-alias-in-a-mapping": (
        (profile_text() + "loop: &loop {self: *loop}\n").encode(),
        ["alias refers to a node that contains it"],
    ),
    "over-256-kib": ((profile_text() + "# " + "x" * MAX_PROFILE_BYTES + "\n").encode(), ["a profile is at most 256 KiB"]),
    "latin-1-bytes": (profile_text().encode() + "description: café\n".encode("latin-1"), ["not UTF-8 text"]),
    "utf-16": (profile_text().encode("utf-16"), ["not UTF-8 text"]),
    "two-documents": ((profile_text() + "---\n" + profile_text()).encode(), ["not valid YAML", "expected a single document"]),
    "undefined-alias": ((profile_text() + "extra: *nowhere\n").encode(), ["not valid YAML", "undefined alias"]),
    "python-object-tag": ((profile_text() + "description: !!python/object/apply:os.system ['id']\n").encode(), ["not valid YAML"]),
}


def test_the_base_profile_is_valid(tmp_path: Path) -> None:
    # Each case below breaks it in exactly one place; that only shows something if it loads as it is.
    (tmp_path / f"{NAME}.yaml").write_text(profile_text())
    assert load_profile(NAME, tmp_path).name == NAME


def test_a_profile_of_exactly_the_size_limit_still_loads(tmp_path: Path) -> None:
    text = profile_text() + "# "
    text += "x" * (MAX_PROFILE_BYTES - len(text.encode()) - 1) + "\n"
    assert len(text.encode()) == MAX_PROFILE_BYTES
    (tmp_path / f"{NAME}.yaml").write_text(text)
    assert load_profile(NAME, tmp_path).name == NAME


def refusal(tmp_path: Path, content: bytes) -> tuple[Path, str]:
    path = tmp_path / f"{NAME}.yaml"
    path.write_bytes(content)
    with pytest.raises(ProfileError) as caught:
        load_profile(NAME, tmp_path)
    return path, str(caught.value)


@pytest.mark.parametrize("case", BROKEN_FIELDS.values(), ids=BROKEN_FIELDS.keys())
def test_a_broken_field_is_refused_naming_file_field_and_problem(tmp_path: Path, case) -> None:
    build, expected = case
    path, message = refusal(tmp_path, yaml.safe_dump(build(), sort_keys=False, allow_unicode=True).encode())
    assert message.startswith(f"{path}: 1 problem(s) in the system profile:"), message
    for substring in expected:
        assert substring in message


@pytest.mark.parametrize("case", BROKEN_FILES.values(), ids=BROKEN_FILES.keys())
def test_a_hostile_file_is_refused_naming_file_and_problem(tmp_path: Path, case) -> None:
    content, expected = case
    path, message = refusal(tmp_path, content)
    assert message.startswith(f"{path}: "), message
    for substring in expected:
        assert substring in message


def test_parse_profile_refuses_the_same_data_without_a_file() -> None:
    # The field checks live in parse_profile, not in the file handling: data from elsewhere is refused too.
    for build, _ in BROKEN_FIELDS.values():
        with pytest.raises(ProfileError):
            parse_profile(build(), source="x.yaml")


# --- d) a connection that does not exist ---------------------------------------------------------------


def test_check_connections_names_every_missing_connection(monkeypatch) -> None:
    from airflow_rollout.release.errors import PreflightError
    from airflow_rollout.release.preflight import check_connections

    monkeypatch.setenv("AIRFLOW_CONN_PRESENT_LEDGER", "postgres://user@127.0.0.1:5432/ledger")
    for name in ("ABSENT_DB", "ABSENT_ENV_DB", "ABSENT_SLACK"):
        monkeypatch.delenv(f"AIRFLOW_CONN_{name}", raising=False)
    data = base_profile()
    data["ledger_conn_id"] = "present_ledger"
    data["slack_conn_id"] = "absent_slack"
    data["data_targets"][0]["conn_id"] = "absent_db"
    data["app_targets"][0]["env_from_connections"] = {"DATABASE_URL": "absent_env_db"}
    profile = parse_profile(data, source="x.yaml")

    with pytest.raises(PreflightError) as caught:
        check_connections(profile)

    message = str(caught.value)
    assert f"system {NAME}: connection(s) 'absent_db', 'absent_env_db', 'absent_slack' not defined in Airflow" in message
    assert "present_ledger" not in message
    assert message.endswith("nothing was changed")


def test_check_connections_passes_when_every_connection_exists(monkeypatch) -> None:
    from airflow_rollout.release.preflight import check_connections

    for name in ("ROLLOUT_LEDGER", "APP_DB"):
        monkeypatch.setenv(f"AIRFLOW_CONN_{name}", "postgres://user@127.0.0.1:5432/db")
    check_connections(parse_profile(base_profile(), source="x.yaml"))


@pytest.mark.e2e
def test_a_missing_data_connection_stops_the_release_in_preflight(release_dag, demo, monkeypatch, capfd) -> None:
    before = fingerprint(demo)

    with monkeypatch.context() as patched:
        patched.delenv("AIRFLOW_CONN_DEMO_DB")
        dag_run = release_dag.test(run_conf={"system": "demo", "version": "1.1.0"})

    states = task_states(dag_run)
    assert states["preflight"] == "failed"
    assert states["backup.backup_data"] == "upstream_failed"
    assert states["migrate.migrate_data"] == "upstream_failed"
    assert states["deploy.deploy_apps"] == "upstream_failed"
    assert states["decide.decide"] == "failed"
    assert dag_run.state == "failed"
    captured = capfd.readouterr()
    task_logs = captured.out + captured.err  # dag.test() prints the task logs
    assert "system demo: connection(s) 'demo_db' not defined in Airflow" in task_logs
    assert "nothing was changed" in task_logs
    with pytest.raises(LookupError):  # refused before the release was recorded
        ledger().release(dag_run.run_id)
    assert served_version() == "1.0.0"
    assert fingerprint(demo) == before  # read with the connection back in place
    assert slack_messages() == []
