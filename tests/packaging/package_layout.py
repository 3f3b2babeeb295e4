"""What the packaging tests share: where the package and the checkout are, the package's modules as the source
tree has them, a clean environment for a fresh interpreter, and the probe that such an interpreter runs.

Not a test module (pytest collects only test_*.py). tests/packaging/ has no __init__.py, on purpose: as a package
it would shadow the `packaging` library. pytest puts this folder on sys.path for the test files in it (rootdir
import mode), so they import this module as `package_layout`.
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PACKAGE = "airflow_rollout"
DISTRIBUTION = "airflow-rollout"
PACKAGE_DIR = REPO / "src" / PACKAGE
DAGS_DIR = REPO / "dags"
PLUGINS_DIR = REPO / "plugins"


# module_files and module_names also run inside the probe (their source is part of PROBE_PREAMBLE), so they use
# nothing but Path and builtins.
def module_files(package_dir: Path) -> dict[str, Path]:
    """Dotted name -> file for every .py file under package_dir; an `__init__.py` under its package's name."""
    modules = {}
    for file in sorted(package_dir.rglob("*.py")):
        parts = file.relative_to(package_dir.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = file
    return modules


def module_names(package_dir: Path) -> set[str]:
    """Every module of the package as a tree has it: .py files, and the directories (packages) holding them."""
    names = set()
    for name in module_files(package_dir):
        parts = name.split(".")
        names.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
    return names


def package_modules() -> dict[str, Path]:
    """Dotted name -> file for every module in src/airflow_rollout."""
    return module_files(PACKAGE_DIR)


def source_modules() -> set[str]:
    """Every module of src/airflow_rollout, its directories included (with or without an __init__.py)."""
    return module_names(PACKAGE_DIR)


def source_files() -> set[str]:
    """Every file the package ships, relative to src/: its modules and its data (py.typed)."""
    return {
        str(path.relative_to(PACKAGE_DIR.parent))
        for path in PACKAGE_DIR.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in {".pyc", ".pyo"}
    }


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without anything Airflow, the project or Python would read from it (pip's settings
    stay), plus `extra`."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AIRFLOW", "ROLLOUT_", "DEMO_", "PYTHON")) and key not in {"VIRTUAL_ENV", "PIP_REQUIRE_VIRTUALENV"}
    }
    env.update(extra)
    return env


# The start of every probe: a script run with `python [-I] -c` in a fresh interpreter, argv: result file, repository,
# then the probe's own arguments (sys.argv[3:]). It fills `result` and ends with PROBE_END, which writes it out.
PROBE_PREAMBLE = (
    r"""
import importlib, importlib.metadata, importlib.util, json, pkgutil, sys, sysconfig, traceback
from pathlib import Path

out, repo = Path(sys.argv[1]), Path(sys.argv[2]).resolve()
venv = Path(sys.prefix).resolve()
result = {"failed": {}, "imported": []}

def attempt(name):
    # "module" or "module:attribute"; records the name as imported, or the traceback that stopped it
    module_name, _, attr = name.partition(":")
    try:
        module = importlib.import_module(module_name)
        if attr:
            getattr(module, attr)
        result["imported"].append(name)
    except BaseException:
        result["failed"][name] = traceback.format_exc()

def origins(module):
    # the files and folders a module was loaded from: __file__, then __path__
    try:
        found = [getattr(module, "__file__", None)] + list(getattr(module, "__path__", None) or [])
    except Exception:
        return []
    return [p for p in found if isinstance(p, str)]

def in_repo(path):
    # the checkout, but not the interpreter's own venv should that live inside it
    path = Path(path).resolve()
    return path.is_relative_to(repo) and not path.is_relative_to(venv)

def loaded_from_repo():
    # module name -> its origins inside the checkout, for every loaded module that has one there
    return {
        name: [p for p in origins(module) if in_repo(p)]
        for name, module in list(sys.modules.items())
        if any(in_repo(p) for p in origins(module))
    }

def walked(package):
    # the submodules pkgutil finds below a package (regular packages only: it skips a folder without __init__.py)
    return sorted(m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".", onerror=lambda n: None))

"""
    + inspect.getsource(module_files)
    + "\n"
    + inspect.getsource(module_names)
)
PROBE_END = """
Path(out).write_text(json.dumps(result, indent=1))
"""


def run_probe(
    script: str,
    *args: str | Path,
    python: str | Path,
    root: Path,
    cwd: Path,
    isolated: bool = True,
    env: dict[str, str] | None = None,
) -> dict:
    """Runs `PROBE_PREAMBLE + script + PROBE_END` in a fresh interpreter (`-I` when isolated) from cwd, with a clean
    environment plus `env` and a throwaway Airflow (AIRFLOW_HOME and sqlite database under root, no examples).
    Returns the probe's result; fails the test, with the probe's output, if it did not write one."""
    home = root / "airflow-home"
    home.mkdir(exist_ok=True)
    out = root / "probe.json"
    probe_env = clean_env(
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{root / 'airflow.db'}",
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        **(env or {}),
    )
    command = [str(python), *(["-I"] if isolated else []), "-c", PROBE_PREAMBLE + script + PROBE_END, str(out), str(REPO)]
    proc = subprocess.run([*command, *map(str, args)], cwd=cwd, env=probe_env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0 and out.is_file(), f"probe failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return json.loads(out.read_text())
