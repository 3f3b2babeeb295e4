"""Slack messages as the local receiver records them: Block Kit blocks, a plain-text fallback, links back to the
release's dashboard page, its Airflow run and a Required Action's page; user text escaped, no secret, one message
per attempt key. Through the Slack provider's real webhook hook and the real ledger."""

from __future__ import annotations

import json
import re

import pytest
from testenv import SLACK_OUT, slack_payloads

from airflow_rollout.ledger import Ledger
from airflow_rollout.notify import AirflowRun, Event, Notifier, Redactor, RequiredAction, release_page_url

pytestmark = pytest.mark.e2e

BASE = "https://airflow.example.com"
RUN_ID = "manual__2026-01-01T00:00:00+00:00"
ENCODED_RUN_ID = "manual__2026-01-01T00%3A00%3A00%2B00%3A00"  # a path segment: ':' and '+' percent-encoded
RELEASE_PAGE = f"{BASE}/rollout/systems/demo/releases/{ENCODED_RUN_ID}"
RUN_PAGE = f"{BASE}/dags/release/runs/{ENCODED_RUN_ID}"


@pytest.fixture
def notifier(postgres, slack, monkeypatch) -> Notifier:
    """A notifier of the demo system speaking for a `release` run, through the receiver; empty ledger and Slack log."""
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", BASE + "/")  # as configured, with a trailing slash
    ledger = Ledger(conn_id="rollout_ledger")
    ledger.ensure_schema()
    postgres.psql("rollout_ledger", "TRUNCATE rollout_notification")
    SLACK_OUT.write_text("")
    sender = Notifier(slack_conn_id="slack_demo", ledger=ledger, redactor=Redactor([]), system="demo", run=AirflowRun("release", RUN_ID))
    sender.step = "decide"
    return sender


def sections(payload: dict) -> list[str]:
    """The mrkdwn text of each section block, in order."""
    return [block["text"]["text"] for block in payload["blocks"] if block["type"] == "section"]


def context_links(payload: dict) -> list[tuple[str, str]]:
    """(URL, label) of the links in the message's context block (its foot)."""
    [context] = [block for block in payload["blocks"] if block["type"] == "context"]
    return [link for element in context["elements"] for link in links_in(element["text"])]


def all_texts(payload: dict) -> list[str]:
    return [payload["text"], *sections(payload), *(e["text"] for b in payload["blocks"] for e in b.get("elements", []))]


def links_in(text: str) -> list[tuple[str, str]]:
    """(URL, label) of every Slack link in mrkdwn text."""
    return re.findall(r"<([^<>|]+)\|([^<>]+)>", text)


def test_a_release_message_is_blocks_with_a_plain_text_fallback_and_links_back(notifier) -> None:
    assert notifier.send(Event.DECISION, RUN_ID, "1.1.0: decision *proceed*", ["every check passed within the criteria", "error_rate: 0"])

    [payload] = slack_payloads()
    assert payload["blocks"] == [
        {"type": "section", "text": {"type": "mrkdwn", "text": ":scales: *[demo]* 1.1.0: decision *proceed*"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "• every check passed within the criteria\n• error_rate: 0"}},
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": f"<{RELEASE_PAGE}|Release page>"},
                {"type": "mrkdwn", "text": f"<{RUN_PAGE}|Airflow run>"},
            ],
        },
    ]
    # The fallback (notifications, clients without blocks): the same words, the links as plain addresses.
    assert payload["text"].splitlines() == [
        ":scales: *[demo]* 1.1.0: decision *proceed*",
        "• every check passed within the criteria",
        "• error_rate: 0",
        f"Release page: {RELEASE_PAGE}",
        f"Airflow run: {RUN_PAGE}",
    ]
    assert "<" not in payload["text"]
    assert (payload["unfurl_links"], payload["unfurl_media"]) == (False, False)  # no preview of a login page


def test_the_dashboard_url_is_built_in_one_place() -> None:
    assert release_page_url("demo", "rel/1 x", "http://host:8080") == "http://host:8080/rollout/systems/demo/releases/rel%2F1%20x"


def test_links_follow_the_configured_base_url_or_airflows_default(notifier, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://ops.example.com/airflow")  # Airflow behind a path
    notifier.send(Event.STARTED, RUN_ID, "release of 1.1.0 started")
    monkeypatch.delenv("AIRFLOW__API__BASE_URL")
    notifier.send(Event.PROMOTED, RUN_ID, "1.1.0 promoted")

    behind_a_path, unset = (context_links(payload) for payload in slack_payloads())
    assert behind_a_path == [
        (f"https://ops.example.com/airflow/rollout/systems/demo/releases/{ENCODED_RUN_ID}", "Release page"),
        (f"https://ops.example.com/airflow/dags/release/runs/{ENCODED_RUN_ID}", "Airflow run"),
    ]
    # Not configured: Airflow's own fallback for the links it builds.
    assert unset == [
        (f"http://localhost:8080/rollout/systems/demo/releases/{ENCODED_RUN_ID}", "Release page"),
        (f"http://localhost:8080/dags/release/runs/{ENCODED_RUN_ID}", "Airflow run"),
    ]


@pytest.mark.parametrize(
    ("task_id", "map_index", "page"),
    [
        ("decide.ask_operator", -1, f"{RUN_PAGE}/tasks/decide.ask_operator/required_actions"),
        ("sign_off.sign_off", 2, f"{RUN_PAGE}/tasks/sign_off.sign_off/mapped/2/required_actions"),
    ],
    ids=["ask-operator", "mapped-sign-off"],
)
def test_a_required_action_links_to_its_page(notifier, task_id, map_index, page) -> None:
    action = RequiredAction(dag_id="release", run_id=RUN_ID, task_id=task_id, map_index=map_index)
    notifier.send(Event.AWAITING_HUMAN, RUN_ID, "1.3.0: a human must decide within 30 min", ["error rate 3%"], required_action=action)

    [payload] = slack_payloads()
    title, reasons, question = sections(payload)
    assert links_in(question) == [(page, "Answer in Airflow (Required Actions)")]
    assert question.startswith(":point_right: *<")
    assert links_in(title + reasons) == []
    assert context_links(payload) == [(RELEASE_PAGE, "Release page"), (RUN_PAGE, "Airflow run")]
    assert payload["text"].splitlines()[-3:] == [
        f"Answer in Airflow (Required Actions): {page}",
        f"Release page: {RELEASE_PAGE}",
        f"Airflow run: {RUN_PAGE}",
    ]


def test_user_text_cannot_become_a_link_or_a_mention(notifier) -> None:
    hostile = "<!channel> look: <https://evil.example|the dashboard> & <@U0ADMIN>"
    notifier.send(Event.PHASE_FAILED, RUN_ID, f"1.1.0: verify failed: {hostile}", [f"p95 > 200 ms & {hostile}"])

    [payload] = slack_payloads()
    escaped = "&lt;!channel&gt; look: &lt;https://evil.example|the dashboard&gt; &amp; &lt;@U0ADMIN&gt;"
    for text in all_texts(payload):
        assert "<!channel>" not in text and "<@U0ADMIN>" not in text and "<https://evil" not in text
    title, reasons = sections(payload)
    assert title.endswith(f"verify failed: {escaped}")
    assert reasons == f"• p95 &gt; 200 ms &amp; {escaped}"
    # The only links are ours.
    assert links_in(title + reasons) == []
    assert [url for url, _ in context_links(payload)] == [RELEASE_PAGE, RUN_PAGE]
    assert escaped in payload["text"]


def test_no_secret_reaches_slack(postgres, notifier) -> None:
    secret = "pa55&<word>-" + "x" * 12  # with Slack's control characters: escaping must not let it slip past the redactor
    notifier.redact = Redactor([secret, postgres.password])
    error = f"OperationalError: connection to postgresql://rollout:{secret}@db/ledger failed; password={postgres.password}"
    notifier.send(Event.PHASE_FAILED, RUN_ID, f"1.1.0: backup.backup_data failed ({secret})", [error])

    [payload] = slack_payloads()
    raw = json.dumps(payload)
    for value in (secret, postgres.password):
        for form in (value, json.dumps(value)[1:-1], value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")):
            assert form not in raw
    assert "***" in payload["text"] and all("***" in text for text in sections(payload))


def test_one_message_per_attempt_key(notifier) -> None:
    assert notifier.send(Event.DECISION, RUN_ID, "1.1.0: decision *proceed*", ["error_rate: 0"])
    # A retried decide (same release, event, step and headline) finds the message delivered and sends nothing.
    assert notifier.send(Event.DECISION, RUN_ID, "1.1.0: decision *proceed*", ["error_rate: 0"])
    assert len(slack_payloads()) == 1
    notifier.step = "rollback.finish_rollback"
    assert notifier.send(Event.DECISION, RUN_ID, "1.1.0: decision *proceed*", ["error_rate: 0"])
    assert len(slack_payloads()) == 2


def test_a_message_about_no_release_links_its_run_only(notifier) -> None:
    notifier.run = AirflowRun("maintenance_daily", "scheduled__2026-01-02T02:00:00+00:00")
    notifier.send(Event.MAINTENANCE_OK, None, "daily maintenance: all 7 checks passed")

    [payload] = slack_payloads()
    assert context_links(payload) == [(f"{BASE}/dags/maintenance_daily/runs/scheduled__2026-01-02T02%3A00%3A00%2B00%3A00", "Airflow run")]
    assert "/releases/" not in json.dumps(payload)
