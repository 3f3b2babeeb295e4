"""`redis` items against a real redis-server (Debian's, started per test), through the Redis provider's hook."""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import TYPE_CHECKING

import pytest
from pydantic import ValidationError

from airflow_rollout.checklist_run import evaluate
from airflow_rollout.item_checks.redis import RedisItemCheck
from devtools.redis_server import RedisServer

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from airflow_rollout.evidence import Evidence

PASSWORD = "redis-test-password"
SEED = {"requirepass": PASSWORD, "maxmemory": "256mb", "maxmemory-policy": "allkeys-lru", "appendonly": "yes"}


@pytest.fixture
def redis_with(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Starts a redis-server with the settings a test gives; the connection `cache` points at it with `PASSWORD`."""
    started: list[RedisServer] = []

    def start(settings: dict[str, str], password: str | None = PASSWORD) -> None:
        server = RedisServer(tmp_path / f"redis{len(started)}", settings).__enter__()
        started.append(server)
        conn = {"conn_type": "redis", "host": "127.0.0.1", "port": server.port, **({"password": password} if password else {})}
        monkeypatch.setenv("AIRFLOW_CONN_CACHE", json.dumps(conn))

    yield start
    for server in started:
        server.__exit__()


def redis_item(**fields: object) -> Evidence:
    return evaluate(SimpleNamespace(), RedisItemCheck.model_validate({"kind": "redis", "conn_id": "cache", **fields}))  # type: ignore[arg-type]


def test_the_seeds_settings_pass(redis_with) -> None:
    redis_with(SEED)
    policy = redis_item(config="maxmemory-policy", equals="allkeys-lru")
    assert policy.passed, policy.detail
    assert policy.detail.endswith("(cache): CONFIG GET maxmemory-policy -> 'allkeys-lru'")
    assert redis_item(config="maxmemory", at_least=1).numbers == {"value": str(256 * 1024 * 1024)}
    aof = redis_item(info="aof_enabled", equals=1)
    assert aof.passed, aof.detail
    auth = redis_item(refuses_without_password=True)
    assert auth.passed, auth.detail
    assert "without it refused" in auth.detail and PASSWORD not in auth.detail


def test_a_redis_of_default_settings_fails_each_item(redis_with) -> None:
    redis_with({"requirepass": PASSWORD})
    policy = redis_item(config="maxmemory-policy", equals="allkeys-lru")
    assert not policy.passed
    assert policy.detail.endswith("CONFIG GET maxmemory-policy -> 'noeviction' (expected 'allkeys-lru')")
    assert redis_item(config="maxmemory", at_least=1).detail.endswith("-> '0' (below 1)")
    assert redis_item(info="aof_enabled", equals=1).detail.endswith("INFO aof_enabled -> 0 (expected 1.0)")


def test_a_redis_open_to_anyone_fails_refuses_without_password(redis_with) -> None:
    redis_with({}, password="a-password-it-does-not-need")
    evidence = redis_item(refuses_without_password=True)
    assert not evidence.passed
    assert evidence.detail.endswith("PING without a password answered PONG: the server lets anyone in")


def test_a_connection_without_a_password_cannot_prove_one_is_needed(redis_with) -> None:
    redis_with({}, password=None)
    assert "the connection has no password" in redis_item(refuses_without_password=True).detail


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"config": "maxmemory-policy"}, "needs an expectation"),
        ({"config": "requirepass", "equals": "x"}, "holds a secret"),
        ({"config": "maxmemory", "info": "role", "equals": 1}, "exactly one of config, info or refuses_without_password"),
        ({"config": "max memory", "equals": 1}, "String should match pattern"),
    ],
)
def test_a_question_without_an_expectation_or_about_a_secret_is_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RedisItemCheck.model_validate({"kind": "redis", "conn_id": "cache", **fields})
