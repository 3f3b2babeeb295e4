"""`make checklists`: per seed, how its items are done, and how many automated items were seen failing.

Columns: automated, manual, not applicable, derived (bold parents, done when their sub-items are), and
`proven failing`: the automated items whose check returned a failure at least once while the tests ran.

Why recorded by the tests rather than declared: a check that cannot fail proves nothing, and a list kept by
hand of "items that can fail" is the same assertion again. `tests/conftest.py` wraps each check kind's runner
and each evidence function where `checklist_run.evaluate` looks them up, and for each failure appends the
check (its kind and every argument) to a file under build/checklist_failures/ (one per test process). A check
that raised ("could not run") is not a failure of what it states and is not recorded. An item counts while its
check is exactly one recorded: editing a check forgets its proof until a test makes the new one fail. The
count is as good as the last test run in this checkout (in-process runs: dag.test releases and the unit
tests; not the tasks of a separate `airflow standalone`): run the tests first.

Prints a table and writes the same numbers to build/checklists.json, keyed by the seed's file name.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any

from airflow_rollout.checklists import ChecklistError, checklists_dir, load_checklist
from airflow_rollout.config import PROJECT_ROOT

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_rollout.checklists import Checklist, ItemCheck

COLUMNS = ("total", "automated", "manual", "not_applicable", "derived", "proven_failing")


def failures_dir() -> Path:
    return PROJECT_ROOT / "build" / "checklist_failures"


def _key(check: ItemCheck) -> str:
    return json.dumps(check.model_dump(mode="json"), sort_keys=True)


_recorded: set[str] = set()


def record_failure(check: ItemCheck) -> None:
    """Note that this check returned a failure (called by the tests, never by the package); once per process."""
    key = _key(check)
    if key in _recorded:
        return
    _recorded.add(key)
    directory = failures_dir()
    directory.mkdir(parents=True, exist_ok=True)
    with (directory / f"{os.getpid()}.jsonl").open("a") as out:
        out.write(key + "\n")


def recorded_failures() -> set[str]:
    directory = failures_dir()
    return {line for path in directory.glob("*.jsonl") for line in path.read_text().splitlines()} if directory.is_dir() else set()


def _counts(checklist: Checklist, failures: set[str]) -> dict[str, int]:
    proven = sum(1 for e in checklist.entries() if e.item.check is not None and _key(e.item.check) in failures)
    return {**checklist.summary(), "proven_failing": proven}


def summarize(directory: Path | None = None) -> dict[str, dict[str, int]]:
    directory = directory or checklists_dir()
    failures = recorded_failures()
    found: dict[str, dict[str, int]] = {}
    for path in sorted(directory.glob("*.yaml")):
        checklist = load_checklist(path.stem, directory)
        if checklist is not None and checklist.seed:
            found[checklist.seed] = _counts(checklist, failures)
    return dict(sorted(found.items()))


def _row(name: str, counts: dict[str, Any]) -> str:
    share = counts["automated"] / counts["total"] if counts["total"] else 0
    return (
        f"{name:<28} {counts['total']:>6} {counts['automated']:>10} {counts['manual']:>7} {counts['not_applicable']:>5}"
        f" {counts['derived']:>8} {counts['proven_failing']:>15}  {share:.0%}"
    )


def main() -> int:
    try:
        summary = summarize()
    except ChecklistError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{'seed':<28} {'total':>6} {'automated':>10} {'manual':>7} {'n/a':>5} {'derived':>8} {'proven failing':>15}  automated share")
    for seed, counts in summary.items():
        print(_row(seed, counts))
    print(_row("all seeds", {key: sum(c[key] for c in summary.values()) for key in COLUMNS}))
    if not failures_dir().is_dir():
        print("no test run recorded failing checks in this checkout yet: proven failing counts from the tests (make test)")
    output = PROJECT_ROOT / "build" / "checklists.json"
    output.parent.mkdir(exist_ok=True)
    output.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"written to {output.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
