"""The plugin stays light where Airflow loads plugins without serving pages (scheduler, DAG processor, task processes),
and hands the API server the app and the navigation entry."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from testenv import ROOT

PROBE = r"""
import json, sys
from airflow import plugins_manager
from airflow.sdk import plugins_manager as task_plugins

plugins_manager.ensure_plugins_loaded()
task_plugins._get_plugins()
watched = ("airflow_rollout", "fastapi", "airflow.api_fastapi.core_api.security")
loaded = sorted(m for m in sys.modules if m.startswith(watched))
names = [p.name for p in plugins_manager._get_plugins()[0]] + [p.name for p in task_plugins._get_plugins()[0]]
apps, _ = plugins_manager.get_fastapi_plugins()
print(json.dumps({"loaded": loaded, "names": names, "apps": [(a["url_prefix"], type(a["app"]).__name__) for a in apps],
                  "after": "airflow_rollout.dashboard.app" in sys.modules}))
"""


def test_loading_the_plugin_imports_no_web_app_and_the_api_server_gets_it():
    env = {**os.environ, "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins")}
    completed = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])

    # Loaded by both plugin managers (the API server's and the task runner's), importing only the package's constants.
    assert report["names"].count("rollout_dashboard") == 2
    assert report["loaded"] == ["airflow_rollout", "airflow_rollout.dashboard"]
    # The API server's call builds the app.
    assert report["apps"] == [["/rollout", "FastAPI"]] and report["after"]
