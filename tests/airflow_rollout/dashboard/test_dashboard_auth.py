"""Every page of the dashboard sits behind Airflow's auth manager: no token, no page and no data.

The app is the one the plugin hands Airflow's API server, with the API server's own security dependency in place
(`requires_access_dag`: read access to the runs of `release`); tokens come from the auth manager itself.
"""

from __future__ import annotations

import pytest

ROUTES = ["/rollout/", "/rollout/systems/demo", "/rollout/systems/demo/trends", "/rollout/systems/demo/releases/any-release"]


@pytest.mark.parametrize("path", ROUTES)
def test_without_a_token_every_route_is_refused_and_shows_nothing(anonymous, path):
    response = anonymous.get(path)

    assert response.status_code == 401
    assert response.json() == {"detail": "Not authenticated"}
    assert "demo" not in response.text


@pytest.mark.parametrize("path", ROUTES)
def test_a_forged_or_foreign_token_is_refused(anonymous, path):
    forged = anonymous.get(path, headers={"Authorization": "Bearer not-a-token"})
    cookie = anonymous.get(path, cookies={"_token": "eyJhbGciOiJIUzUxMiJ9.e30.c2lnbmF0dXJl"})

    assert forged.status_code == 403 and "demo" not in forged.text
    assert cookie.status_code == 403 and "demo" not in cookie.text


def test_a_user_without_access_to_the_release_runs_is_refused(anonymous, auth_manager):
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    no_role = auth_manager.generate_jwt(SimpleAuthManagerUser(username="nobody", role=None))

    response = anonymous.get("/rollout/", headers={"Authorization": f"Bearer {no_role}"})

    assert response.status_code == 403
    assert "demo" not in response.text


def test_a_signed_in_browser_is_served_through_the_ui_cookie(anonymous, token, postgres):
    """The UI keeps its JWT in the `_token` cookie; the frame the Releases entry opens sends it along."""
    response = anonymous.get("/rollout/", cookies={"_token": token})

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "signed in to Airflow as vera" in response.text


def test_no_unguarded_route_exists(dashboard_app):
    """Every route the app has carries the auth dependency; there is no /docs or /openapi.json answering without it."""
    from fastapi.routing import APIRoute

    routes = [route for route in dashboard_app.routes if isinstance(route, APIRoute)]
    assert {route.path for route in routes} == {
        "/",
        "/systems/{system}",
        "/systems/{system}/releases/{release_id:path}",
        "/systems/{system}/trends",
    }
    assert [route.path for route in dashboard_app.routes if not isinstance(route, APIRoute)] == []
    for route in routes:
        assert [d.dependency.__qualname__ for d in route.dependencies] == ["requires_access_dag.<locals>.inner"], route.path
