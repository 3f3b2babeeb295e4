"""What each page of the dashboard shows, gathered from the profiles, the ledger and Airflow's metadata; no HTML here.

Read-only throughout: the ledger through `queries.read_ledger` (a read-only transaction), Airflow's metadata
database through its own session, reading. Each page runs a fixed number of statements per ledger, however many
releases the ledger holds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC
from html import escape as html_escape
from typing import TYPE_CHECKING, Any

from airflow_rollout.config import ProfileError, SystemProfile, configured_systems, load_profile, state_dir
from airflow_rollout.dashboard.charts import Chart, Series, Threshold
from airflow_rollout.dashboard.queries import LedgerReader, Row, read_ledger
from airflow_rollout.decision import Observations, decide
from airflow_rollout.ledger import ChecklistItemRow, FingerprintStage, SignoffRow

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    from airflow_rollout.config import RollbackCriteria
    from airflow_rollout.notify import Redactor

log = logging.getLogger(__name__)

RELEASES_PER_PAGE = 100
TREND_RELEASES = 60
TREND_WEEKS = 26
STAGES = [stage.value for stage in FingerprintStage]


class NotFoundError(LookupError):
    """No such system, or no such release of it: the page answers 404."""


def redactor_for(conn_ids: Iterable[str]) -> Redactor:
    """Replaces these connections' secrets in a page, as text and as HTML-escaped text (the page is HTML)."""
    from airflow_rollout.notify import Redactor, connection_secrets

    secrets = connection_secrets(conn_ids)
    return Redactor([*secrets, *(html_escape(secret) for secret in secrets)])


def problem_text(exc: BaseException) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}"[:300]


# --- Systems ---------------------------------------------------------------------------------------------


@dataclass
class SystemsPage:
    systems: list[dict[str, Any]]
    statements: int = 0  # ledger statements run for the page: constant per ledger


def _by_system(rows: list[Row]) -> dict[str, Row]:
    return {row["system"]: row for row in rows}


def _per_target(rows: list[Row]) -> dict[tuple[str, str], Row]:
    return {(row["system"], row["target"]): row for row in rows}


def systems_page() -> SystemsPage:
    """Every configured system: the version running now, its last release, the lock, backup age against the RPO, the last drill."""
    profiles: dict[str, SystemProfile] = {}
    problems: dict[str, str] = {}
    for name in configured_systems():
        try:
            profiles[name] = load_profile(name)
        except ProfileError as exc:
            problems[name] = str(exc).splitlines()[0][:300]
    ledgers: dict[str, list[str]] = {}
    for name, profile in profiles.items():
        ledgers.setdefault(profile.ledger_conn_id, []).append(name)

    found: dict[str, dict[str, Any]] = {}
    ledger_problems: dict[str, str] = {}
    statements = 0
    for conn_id, systems in ledgers.items():
        try:
            with read_ledger(conn_id) as reader:
                data: dict[str, Any] = {"present": reader.has_ledger()}
                if data["present"]:
                    data |= {
                        "running": _by_system(reader.running(systems)),
                        "last": _by_system(reader.last_releases(systems)),
                        "locks": _by_system(reader.locks(systems)),
                        "backups": _per_target(reader.newest_backups(systems)),
                        "drills": _per_target(reader.last_drills(systems)),
                    }
                statements += reader.statements
        except Exception as exc:  # noqa: BLE001 - one ledger out of reach must not hide the systems of the others
            log.warning("ledger %s could not be read: %s", conn_id, exc)
            problem = redactor_for([conn_id])(problem_text(exc))
            ledger_problems |= dict.fromkeys(systems, f"ledger {conn_id} could not be read: {problem}")
            continue
        found |= dict.fromkeys(systems, data)

    rows = []
    for name in sorted([*profiles, *problems]):
        row: dict[str, Any] = {"name": name, "problem": problems.get(name) or ledger_problems.get(name)}
        known, read = profiles.get(name), found.get(name)
        if known is None or read is None:
            rows.append(row)
            continue
        profile, data = known, read
        row["description"] = profile.description
        row["ledger_present"] = data["present"]
        if data["present"]:
            row |= {
                "running": data["running"].get(name),
                "last": data["last"].get(name),
                "lock": data["locks"].get(name),
                "backups": _backup_ages(profile, data["backups"]),
                "drills": _drills(profile, data["drills"]),
            }
            row["rpo_ok"] = all(b["ok"] for b in row["backups"]) if row["backups"] else None
        rows.append(row)
    return SystemsPage(systems=rows, statements=statements)


def _backup_ages(profile: SystemProfile, newest: dict[tuple[str, str], Row]) -> list[dict[str, Any]]:
    rpo_hours = profile.maintenance.rpo_hours
    ages = []
    for target in profile.data_targets:
        backup = newest.get((profile.name, target.name))
        age = backup["age_seconds"] if backup else None
        ages.append(
            {
                "target": target.name,
                "taken_at": backup["taken_at"] if backup else None,
                "age_seconds": age,
                "rpo_hours": rpo_hours,
                "ok": age is not None and age <= rpo_hours * 3600,
            }
        )
    return ages


def _drills(profile: SystemProfile, last: dict[tuple[str, str], Row]) -> list[dict[str, Any]]:
    rto_hours = profile.maintenance.rto_hours
    drills = []
    for target in profile.data_targets:
        drill = last.get((profile.name, target.name))
        if drill is None:
            continue
        seconds = drill["restore_seconds"]
        good = drill["error"] is None and drill["fingerprint_equal"] and seconds is not None and seconds <= rto_hours * 3600
        drills.append({**drill, "rto_hours": rto_hours, "ok": good})
    return drills


# --- one system: its releases ------------------------------------------------------------------------------


def _profile(system: str) -> SystemProfile:
    if system not in configured_systems():
        raise NotFoundError(f"no system {system!r}")
    try:
        return load_profile(system)
    except ProfileError as exc:
        raise NotFoundError(f"the profile of {system!r} cannot be used: {str(exc).splitlines()[0]}") from None


def system_page(system: str) -> dict[str, Any]:
    profile = _profile(system)
    with read_ledger(profile.ledger_conn_id) as reader:
        releases = reader.releases(system, RELEASES_PER_PAGE) if reader.has_ledger() else []
        statements = reader.statements
    return {"system": system, "profile": profile, "releases": releases, "limit": RELEASES_PER_PAGE, "statements": statements}


# --- one release --------------------------------------------------------------------------------------------


def pct(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 100:.2f}".rstrip("0").rstrip(".") + " %"


def _verdict(observed: Observations, criteria: RollbackCriteria) -> tuple[str, str]:
    """What decision.decide makes of one measurement alone: its outcome and the rule's text (empty: within the criteria)."""
    decision = decide(observed, criteria)
    return decision.outcome.value, (decision.reasons[0] if decision.reasons else "")


def criteria_rows(numbers: dict[str, Any], reasons: list[str], criteria: RollbackCriteria) -> list[dict[str, Any]]:
    """Each criterion of `airflow_rollout.decision` as measured against its thresholds, with the verdict the rule gives.

    The verdicts of the measured criteria are `decide()` itself applied to that one measurement, so the page cannot
    drift from the rules; `fired` says whether that rule's text is among the reasons recorded for the release.
    """
    recorded = {reason.removeprefix("also: ") for reason in reasons}
    rows: list[dict[str, Any]] = []

    def add(name: str, measured: str, threshold: str, verdict: str, rule: str) -> None:
        fired = bool(rule) and rule in recorded
        rows.append({"criterion": name, "measured": measured, "threshold": threshold, "verdict": verdict, "rule": rule, "fired": fired})

    error_rate = numbers.get("error_rate")
    verdict, rule = _verdict(Observations(error_rate=error_rate), criteria) if error_rate is not None else ("not measured", "")
    add(
        "Error rate",
        pct(error_rate),
        f"investigate ≥ {pct(criteria.error_rate_investigate)}, roll back > {pct(criteria.error_rate_rollback)}",
        verdict,
        rule,
    )

    p95, baseline = numbers.get("p95_ms"), numbers.get("baseline_p95_ms")
    if p95 is not None and baseline:
        verdict, rule = _verdict(Observations(p95_ms=p95, baseline_p95_ms=baseline), criteria)
        degradation = numbers.get("latency_degradation")
        measured = f"{p95:.0f} ms vs baseline {baseline:.0f} ms" + (f" ({degradation * 100:+.1f} %)" if degradation is not None else "")
    else:
        verdict = "not measured" if p95 is None else "no baseline"
        rule, measured = "", "—" if p95 is None else f"{p95:.0f} ms (no promoted release to compare with)"
    add(
        "p95 latency against the last promoted release",
        measured,
        f"investigate ≥ +{pct(criteria.latency_degradation_investigate)}, roll back ≥ +{pct(criteria.latency_degradation_rollback)};"
        f" changes under {criteria.latency_min_delta_ms:g} ms ignored",
        verdict,
        rule,
    )

    downtime = numbers.get("downtime_seconds")
    verdict, rule = _verdict(Observations(downtime_seconds=downtime), criteria) if downtime is not None else ("not measured", "")
    measured = "—" if downtime is None else f"{downtime:.1f} s"
    add("Downtime", measured, f"roll back > {criteria.downtime_rollback_seconds:g} s", verdict, rule)

    for name, pattern, threshold, level in (
        ("Data corruption", r"^data corruption detected", "roll back when a table the migration did not touch changed", "rollback"),
        ("Phases", r"^phase failed: ", "roll back when migrate, deploy or verify failed", "rollback"),
        ("Critical checks", r"^critical check ", "roll back when a critical check failed", "rollback"),
        ("Non-critical checks", r"^non-critical check ", "investigate when a non-critical check failed", "investigate"),
    ):
        matching = [reason for reason in recorded if re.match(pattern, reason)]
        for reason in matching:
            rows.append({"criterion": name, "measured": "", "threshold": threshold, "verdict": level, "rule": reason, "fired": True})
        if not matching:
            rows.append({"criterion": name, "measured": "none", "threshold": threshold, "verdict": "proceed", "rule": "", "fired": False})
    return rows


def reason_kind(reason: str) -> str:
    """Which of `decision.decide`'s rules (or which human) a recorded reason comes from."""
    if reason.startswith("investigated: "):
        return "answer in Required Actions"
    if reason.startswith("rolled back by "):
        return "rollback requested by an operator"
    reason = reason.removeprefix("also: ")
    if reason.startswith("non-critical check "):
        return "investigate rule"
    if reason.startswith(("critical check ", "phase failed: ", "data corruption detected")):
        return "rollback rule"
    return "rollback rule" if " > " in reason or " >= +" in reason else "investigate rule"


def reason_rows(reasons: list[str]) -> list[dict[str, str]]:
    """The recorded reasons in their order, each with the kind of rule or answer it is."""
    return [{"kind": reason_kind(reason), "text": reason} for reason in reasons]


def fingerprint_digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]


def fingerprint_tables(rows: list[Row]) -> list[dict[str, Any]]:
    """Per data target and table: each stage's fingerprint (rows, digest) and whether it equals the one before the release."""
    by_target: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        by_target.setdefault(row["target"], {})[row["stage"]] = row["fingerprint"] or {}
    targets = []
    for target, stages in sorted(by_target.items()):
        before = stages.get(FingerprintStage.BEFORE.value)
        names = sorted({table for fingerprint in stages.values() for table in fingerprint})
        tables = []
        for table in names:
            cells: dict[str, dict[str, Any] | None] = {}
            for stage in STAGES:
                if stage not in stages:
                    cells[stage] = None
                    continue
                value = stages[stage].get(table)
                equal = None if before is None or stage == FingerprintStage.BEFORE.value else value == before.get(table)
                rows_count = value.get("rows") if isinstance(value, dict) else None
                cells[stage] = {"present": value is not None, "rows": rows_count, "digest": fingerprint_digest(value), "equal": equal}
            tables.append({"table": table, "stages": cells})
        after_restore = stages.get(FingerprintStage.AFTER_RESTORE.value)
        targets.append(
            {
                "target": target,
                "stages_taken": [stage for stage in STAGES if stage in stages],
                "tables": tables,
                "restored_equal": None if after_restore is None or before is None else after_restore == before,
            }
        )
    return targets


def timeline(attempts: list[Row]) -> list[dict[str, Any]]:
    """Every attempt with where its bar starts and how long it is, in per cent of the release's span."""
    if not attempts:
        return []
    start = min(a["started_at"] for a in attempts)
    end = max(a["finished_at"] or a["started_at"] for a in attempts)
    span = max((end - start).total_seconds(), 0.001)
    rows = []
    for attempt in attempts:
        offset = (attempt["started_at"] - start).total_seconds()
        length = attempt["seconds"] if attempt["seconds"] is not None else 0.0
        rows.append(
            {
                **attempt,
                "offset_seconds": offset,
                "bar_left": round(100 * offset / span, 2),
                "bar_width": round(max(100 * length / span, 0.4), 2),
                "detail_text": "" if attempt["detail"] is None else json.dumps(attempt["detail"], default=str)[:400],
            }
        )
    return rows


def _inline_markdown(text: str) -> str:
    """A checklist item's text as HTML: escaped first, then only `code` and **bold** turned into tags."""
    escaped = html_escape(text)
    escaped = re.sub(r"`([^`]+)`", r"<code>\1</code>", escaped)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", escaped)


def checklist_view(system: str, results: list[ChecklistItemRow], signoffs: list[SignoffRow]) -> dict[str, Any]:
    """The system's checklist ticked from the ledger, as the completed checklist is: sections, items, evidence."""
    from airflow_rollout.checklist_run import checklists_directory, item_state
    from airflow_rollout.checklists import load_checklist

    try:
        checklist = load_checklist(system, checklists_directory())
    except ProfileError as exc:
        return {"problem": str(exc).splitlines()[0][:300], "sections": []}
    if checklist is None:
        return {"problem": None, "sections": [], "missing": True}
    by_item = {row.item_id: row for row in results}
    by_role = {row.role: row for row in signoffs}
    sections = []
    for section in checklist.sections:
        items: list[dict[str, Any]] = []
        for entry in checklist.entries():
            if entry.section is not section:
                continue
            state = item_state(entry, by_item, by_role)
            items.append({"id": entry.item_id, "depth": entry.depth, "html": _inline_markdown(entry.item.text), "state": state})
        done = sum(item["state"].done for item in items)
        answered = any(item["state"].state in {"passed", "failed", "signed_off", "rejected"} for item in items)
        sections.append({"title": section.title, "level": section.level, "entries": items, "done": done, "answered": answered})
    return {"problem": None, "title": checklist.title, "sections": sections, "summary": checklist.summary(), "ran": len(results)}


@dataclass
class ReleasePage:
    system: str
    profile: SystemProfile
    release: Row
    attempts: list[dict[str, Any]]
    criteria: list[dict[str, Any]]
    reasons: list[dict[str, str]]
    backups: list[Row]
    fingerprints: list[dict[str, Any]]
    migrations: list[Row]
    apps: list[Row]
    measurements: list[Row]
    checklist: dict[str, Any]
    signoffs: list[SignoffRow]
    required_actions: list[dict[str, Any]]
    notifications: list[dict[str, Any]]
    unlocks: list[Row]
    runs: dict[str, str]  # run id -> its DAG, for links into Airflow
    checklist_file: str | None = None
    statements: int = 0
    redact: Any = field(default=None, repr=False)


def release_page(system: str, release_id: str) -> ReleasePage:
    profile = _profile(system)
    with read_ledger(profile.ledger_conn_id) as reader:
        release = reader.release(release_id) if reader.has_ledger() else None
        if release is None or release["system"] != system:
            raise NotFoundError(f"no release {release_id!r} of {system!r}")
        ledger = _release_rows(reader, release_id)
        statements = reader.statements
    run_ids = sorted({release_id, *(a["run_id"] for a in ledger.attempts)})
    runs = dag_runs(run_ids)
    numbers = release["decision_numbers"] or {}
    reasons = list(release["decision_reasons"] or [])
    from airflow_rollout.targets.base import safe_file_name

    checklist_file = state_dir() / "checklists" / system / f"{safe_file_name(release_id)}.md"
    return ReleasePage(
        system=system,
        profile=profile,
        release=release,
        attempts=timeline(ledger.attempts),
        criteria=criteria_rows(numbers, reasons, profile.rollback_criteria) if release["decision"] else [],
        reasons=reason_rows(reasons),
        backups=ledger.backups,
        fingerprints=fingerprint_tables(ledger.fingerprints),
        migrations=ledger.migrations,
        apps=ledger.apps,
        measurements=ledger.measurements,
        checklist=checklist_view(system, ledger.checklist, ledger.signoffs),
        signoffs=ledger.signoffs,
        required_actions=required_actions(run_ids),
        notifications=[{**n, "step": _notification_step(n["idempotency_key"])} for n in ledger.notifications],
        unlocks=ledger.unlocks,
        runs=runs,
        checklist_file=str(checklist_file) if checklist_file.is_file() else None,
        statements=statements,
        redact=redactor_for(profile.connection_ids()),
    )


@dataclass(frozen=True)
class _ReleaseRows:
    """Everything the ledger holds about one release, read in one transaction."""

    attempts: list[Row]
    backups: list[Row]
    fingerprints: list[Row]
    migrations: list[Row]
    apps: list[Row]
    measurements: list[Row]
    checklist: list[ChecklistItemRow]
    signoffs: list[SignoffRow]
    notifications: list[Row]
    unlocks: list[Row]


def _release_rows(reader: LedgerReader, release_id: str) -> _ReleaseRows:
    return _ReleaseRows(
        attempts=reader.attempts(release_id),
        backups=reader.backups(release_id),
        fingerprints=reader.fingerprints(release_id),
        migrations=reader.migrations(release_id),
        apps=reader.app_states(release_id),
        measurements=reader.measurements(release_id),
        checklist=reader.checklist_items(release_id),
        signoffs=reader.signoffs(release_id),
        notifications=reader.notifications(release_id),
        unlocks=reader.unlocks(release_id),
    )


def _notification_step(key: str | None) -> str:
    """The step that sent a message, from its idempotency key `release|event|step|digest`."""
    parts = (key or "").split("|")
    return parts[2] if len(parts) == 4 and parts[2] != "-" else ""


def dag_runs(run_ids: list[str]) -> dict[str, str]:
    """The DAG of each of these runs, from Airflow's metadata database (one query): the links into Airflow need it."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(select(DagRun.run_id, DagRun.dag_id).where(DagRun.run_id.in_(run_ids))).all()
    return {str(run_id): str(dag_id) for run_id, dag_id in rows}


def required_actions(run_ids: list[str]) -> list[dict[str, Any]]:
    """Airflow's Required Actions of these runs (sign-offs, the operator's investigate answer): who answered what, and when."""
    from airflow.models.hitl import HITLDetail
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        columns: list[Any] = [
            TaskInstance.dag_id,
            TaskInstance.run_id,
            TaskInstance.task_id,
            TaskInstance.map_index,
            TaskInstance.rendered_map_index,
            HITLDetail.subject,
            HITLDetail.options,
            HITLDetail.chosen_options,
            HITLDetail.responded_by,
            HITLDetail.responded_at,
            HITLDetail.created_at,
        ]
        query = select(*columns).join(HITLDetail, HITLDetail.ti_id == TaskInstance.id).where(TaskInstance.run_id.in_(run_ids))
        rows = session.execute(query.order_by(HITLDetail.created_at)).all()
    answers = []
    for row in rows:
        responder = row.responded_by or {}
        answers.append(
            {
                "dag_id": row.dag_id,
                "run_id": row.run_id,
                "task_id": row.task_id,
                "map_index": row.map_index,
                "label": row.rendered_map_index or "",
                "subject": row.subject,
                "options": list(row.options or []),
                "chosen": list(row.chosen_options or []),
                "responder": (responder.get("name") or responder.get("id")) if isinstance(responder, dict) else str(responder),
                "responded_at": row.responded_at,
                "asked_at": row.created_at,
            }
        )
    return answers


# --- trends ---------------------------------------------------------------------------------------------------


def trends_page(system: str) -> dict[str, Any]:
    """p50 / p95 / error rate per release, and the restore drills' RTO / RPO per week, as charts."""
    profile = _profile(system)
    with read_ledger(profile.ledger_conn_id) as reader:
        present = reader.has_ledger()
        latency = reader.latency_per_release(system, TREND_RELEASES) if present else []
        drills = reader.drills_per_week(system, TREND_WEEKS) if present else []
        statements = reader.statements
    releases: list[tuple[str, str]] = list(dict.fromkeys((row["release_id"], row["version"]) for row in latency))
    labels = [version for _, version in releases]
    index = {release_id: i for i, (release_id, _) in enumerate(releases)}
    checks = list(dict.fromkeys(row["check_name"] for row in latency))

    def series(metric: str, suffix: str) -> list[Series]:
        out = []
        for check in checks:
            values: list[float | None] = [None] * len(releases)
            for row in latency:
                if row["check_name"] == check:
                    values[index[row["release_id"]]] = row[metric]
            out.append(Series(f"{check} {suffix}".strip(), values))
        return out

    criteria = profile.rollback_criteria
    week_labels = [f"{row['week']:%Y-%m-%d}" for row in drills]
    charts = [
        Chart("p50 and p95 latency per release", "ms", labels, [*series("p50_ms", "p50"), *series("p95_ms", "p95")]),
        Chart(
            "Error rate per release",
            "%",
            labels,
            series("error_rate", ""),
            [Threshold("investigate", criteria.error_rate_investigate), Threshold("roll back", criteria.error_rate_rollback)],
            scale=100.0,
        ),
        Chart(
            "Restore drills per week: RTO (longest restore)",
            "s",
            week_labels,
            [Series("RTO", [row["rto_seconds"] for row in drills])],
            [Threshold("RTO goal", profile.maintenance.rto_hours * 3600)],
        ),
        Chart(
            "Restore drills per week: RPO (age of the backup restored)",
            "h",
            week_labels,
            [Series("RPO", [None if row["rpo_seconds"] is None else row["rpo_seconds"] / 3600 for row in drills])],
            [Threshold("RPO goal", profile.maintenance.rpo_hours)],
        ),
    ]
    return {"system": system, "charts": charts, "latency": latency, "drills": drills, "statements": statements}


def when(moment: datetime | None) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" if moment else "—"
