"""The dashboard's pages rendered for real releases of the demo (see conftest: 1.1.0 promoted, 1.2.0 rolled back,
1.3.0 investigated and rolled back by a human), read through the plugin's app with a signed-in client."""

from __future__ import annotations

import html
import json
import os
import re
from urllib.parse import quote

import pytest
from observe import ledger, maintenance_store

pytestmark = pytest.mark.e2e


def page(client, path: str) -> str:
    response = client.get(path)
    assert response.status_code == 200, response.text[:2000]
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def release_path(run) -> str:
    return f"/rollout/systems/demo/releases/{quote(run.run_id, safe='')}"


def section(text: str, anchor: str) -> str:
    """The HTML of one `<h2 id=anchor>` section of a page, up to the next `<h2`."""
    start = text.index(f'id="{anchor}"')
    end = text.find("<h2", start)
    return text[start : end if end != -1 else len(text)]


def plain(fragment: str) -> str:
    """A fragment's text without tags, whitespace collapsed, entities decoded."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", fragment))).strip()


# --- the release page -------------------------------------------------------------------------------------


def test_a_rolled_back_release_shows_the_error_rate_against_its_threshold_and_the_rule_that_fired(client, releases):
    text = page(client, release_path(releases.rolled_back))
    release = ledger().release(releases.rolled_back.run_id)

    assert 'id="release-status">rolled_back<' in text
    decision = plain(section(text, "decision"))
    assert "Decision rollback by airflow_rollout.decision" in decision
    error_rate = next(reason for reason in release.decision_reasons if reason.startswith("error rate "))
    assert re.fullmatch(r"error rate 3\d(\.\d+)?% > 10%", error_rate), error_rate
    assert f"rollback rule: {error_rate}" in decision  # the rule that fired, as recorded
    # The criterion as measured against its thresholds, the verdict decide() gives it, and that it fired.
    measured = error_rate.removeprefix("error rate ").split("%")[0]
    assert f"Error rate {measured} % investigate ≥ 1 %, roll back > 10 % rollback {error_rate} (fired)" in decision
    assert "Downtime" in decision and "roll back > 300 s" in decision


def test_a_rolled_back_release_shows_its_fingerprints_equal_after_the_restore(client, releases):
    text = page(client, release_path(releases.rolled_back))

    fingerprints = section(text, "fingerprints")
    assert 'id="restored-app_db">equal to before the release<' in fingerprints
    rows = {plain(row).split(" ")[0]: plain(row) for row in re.findall(r"<tr><td class=\"mono\">.*?</tr>", fingerprints, re.S)}
    assert {"public.items", "public.orders"} <= set(rows)
    # Every table, after the restore (the last column), equal to before the release.
    assert [name for name, row in rows.items() if not row.endswith(" equal")] == [], rows
    # What the migration changed differs after it: items gained a column; a table it added was absent before and after.
    assert " differs " in rows["public.items"]
    added = [name for name, row in rows.items() if row.startswith(f"{name} absent ")]
    assert added and all(rows[name].endswith(" absent equal") for name in added), rows
    backup = ledger().backup(releases.rolled_back.run_id, "app_db")
    backups = plain(section(text, "backups"))
    assert backup.sha256 in backups and backup.location in backups and "KiB" in backups


def test_a_release_page_shows_its_timeline_migrations_slack_and_links_into_airflow(client, releases):
    run = releases.rolled_back
    text = page(client, release_path(run))

    timeline = plain(section(text, "timeline"))
    for step in ("preflight", "backup_data", "migrate_data", "deploy_apps", "stop_apps", "restore_data", "start_previous"):
        assert f" {step} 1 succeeded " in timeline, step
    attempts = ledger().step_attempts(run.run_id)
    assert len(re.findall(r'<div class="bar ', section(text, "timeline"))) == len(attempts)
    for attempt in (a for a in attempts if a.run_id == run.run_id):  # the worker that ran it, as Airflow names the host
        assert f" {attempt.step} {attempt.attempt} {attempt.status} {attempt.hostname} " in timeline, attempt
    assert "app_db: 1.2.0/" in plain(section(text, "migrations")).replace(" 1.2.0/", ": 1.2.0/", 1) or "1.2.0/" in text
    for migration in ledger().migrations(run.run_id):
        assert migration.split(": ", 1)[1] in plain(section(text, "migrations"))
    slack = plain(section(text, "slack"))
    for notification in ledger().notifications(run.run_id):
        assert notification.event in slack
    assert "rolled_back" in slack and "delivered" in slack
    run_link = f"/dags/release/runs/{quote(run.run_id, safe='')}"
    assert f'href="{run_link}" target="_top"' in text
    assert f'href="{run_link}/required_actions" target="_top"' in text
    assert 'href="/dags/release" target="_top"' in text


def test_a_promoted_release_shows_its_decision_and_completed_checklist(client, releases):
    text = page(client, release_path(releases.promoted))

    assert 'id="release-status">promoted<' in text
    decision = plain(section(text, "decision"))
    assert "Decision proceed" in decision and "Every check passed within the criteria." in decision
    assert "Error rate 0 % investigate ≥ 1 %, roll back > 10 % proceed" in decision
    assert "1.1.0/0001_add_priority.sql" in plain(section(text, "migrations"))
    checklist = plain(section(text, "checklist"))
    assert re.search(r"☑ Database backup taken, checksummed and read back — passed app_db: ", checklist), checklist[:3000]
    assert "☐ Release notes reviewed — manual Tech Lead confirms" in checklist
    assert "1.1.0" in plain(section(text, "apps"))


def test_an_investigated_release_shows_who_answered_the_required_action_and_when(client, releases):
    run = releases.investigated
    text = page(client, release_path(run))

    decision = plain(section(text, "decision"))
    assert "Decision rollback by On-call Olga" in decision
    assert re.search(r"investigate rule: error rate 3(\.\d+)?% within 1%-10%", decision), decision
    assert "answer in Required Actions: investigated: On-call Olga chose 'Roll back'" in decision
    # The numbers the rule measured outlive the human's answer: the error rate is still shown against its band.
    assert re.search(r"Error rate 3(\.\d+)? % investigate ≥ 1 %, roll back > 10 % investigate error rate", decision), decision
    answers = plain(section(text, "signoffs"))
    assert re.search(r"ask_operator .* Proceed / Roll back Roll back On-call Olga \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", answers), answers
    assert f"/dags/release/runs/{quote(run.run_id, safe='')}/tasks/decide.ask_operator/required_actions" in text


# --- the Systems page, a system's releases, trends --------------------------------------------------------


def test_the_systems_page_shows_version_last_release_lock_backup_age_and_drill(client, releases, postgres):
    maintenance_store().record_drill(
        "demo",
        "app_db",
        {"location": "/nowhere", "backup_taken_at": None, "restore_seconds": 12.5, "rpo_seconds": 3600.0,
         "fingerprint_equal": True, "error": None},
        run_id="scheduled__dashboard-drill",
    )  # fmt: skip

    text = page(client, "/rollout/")

    row = plain(re.search(r'<tr id="system-demo">.*?</tr>', text, re.S).group(0))
    assert "1.1.0 since " in row
    assert "1.3.0 rolled_back decision rollback" in row and "3 releases" in row
    assert "free" in row  # every release handed its lock back
    assert re.search(r"app_db: (\d+(\.\d)? s|\d+ min \d+ s) old \(RPO 26 h\)", row), row
    assert "app_db: RTO 12.5 s (goal 4 h;" in row and "fingerprint equal" in row
    # Every configured system is listed, the seed systems too (nothing released there yet).
    for system in ("routing-ml-platform", "mlops-system", "alembic-svc"):
        assert f'id="system-{system}"' in text


def test_the_systems_page_shows_who_holds_a_lock(client, releases, postgres):
    holder = releases.rolled_back.run_id
    postgres.psql("rollout_ledger", f"INSERT INTO rollout_lock (system, release_id, run_id) VALUES ('demo', '{holder}', NULL)")
    try:
        row = plain(re.search(r'<tr id="system-demo">.*?</tr>', page(client, "/rollout/"), re.S).group(0))
    finally:
        postgres.psql("rollout_ledger", "DELETE FROM rollout_lock WHERE system = 'demo'")
    assert "held by 1.2.0 for " in row and "no run works under it: unlock frees it" in row


def test_a_systems_releases_and_trends(client, releases):
    listing = page(client, "/rollout/systems/demo")
    for run in (releases.promoted, releases.rolled_back, releases.investigated):
        assert f'href="{release_path(run)}"' in listing

    trends = page(client, "/rollout/systems/demo/trends")
    charts = re.findall(r"<svg .*?</svg>", trends, re.S)
    assert len(charts) >= 3, trends[:2000]
    latency, errors = charts[0], charts[1]
    for version in ("1.1.0", "1.2.0", "1.3.0"):
        assert f">{version}</text>" in latency and f">{version}</text>" in errors
    assert "items_latency p95" in latency and "items_latency p50" in latency
    assert re.search(r"items_latency at 1\.2\.0: 3\d(\.\d+)? %", errors), errors  # the tooltip of 1.2.0's point
    assert "roll back 10 %" not in errors and "roll back 10" in errors  # the threshold line, labelled


def test_an_unknown_system_or_release_is_a_404(client, releases):
    assert client.get("/rollout/systems/nope").status_code == 404
    assert client.get("/rollout/systems/demo/releases/no-such-release").status_code == 404
    # A release is shown under its own system only.
    assert client.get(f"/rollout/systems/mlops-system/releases/{quote(releases.promoted.run_id, safe='')}").status_code == 404


# --- a constant number of ledger statements per page ------------------------------------------------------------


def test_each_page_runs_the_same_number_of_ledger_statements_however_many_releases(client, releases, postgres):
    from airflow_rollout.dashboard import pages

    before = (pages.systems_page().statements, pages.system_page("demo")["statements"], pages.trends_page("demo")["statements"])
    release_before = pages.release_page("demo", releases.rolled_back.run_id).statements
    postgres.psql(
        "rollout_ledger",
        "INSERT INTO rollout_release (release_id, system, version, status, created_at, finished_at)"
        " SELECT 'bulk-' || n, 'demo', '0.0.' || n, 'aborted', now() - interval '1 year', now() - interval '1 year'"
        " FROM generate_series(1, 300) AS n",
    )
    try:
        after = (pages.systems_page().statements, pages.system_page("demo")["statements"], pages.trends_page("demo")["statements"])
        release_after = pages.release_page("demo", releases.rolled_back.run_id).statements
    finally:
        postgres.psql("rollout_ledger", "DELETE FROM rollout_release WHERE release_id LIKE 'bulk-%'")
    assert after == before and release_after == release_before
    assert before[0] == 6  # one ledger for every system: whether it has tables, then five statements for all of them


# --- escaping and secrets ---------------------------------------------------------------------------------------

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def hostile_release(releases, postgres):
    """A release whose version, reasons, step error and check output carry HTML, and a step error a password leaked
    into; dated long ago, so the demo's own last release stays the last."""
    password = postgres.password
    release_id = "hostile-<b>release</b>"
    led = ledger()
    led.open_release(release_id=release_id, system="demo", version=f"9.9.9{HOSTILE}", triggered_by=HOSTILE)
    led.record_decision(release_id, "rollback", [f"phase failed: deploy.deploy_apps: {HOSTILE}"], {"error_rate": 0.5}, HOSTILE)
    led.record_measurement(
        release_id, {"name": "health", "kind": "http", "critical": True, "passed": False, "detail": HOSTILE, "metrics": {"x": HOSTILE}}
    )
    led.record_notification(release_id, "decision", delivered=False, error=f"{HOSTILE} webhook down", key=f"{release_id}|decision|-|x")
    postgres.psql(
        "rollout_ledger",
        "INSERT INTO rollout_step_attempt (release_id, phase, step, run_id, try_number, status, finished_at, error)"
        f" VALUES ('{release_id}', 'deploy', 'deploy_apps', 'a-run', 1, 'failed', now(),"
        f" 'cannot connect with password={password}: ' || '{HOSTILE.replace(chr(39), chr(39) * 2)}')",
    )
    postgres.psql("rollout_ledger", f"UPDATE rollout_release SET created_at = now() - interval '2 years' WHERE release_id = '{release_id}'")
    yield release_id
    postgres.psql("rollout_ledger", f"DELETE FROM rollout_release WHERE release_id = '{release_id}'")


def test_html_in_the_ledger_is_shown_as_text_never_run(client, hostile_release):
    response = client.get(f"/rollout/systems/demo/releases/{quote(hostile_release, safe='')}")
    listing = page(client, "/rollout/systems/demo")

    assert response.status_code == 200
    for text in (response.text, listing):
        assert "<script>" not in text and "<img src=x" not in text and "<b>release</b>" not in text
    assert html.escape(HOSTILE, quote=True) in response.text or "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in response.text
    assert "9.9.9&lt;script&gt;" in listing
    # And a browser would refuse any script that slipped through: the pages allow none.
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy


def every_page(client, releases, extra: list[str] = ()) -> dict[str, str]:
    paths = ["/rollout/", "/rollout/systems/demo", "/rollout/systems/demo/trends", *extra]
    paths += [release_path(run) for run in (releases.promoted, releases.rolled_back, releases.investigated)]
    return {path: page(client, path) for path in paths}


def test_no_page_shows_a_secret(client, releases, postgres, hostile_release):
    secrets = {
        "the ledger's database password": postgres.password,
        "the Slack webhook URL": json.loads(os.environ["AIRFLOW_CONN_SLACK_DEMO"])["password"],
    }
    assert all(len(secret) >= 16 for secret in secrets.values())
    hostile = f"/rollout/systems/demo/releases/{quote(hostile_release, safe='')}"

    pages_html = every_page(client, releases, [hostile])

    for what, secret in secrets.items():
        leaks = [path for path, text in pages_html.items() if secret in text or html.escape(secret) in text]
        assert leaks == [], f"{what} is shown on {leaks}"
    # The password that had leaked into a step's error in the ledger is masked on the page.
    assert "cannot connect with password=***: " in html.unescape(pages_html[hostile])
