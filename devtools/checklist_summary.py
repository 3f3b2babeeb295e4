"""`make checklists`: per seed, how its items are done (automated, manual, not applicable).

Prints a table and writes the same numbers to build/checklists.json, keyed by the seed's file name.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from airflow_rollout.checklists import ChecklistError, checklists_dir, load_checklist
from airflow_rollout.config import PROJECT_ROOT

if TYPE_CHECKING:
    from pathlib import Path


def summarize(directory: Path | None = None) -> dict[str, dict[str, int]]:
    directory = directory or checklists_dir()
    found: dict[str, dict[str, int]] = {}
    for path in sorted(directory.glob("*.yaml")):
        checklist = load_checklist(path.stem, directory)
        if checklist is not None and checklist.seed:
            found[checklist.seed] = checklist.summary()
    return dict(sorted(found.items()))


def main() -> int:
    try:
        summary = summarize()
    except ChecklistError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"{'seed':<28} {'total':>6} {'automated':>10} {'manual':>7} {'n/a':>5}  automated share")
    for seed, counts in summary.items():
        share = counts["automated"] / counts["total"] if counts["total"] else 0
        print(f"{seed:<28} {counts['total']:>6} {counts['automated']:>10} {counts['manual']:>7} {counts['not_applicable']:>5}  {share:.0%}")
    total = {key: sum(c[key] for c in summary.values()) for key in ("total", "automated", "manual", "not_applicable")}
    print(f"{'all seeds':<28} {total['total']:>6} {total['automated']:>10} {total['manual']:>7} {total['not_applicable']:>5}")
    output = PROJECT_ROOT / "build" / "checklists.json"
    output.parent.mkdir(exist_ok=True)
    output.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"written to {output.relative_to(PROJECT_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
