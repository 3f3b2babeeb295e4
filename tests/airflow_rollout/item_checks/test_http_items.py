"""Seed 002's CDN "Enable compression" as shipped, against the played frontend: it passes when the frontend
answers gzip-compressed and fails when it sends its page as is. The context is the release's as the check reads
it (the version and the app's URL), without a cluster to read the version from."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from types import SimpleNamespace
from typing import TYPE_CHECKING

import pytest
from testenv import ROOT

from airflow_rollout.checklist_run import evaluate
from airflow_rollout.checklists import HttpItemCheck, load_checklist

if TYPE_CHECKING:
    from collections.abc import Iterator

SYSTEM = "ai-etl-assistant"
SEED_SERVICE = ROOT / "tests" / "fixtures" / "images" / "seed_service.py"


def compression_item() -> HttpItemCheck:
    checklist = load_checklist(SYSTEM)
    assert checklist is not None
    [check] = [e.item.check for e in checklist.entries() if e.item.text == "Enable compression" and isinstance(e.item.check, HttpItemCheck)]
    return check


@pytest.fixture
def frontend(request: pytest.FixtureRequest) -> Iterator[SimpleNamespace]:
    """The seed service as the frontend, as `request.param` plays it; the context a release's check would see."""
    from devtools.local_postgres import free_port

    port = free_port()
    command = [sys.executable, str(SEED_SERVICE), "--system", request.param, "--version", "1.0.0", "--port", str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:  # the process is ready once it accepts connections
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert process.poll() is None and time.monotonic() < deadline, "the seed service never listened"
        time.sleep(0.05)
    yield SimpleNamespace(version="1.0.0", app_base_url=lambda app: f"http://127.0.0.1:{port}")
    process.terminate()
    process.wait(timeout=10)


@pytest.mark.parametrize("frontend", ["ai-etl-frontend"], indirect=True)
def test_a_frontend_that_compresses_passes_enable_compression(frontend: SimpleNamespace) -> None:
    evidence = evaluate(frontend, compression_item())  # type: ignore[arg-type]
    assert evidence.passed, evidence.detail
    assert evidence.detail.endswith("; Content-Encoding: 'gzip'"), evidence.detail


@pytest.mark.parametrize("frontend", ["web"], indirect=True)
def test_a_frontend_sending_its_page_as_is_fails_enable_compression(frontend: SimpleNamespace) -> None:
    evidence = evaluate(frontend, compression_item())  # type: ignore[arg-type]
    assert not evidence.passed
    assert evidence.detail == "GET /: no Content-Encoding header", evidence.detail


def review_item() -> HttpItemCheck:
    checklist = load_checklist("ontos-ml-workbench")
    assert checklist is not None
    [check] = [e.item.check for e in checklist.entries() if e.item.text == "Review Q&A pairs" and isinstance(e.item.check, HttpItemCheck)]
    return check


@pytest.fixture
def ontos_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """The OAuth token the played workbench accepts, as the connection the item sends it from."""
    import json

    monkeypatch.setenv("AIRFLOW_CONN_ONTOS_APP_TOKEN", json.dumps({"conn_type": "generic", "password": "ontos-app-token"}))


@pytest.mark.parametrize("frontend", ["ontos"], indirect=True)
def test_the_workbench_listing_its_pairs_passes_review_qa_pairs(frontend: SimpleNamespace, ontos_token: None) -> None:
    evidence = evaluate(frontend, review_item())  # type: ignore[arg-type]
    assert evidence.passed, evidence.detail
    assert evidence.detail.startswith("GET /api/v1/qa_pairs?limit=100: HTTP 200"), evidence.detail


@pytest.mark.parametrize("frontend", ["ontos"], indirect=True)
def test_pairs_without_a_key_the_item_names_fail_its_shape(frontend: SimpleNamespace, ontos_token: None) -> None:
    shape = {"type": "list", "keys": ["id", "question", "answer", "label"]}
    wanting_more = HttpItemCheck.model_validate({**review_item().model_dump(), "expect_shape": shape})
    evidence = evaluate(frontend, wanting_more)  # type: ignore[arg-type]
    assert not evidence.passed
    assert "item 0 lacks label" in evidence.detail, evidence.detail


@pytest.mark.parametrize("frontend", ["web"], indirect=True)
def test_an_app_without_the_pairs_listing_fails_review_qa_pairs(frontend: SimpleNamespace, ontos_token: None) -> None:
    evidence = evaluate(frontend, review_item())  # type: ignore[arg-type]
    assert not evidence.passed
    assert "HTTP 404" in evidence.detail, evidence.detail


def shipped_http_item(system: str, text: str) -> HttpItemCheck:
    checklist = load_checklist(system)
    assert checklist is not None
    [check] = [e.item.check for e in checklist.entries() if e.item.text == text and isinstance(e.item.check, HttpItemCheck)]
    return check


STATIC_ASSETS = ("ontos-ml-workbench", "Verify static assets load (images, fonts)")
CACHED_ASSETS = (SYSTEM, "Cache static assets")


@pytest.mark.parametrize("frontend", ["ontos"], indirect=True)
def test_the_workbench_whose_assets_load_passes_verify_static_assets(frontend: SimpleNamespace, ontos_token: None) -> None:
    evidence = evaluate(frontend, shipped_http_item(*STATIC_ASSETS))  # type: ignore[arg-type]
    assert evidence.passed, evidence.detail
    # the style sheet, the script, the image, and the font the style sheet loads
    loaded = "/assets/index.css, /assets/index.js, /assets/logo.svg, /assets/inter.woff2"
    assert evidence.detail.endswith(f"; its 4 assets answered 200 ({loaded})"), evidence.detail


@pytest.mark.parametrize("frontend", ["web"], indirect=True)
def test_a_page_whose_image_is_gone_fails_verify_static_assets(frontend: SimpleNamespace, ontos_token: None) -> None:
    evidence = evaluate(frontend, shipped_http_item(*STATIC_ASSETS))  # type: ignore[arg-type]
    assert not evidence.passed
    assert "1 of 4 assets failed (expected 200): /assets/logo.svg: HTTP 404" in evidence.detail, evidence.detail


@pytest.mark.parametrize("frontend", ["ontos"], indirect=True)
def test_a_page_referencing_no_asset_fails_verify_static_assets(frontend: SimpleNamespace, ontos_token: None) -> None:
    no_page = HttpItemCheck.model_validate({**shipped_http_item(*STATIC_ASSETS).model_dump(), "path": "/api/v1/health/detailed"})
    evidence = evaluate(frontend, no_page)  # type: ignore[arg-type]
    assert not evidence.passed
    assert evidence.detail.endswith("the page references no asset of its own to load"), evidence.detail


@pytest.mark.parametrize("frontend", ["ai-etl-frontend"], indirect=True)
def test_a_frontend_caching_its_assets_passes_cache_static_assets(frontend: SimpleNamespace) -> None:
    evidence = evaluate(frontend, shipped_http_item(*CACHED_ASSETS))  # type: ignore[arg-type]
    assert evidence.passed, evidence.detail
    assert "its 4 assets answered 200, Cache-Control matching" in evidence.detail, evidence.detail


@pytest.mark.parametrize("frontend", ["web"], indirect=True)
def test_assets_without_cache_control_fail_cache_static_assets(frontend: SimpleNamespace) -> None:
    evidence = evaluate(frontend, shipped_http_item(*CACHED_ASSETS))  # type: ignore[arg-type]
    assert not evidence.passed
    assert "/assets/index.css: no Cache-Control header" in evidence.detail, evidence.detail


def test_only_the_pages_own_assets_are_loaded_each_once() -> None:
    from airflow_rollout.checks import _page_references, _same_origin

    page = (
        '<link rel="stylesheet" href="css/a.css"><link rel="canonical" href="/other"><script src="https://cdn.example/x.js">'
        '</script><script src="/js/b.js#v"></script><img src="/js/b.js"><img src="data:image/png;base64,AA==">'
    )
    found = _same_origin("http://127.0.0.1:9/app/", _page_references(page))
    assert found == ["http://127.0.0.1:9/app/css/a.css", "http://127.0.0.1:9/js/b.js"]


def test_header_patterns_of_an_http_item_must_compile() -> None:
    with pytest.raises(ValueError, match="is not a valid Python regular expression"):
        HttpItemCheck(kind="http", app="web", path="/", expect_headers={"Cache-Control": "max-age=("})
    with pytest.raises(ValueError, match="is not a valid Python regular expression"):
        HttpItemCheck(kind="http", app="web", path="/", load_assets=True, asset_headers={"Cache-Control": "("})
    with pytest.raises(ValueError, match="set load_assets"):
        HttpItemCheck(kind="http", app="web", path="/", asset_headers={"Cache-Control": ".*"})
    with pytest.raises(ValueError, match="method GET"):
        HttpItemCheck(kind="http", app="web", path="/", method="POST", load_assets=True)


APP_LOGS = ("ontos-ml-workbench", "Verify application logs are available")


@pytest.mark.parametrize("frontend", ["ontos"], indirect=True)
def test_the_workbench_serving_its_log_passes_verify_application_logs(frontend: SimpleNamespace, ontos_token: None) -> None:
    evidence = evaluate(frontend, shipped_http_item(*APP_LOGS))  # type: ignore[arg-type]
    assert evidence.passed, evidence.detail
    assert evidence.detail.startswith("GET /logz: HTTP 200"), evidence.detail
    assert "without a token: HTTP 401 (refused)" in evidence.detail, evidence.detail


@pytest.mark.parametrize("frontend", ["web"], indirect=True)
def test_an_app_serving_no_log_fails_verify_application_logs(frontend: SimpleNamespace, ontos_token: None) -> None:
    evidence = evaluate(frontend, shipped_http_item(*APP_LOGS))  # type: ignore[arg-type]
    assert not evidence.passed
    assert "HTTP 404" in evidence.detail, evidence.detail


def test_an_item_s_invalid_body_pattern_is_refused_when_the_checklist_loads() -> None:
    with pytest.raises(ValueError, match="`\\(` is not a valid Python regular expression"):
        HttpItemCheck.model_validate({"kind": "http", "app": "workbench", "path": "/logz", "expect_text_regex": "("})
