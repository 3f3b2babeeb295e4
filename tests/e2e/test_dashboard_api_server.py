"""The Releases dashboard in a real `airflow api-server`: the plugin is mounted, listed with its navigation entry,
refuses a request without a token and serves one with a token from POST /auth/token (and with the UI's cookie)."""

from __future__ import annotations

import json
import os
import uuid
from urllib.parse import quote

import httpx
import pytest
from observe import ledger

pytestmark = pytest.mark.e2e


@pytest.fixture
def recorded_release(postgres, slack):
    """A promoted release of the demo in the session's ledger (the API server reads it through `rollout_ledger`)."""
    from airflow_rollout.ledger import ReleaseStatus

    release_id = f"api-server-{uuid.uuid4().hex[:8]}"
    led = ledger()
    led.ensure_schema()
    led.open_release(release_id=release_id, system="demo", version="7.7.7", triggered_by="api-test")
    led.set_status(release_id, ReleaseStatus.PROMOTED, reason="decision: proceed", final=True)
    yield release_id
    postgres.psql("rollout_ledger", f"DELETE FROM rollout_release WHERE release_id = '{release_id}'")


def token_for(api: str) -> str:
    login = json.loads(os.environ["AIRFLOW_CONN_AIRFLOW_API"])
    response = httpx.post(f"{api}/auth/token", json={"username": login["login"], "password": login["password"]}, timeout=30)
    assert response.is_success, response.text
    return str(response.json()["access_token"])


def test_the_plugin_is_mounted_and_refuses_a_request_without_a_token(recorded_release, airflow_api):
    release_page = f"{airflow_api}/rollout/systems/demo/releases/{quote(recorded_release, safe='')}"

    for url in (f"{airflow_api}/rollout/", release_page):
        refused = httpx.get(url, timeout=30)
        assert refused.status_code == 401, (url, refused.status_code, refused.text[:300])
        assert "demo" not in refused.text and "7.7.7" not in refused.text

    token = token_for(airflow_api)
    systems = httpx.get(f"{airflow_api}/rollout/", headers={"Authorization": f"Bearer {token}"}, timeout=60)
    release = httpx.get(release_page, headers={"Authorization": f"Bearer {token}"}, timeout=60)
    in_browser = httpx.get(release_page, cookies={"_token": token}, timeout=60)  # the cookie the UI sets at login

    assert systems.status_code == 200, systems.text[:2000]
    assert 'id="system-demo"' in systems.text and "signed in to Airflow as admin" in systems.text
    assert "could not be read" not in systems.text  # the API server reached the ledger through the Postgres hook
    assert release.status_code == 200, release.text[:2000]
    assert 'id="release-status">promoted<' in release.text and "7.7.7" in release.text
    assert in_browser.status_code == 200 and "7.7.7" in in_browser.text


def test_the_plugin_adds_a_releases_entry_to_the_navigation(airflow_api):
    token = token_for(airflow_api)

    plugins = httpx.get(f"{airflow_api}/api/v2/plugins", headers={"Authorization": f"Bearer {token}"}, timeout=30).json()["plugins"]

    [plugin] = [p for p in plugins if p["name"] == "rollout_dashboard"]
    assert [app["url_prefix"] for app in plugin["fastapi_apps"]] == ["/rollout"]
    [view] = plugin["external_views"]
    assert (view["name"], view["href"], view["url_route"], view["destination"]) == ("Releases", "/rollout/", "releases", "nav")
    errors = httpx.get(f"{airflow_api}/api/v2/plugins/importErrors", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert errors.json()["import_errors"] == []
