"""The runtime-only install, as the Docker image does it: requirements.txt, then the package, NOT editable.

In a fresh venv (tmp dir): `pip install -r requirements.txt` (its duration recorded), build the wheel from the package's sources
and `pip install --no-deps` it; then, from a directory outside the repository, with PYTHONPATH unset and `-I`,
import `airflow_rollout` and every module of it. That proves the package is complete as built: every module is
in the wheel, `py.typed` too, and nothing it imports lives in the checkout or in the dev tools (pytest, ruff,
mypy are not even installed there; `devtools` is not importable).

The wheel is built from a copy of pyproject.toml and src/ rather than from the checkout itself: setuptools builds
in the source tree, writing build/ and src/*.egg-info there, and a module left in build/lib by an earlier build
would be shipped in the wheel even after src/ lost it, so a build in the checkout could pass for a package
that is not complete.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from package_layout import DISTRIBUTION, PACKAGE, REPO, clean_env, run_probe, source_files, source_modules

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.e2e

DEV_ONLY = ("pytest", "_pytest", "ruff", "mypy", "iniconfig", "devtools", "testenv")

# Follows package_layout.PROBE_PREAMBLE; runs in the runtime venv with -I from outside the repository.
# Own argv: the distribution, the dev-only top-level names (comma-separated).
PROBE = r"""
distribution, dev_only = sys.argv[3], sys.argv[4].split(",")
result["sys_path"] = list(sys.path)

attempt("airflow_rollout")
import airflow_rollout
package_dir = Path(airflow_rollout.__file__).resolve().parent
result["package_dir"] = str(package_dir)
installed = module_names(package_dir)
result["installed_modules"] = sorted(installed)
result["walked"] = walked(airflow_rollout)
for name in sorted(installed | set(result["walked"])):
    attempt(name)

result["from_repo"] = loaded_from_repo()
result["dev_only_loaded"] = sorted(n for n in sys.modules if n.split(".")[0] in dev_only)
specs = {n: importlib.util.find_spec(n) for n in dev_only}
result["dev_only_importable"] = {n: str(s.origin or list(s.submodule_search_locations or [])) for n, s in specs.items() if s}
dist = importlib.metadata.distribution(distribution)
result["direct_url"] = dist.read_text("direct_url.json")
result["dist_files"] = sorted(str(f) for f in dist.files or [])
"""


@dataclass(frozen=True)
class RuntimeInstall:
    root: Path
    python: Path
    wheel: Path
    pip_seconds: float
    report: dict


def run(command: list[str | Path], *, cwd: Path, env: dict[str, str], log: Path, timeout: float) -> None:
    with log.open("w") as out:
        proc = subprocess.run(
            [str(c) for c in command], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False
        )
    assert proc.returncode == 0, f"{' '.join(map(str, command))} exited {proc.returncode}:\n{log.read_text()[-6000:]}"


def copy_build_sources(destination: Path) -> Path:
    """pyproject.toml, the other build inputs setuptools reads when present, and src/ without build leftovers."""
    destination.mkdir()
    for name in ("pyproject.toml", "setup.py", "setup.cfg", "MANIFEST.in", "README.md", "LICENSE"):
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, destination / name)
    shutil.copytree(REPO / "src", destination / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__", "*.pyc"))
    return destination


@pytest.fixture(scope="module")
def runtime(tmp_path_factory) -> Iterator[RuntimeInstall]:
    root = tmp_path_factory.mktemp("runtime-install")
    venv = root / "venv"
    python = venv / "bin" / "python"
    env = clean_env()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env, timeout=120)

    started = time.monotonic()
    run(
        [python, "-m", "pip", "install", "--disable-pip-version-check", "-r", REPO / "requirements.txt"],
        cwd=root,
        env=env,
        log=root / "pip-requirements.log",
        timeout=1800,
    )
    pip_seconds = time.monotonic() - started
    print(f"\npip install -r requirements.txt into a fresh venv: {pip_seconds:.0f} s")

    wheelhouse = root / "wheelhouse"
    sources = copy_build_sources(root / "sources")
    run(
        [python, "-m", "pip", "wheel", "--disable-pip-version-check", "--no-deps", "-w", wheelhouse, sources],
        cwd=root,
        env=env,
        log=root / "pip-wheel.log",
        timeout=600,
    )
    (wheel,) = wheelhouse.glob("airflow_rollout-*.whl")
    run(
        [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-deps", wheel],
        cwd=root,
        env=env,
        log=root / "pip-install-wheel.log",
        timeout=300,
    )

    outside = root / "elsewhere"  # neither the repository nor anything on sys.path
    outside.mkdir()
    report = run_probe(PROBE, DISTRIBUTION, ",".join(DEV_ONLY), python=python, root=root, cwd=outside)
    yield RuntimeInstall(root, python, wheel, pip_seconds, report)
    shutil.rmtree(venv, ignore_errors=True)  # ~1 GB; pytest keeps its last three tmp dirs, the logs stay there


def test_the_wheel_holds_every_module_and_py_typed_and_nothing_else(runtime: RuntimeInstall):
    with zipfile.ZipFile(runtime.wheel) as wheel:
        names = set(wheel.namelist())
    expected = source_files()
    assert f"{PACKAGE}/py.typed" in expected
    assert not expected - names, f"in src/ but not in the wheel: {sorted(expected - names)}"
    dist_info = {name for name in names if name.split("/")[0].endswith(".dist-info")}
    assert not names - expected - dist_info, f"in the wheel but not in src/{PACKAGE}: {sorted(names - expected - dist_info)}"


def test_the_install_is_not_editable_and_lives_in_the_venv(runtime: RuntimeInstall):
    report = runtime.report
    assert json.loads(report["direct_url"] or "{}").get("dir_info", {}).get("editable") is not True
    package_dir = Path(report["package_dir"])
    assert package_dir.is_relative_to(runtime.root / "venv"), package_dir
    assert not package_dir.is_relative_to(REPO)
    assert f"{PACKAGE}/py.typed" in report["dist_files"]
    assert not any(str(REPO) in entry for entry in report["sys_path"]), report["sys_path"]


def test_every_module_imports_from_the_runtime_install(runtime: RuntimeInstall):
    report = runtime.report
    failed = "\n\n".join(f"{name}:\n{trace}" for name, trace in report["failed"].items())
    assert not report["failed"], f"imports that failed in the runtime-only venv:\n{failed}"
    assert set(report["installed_modules"]) == source_modules(), "the installed package's modules differ from src/"
    assert set(report["imported"]) >= source_modules()


def test_nothing_comes_from_the_checkout_or_the_dev_tools(runtime: RuntimeInstall):
    report = runtime.report
    assert report["from_repo"] == {}, f"modules loaded from the repository: {report['from_repo']}"
    assert report["dev_only_loaded"] == [], f"dev-only modules imported: {report['dev_only_loaded']}"
    assert report["dev_only_importable"] == {}, f"dev-only modules importable in the runtime venv: {report['dev_only_importable']}"


def test_the_pip_install_duration_is_recorded(runtime: RuntimeInstall, record_property):
    """Records how long `pip install -r requirements.txt` took, in the JUnit report and in -rA output; no budget:
    the network decides, and speed goals live in `make bench`."""
    assert runtime.pip_seconds > 0
    record_property("pip_install_requirements_seconds", round(runtime.pip_seconds))
    print(f"pip install -r requirements.txt: {runtime.pip_seconds:.0f} s")
