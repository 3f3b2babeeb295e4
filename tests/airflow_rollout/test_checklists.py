"""Checklists: the seed checklists as data. Every checkbox of every seed is present; the fixtures pin what
loads and how each mistake is reported (file, item, field)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from airflow_rollout.checklists import (
    ChecklistError,
    Phase,
    SqlItemCheck,
    checklist_items,
    checklists_dir,
    load_checklist,
    parse_checklist,
    repair_text,
    seed_items,
)
from airflow_rollout.config import ProfileError, load_profile, read_yaml

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "checklists"
VENDORED_SEEDS = ROOT / "tests" / "fixtures" / "seeds"
SHARED_SEEDS = ROOT.parent / "shared" / "seeds"
SEEDS = {
    "000_71dc5f6d0fa677f6.txt": "ontos-ml-workbench",
    "001_8b12d28cd9350f1d.txt": "databricks-ml-platform",
    "002_f774630f908070a3.txt": "ai-etl-assistant",
    "003_8c5e1412a6cbc298.txt": "routing-ml-platform",
    "004_023bba87f02b6b5f.txt": "mlops-system",
}


def seed_text(name: str) -> str:
    # The seeds are the requirements; a copy travels with the repo so that a clone elsewhere can test against them.
    return (SHARED_SEEDS / name if SHARED_SEEDS.is_dir() else VENDORED_SEEDS / name).read_text()


def test_the_vendored_seeds_are_the_seeds() -> None:
    if not SHARED_SEEDS.is_dir():
        pytest.skip("no ../shared/seeds beside this clone; the vendored copy is used as it is")
    assert {p.name: p.read_bytes() for p in SHARED_SEEDS.glob("*.txt")} == {p.name: p.read_bytes() for p in VENDORED_SEEDS.glob("*.txt")}


@pytest.mark.parametrize(("seed", "system"), SEEDS.items())
def test_every_checkbox_of_the_seed_has_an_item(seed: str, system: str) -> None:
    wanted = Counter(seed_items(seed_text(seed)))
    checklist = load_checklist(system)
    assert checklist is not None, f"include/checklists/{system}.yaml is missing"
    assert checklist.seed == seed
    got = Counter(checklist_items(checklist))
    assert list((wanted - got).elements()) == [], "checkbox lines of the seed without an item"
    assert list((got - wanted).elements()) == [], "items that are not checkbox lines of the seed"


def test_the_seeds_hold_855_items() -> None:
    assert sum(len(seed_items(seed_text(seed))) for seed in SEEDS) == 855


def test_seed_002_mojibake_is_repaired() -> None:
    headings = [heading for heading, _ in seed_items(seed_text("002_f774630f908070a3.txt"))]
    assert "📝 Documentation" in headings
    assert repair_text("‚úÖ Final Checklist") == "✅ Final Checklist"
    assert repair_text("Already fine ✅") == "Already fine ✅"
    for path in checklists_dir().glob("*.yaml"):
        assert "‚Ä" not in path.read_text() and "Ô∏" not in path.read_text(), path.name


@pytest.mark.parametrize("path", sorted(checklists_dir().glob("*.yaml")), ids=lambda p: p.stem)
def test_shipped_checklists_are_honest_about_how_each_item_is_done(path: Path) -> None:
    checklist = load_checklist(path.stem)
    assert checklist is not None
    summary = checklist.summary()
    assert summary["total"] == summary["automated"] + summary["manual"] + summary["not_applicable"] + summary["derived"]
    assert summary["automated"] > 0
    for entry in checklist.entries():
        if entry.item.not_applicable:
            assert len(entry.item.not_applicable) >= 10, f"{entry.item_id}: give a real reason"


def test_demo_checklist_fits_the_demo_profile() -> None:
    from airflow_rollout.checklist_run import check_references

    profile = load_profile("demo")
    checklist = load_checklist("demo")
    assert checklist is not None
    check_references(SimpleNamespace(profile=profile), checklist)  # type: ignore[arg-type]
    phases = {e.phase for e in checklist.entries() if e.item.check}
    assert {Phase.PRE_DEPLOY, Phase.BACKUP, Phase.MIGRATE, Phase.DEPLOY, Phase.VERIFY, Phase.POST_DEPLOY} <= phases


def test_a_checklist_naming_what_the_profile_lacks_is_refused() -> None:
    from airflow_rollout.checklist_run import check_references

    checklist = parse_checklist(
        {
            "system": "demo",
            "title": "t",
            "sections": [
                {
                    "title": "S",
                    "phase": "verify",
                    "items": [
                        {"text": "a", "check": {"kind": "http", "app": "api", "path": "/health"}},
                        {"text": "b", "manual": {"role": "Product Owner", "required": True}},
                    ],
                }
            ],
        },
        "x.yaml",
    )
    with pytest.raises(ChecklistError) as caught:
        check_references(SimpleNamespace(profile=load_profile("demo")), checklist)  # type: ignore[arg-type]
    assert "item s1.1 ('a'): app 'api' is not in the profile" in str(caught.value)
    assert "role 'Product Owner' must sign off required items but sign_off.roles names nobody" in str(caught.value)


# --- no check that cannot fail ----------------------------------------------------------------------------

# `SELECT 1` held to 1 proves only that the database answers a query: the items that say exactly that.
LIVENESS_PROBES = {
    ("ontos-ml-workbench", "Production warehouse provisioned"),  # the warehouse the profile names runs a statement
    ("mlops-system", "PostgreSQL healthy and accepting connections"),
    ("ai-etl-assistant", "**Test database connectivity**"),  # the seed's `psql $DATABASE_URL -c "SELECT 1"`
}
COUNT = re.compile(r"^\s*SELECT\s+count\(", re.IGNORECASE)
LITERAL = re.compile(r"^\s*SELECT\s+(-?\d+(\.\d+)?|'[^']*'|TRUE|FALSE)\s*$", re.IGNORECASE)


def tautology(check: SqlItemCheck) -> str | None:
    """Why the check passes whatever the system's state (its expectation holds for every value the query can give), or None."""
    query = re.sub(r"'[^']*'", "''", check.query)  # a FROM inside a string literal reads no table
    only_a_floor = check.at_least is not None and check.at_most is None and check.equals is None
    if LITERAL.match(check.query):
        return "a constant: it passes whenever the database answers"
    if not re.search(r"\bFROM\b", query, re.IGNORECASE) and only_a_floor:
        return "a floor on a value of the server itself (a size, a version): it never falls below it"
    if COUNT.match(query) and only_a_floor and (check.at_least or 0) <= 0:
        return "a count is never below 0"
    return None


@pytest.mark.parametrize(
    ("query", "expectation"),
    [
        ("SELECT pg_database_size(current_database())", {"at_least": 1}),
        ("SELECT 1", {"equals": 1}),
        ("SELECT count(*) FROM pg_tables", {"at_least": 0}),
        ("SELECT octet_length(version())", {"at_least": 1}),
    ],
)
def test_a_check_that_cannot_fail_is_recognised(query: str, expectation: dict[str, float]) -> None:
    assert tautology(SqlItemCheck(kind="sql", target="t", query=query, **expectation)) is not None


def test_no_sql_check_of_a_checklist_is_a_tautology_over_a_constant() -> None:
    found = []
    for path in sorted(checklists_dir().glob("*.yaml")):
        checklist = load_checklist(path.stem)
        assert checklist is not None
        for entry in checklist.entries():
            check = entry.item.check
            if not isinstance(check, SqlItemCheck) or (path.stem, entry.item.text) in LIVENESS_PROBES:
                continue
            if reason := tautology(check):
                found.append(f"{path.stem} {entry.item_id} {entry.item.text!r}: {reason}")
    assert found == []


def test_the_liveness_probes_are_what_they_say() -> None:
    for system, text in LIVENESS_PROBES:
        checklist = load_checklist(system)
        assert checklist is not None
        [check] = [e.item.check for e in checklist.entries() if e.item.text == text]
        assert isinstance(check, SqlItemCheck) and LITERAL.match(check.query), (system, text)


# --- fixtures ---------------------------------------------------------------------------------------------


def test_valid_fixtures_load() -> None:
    minimal = load_checklist("minimal", FIXTURES / "valid")
    full = load_checklist("full", FIXTURES / "valid")
    assert minimal is not None and full is not None
    assert minimal.summary() == {"total": 1, "automated": 1, "manual": 0, "not_applicable": 0, "derived": 0}
    kinds = {e.item.check.kind for e in full.entries() if e.item.check}
    assert kinds == {"http", "sql", "connection", "backup_fresh", "latency", "file_present", "command", "python"}
    assert full.required_roles() == ["Security Lead"]
    nested = next(e for e in full.entries() if e.item.text == "Database reachable")
    assert (nested.item_id, nested.depth, nested.phase) == ("s1.1.1", 1, Phase.PRE_DEPLOY)
    assert next(e for e in full.entries() if e.item.text == "Weekly drill").phase is Phase.WEEKLY


def test_missing_checklist_is_none() -> None:
    assert load_checklist("nothing-here", FIXTURES / "valid") is None


INVALID = sorted((FIXTURES / "invalid").glob("*.yaml"))


def test_at_least_ten_invalid_fixtures() -> None:
    assert len(INVALID) >= 10


@pytest.mark.parametrize("path", INVALID, ids=lambda p: p.stem)
def test_invalid_fixture_is_refused_naming_file_item_and_field(path: Path) -> None:
    expected = [line.removeprefix("# expect: ") for line in path.read_text().splitlines() if line.startswith("# expect: ")]
    assert expected, f"{path.name} must open with '# expect: <substring>'"
    with pytest.raises(ProfileError) as caught:  # broken YAML is refused by the reader all files share
        parse_checklist(read_yaml(path), str(path))
    for fragment in expected:
        assert fragment in str(caught.value)
    assert str(path) in str(caught.value)


def test_checklist_file_name_must_match_its_system(tmp_path: Path) -> None:
    (tmp_path / "other.yaml").write_text((FIXTURES / "valid" / "minimal.yaml").read_text())
    with pytest.raises(ChecklistError, match="must equal the file name 'other'"):
        load_checklist("other", tmp_path)


# --- make checklists -------------------------------------------------------------------------------------


def test_make_checklists_accounts_for_every_seed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from devtools import checklist_summary

    monkeypatch.setattr(checklist_summary, "PROJECT_ROOT", tmp_path)
    assert checklist_summary.main() == 0
    written = json.loads((tmp_path / "build" / "checklists.json").read_text())
    assert set(written) == set(SEEDS)
    for seed, counts in written.items():
        assert counts["total"] == len(seed_items(seed_text(seed)))
        assert counts["total"] == counts["automated"] + counts["manual"] + counts["not_applicable"] + counts["derived"]
        assert 0 <= counts["proven_failing"] <= counts["automated"]
    assert "all seeds" in capsys.readouterr().out


def test_proven_failing_counts_an_item_only_while_its_check_is_the_one_seen_failing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from devtools import checklist_summary

    monkeypatch.setattr(checklist_summary, "PROJECT_ROOT", tmp_path)
    minimal = load_checklist("minimal", FIXTURES / "valid")
    assert minimal is not None
    [check] = [e.item.check for e in minimal.entries() if e.item.check]
    assert checklist_summary._counts(minimal, checklist_summary.recorded_failures())["proven_failing"] == 0
    checklist_summary.record_failure(check.model_copy(update={"expect_status": 500}))  # another check of the same kind
    assert checklist_summary._counts(minimal, checklist_summary.recorded_failures())["proven_failing"] == 0
    checklist_summary.record_failure(check)
    assert checklist_summary._counts(minimal, checklist_summary.recorded_failures())["proven_failing"] == 1


# --- derived parents ----------------------------------------------------------------------------------------

PARENT = {
    "system": "parents",
    "title": "t",
    "sections": [
        {
            "title": "S",
            "phase": "verify",
            "items": [
                {
                    "text": "**Health**",
                    "derived": True,
                    "items": [
                        {"text": "live", "check": {"kind": "python", "function": "backup_verified"}},
                        {"text": "ready", "manual": {"role": "Tech Lead", "required": True}},
                    ],
                }
            ],
        }
    ],
}


def _row(passed: bool) -> Any:
    return SimpleNamespace(passed=passed, detail="seen", checked_at=None)


@pytest.mark.parametrize(
    ("results", "signoffs", "state", "done"),
    [
        ({"s1.1.1": True}, {"Tech Lead": True}, "derived_done", True),
        ({"s1.1.1": True}, {}, "derived_open", False),
        ({}, {"Tech Lead": True}, "derived_open", False),
        ({"s1.1.1": False}, {"Tech Lead": True}, "derived_failed", False),
        ({"s1.1.1": True}, {"Tech Lead": False}, "derived_failed", False),
    ],
    ids=["all-done", "one-unsigned", "one-not-run", "one-failed", "one-rejected"],
)
def test_a_derived_parent_takes_its_state_from_its_sub_items(
    results: dict[str, bool], signoffs: dict[str, bool], state: str, done: bool
) -> None:
    from airflow_rollout.checklist_run import item_state

    checklist = parse_checklist(PARENT, "parents.yaml")
    parent = checklist.entries()[0]
    assert [child.item_id for child in parent.children()] == ["s1.1.1", "s1.1.2"]
    answers = {role: SimpleNamespace(approved=ok, responder="ana", answered_at=None) for role, ok in signoffs.items()}
    found = item_state(parent, {item: _row(ok) for item, ok in results.items()}, answers)  # type: ignore[arg-type]
    assert (found.state, found.done) == (state, done)
    assert checklist.summary() == {"total": 3, "automated": 1, "manual": 1, "not_applicable": 0, "derived": 1}


def test_the_seeds_bold_parents_over_manual_items_are_derived() -> None:
    """Parents over sub-items need no person of their own; the one left manual is a required sign-off."""
    for path in sorted(checklists_dir().glob("*.yaml")):
        checklist = load_checklist(path.stem)
        assert checklist is not None
        for entry in checklist.entries():
            if entry.item.items and entry.item.manual:
                assert entry.item.manual.required, f"{path.stem} {entry.item_id} {entry.item.text!r}: make it derived"
