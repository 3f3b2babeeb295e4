"""Slack messages about a release, through the Slack provider's webhook hook.

A release never fails because Slack is down: a message that cannot be delivered is logged and
recorded in the ledger as undelivered, and the release carries on. Every text is passed through the
redactor first, so a password that slipped into an error message does not reach the channel, then
escaped for Slack (`&`, `<`, `>`), so that text from a reason or an error cannot turn into a link or
an @channel.

Each message is Block Kit blocks with a plain-text fallback (what notifications show), and links back:
to the release's page in the Releases dashboard, to the Airflow run that sent it, and for a question
to a human, to the Required Action's page. The links start at Airflow's configured UI address,
`[api] base_url`.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow_rollout.dashboard import URL_PREFIX, ui_base_url

if TYPE_CHECKING:
    from collections.abc import Iterable

    from airflow.sdk.types import RuntimeTaskInstanceProtocol

    from airflow_rollout.ledger import Ledger

log = logging.getLogger(__name__)


class Event(StrEnum):
    STARTED = "release_started"
    PHASE_FAILED = "phase_failed"
    DECISION = "decision"
    AWAITING_HUMAN = "awaiting_human"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"
    ABORTED = "aborted"
    UNLOCKED = "unlocked"
    MAINTENANCE_OK = "maintenance_ok"
    MAINTENANCE_FAILED = "maintenance_failed"


ICONS = {
    Event.STARTED: ":rocket:",
    Event.PHASE_FAILED: ":x:",
    Event.DECISION: ":scales:",
    Event.AWAITING_HUMAN: ":raising_hand:",
    Event.PROMOTED: ":white_check_mark:",
    Event.ROLLED_BACK: ":rewind:",
    Event.ROLLBACK_FAILED: ":rotating_light:",
    Event.ABORTED: ":octagonal_sign:",
    Event.UNLOCKED: ":unlock:",
    Event.MAINTENANCE_OK: ":broom:",
    Event.MAINTENANCE_FAILED: ":rotating_light:",
}


def connection_secrets(conn_ids: Iterable[str]) -> list[str]:
    """The secret values of these connections: each password, and every extra whose key names a token or a secret."""
    from airflow.sdk import BaseHook

    secrets: list[str] = []
    for conn_id in conn_ids:
        try:
            conn = BaseHook.get_connection(conn_id)
        except Exception:  # noqa: BLE001 - a missing connection holds no secret to hide
            log.debug("connection %s not found; nothing of it to redact", conn_id)
            continue
        secrets += [conn.password or "", *(str(v) for k, v in conn.extra_dejson.items() if "token" in k or "secret" in k)]
    return secrets


# Where links point when `[api] base_url` is not set: Airflow's own fallback for the links it builds (a task's log URL).
DEFAULT_BASE_URL = "http://localhost:8080"
SECTION_LIMIT = 3000  # characters of a Block Kit section's text


def airflow_base_url() -> str:
    """The UI's address as Airflow is configured (`[api] base_url`), without a trailing slash: Slack needs absolute links."""
    return ui_base_url() or DEFAULT_BASE_URL


def _segment(value: str) -> str:
    """One path segment of a URL: a run id's `:` and `+` (manual__2026-01-01T00:00:00+00:00) percent-encoded."""
    return quote(value, safe="")


def release_page_url(system: str, release_id: str, base_url: str | None = None) -> str:
    """The release's page in the Releases dashboard (its route in `dashboard.app`)."""
    return f"{base_url or airflow_base_url()}{URL_PREFIX}/systems/{_segment(system)}/releases/{_segment(release_id)}"


@dataclass(frozen=True)
class AirflowRun:
    """A DAG run, as the UI shows it (its grid and graph): `<base>/dags/<dag_id>/runs/<run_id>`."""

    dag_id: str
    run_id: str

    def url(self, base_url: str | None = None) -> str:
        return f"{base_url or airflow_base_url()}/dags/{_segment(self.dag_id)}/runs/{_segment(self.run_id)}"


@dataclass(frozen=True)
class RequiredAction:
    """A task instance waiting for a human: its Required Action page, where the question is answered.

    The UI's route for it (Airflow 3.3): the task instance's page, `/mapped/<index>` for a mapped one, then
    `/required_actions`.
    """

    dag_id: str
    run_id: str
    task_id: str
    map_index: int = -1

    @classmethod
    def of(cls, ti: RuntimeTaskInstanceProtocol) -> RequiredAction:
        map_index = ti.map_index if ti.map_index is not None else -1
        return cls(dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, map_index=map_index)

    def url(self, base_url: str | None = None) -> str:
        mapped = f"/mapped/{self.map_index}" if self.map_index >= 0 else ""
        run = AirflowRun(self.dag_id, self.run_id).url(base_url)
        return f"{run}/tasks/{_segment(self.task_id)}{mapped}/required_actions"


def escape_mrkdwn(text: str) -> str:
    """Text as Slack shows it literally: `&`, `<` and `>` are its control characters (links, mentions, @channel)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _fit(text: str, limit: int = SECTION_LIMIT) -> str:
    """Escaped text cut to a section's limit, never in the middle of an escape."""
    if len(text) <= limit:
        return text
    return re.sub(r"&[a-z]*$", "", text[: limit - 1]) + "…"


def _section(mrkdwn: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": mrkdwn}}


class Redactor:
    """Replaces known secret values (and their URL-encoded forms) with ***."""

    def __init__(self, secrets: Iterable[str]) -> None:
        values = {s for secret in secrets if secret and len(secret) >= 4 for s in (secret, quote(secret, safe=""))}
        self._secrets = sorted(values, key=len, reverse=True)

    @classmethod
    def for_connections(cls, conn_ids: Iterable[str]) -> Redactor:
        return cls(connection_secrets(conn_ids))

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


class Notifier:
    def __init__(
        self, *, slack_conn_id: str | None, ledger: Ledger, redactor: Redactor, system: str, run: AirflowRun | None = None
    ) -> None:
        self.slack_conn_id = slack_conn_id
        self.ledger = ledger
        self.redact = redactor
        self.system = system
        self.step: str | None = None  # the release step sending, part of each message's idempotency key
        self.run = run  # the Airflow run sending: each message links to it

    def idempotency_key(self, event: Event, release_id: str, headline: str) -> str:
        """(release, event, step) and the headline: a retried task's message is the same message."""
        digest = hashlib.sha256(headline.encode()).hexdigest()[:16]
        return f"{release_id}|{event.value}|{self.step or '-'}|{digest}"

    def _delivered_before(self, key: str) -> bool:
        try:
            return self.ledger.delivered(key)
        except Exception:  # a ledger that cannot say: better a message twice than none
            log.exception("could not look up whether this message was sent before; sending it")
            return False

    def links(self, release_id: str | None, required_action: RequiredAction | None = None) -> list[tuple[str, str]]:
        """(label, URL) of each page the message links to: the question first, then the release, then the run."""
        base = airflow_base_url()
        links = [("Answer in Airflow (Required Actions)", required_action.url(base))] if required_action else []
        if release_id:
            links.append(("Release page", release_page_url(self.system, release_id, base)))
        if self.run:
            links.append(("Airflow run", self.run.url(base)))
        return [(label, self.redact(url)) for label, url in links]

    def message(
        self, event: Event, release_id: str | None, headline: str, lines: Iterable[str] = (), required_action: RequiredAction | None = None
    ) -> dict[str, Any]:
        """The webhook's payload: Block Kit blocks, and the same words with the links' addresses as the plain-text fallback."""
        title = f"{ICONS[event]} *[{escape_mrkdwn(self.redact(self.system))}]* {escape_mrkdwn(self.redact(headline))}"
        bullets = [f"• {escape_mrkdwn(self.redact(line))}" for line in lines]
        links = [(label, escape_mrkdwn(url)) for label, url in self.links(release_id, required_action)]
        question, foot = (links[:1], links[1:]) if required_action else ([], links)
        blocks = [_section(_fit(title))]
        if bullets:
            blocks.append(_section(_fit("\n".join(bullets))))
        blocks += [_section(f":point_right: *<{url}|{label}>*") for label, url in question]
        if foot:
            blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{url}|{label}>"} for label, url in foot]})
        text = "\n".join([title, *bullets, *(f"{label}: {url}" for label, url in links)])
        return {"text": text, "blocks": blocks}

    def send(
        self,
        event: Event,
        release_id: str | None,
        headline: str,
        lines: Iterable[str] = (),
        *,
        required_action: RequiredAction | None = None,
    ) -> bool:
        message = self.message(event, release_id, headline, lines, required_action)
        if not self.slack_conn_id:
            log.info("no Slack connection configured; would have sent: %s", message["text"])
            return False
        key = self.idempotency_key(event, release_id, headline) if release_id else None
        if key and self._delivered_before(key):
            log.info("Slack message %s was delivered by an earlier attempt; not sent again", event.value)
            return True
        error: str | None = None
        try:
            from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

            SlackWebhookHook(slack_webhook_conn_id=self.slack_conn_id, timeout=10).send(
                text=message["text"], blocks=message["blocks"], unfurl_links=False, unfurl_media=False
            )
        except Exception as exc:  # noqa: BLE001 - notification trouble must never stop a release
            error = self.redact(f"{type(exc).__name__}: {exc}")[:500]
            log.warning("Slack message %s not delivered (the release carries on): %s", event.value, error)
        try:
            self.ledger.record_notification(release_id, event.value, delivered=error is None, error=error, key=key)
        except Exception:
            log.exception("could not record the notification in the ledger")
        return error is None
