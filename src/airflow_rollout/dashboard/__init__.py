"""The Releases dashboard: the ledger read back as pages inside Airflow's UI.

`plugins/rollout_dashboard.py` mounts `app.dashboard_app()` in the API server (a plugin's `fastapi_apps`) and puts
a **Releases** entry in the UI's navigation (`external_views`). This module stays import-light: the plugin file
imports it in every Airflow process, where only the API server ever builds the app.
"""

from __future__ import annotations

from urllib.parse import urlsplit

# Where the API server mounts the app (a plugin's url_prefix; Airflow reserves /api/v2, /ui, /execution, /auth, /pluginsv2).
URL_PREFIX = "/rollout"
# The dashboard reads what the runs of this DAG recorded: a user who may read its runs may read the pages.
RELEASE_DAG = "release"


def ui_base_url() -> str:
    """The Airflow UI's base URL (`[api] base_url`) without a trailing slash; empty when unset (links stay on this origin)."""
    from airflow.configuration import conf

    return (conf.get("api", "base_url", fallback="") or "").rstrip("/")


def nav_href() -> str:
    """The dashboard's address as the UI frames it: under the API server's root path, as Airflow mounts its own apps."""
    return urlsplit(ui_base_url()).path.rstrip("/") + URL_PREFIX + "/"
