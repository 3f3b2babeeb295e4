"""A system's checklist inside a release: which items run when, running one, and the completed checklist.

The release runs the automated items of each phase as mapped tasks, keeps every result in the ledger
(`rollout_checklist_item`), asks each role with required manual items to sign off before anything
changes (`rollout_signoff`), and ends by writing the completed checklist in the seed's own Markdown form.
"""

from __future__ import annotations

import operator
import os
import re
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_rollout.checklists import RELEASE_PHASES, Checklist, ChecklistError, Entry, Phase, PythonItemCheck, load_checklist
from airflow_rollout.config import HttpCheck, LatencyCheck
from airflow_rollout.evidence import EVIDENCE, Evidence
from airflow_rollout.item_checks import (
    airflow_api,
    clickhouse,
    databricks_api,
    delta_table,
    env_file,
    github_api,
    kubernetes,
    monitoring,
    redis,
    tls,
)
from airflow_rollout.item_checks.env_file import env_file_values
from airflow_rollout.targets.files import item_path

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_rollout.checklists import ItemCheck
    from airflow_rollout.context import ReleaseContext, SystemContext
    from airflow_rollout.ledger import ChecklistItemRow, SignoffRow


class ChecklistItemFailedError(RuntimeError):
    """A blocking checklist item failed: the release stops (pre-deploy) or rolls back (later phases)."""


def checklists_directory() -> Path | None:
    configured = os.environ.get("ROLLOUT_CHECKLISTS_DIR")
    return Path(configured) if configured else None


def system_checklist(ctx: SystemContext) -> Checklist | None:
    checklist = load_checklist(ctx.profile.name, checklists_directory())
    if checklist is not None:
        check_references(ctx, checklist)
    return checklist


def check_references(ctx: SystemContext, checklist: Checklist) -> None:
    """Every app, data target, check and role an item names exists in the profile: found before anything changes."""
    profile = ctx.profile
    known = {
        "app": {a.name for a in profile.app_targets},
        "target": {t.name for t in profile.data_targets},
        "check": {c.name for c in profile.checks if isinstance(c, LatencyCheck)},
    }
    problems = []
    for entry in checklist.entries():
        check = entry.item.check
        for field_name, names in known.items():
            value = getattr(check, field_name, None) if check is not None else None
            if isinstance(value, str) and value not in names:
                problems.append(f"item {entry.item_id} ({entry.item.text!r}): {field_name} {value!r} is not in the profile")
    for role in checklist.required_roles():
        if not profile.sign_off.roles.get(role):
            problems.append(f"role {role!r} must sign off required items but sign_off.roles names nobody for it")
    if problems:
        raise ChecklistError(f"checklist of {profile.name} does not fit its profile:\n  - " + "\n  - ".join(problems))


def plan(ctx: ReleaseContext) -> dict[str, list[dict[str, str]]]:
    """Per release phase, the automated items to run (id and UI label); `roles`: who must sign off."""
    checklist = system_checklist(ctx)
    entries = checklist.entries() if checklist else []
    planned: dict[str, list[dict[str, str]]] = {
        phase.value: [{"item_id": e.item_id, "label": e.label} for e in entries if e.phase is phase and e.item.check is not None]
        for phase in RELEASE_PHASES
    }
    planned["roles"] = [{"role": role} for role in (checklist.required_roles() if checklist else [])]
    return planned


def _entry(ctx: ReleaseContext, item_id: str) -> Entry:
    checklist = system_checklist(ctx)
    entry = next((e for e in checklist.entries() if e.item_id == item_id), None) if checklist else None
    if entry is None:
        raise ChecklistError(f"the checklist of {ctx.profile.name} has no item {item_id}")
    return entry


def run_item(ctx: ReleaseContext, item_id: str) -> dict[str, Any]:
    """Run one automated item and record its evidence; a blocking item that fails raises."""
    entry = _entry(ctx, item_id)
    assert entry.item.check is not None  # noqa: S101 - plan() hands out automated items only
    try:
        evidence = evaluate(ctx, entry.item.check)
    except Exception as exc:  # noqa: BLE001 - a check that cannot run is a failed check, with the reason as its evidence
        evidence = Evidence(False, ctx.redact(f"could not run: {type(exc).__name__}: {exc}"))
    detail = ctx.redact(evidence.detail)
    phase = entry.phase.value if entry.phase else ""
    ctx.ledger.record_checklist_item(ctx.release_id, item_id, phase, passed=evidence.passed, detail=detail, numbers=evidence.numbers)
    if not evidence.passed and entry.item.blocking:
        raise ChecklistItemFailedError(f"blocking checklist item {item_id} ({entry.item.text}) failed: {detail}")
    return {"item": entry.label, "passed": evidence.passed, "evidence": detail}


def evaluate(ctx: ReleaseContext | SystemContext, check: ItemCheck) -> Evidence:
    if isinstance(check, PythonItemCheck):
        return EVIDENCE[check.function](ctx, **check.args)
    return RUNNERS[check.kind](ctx, check)


def _http(ctx: ReleaseContext, check: Any) -> Evidence:
    from airflow_rollout.checks import run_burst, run_http_check, run_page_assets

    request = HttpCheck(
        kind="http",
        name="checklist",
        app=check.app,
        method=check.method,
        path=check.path,
        auth=check.auth,
        headers=check.headers,
        expect_status=check.expect_status,
        expect_headers=check.expect_headers,
        absent_headers=check.absent_headers,
        expect_json=check.expect_json,
        expect_shape=check.expect_shape,
        expect_text_regex=check.expect_text_regex,
        critical=False,
    )
    if check.rate_limited_within is not None:
        result = run_burst(request, ctx.app_base_url(check.app), check.rate_limited_within)
        return Evidence(result.passed, result.detail, result.metrics)
    version = getattr(ctx, "version", None) or ctx.apps[check.app].recorded_version() or ""
    result = run_http_check(request, ctx.app_base_url(check.app), version)
    if result.passed and check.load_assets:
        assets = run_page_assets(request, ctx.app_base_url(check.app), check.asset_headers)
        detail = f"{result.detail}; {assets.detail.removeprefix(f'GET {check.path}: ')}"
        return Evidence(assets.passed, detail, result.metrics | assets.metrics)
    return Evidence(result.passed, result.detail, result.metrics)


def _sql(ctx: ReleaseContext, check: Any) -> Evidence:
    target = next(t for t in ctx.data_targets if t.config.name == check.target)
    if check.as_conn_id:
        from airflow_rollout.targets.registry import build_data_target

        if not hasattr(target.config, "conn_id"):
            return Evidence(False, f"{check.target} is a {target.config.kind} target: it has no connection to log in as {check.as_conn_id}")
        target = build_data_target(target.config.model_copy(update={"conn_id": check.as_conn_id}), ctx.environment)
    value = target.query_value(check.query)
    problems = check.value_problems(value)
    detail = f"{check.query.strip()} -> {value!r}" + (f" ({'; '.join(problems)})" if problems else "")
    return Evidence(not problems, detail, {"value": value if isinstance(value, int | float | bool | None) else str(value)})


def _connection(check: Any) -> Evidence:
    from airflow_rollout.checks import tcp_reachable

    result = tcp_reachable(check.conn_id, check.default_port)
    return Evidence(result.passed, result.detail, result.metrics)


def _backup_fresh(ctx: ReleaseContext, check: Any) -> Evidence:
    names = [check.target] if check.target else [t.config.name for t in ctx.data_targets]
    ages = {}
    for name in names:
        backups = ctx.maintenance_store.backups_of(ctx.profile.name, name)
        if not backups:
            return Evidence(False, f"no backup of {name} on record")
        ages[name] = round((datetime.now(UTC) - backups[0].taken_at).total_seconds() / 3600, 2)
    stale = [f"{name} {age} h" for name, age in ages.items() if age > check.max_age_hours]
    detail = ", ".join(f"{name}: newest backup {age} h old" for name, age in ages.items())
    return Evidence(not stale, detail + (f" (older than {check.max_age_hours:g} h: {', '.join(stale)})" if stale else ""), ages)


def _latency(ctx: ReleaseContext, check: Any) -> Evidence:
    measured = next((m for m in ctx.ledger.measurements(ctx.release_id) if m.name == check.check), None)
    if measured is None:
        return Evidence(False, f"latency check {check.check} was not measured in this release")
    metrics = measured.metrics
    limits: list[tuple[str, float | None, str, Callable[[float, float], bool]]] = [
        ("p95_ms", check.max_p95_ms, "p95 {v} ms > {limit:g} ms", operator.gt),
        ("mean_ms", check.max_mean_ms, "mean {v} ms > {limit:g} ms", operator.gt),
        ("rps", check.min_rps, "{v} req/s < {limit:g}", operator.lt),
        ("error_rate", check.max_error_rate, "error rate {v:.2%} > {limit:.2%}", operator.gt),
    ]
    breaches = [
        text.format(v=metrics[key], limit=limit) for key, limit, text, broken in limits if limit is not None and broken(metrics[key], limit)
    ]
    return Evidence(not breaches, measured.detail + ("; " + "; ".join(breaches) if breaches else ""), metrics)


def _file_in_each_directory(ctx: ReleaseContext, check: Any) -> Evidence:
    """The file in every directory under `in_each_directory_of` but the excluded ones, each checked as one file_present."""
    parent = item_path(ctx, check.target, check.in_each_directory_of)
    names = sorted(d.name for d in parent.iterdir() if d.is_dir() and d.name not in check.excluding) if parent.is_dir() else []
    if not names:
        return Evidence(
            False, f"{parent}: no directory to hold {check.path}" + (f" but {', '.join(check.excluding)}" if check.excluding else "")
        )
    found = {
        name: _file_present(
            ctx, check.model_copy(update={"path": f"{check.in_each_directory_of}/{name}/{check.path}", "in_each_directory_of": None})
        )
        for name in names
    }
    lacking = [f"{name}: {evidence.detail}" for name, evidence in found.items() if not evidence.passed]
    if lacking:
        return Evidence(False, f"{parent}: {len(lacking)} of {len(names)} directories lack it: {'; '.join(lacking)}")
    return Evidence(True, f"{parent}: {check.path} in each of {len(names)} directories ({', '.join(names)})")


def _file_present(ctx: ReleaseContext, check: Any) -> Evidence:
    if check.in_each_directory_of is not None:
        return _file_in_each_directory(ctx, check)
    path = item_path(ctx, check.target, check.path)
    if not path.exists():
        return Evidence(False, f"{path} does not exist")
    mode = f"0{path.stat().st_mode & 0o777:o}"
    if check.mode and mode != check.mode:
        return Evidence(False, f"{path} has mode {mode}, expected {check.mode}")
    settings = ""
    if check.env_set or check.env_equals:
        values = env_file_values(path)
        # names only, and only the expected value: what a .env holds may be a secret
        unset = [name for name in check.env_set if not values.get(name)]
        wrong = [f"{name} is not {wanted!r}" for name, wanted in check.env_equals.items() if values.get(name) != wanted]
        if unset or wrong:
            return Evidence(False, f"{path}: " + "; ".join([*([f"not set: {', '.join(unset)}"] if unset else []), *wrong]))
        settings = f", sets {', '.join([*check.env_set, *(f'{k}={v}' for k, v in check.env_equals.items())])}"
    return Evidence(True, f"{path} present, mode {mode}, {path.stat().st_size} bytes{settings}")


def _command(check: Any) -> Evidence:
    completed = subprocess.run(  # noqa: S603 - the checklist's argument list (the repo's own data), never a shell
        check.argv, capture_output=True, text=True, timeout=check.timeout_seconds, check=False
    )
    tail = " | ".join((completed.stdout + completed.stderr).strip().splitlines()[-3:])
    passed = completed.returncode == check.expect_exit
    detail = f"{' '.join(check.argv)} exited {completed.returncode}" + (f": {tail}" if tail else "")
    if check.min_version is None:
        return Evidence(passed, detail, {"exit": completed.returncode})
    printed = re.search(r"\d+(?:\.\d+)+", completed.stdout)
    if printed is None:
        return Evidence(False, f"{detail}; no version number printed, {check.min_version}+ expected", {"exit": completed.returncode})
    found, wanted = (tuple(int(n) for n in v.split(".")) for v in (printed[0], check.min_version))
    # 20.10 against 20.10.24: the shorter is padded with zeros, so 20.10 == 20.10.0
    width = max(len(found), len(wanted))
    at_least = found + (0,) * (width - len(found)) >= wanted + (0,) * (width - len(wanted))
    verdict = f"version {printed[0]} {'>=' if at_least else 'below'} {check.min_version}"
    return Evidence(passed and at_least, f"{detail}; {verdict}", {"exit": completed.returncode, "version": printed[0]})


RUNNERS: dict[str, Callable[[Any, Any], Evidence]] = {
    "http": _http,
    "sql": _sql,
    "connection": lambda _ctx, check: _connection(check),
    "backup_fresh": _backup_fresh,
    "latency": _latency,
    "file_present": _file_present,
    "command": lambda _ctx, check: _command(check),
    "kubernetes": kubernetes.run,
    "databricks_api": databricks_api.run,
    "delta_table": delta_table.run,
    "env_file": env_file.run,
    "tls": tls.run,
    "redis": redis.run,
    "clickhouse": clickhouse.run,
    "airflow_api": airflow_api.run,
    "monitoring": monitoring.run,
    "github_api": github_api.run,
}


# Evidence functions that read the system's record rather than one release's: maintenance can run them.
SYSTEM_EVIDENCE = frozenset({"restore_drill_recent"})


def run_maintenance_items(ctx: SystemContext, phase: Phase) -> list[tuple[Entry, Evidence]]:
    """The checklist's automated items of a maintenance phase (daily, weekly, ...), run for the system as it is."""
    checklist = system_checklist(ctx)
    results = []
    for entry in checklist.entries() if checklist else []:
        check = entry.item.check
        if entry.phase is not phase or check is None:
            continue
        if isinstance(check, PythonItemCheck) and check.function not in SYSTEM_EVIDENCE:
            continue  # evidence of a release: each release checks it
        try:
            evidence = evaluate(ctx, check)
        except Exception as exc:  # noqa: BLE001 - a check that cannot run is a failed check, with the reason
            evidence = Evidence(False, ctx.redact(f"could not run: {type(exc).__name__}: {exc}"))
        results.append((entry, evidence))
    return results


# --- sign-off ------------------------------------------------------------------------------------------


def sign_off_request(ctx: ReleaseContext, role: str) -> tuple[str, list[dict[str, str]]]:
    """The text a role is asked to approve (its required items) and the users who may answer."""
    checklist = system_checklist(ctx)
    items = [
        e for e in (checklist.entries() if checklist else []) if e.item.manual and e.item.manual.required and e.item.manual.role == role
    ]
    release = ctx.release()
    body = "\n".join(
        [
            f"**{release.system} {release.version}** (running now: {release.previous_version or 'nothing'}),"
            f" release `{release.release_id}`.",
            "",
            f"As **{role}**, approve that these items hold; *Reject* stops the release before anything changes:",
            "",
            *(f"- {e.item.text} ({e.section.title})" for e in items),
        ]
    )
    users = [{"id": a.id, "name": a.name or a.id} for a in ctx.profile.sign_off.roles.get(role, [])]
    return body, users


# --- the completed checklist ------------------------------------------------------------------------------


def _when(moment: datetime | None) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC" if moment else ""


@dataclass(frozen=True)
class ItemState:
    """Where one checklist item stands in a release: what the completed checklist (Markdown) and the dashboard show."""

    done: bool  # ticked: passed, or signed off
    state: str  # passed, failed, signed_off, rejected, manual, not_applicable, not_reached, maintenance, derived_{done,failed,open}
    detail: str = ""  # the evidence, the reason it is not applicable, or why it did not run
    role: str | None = None
    responder: str | None = None
    when: datetime | None = None


def item_state(entry: Entry, results: dict[str, ChecklistItemRow], signoffs: dict[str, SignoffRow]) -> ItemState:
    """One item's state from the ledger's checklist results and sign-offs of a release."""
    return (_derived_state if entry.item.derived else _own_state)(entry, results, signoffs)


def _own_state(entry: Entry, results: dict[str, ChecklistItemRow], signoffs: dict[str, SignoffRow]) -> ItemState:
    item = entry.item
    if item.not_applicable:
        return ItemState(done=False, state="not_applicable", detail=item.not_applicable)
    if item.manual:
        role = item.manual.role
        signed = signoffs.get(role)
        if item.manual.required and signed:
            state = "signed_off" if signed.approved else "rejected"
            return ItemState(done=signed.approved, state=state, role=role, responder=signed.responder, when=signed.answered_at)
        return ItemState(done=False, state="manual", role=role)
    result = results.get(entry.item_id)
    if result is None:
        when = entry.phase.value if entry.phase else "?"
        if entry.phase not in RELEASE_PHASES:
            return ItemState(done=False, state="maintenance", detail=f"runs in {when} maintenance")
        return ItemState(done=False, state="not_reached", detail=f"not reached ({when})")
    return ItemState(done=result.passed, state="passed" if result.passed else "failed", detail=result.detail, when=result.checked_at)


FAILED_STATES = frozenset({"failed", "rejected", "derived_failed"})


def _derived_state(entry: Entry, results: dict[str, ChecklistItemRow], signoffs: dict[str, SignoffRow]) -> ItemState:
    """A parent's state from its sub-items': done when every one is done, failed when one failed, open otherwise."""
    children = [(child, item_state(child, results, signoffs)) for child in entry.children()]
    failed = [child.item_id for child, state in children if state.state in FAILED_STATES]
    done = sum(state.done for _, state in children)
    counted = f"{done} of {len(children)} sub-items done"
    if failed:
        return ItemState(done=False, state="derived_failed", detail=f"{counted}; failed: {', '.join(failed)}")
    if done == len(children):
        return ItemState(done=True, state="derived_done", detail=counted)
    return ItemState(done=False, state="derived_open", detail=counted)


def _line(entry: Entry, results: dict[str, ChecklistItemRow], signoffs: dict[str, SignoffRow]) -> str:
    item = entry.item
    indent = "  " * entry.depth
    status = item_state(entry, results, signoffs)
    mark = "x" if status.done else " "
    match status.state:
        case "not_applicable":
            note = f"*not applicable: {status.detail}*"
        case "signed_off":
            note = f"signed off by **{status.responder}** ({status.role}), {_when(status.when)}"
        case "rejected":
            note = f"**rejected** by {status.responder or 'nobody in time'} ({status.role})"
        case "manual":
            note = f"*manual: {status.role} confirms*"
        case "not_reached" | "maintenance":
            note = f"*{status.detail}*"
        case "derived_done" | "derived_open":
            note = f"*derived: {status.detail}*"
        case "derived_failed":
            note = f"**FAILED** (derived): {status.detail}"
        case _:
            verdict = "" if status.done else "**FAILED**: "
            note = f"{verdict}{status.detail} ({_when(status.when)})"
    return f"{indent}- [{mark}] {item.text} — {note}"


def render_completed(ctx: ReleaseContext) -> str:
    """The checklist as the seed writes it, ticked from the ledger, with its log, baselines and sign-offs."""
    checklist = system_checklist(ctx)
    release = ctx.release()
    results = ctx.ledger.checklist_items(ctx.release_id)
    signoffs = ctx.ledger.signoffs(ctx.release_id)
    title = checklist.title if checklist else f"{ctx.profile.name} release"
    lines = [
        f"# {title}",
        "",
        f"Completed by airflow-rollout for release `{release.release_id}`: **{release.system} {release.version}** "
        f"(was {release.previous_version or 'nothing'}), status **{release.status}**"
        + (f": {release.outcome_reason}" if release.outcome_reason else "")
        + f". Generated {_when(datetime.now(UTC))}.",
    ]
    if checklist:
        summary = checklist.summary()
        passed = sum(r.passed for r in results.values())
        lines += [
            "",
            f"{summary['total']} items: {summary['automated']} automated ({len(results)} run in this release, {passed} passed), "
            f"{summary['manual']} manual, {summary['not_applicable']} not applicable, "
            f"{summary['derived']} derived from their sub-items.",
        ]
        for section in checklist.sections:
            lines += ["", f"{'#' * section.level} {section.title}", ""]
            lines += [_line(e, results, signoffs) for e in checklist.entries() if e.section is section]
    lines += _tables(ctx, signoffs)
    return "\n".join(lines).rstrip() + "\n"


def _tables(ctx: ReleaseContext, signoffs: dict[str, SignoffRow]) -> list[str]:
    lines = ["", "## Deployment Log", "", "| Date | Version | Deployed By | Status | Notes |", "|---|---|---|---|---|"]
    for release in ctx.ledger.recent_releases(ctx.profile.name):
        note = (release.outcome_reason or "").replace("|", "/")[:160]
        lines.append(f"| {_when(release.created_at)} | {release.version} | {release.triggered_by or ''} | {release.status} | {note} |")
    lines += [
        "",
        "## Performance Baselines",
        "",
        "| Check | p50 (ms) | p95 (ms) | p99 (ms) | Error rate | Requests/s |",
        "|---|---|---|---|---|---|",
    ]
    for m in ctx.ledger.measurements(ctx.release_id):
        if m.kind == "latency":
            x = m.metrics
            lines.append(f"| {m.name} | {x['p50_ms']} | {x['p95_ms']} | {x['p99_ms']} | {x['error_rate']:.2%} | {x['rps']} |")
    lines += ["", "## Approval Sign-off", "", "| Role | Name | Decision | Date |", "|---|---|---|---|"]
    for role, answer in sorted(signoffs.items()):
        decision = "approved" if answer.approved else "rejected"
        lines.append(f"| {role} | {answer.responder or '(no answer in time)'} | {decision} | {_when(answer.answered_at)} |")
    return lines


def write_completed(ctx: ReleaseContext) -> tuple[Path, str]:
    markdown = render_completed(ctx)
    from airflow_rollout.targets.base import safe_file_name

    path = ctx.state / "checklists" / ctx.profile.name / f"{safe_file_name(ctx.release_id)}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(markdown)
    return path, markdown
