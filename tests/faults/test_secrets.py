"""Secrets come from Airflow connections only and never appear in logs, Slack text or the repo.

End to end: a release that is rolled back (the path that says the most: decision, rollback, restore,
the whole record in `report_outcome`'s log) is searched for the database password everywhere an
operator could read it. Statically: no tracked file holds something that looks like a committed secret.
"""

from __future__ import annotations

import json
import logging
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from observe import STATE_DIR, ledger
from testenv import slack_messages, slack_payloads

ROOT = Path(__file__).resolve().parents[2]
BACKUPS_DIR = STATE_DIR / "backups"


def hide(secret: str, text: str) -> str:
    """A failure message may show where a secret leaked, never the secret itself."""
    return text.replace(secret, "<SECRET>")


def lines_with(secret: str, text: str) -> list[str]:
    return [hide(secret, line.strip())[:300] for line in text.splitlines() if secret in line]


def read_text(path: Path) -> str:
    return path.read_bytes().decode("utf-8", errors="replace")


def airflow_log_files() -> list[Path]:
    logs = Path(os.environ["AIRFLOW_HOME"]) / "logs"
    return sorted(p for p in logs.rglob("*") if p.is_file()) if logs.is_dir() else []


def xcom_values(dag_id: str, run_id: str) -> dict[str, str]:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(XComModel.task_id, XComModel.key, XComModel.value).where(XComModel.dag_id == dag_id, XComModel.run_id == run_id)
        ).all()
    return {f"{task_id}/{key}": json.dumps(value, default=str) for task_id, key, value in rows}


def print_standard_logging_to_capfd(monkeypatch) -> None:
    """Make capfd see all that dag.test() prints, the records of `logging.getLogger(...)` loggers included.

    Airflow's structlog loggers write to the sys.stdout of the moment, which capfd captures. Its root
    logging handler, which prints the standard-library records (report_outcome's whole release record
    among them), holds the sys.stdout of when logging was configured: pytest's session-wide capture. It
    must be pointed at capfd's from the test's body; a fixture would see the setup phase's stdout.
    """
    for handler in logging.getLogger().handlers:
        if type(handler) is logging.StreamHandler:
            monkeypatch.setattr(handler, "stream", sys.stdout)


# --- end to end: a rolled-back release ------------------------------------------------------------------


@pytest.mark.e2e
def test_a_rolled_back_release_shows_no_secret_and_keeps_backups_private(release_dag, demo, postgres, capfd, caplog, monkeypatch) -> None:
    secrets = {
        "the database password": postgres.password,
        # A Slack webhook URL is a credential too: it sits in the connection's password field.
        "the Slack webhook URL": json.loads(os.environ["AIRFLOW_CONN_SLACK_DEMO"])["password"],
    }
    assert all(len(secret) >= 16 for secret in secrets.values())  # needles that cannot turn up by chance
    print_standard_logging_to_capfd(monkeypatch)

    dag_run = release_dag.test(run_conf={"system": "demo", "version": "1.2.0"})

    captured = capfd.readouterr()
    release = ledger().release(dag_run.run_id)
    assert release.status == "rolled_back"
    # The task logs really were captured, from structlog and from standard logging alike.
    assert "Done. Returned value was:" in captured.out
    assert f"backup of app_db: {STATE_DIR}" in captured.out
    assert "release record:" in captured.out
    assert "release record:" in caplog.text
    messages = slack_messages()
    assert any("1.2.0 rolled back" in m for m in messages)
    payloads = [json.dumps(payload, ensure_ascii=False) for payload in slack_payloads()]  # blocks and links too
    assert len(payloads) == len(messages) and all('"blocks"' in payload for payload in payloads)
    record = ledger().record_as_json(dag_run.run_id)
    assert "rolled_back" in record
    xcoms = xcom_values("release", dag_run.run_id)
    assert xcoms  # the tasks' return values, shown in the UI
    state_paths = sorted(STATE_DIR.rglob("*"))
    # Service logs and pid files of the app versions; the dumps hold the data, not the connections.
    state_texts = {str(p): read_text(p) for p in state_paths if p.is_file() and not p.is_relative_to(BACKUPS_DIR)}
    assert state_texts

    for what, secret in secrets.items():
        for where, text in (("stdout", captured.out), ("stderr", captured.err), ("log records", caplog.text)):
            assert lines_with(secret, text) == [], f"{what} is in the task logs ({where})"
        for path in airflow_log_files():
            assert lines_with(secret, read_text(path)) == [], f"{what} is in {path}"
        assert [hide(secret, m) for m in messages if secret in m] == [], f"{what} is in a Slack message"
        assert [hide(secret, p)[:300] for p in payloads if secret in p] == [], f"{what} is in a Slack message's blocks"
        assert lines_with(secret, record) == [], f"{what} is in the ledger's record of the release"
        assert [key for key, value in xcoms.items() if secret in value] == [], f"{what} is in an XCom"
        assert [hide(secret, str(p)) for p in state_paths if secret in str(p.relative_to(STATE_DIR))] == [], f"{what} is in a file name"
        for path, text in state_texts.items():
            assert lines_with(secret, text) == [], f"{what} is in {path}"

    # The dumps hold every row: backups/ and everything below it, every dump (a file, or a
    # directory-format one) and everything inside a dump are the owner's alone. Every dump of this test
    # session counts.
    dump = Path(ledger().backup(dag_run.run_id, "app_db").location)
    assert dump.exists() and dump.parent in [p for p in BACKUPS_DIR.glob("*/*") if p.is_dir()]
    wrong = {}
    for path in [BACKUPS_DIR, *BACKUPS_DIR.rglob("*")]:
        expected = 0o700 if path.is_dir() else 0o600
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode != expected:
            wrong[str(path.relative_to(STATE_DIR))] = f"{mode:04o}, expected {expected:04o}"
    assert wrong == {}
    assert not list(BACKUPS_DIR.rglob("*.partial"))  # no half-written dump left behind


# --- static: nothing secret is committed ---------------------------------------------------------------

# A value that only stands for a secret: empty, null, masked, or a reference to be filled in elsewhere.
PLACEHOLDER = re.compile(r"""^(["']?)(|null|~|\*+|<[^<>]*>|\$\{[^{}]*\}|\$[A-Z_][A-Z0-9_]*|\{\{.*\}\}|\{[a-z_]+\})\1$""", re.IGNORECASE)
# `password: value` (or `db_password: ...`) in a YAML or JSON file of include/, where profiles and the demo's data live.
PASSWORD_FIELD = re.compile(
    r"""^[ \t-]*["']?[\w.-]*password["']?[ \t]*:[ \t]*(?P<value>[^#\n]*?)[ \t]*,?[ \t]*(?:#.*)?$""", re.MULTILINE | re.IGNORECASE
)
# An Airflow connection given as a URI with a password in it: AIRFLOW_CONN_<ID>=<scheme>://<user>:<password>@<host>
CONN_URI = re.compile(
    r"""AIRFLOW_CONN_[A-Z0-9_]+["'\]]*[ \t]*[=:][ \t]*["']?[A-Za-z][A-Za-z0-9+.-]*://[^\s:@/'"]*:(?P<value>[^\s@/'"]+)@"""
)
TOKENS = {
    "Slack bot token": re.compile(r"\bxoxb-[0-9]{6,}-[0-9A-Za-z-]{10,}"),
    "Databricks token": re.compile(r"\bdapi[0-9a-f]{16,}"),
    "Slack webhook URL": re.compile(
        r"hooks\.slack\.com/services/T[0-9A-Z]{6,}/B[0-9A-Z]{6,}/(?=[0-9A-Za-z]*[a-z])(?=[0-9A-Za-z]*[0-9])[0-9A-Za-z]{16,}"
    ),
    "private key": re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----"),
}


def secrets_in(path: str, text: str) -> list[str]:
    """What in `text` (the content of `path`, relative to the repository) looks like a committed secret."""
    found = []
    if path.startswith("include/") and path.endswith((".yaml", ".yml", ".json")):
        for match in PASSWORD_FIELD.finditer(text):
            if not PLACEHOLDER.match(match["value"]):
                found.append(f"password field: {match.group(0).strip()[:80]}")
    found += [f"AIRFLOW_CONN_ URI with a password: {m.group(0)[:80]}" for m in CONN_URI.finditer(text) if not PLACEHOLDER.match(m["value"])]
    for kind, pattern in TOKENS.items():
        found += [f"{kind}: {m.group(0)[:12]}..." for m in pattern.finditer(text)]
    return found


def tracked_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return sorted(name for name in listed.split("\0") if name)


# The seeds are vendored verbatim (tests/fixtures/seeds) as the requirements the checklists are checked
# against. Seed 001 shows what never to do with the dummy token below; that exact text, in that file, is not
# a leak. Anything else in the seeds is scanned like every other file.
SEED_DUMMIES = {("tests/fixtures/seeds/001_8b12d28cd9350f1d.txt", "dapi" + "1234567890abcdef")}


def test_no_tracked_file_holds_a_secret() -> None:
    files = tracked_files()
    assert "include/systems/demo.yaml" in files
    # This file as well, tracked or not yet: its examples of leaks must not read as leaks themselves.
    files = sorted({*files, str(Path(__file__).relative_to(ROOT))})
    scanned, leaks = 0, {}
    for name in files:
        path = ROOT / name
        if not path.is_file():  # deleted in the working tree
            continue
        data = path.read_bytes()
        if b"\0" in data:
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        for dummy_path, dummy in SEED_DUMMIES:
            if name == dummy_path:
                text = text.replace(dummy, "(the seed's dummy token)")
        scanned += 1
        if found := secrets_in(name, text):
            leaks[name] = found
    assert scanned >= 50
    assert leaks == {}


# Examples are joined from two pieces at run time, so that this file never holds a leak in one piece.
LEAKS = {
    "yaml-password": ("include/systems/billing.yaml", "ledger_conn_id: x\npass" + "word: hunter2\n"),
    "yaml-password-quoted": ("include/systems/billing.yaml", "data:\n  - pass" + 'word: "S3cr3t!"  # prod\n'),
    "yaml-password-in-list-item": ("include/systems/billing.yml", "- pass" + "word: abc123\n"),
    "yaml-prefixed-password-key": ("include/systems/billing.yaml", "  db_pass" + "word: 'abc123'\n"),
    "json-password": ("include/demo_app/releases/9.9.9.json", '{\n  "pass' + 'word": "hunter2",\n  "x": 1\n}\n'),
    "conn-uri-in-shell": ("scripts/env.sh", "export AIRFLOW_CONN_" + "DEMO_DB='postgresql://postgres:s3cr3t@db:5432/demo'\n"),
    "conn-uri-in-python": ("tests/x.py", 'os.environ["AIRFLOW_CONN_' + 'LEDGER"] = "postgres://rollout:hunter2@127.0.0.1/ledger"\n'),
    "conn-uri-in-yaml": ("docker-compose.yml", "  AIRFLOW_CONN_" + "DB: mysql://root:toor@mysql:3306/app\n"),
    "slack-bot-token": ("README.md", "token xox" + "b-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx\n"),
    "databricks-token": ("notes.txt", "DATABRICKS_TOKEN=da" + "pi0123456789abcdef0123456789abcdef\n"),
    "slack-webhook": ("x.py", "url = 'https://hooks.slack.com/services/T0A1B2C3D4/B0A1B2C3D4/" + "aB3dE5fG7hJ9kL1mN3pQ5rS7'\n"),
    "private-key": ("deploy/key.pem", "-----BEGIN RSA PRIVATE" + " KEY-----\nMIIE...\n"),
}
HARMLESS = {
    "yaml-password-empty": ("include/systems/billing.yaml", "password:\n"),
    "yaml-password-empty-quotes": ("include/systems/billing.yaml", 'password: ""\n'),
    "yaml-password-null": ("include/systems/billing.yaml", "password: null  # set in Airflow\n"),
    "yaml-password-env-reference": ("include/systems/billing.yaml", "password: ${DB_PASSWORD}\n"),
    "yaml-password-jinja": ("include/systems/billing.yaml", 'password: "{{ conn.db.password }}"\n'),
    "yaml-password-angle-placeholder": ("include/systems/billing.yaml", "password: <from Airflow>\n"),
    "yaml-password-masked": ("include/systems/billing.yaml", "password: '***'\n"),
    "yaml-password-outside-include": ("tests/fixtures/profiles/x.yaml", "password: hunter2\n"),
    "yaml-password-in-a-comment": ("include/systems/demo.yaml", "# never put a password: here\n"),
    "yaml-password-as-part-of-a-key": ("include/systems/billing.yaml", "password_conn_id: billing_db\n"),
    "conn-uri-without-password": ("scripts/env.sh", "export AIRFLOW_CONN_DEMO_DB='postgresql://postgres@db:5432/demo'\n"),
    "conn-uri-with-empty-password": ("scripts/env.sh", "AIRFLOW_CONN_DEMO_DB=postgresql://postgres:@db/demo\n"),
    "conn-uri-port-only": ("scripts/env.sh", "AIRFLOW_CONN_DEMO_DB=postgresql://db:5432/demo\n"),
    "conn-uri-env-reference": ("scripts/env.sh", "AIRFLOW_CONN_DEMO_DB=postgresql://postgres:${PGPASSWORD}@db/demo\n"),
    "conn-uri-format-placeholder": ("x.py", 'f"AIRFLOW_CONN_DEMO_DB=postgresql://postgres:{password}@db/demo"\n'),
    "conn-json-from-a-function": ("tests/conftest.py", 'os.environ["AIRFLOW_CONN_DEMO_DB"] = cluster.airflow_conn_json("demo")\n'),
    "uri-without-airflow-conn": ("x.py", 'return f"postgresql://{SUPERUSER}:{self.password}@{self.host}"\n'),
    "readme-wildcard": ("README.md", "`AIRFLOW_CONN_*` variables or a secrets backend\n"),
    "slack-token-placeholder": ("README.md", "token: xoxb-your-bot-token\n"),
    "slack-token-prefix-alone": ("README.md", "Slack bot tokens start with xoxb-\n"),
    "databricks-token-too-short": ("notes.txt", "dapi0123\n"),
    "databricks-token-placeholder": ("notes.txt", "DATABRICKS_TOKEN=dapiXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX\n"),
    "slack-webhook-documentation-example": ("README.md", "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX\n"),
    "local-webhook-of-the-tests": ("x.py", 'f"http://127.0.0.1:{port}/services/T000/B000/local"\n'),
    "public-key": ("deploy/key.pub", "-----BEGIN PUBLIC KEY-----\n"),
}


@pytest.mark.parametrize(("path", "text"), LEAKS.values(), ids=LEAKS.keys())
def test_the_matcher_finds_a_real_leak(path: str, text: str) -> None:
    assert len(secrets_in(path, text)) == 1


@pytest.mark.parametrize(("path", "text"), HARMLESS.values(), ids=HARMLESS.keys())
def test_the_matcher_leaves_placeholders_and_prose_alone(path: str, text: str) -> None:
    assert secrets_in(path, text) == []
