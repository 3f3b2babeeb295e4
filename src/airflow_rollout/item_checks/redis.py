"""`redis`: a setting of the Redis server behind a connection, read through the Redis provider's `RedisHook`.

`config` reads `CONFIG GET <name>` (maxmemory-policy, maxmemory, appendonly), `info` a field of `INFO` (aof_enabled,
connected_slaves, role); either is compared with `equals` / `at_least` / `at_most`. `refuses_without_password` proves
`requirepass` (or ACLs) without reading the password: the same server, asked without it, must answer NOAUTH.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, model_validator

from airflow_rollout.config import ConnId
from airflow_rollout.item_checks.expectation import ValueExpectation

if TYPE_CHECKING:
    from airflow_rollout.context import SystemContext
    from airflow_rollout.evidence import Evidence

# `requirepass` and the ACL settings are secrets or name them: a checklist reads whether they are needed, never them.
SECRET_SETTINGS = frozenset({"requirepass", "masterauth", "masteruser", "aclfile"})


def _not_secret(name: str | None) -> str | None:
    if name in SECRET_SETTINGS:
        raise ValueError(f"{name} holds a secret: prove it is set with refuses_without_password instead")
    return name


class RedisItemCheck(ValueExpectation):
    """One of `config`, `info` (compared with the expectation) or `refuses_without_password`."""

    kind: Literal["redis"]
    conn_id: ConnId = Field(description="a `redis` connection (host, port, password, extra db)")
    config: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")] | None = Field(default=None, description="CONFIG GET this setting")
    info: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")] | None = Field(default=None, description="this field of INFO")
    refuses_without_password: bool = False

    @model_validator(mode="after")
    def _one_question(self) -> RedisItemCheck:
        _not_secret(self.config)
        asked = [name for name in ("config", "info") if getattr(self, name)] + (
            ["refuses_without_password"] * self.refuses_without_password
        )
        if len(asked) != 1:
            raise ValueError(f"needs exactly one of config, info or refuses_without_password; has {', '.join(asked) or 'none'}")
        return self

    def reads_value(self) -> bool:
        return not self.refuses_without_password


def _text(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value


def run(_ctx: SystemContext, check: RedisItemCheck) -> Evidence:
    from airflow.providers.redis.hooks.redis import RedisHook

    from airflow_rollout.evidence import Evidence

    hook = RedisHook(redis_conn_id=check.conn_id)
    client = hook.get_conn()  # type: ignore[no-untyped-call]  # the provider leaves it unannotated
    where = f"Redis {hook.host}:{hook.port} ({check.conn_id})"
    if check.refuses_without_password:
        return _refuses_without_password(client, where)
    if check.config:
        what = f"CONFIG GET {check.config}"
        found = {_text(k): _text(v) for k, v in client.config_get(check.config).items()}
        if check.config not in found:
            return Evidence(False, f"{where}: {what} -> no such setting")
        value = found[check.config]
    else:
        what = f"INFO {check.info}"
        info = client.info()
        if check.info not in info:
            return Evidence(False, f"{where}: {what} -> no such field")
        value = _text(info[check.info])
    problems = check.value_problems(value)
    detail = f"{where}: {what} -> {value!r}" + (f" ({'; '.join(problems)})" if problems else "")
    return Evidence(not problems, detail, {"value": value})


def _refuses_without_password(client: Any, where: str) -> Evidence:
    import redis

    from airflow_rollout.evidence import Evidence

    pool = client.connection_pool
    if not pool.connection_kwargs.get("password"):
        return Evidence(False, f"{where}: the connection has no password, so it cannot show that one is needed")
    client.ping()  # with the password: the server is there and takes it
    # the same connection (host, port, TLS) with no credentials at all
    bare = {key: value for key, value in pool.connection_kwargs.items() if key not in {"username", "password"}}
    try:
        redis.Redis(connection_pool=redis.ConnectionPool(connection_class=pool.connection_class, **bare)).ping()
    except redis.AuthenticationError as exc:
        return Evidence(True, f"{where}: PING with the connection's password answered; without it refused ({exc})")
    return Evidence(False, f"{where}: PING without a password answered PONG: the server lets anyone in")
