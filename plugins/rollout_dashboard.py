"""The Releases dashboard in Airflow's UI: wiring only, the app is `airflow_rollout.dashboard`.

Two of Airflow 3.3's plugin extension points (airflow/plugins_manager.py, airflow/api_fastapi/app.py `init_plugins`):

- `fastapi_apps`: the API server mounts the dashboard's FastAPI app under `/rollout`, beside its own routes, so the
  pages are served by the same process, on the same origin, behind the same auth manager as the UI;
- `external_views`, not `react_apps`: a **Releases** entry in the navigation whose `url_route` makes the UI frame
  the server-rendered pages inside its own shell (`/plugin/releases`). A React app would need a JavaScript bundle
  built and shipped with the package for pages that only show what the ledger holds; an external view needs none,
  and being same-origin the frame carries the JWT cookie the UI set at login, which the app's auth dependency reads.

Plugin files are imported by every Airflow process (scheduler, DAG processor, task processes). This one imports
only the plugin base class and the dashboard package's constants; the app itself (FastAPI, Airflow's security
module, the page code) is built only when the API server asks for `fastapi_apps`, and no database is touched before
a page is requested.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from airflow_rollout.dashboard import URL_PREFIX, nav_href


class RolloutDashboardPlugin(AirflowPlugin):
    name = "rollout_dashboard"

    # Properties, read on the plugin instance the plugin manager creates: the app is built on first use, in the API
    # server only, and the navigation's href follows [api] base_url.
    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        from airflow_rollout.dashboard.app import dashboard_app

        return [{"app": dashboard_app(), "url_prefix": URL_PREFIX, "name": "Releases dashboard"}]

    @property
    def external_views(self) -> list[dict[str, Any]]:  # type: ignore[override]
        return [{"name": "Releases", "href": nav_href(), "url_route": "releases", "destination": "nav", "nav_top_level": True}]
