"""plugins/ as Airflow's plugin manager sees it, in a fresh interpreter like every Airflow process.

Airflow imports every `.py` file under the plugins folder (recursively) as a top-level module named after the
file, and appends the folder to sys.path. A library file there becomes `sys.modules["<stem>"]`: a file named
`kubernetes.py` or `databricks.py` replaces the official client for the whole process, and the provider hooks
break. So, in a fresh interpreter (subprocess, throwaway AIRFLOW_HOME and sqlite database):

1. `airflow.plugins_manager.ensure_plugins_loaded()` over the repository's plugins/, with no import error;
2. then `KubernetesHook`, `DatabricksHook`, `DatabricksSqlHook`, `airflow_rollout` and every module of it import;
3. `kubernetes` is the official client (site-packages/kubernetes), `databricks` (when loaded) is not from the
   repository, and no module but `airflow_rollout.*` (and plugin modules) was loaded from the checkout;
4. every `.py` file in plugins/ is loaded as a module holding an `AirflowPlugin` subclass;
5. no name in plugins/ equals a top-level importable module (a distribution's, the stdlib's, the package's).

Run both ways the project starts Airflow: as deployed (no PYTHONPATH, cwd elsewhere, `-I`) and as `make up`
and `make test` do (cwd and PYTHONPATH the repository root).
"""

from __future__ import annotations

import json
import pkgutil
import site
import sys
from importlib import metadata
from pathlib import Path

import pytest
from package_layout import DAGS_DIR, PACKAGE, PLUGINS_DIR, REPO, run_probe, source_modules

HOOKS = [
    "airflow.providers.cncf.kubernetes.hooks.kubernetes:KubernetesHook",
    "airflow.providers.databricks.hooks.databricks:DatabricksHook",
    "airflow.providers.databricks.hooks.databricks_sql:DatabricksSqlHook",
]

# Follows package_layout.PROBE_PREAMBLE. Own argv: plugins folder, JSON list of names to import (the hooks first).
PROBE = r"""
plugins_folder, wanted = Path(sys.argv[3]), json.loads(sys.argv[4])
result["sys_path_before"] = list(sys.path)

from airflow import plugins_manager
from airflow import settings

result["plugins_folder"] = settings.PLUGINS_FOLDER
plugins_manager.ensure_plugins_loaded()
result["import_errors"] = {str(k): str(v) for k, v in plugins_manager.get_import_errors().items()}
result["kubernetes_after_plugins"] = origins(sys.modules["kubernetes"]) if "kubernetes" in sys.modules else None
result["databricks_after_plugins"] = origins(sys.modules["databricks"]) if "databricks" in sys.modules else None

plugin_files = {}
for file in sorted(plugins_folder.rglob("*.py")):
    module = sys.modules.get(file.stem)
    loaded_from = getattr(module, "__file__", None)
    same = loaded_from is not None and Path(loaded_from).resolve() == file.resolve()
    plugin_files[str(file)] = {
        "module": file.stem,
        "loaded": same,
        "loaded_from": loaded_from,
        "plugins": sorted(n for n, v in vars(module).items() if plugins_manager.is_valid_plugin(v)) if same else [],
    }
result["plugin_files"] = plugin_files

for name in wanted[:3]:  # the hooks, before the package
    attempt(name)
attempt("airflow_rollout")
package = sys.modules.get("airflow_rollout")
result["walked"] = walked(package) if package is not None else []
for name in sorted(set(result["walked"]) | set(wanted[3:])):
    attempt(name)

if "kubernetes" not in sys.modules:
    attempt("kubernetes")
result["kubernetes"] = origins(sys.modules["kubernetes"]) if "kubernetes" in sys.modules else None
result["databricks"] = origins(sys.modules["databricks"]) if "databricks" in sys.modules else None
try:
    result["kubernetes_official"] = str(importlib.metadata.distribution("kubernetes").locate_file("kubernetes/__init__.py"))
except importlib.metadata.PackageNotFoundError:
    result["kubernetes_official"] = None
result["purelib"] = sysconfig.get_paths()["purelib"]
result["from_repo"] = loaded_from_repo()
result["sys_path_after"] = list(sys.path)
"""


def run_plugins_probe(tmp_path: Path, plugins_folder: Path, *, as_make: bool) -> dict:
    """The probe over plugins_folder: as deployed (the installed package only, nothing from a checkout on sys.path),
    or as the Makefile runs things (PYTHONPATH=<repo>, from the repository root)."""
    env = {"AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins_folder), "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR)}
    if as_make:
        env["PYTHONPATH"] = str(REPO)
    return run_probe(
        PROBE,
        plugins_folder,
        json.dumps([*HOOKS, *sorted(source_modules())]),
        python=sys.executable,
        root=tmp_path,
        cwd=REPO if as_make else tmp_path,
        isolated=not as_make,
        env=env,
    )


@pytest.fixture(scope="module", params=["deployed", "make"])
def probe(request, tmp_path_factory) -> dict:
    return run_plugins_probe(tmp_path_factory.mktemp(f"plugins-{request.param}"), PLUGINS_DIR, as_make=request.param == "make")


def test_plugin_manager_loads_the_folder_without_error(probe):
    assert Path(probe["plugins_folder"]).resolve() == PLUGINS_DIR.resolve()
    assert probe["import_errors"] == {}


def test_hooks_and_every_package_module_import_after_the_plugins(probe):
    failed = "\n\n".join(f"{name}:\n{trace}" for name, trace in probe["failed"].items())
    assert not probe["failed"], f"imports that failed after the plugin manager ran:\n{failed}"
    assert set(probe["imported"]) >= {*HOOKS, *source_modules()}


def test_kubernetes_is_the_official_client(probe):
    official = probe["kubernetes_official"]
    assert official, "the kubernetes distribution is not installed"
    official_client = [Path(official).resolve(), Path(official).resolve().parent]  # __init__.py, then __path__
    assert [Path(p).resolve() for p in probe["kubernetes"]] == official_client, probe["kubernetes"]
    assert official_client[1] == (Path(probe["purelib"]) / "kubernetes").resolve()
    if probe["kubernetes_after_plugins"] is not None:  # loaded by the plugin manager itself: the same module
        assert probe["kubernetes_after_plugins"] == probe["kubernetes"]


def test_databricks_is_not_from_the_repository(probe):
    for loaded in (probe["databricks_after_plugins"], probe["databricks"]):
        if loaded is not None:
            assert all(Path(p).resolve().is_relative_to(Path(probe["purelib"]).resolve()) for p in loaded), loaded
    assert "databricks" not in probe["from_repo"]


def test_only_the_package_and_plugins_come_from_the_checkout(probe):
    plugin_modules = {entry["module"] for entry in probe["plugin_files"].values()}
    foreign = {
        name: paths
        for name, paths in probe["from_repo"].items()
        if name != PACKAGE and not name.startswith(f"{PACKAGE}.") and name not in plugin_modules
    }
    assert not foreign, f"modules loaded from the repository checkout: {foreign}"


def test_every_plugin_file_defines_an_airflow_plugin(probe):
    problems = [
        f"{Path(file).relative_to(REPO)}: "
        + (
            f"not loaded as module {entry['module']!r} (sys.modules has {entry['loaded_from']!r})"
            if not entry["loaded"]
            else "defines no AirflowPlugin subclass: only plugins belong in plugins/, libraries go in src/airflow_rollout"
        )
        for file, entry in probe["plugin_files"].items()
        if not entry["loaded"] or not entry["plugins"]
    ]
    assert not problems, "\n".join(problems)


def importable_top_levels() -> set[str]:
    """Top-level module names a plugin file could replace in sys.modules or shadow on sys.path."""
    names = set(metadata.packages_distributions()) | set(sys.stdlib_module_names) | set(sys.builtin_module_names)
    names |= {module.name for module in pkgutil.iter_modules(site.getsitepackages())}
    names |= {PACKAGE, "devtools"}  # the installed package; the stand-ins under `make` (PYTHONPATH=<repo>)
    return names


def shadowing_names(plugins_folder: Path) -> dict[str, str]:
    """Name -> file or folder in plugins_folder that takes a top-level module's name: every .py file at any depth
    (the plugin manager imports each as `sys.modules[stem]`) and every top-level entry (the folder is on sys.path)."""
    candidates = {file.stem: file for file in plugins_folder.rglob("*.py")}
    candidates |= {
        (entry.name if entry.is_dir() else entry.name.split(".")[0]): entry
        for entry in plugins_folder.iterdir()
        if entry.is_dir() or entry.suffix in {".py", ".pyc", ".so", ".pth"}
    }
    taken = importable_top_levels()
    return {name: str(path.relative_to(plugins_folder)) for name, path in sorted(candidates.items()) if name in taken}


def test_no_name_in_plugins_shadows_a_module():
    shadowing = shadowing_names(PLUGINS_DIR)
    assert not shadowing, f"plugins/ entries named like an importable top-level module: {shadowing}"


def test_the_checks_catch_a_library_file_in_plugins(tmp_path: Path):
    """The failure these tests guard against, reproduced in a throwaway plugins folder: a library file named like
    the Kubernetes client, nested as the old plugins/rollout/targets/kubernetes.py was, beside a real plugin."""
    folder = tmp_path / "plugins"
    (folder / "rollout" / "targets").mkdir(parents=True)
    (folder / "rollout" / "targets" / "kubernetes.py").write_text("TARGET = 'kubernetes'\n")
    (folder / "real_plugin.py").write_text(
        "from airflow.plugins_manager import AirflowPlugin\n\nclass RealPlugin(AirflowPlugin):\n    name = 'real_plugin'\n"
    )
    assert shadowing_names(folder) == {"kubernetes": "rollout/targets/kubernetes.py"}

    report = run_plugins_probe(tmp_path, folder, as_make=False)
    entries = {Path(file).name: entry for file, entry in report["plugin_files"].items()}
    assert entries["real_plugin.py"]["plugins"] == ["RealPlugin"]
    assert entries["kubernetes.py"]["loaded"] and not entries["kubernetes.py"]["plugins"]
    assert report["kubernetes_after_plugins"] == [str(folder / "rollout" / "targets" / "kubernetes.py")]
    assert report["kubernetes"] != [report["kubernetes_official"], str(Path(report["kubernetes_official"]).parent)]
    assert HOOKS[0] in report["failed"]  # the hook cannot import kubernetes.client any more
