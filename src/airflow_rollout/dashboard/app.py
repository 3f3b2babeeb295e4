"""The dashboard's FastAPI app, mounted by the API server under `URL_PREFIX` (plugins/rollout_dashboard.py).

Every route sits behind Airflow's own auth manager: the API server's `requires_access_dag` dependency (a Bearer token,
or the JWT cookie the UI sets on login, so a signed-in browser sees the pages and nobody else does), asking for read
access to the runs of the `release` DAG, whose records these pages are. Without a token: 401; with a token that may
not read those runs: 403 — and no data either way. The pages are server-rendered HTML from Jinja2 templates with
autoescaping on, sent with a Content-Security-Policy that allows no script at all: text from the ledger (a version,
a reason, a check's output) is shown, never run. Nothing here writes: the ledger is read in read-only transactions.

Imported only where the app is built (the API server): it imports FastAPI and Airflow's security module.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import jinja2
from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.core_api.security import GetUserDep, requires_access_dag
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse

from airflow_rollout.config import ProfileError, load_profile
from airflow_rollout.dashboard import RELEASE_DAG, pages, ui_base_url
from airflow_rollout.dashboard.charts import svg

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger(__name__)

# No script, no plugin, no form target: the pages are read, nothing in them runs. Airflow's UI may frame them.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none';"
    " form-action 'none'; frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    return f"{hours // 24} d {hours % 24} h"


def _size(size: int | None) -> str:
    if size is None:
        return "—"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def _quote(value: Any) -> str:
    """A path segment of a URL (a run id holds ':' and '+')."""
    return quote(str(value), safe="")


def _as_json(value: Any) -> str:
    return json.dumps(value, default=str, sort_keys=True)


@cache
def templates() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("airflow_rollout.dashboard", "templates"),
        autoescape=True,  # every page is HTML: every value is escaped unless it is Markup built with escape()
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters |= {
        "duration": _duration,
        "size": _size,
        "q": _quote,
        "when": pages.when,
        "pct": pages.pct,
        "as_json": _as_json,
        "svg": svg,
    }
    environment.globals |= {"release_dag": RELEASE_DAG, "stages": pages.STAGES}
    return environment


def render(request: Request, user: Any, name: str, *, status: int = 200, redact: Any = None, **context: Any) -> HTMLResponse:
    html = (
        templates()
        .get_template(name)
        .render(root=str(request.scope.get("root_path", "")).rstrip("/"), ui=ui_base_url(), user=user.get_name(), **context)
    )
    if redact is not None:
        html = redact(html)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


def _failure(request: Request, user: Any, exc: Exception, system: str) -> HTMLResponse:
    if isinstance(exc, pages.NotFoundError):
        return render(request, user, "problem.html", status=404, title="Not found", problem=str(exc))
    log.exception("the releases dashboard could not build %s", request.url.path)
    try:  # the message of a database error names hosts and users; it is passed through the system's redactor anyway
        redact = pages.redactor_for(load_profile(system).connection_ids())
    except ProfileError:
        redact = None
    problem = pages.problem_text(exc)
    return render(request, user, "problem.html", status=503, title="The ledger could not be read", problem=problem, redact=redact)


router = APIRouter(dependencies=[Depends(requires_access_dag("GET", DagAccessEntity.RUN, param_dag_id=RELEASE_DAG))])


@router.get("/", response_class=HTMLResponse)
def systems(request: Request, user: GetUserDep) -> HTMLResponse:
    page = pages.systems_page()
    return render(request, user, "systems.html", page=page)


def _system_page(
    request: Request, user: Any, system: str, template: str, build: Callable[[], Any], *, redacted: bool = False
) -> HTMLResponse:
    """A page about one system: 404 for a system or release that is not there, 503 (logged) when the ledger cannot be read."""
    try:
        page = build()
    except Exception as exc:  # noqa: BLE001 - shown as a 404 or 503 page, logged
        return _failure(request, user, exc, system)
    return render(request, user, template, page=page, redact=page.redact if redacted else None)


@router.get("/systems/{system}", response_class=HTMLResponse)
def system(request: Request, user: GetUserDep, system: str) -> HTMLResponse:
    return _system_page(request, user, system, "system.html", lambda: pages.system_page(system))


# A path parameter: a release id may hold a slash (an id given to a phase DAG run alone).
@router.get("/systems/{system}/releases/{release_id:path}", response_class=HTMLResponse)
def release(request: Request, user: GetUserDep, system: str, release_id: str) -> HTMLResponse:
    return _system_page(request, user, system, "release.html", lambda: pages.release_page(system, release_id), redacted=True)


@router.get("/systems/{system}/trends", response_class=HTMLResponse)
def trends(request: Request, user: GetUserDep, system: str) -> HTMLResponse:
    return _system_page(request, user, system, "trends.html", lambda: pages.trends_page(system))


def create_app() -> FastAPI:
    # No /docs, /redoc or /openapi.json: they would answer without the router's dependencies.
    app = FastAPI(title="Releases", docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(router)
    return app


@cache
def dashboard_app() -> FastAPI:
    """The one app of this process (the plugin manager and `airflow plugins` may both ask for it)."""
    return create_app()
