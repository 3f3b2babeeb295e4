"""Slack messages about a release, through the Slack provider's webhook hook.

A release never fails because Slack is down: a message that cannot be delivered is logged and
recorded in the ledger as undelivered, and the release carries on. Every text is passed through the
redactor first, so a password that slipped into an error message does not reach the channel.
"""

from __future__ import annotations

import hashlib
import logging
from enum import StrEnum
from typing import TYPE_CHECKING
from urllib.parse import quote

if TYPE_CHECKING:
    from collections.abc import Iterable

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
    def __init__(self, *, slack_conn_id: str | None, ledger: Ledger, redactor: Redactor, system: str) -> None:
        self.slack_conn_id = slack_conn_id
        self.ledger = ledger
        self.redact = redactor
        self.system = system
        self.step: str | None = None  # the release step sending, part of each message's idempotency key

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

    def send(self, event: Event, release_id: str | None, headline: str, lines: Iterable[str] = ()) -> bool:
        text = self.redact("\n".join([f"{ICONS[event]} *[{self.system}]* {headline}", *(f"• {line}" for line in lines)]))
        if not self.slack_conn_id:
            log.info("no Slack connection configured; would have sent: %s", text)
            return False
        key = self.idempotency_key(event, release_id, headline) if release_id else None
        if key and self._delivered_before(key):
            log.info("Slack message %s was delivered by an earlier attempt; not sent again", event.value)
            return True
        error: str | None = None
        try:
            from airflow.providers.slack.hooks.slack_webhook import SlackWebhookHook

            SlackWebhookHook(slack_webhook_conn_id=self.slack_conn_id, timeout=10).send(text=text)
        except Exception as exc:  # noqa: BLE001 - notification trouble must never stop a release
            error = self.redact(f"{type(exc).__name__}: {exc}")[:500]
            log.warning("Slack message %s not delivered (the release carries on): %s", event.value, error)
        try:
            self.ledger.record_notification(release_id, event.value, delivered=error is None, error=error, key=key)
        except Exception:
            log.exception("could not record the notification in the ledger")
        return error is None
