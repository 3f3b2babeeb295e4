"""Scheduled maintenance: backups that are taken, pruned, and proven restorable.

The seeds ask for daily backups kept 30 days (seed 003), RPO < 1 h and RTO < 4 h (seed 002), daily
"verify backup completion", monthly `VACUUM ANALYZE` and "test backup restoration", and a quarterly
disaster-recovery drill (seed 004). These functions do that for one system; `airflow_rollout.maintenance_tasks`
maps them over every configured system. Each returns Findings; the digest turns them into one message.

Each takes the run it works for (`MaintenanceRun`): its id and its time, never the wall clock, so that a
retried task finds what its first attempt found: the same backup name (a verified backup of the run is
reused, a partial one replaced), the same cut-offs and windows, the same ledger rows (upserted by run,
system and target).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow_rollout.config import HttpCheck, SlackFiles, VacuumSchedule
from airflow_rollout.targets.base import AppCapability, BackupIntegrityError, DataCapability, remove_backup

if TYPE_CHECKING:
    from airflow_rollout.context import SystemContext
    from airflow_rollout.ledger import BaselineRow
    from airflow_rollout.maintenance_store import BackupOnRecord
    from airflow_rollout.targets.base import DataTarget

log = logging.getLogger(__name__)

# Items of the seeds that need a person: the digest keeps them in sight.
MANUAL_REMINDERS = {
    "monthly": ["review and update dependencies", "review and optimise resources"],
    "quarterly": ["security review and updates", "performance optimisation review", "architecture review"],
}


@dataclass(frozen=True)
class Finding:
    system: str
    check: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class MaintenanceRun:
    """The DAG run a task works for: its id, and its time `at` (`airflow_rollout.maintenance_tasks.maintenance_run`)."""

    run_id: str
    at: datetime

    @property
    def tag(self) -> str:
        """What this run's artefacts are named after: its time (readable) and a digest of its id (unique per run)."""
        return f"{self.at.astimezone(UTC):%Y%m%dT%H%M%SZ}-{hashlib.sha256(self.run_id.encode()).hexdigest()[:8]}"


def backups_as_of(ctx: SystemContext, target: DataTarget, at: datetime) -> list[BackupOnRecord]:
    """The backups on record for a target that were taken by `at`, newest first: what a run at `at` works with."""
    return [b for b in ctx.maintenance_store.backups_of(ctx.profile.name, target.config.name) if b.taken_at <= at]


# --- daily ---------------------------------------------------------------------------------------------------


def scheduled_backup(ctx: SystemContext, run: MaintenanceRun) -> list[Finding]:
    """The release's backup code, on a schedule: dump, read back, checksum, fingerprint, record.

    The dump is named after the run, so a retry finds its first attempt's: kept when it is recorded and
    still intact (sha256 and read-back, as a release's backup phase checks it), replaced otherwise (a
    partial dump, or one written but never recorded). The ledger row is the run's, upserted.
    """
    findings = []
    for target in ctx.data_targets:
        name = target.config.name
        recorded = ctx.maintenance_store.scheduled_backup(run.run_id, ctx.profile.name, name)
        if recorded is not None:
            try:
                target.verify_integrity(recorded.location, recorded.sha256)
            except BackupIntegrityError as exc:
                log.warning("this run's backup of %s is unusable, taking it again: %s", name, exc)
            else:
                detail = f"{recorded.size_bytes:,} bytes, sha256 {recorded.sha256[:12]}… (taken by an earlier attempt of this run)"
                findings.append(Finding(ctx.profile.name, f"backup {name}", True, detail))
                continue
        path = target.backup_path(ctx.backup_directory(target), f"scheduled-{run.tag}")
        record = target.backup(path)
        ctx.maintenance_store.record_scheduled_backup(ctx.profile.name, name, record.as_dict(), run_id=run.run_id)
        findings.append(Finding(ctx.profile.name, f"backup {name}", True, f"{record.size_bytes:,} bytes, sha256 {record.sha256[:12]}…"))
    return findings


@dataclass(frozen=True)
class Candidate:
    location: str
    taken_at: datetime
    release_id: str | None  # set when a release's record points to it: never deleted


def retention_plan(candidates: list[Candidate], *, keep_days: int, now: datetime, newest_verified: str | None) -> list[str]:
    """The locations to delete: scheduled backups older than `keep_days`, except the newest verified one.

    A backup a release record points to is kept whatever its age: it is what that release restores.
    """
    cutoff = now - timedelta(days=keep_days)
    return [c.location for c in candidates if c.release_id is None and c.taken_at < cutoff and c.location != newest_verified]


def newest_verified_backup(target: DataTarget, backups: list[BackupOnRecord]) -> BackupOnRecord | None:
    """The newest backup whose file is there and still has its recorded sha256 (newest first in `backups`)."""
    for backup in backups:
        try:
            target.verify_integrity(backup.location, backup.sha256)
        except BackupIntegrityError as exc:
            log.warning("not a usable backup: %s", exc)
            continue
        return backup
    return None


def apply_retention(ctx: SystemContext, run: MaintenanceRun) -> list[Finding]:
    """Delete the scheduled backups older than `retention_days` before the run's time."""
    findings = []
    keep_days = ctx.profile.maintenance.retention_days
    for target in ctx.data_targets:
        backups = ctx.maintenance_store.backups_of(ctx.profile.name, target.config.name)
        newest = newest_verified_backup(target, backups)
        candidates = [Candidate(b.location, b.taken_at, b.release_id) for b in backups]
        doomed = retention_plan(candidates, keep_days=keep_days, now=run.at, newest_verified=newest.location if newest else None)
        for location in doomed:
            remove_backup(Path(location))
            ctx.maintenance_store.mark_deleted(location)
        findings.append(
            Finding(
                ctx.profile.name,
                f"retention {target.config.name}",
                newest is not None,
                f"{len(doomed)} deleted (older than {keep_days} days), {len(backups) - len(doomed)} kept"
                + ("" if newest else "; NO intact backup is left"),
            )
        )
    return findings


def check_backup_age(ctx: SystemContext, run: MaintenanceRun) -> list[Finding]:
    """The newest intact backup's age at the run's time; one taken after it (this run's own) counts as new."""
    findings = []
    limit = timedelta(hours=ctx.profile.maintenance.rpo_hours)
    for target in ctx.data_targets:
        newest = newest_verified_backup(target, ctx.maintenance_store.backups_of(ctx.profile.name, target.config.name))
        if newest is None:
            findings.append(Finding(ctx.profile.name, f"backup age {target.config.name}", False, "no intact backup at all"))
            continue
        age = max(run.at - newest.taken_at, timedelta(0))
        findings.append(
            Finding(
                ctx.profile.name,
                f"backup age {target.config.name}",
                age <= limit,
                f"newest intact backup is {_hours(age)} old (RPO {ctx.profile.maintenance.rpo_hours:g} h)",
            )
        )
    return findings


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f} h"


def check_running_version(ctx: SystemContext, run: MaintenanceRun) -> list[Finding]:
    """The critical HTTP checks against the version that should be running (`run` unused: it checks what runs now)."""
    from airflow_rollout.checks import run_http_check

    del run
    findings = []
    for name, app in ctx.apps.items():
        if not any(isinstance(c, HttpCheck) and c.app == name and c.critical for c in ctx.profile.checks):
            continue  # nothing to check over HTTP (a model alias)
        version = app.recorded_version()
        if version is None:
            findings.append(Finding(ctx.profile.name, f"health {name}", False, "no version of it has been started here"))
            continue
        for check in ctx.profile.checks:
            if isinstance(check, HttpCheck) and check.app == name and check.critical:
                result = run_http_check(check, ctx.app_base_url(name), version)
                findings.append(Finding(ctx.profile.name, f"health {name} {check.name}", result.passed, f"{version}: {result.detail}"))
    return findings


# --- weekly --------------------------------------------------------------------------------------------------


def not_applicable(ctx: SystemContext, capability: DataCapability, check: str) -> list[Finding]:
    """A finding per data target whose kind lacks `capability`: said, not silently left out."""
    return [
        Finding(ctx.profile.name, f"{check} {t.config.name}", True, f"not applicable: a {t.config.kind} target has no {capability.value}")
        for t in ctx.data_targets
        if capability not in t.capabilities
    ]


def scratch_name(ctx: SystemContext, target: DataTarget, run: MaintenanceRun, purpose: str) -> str:
    at = run.at.astimezone(UTC)
    return re.sub(r"[^a-z0-9_]", "_", f"rollout_{purpose}_{ctx.profile.name}_{target.config.name}_{at:%Y%m%d%H%M%S}".lower())[:63]


def restore_drill(ctx: SystemContext, run: MaintenanceRun) -> list[Finding]:
    """Restore the newest backup taken by the run's time into a scratch database and prove it: fingerprint, RTO, RPO.

    Recorded as the run's drill of the target: a retried drill overwrites its row, not adds one.
    """
    findings = not_applicable(ctx, DataCapability.SCRATCH_RESTORE, "restore drill")
    for target in ctx.data_targets_with(DataCapability.SCRATCH_RESTORE):
        backups = backups_as_of(ctx, target, run.at)
        name = target.config.name
        if not backups:
            findings.append(Finding(ctx.profile.name, f"restore drill {name}", False, "no backup on record to restore"))
            continue
        newest = backups[0]  # the newest, intact or not: a damaged newest backup must be loud
        result: dict[str, Any] = {
            "location": newest.location,
            "backup_taken_at": newest.taken_at,
            "rpo_seconds": (run.at - newest.taken_at).total_seconds(),
            "restore_seconds": None,
            "fingerprint_equal": False,
            "error": None,
        }
        try:
            with target.scratch_copy(newest, scratch_name(ctx, target, run, "drill")) as copy:
                result.update(restore_seconds=copy.restore_seconds, fingerprint_equal=copy.error is None, error=copy.error)
        except Exception as exc:  # noqa: BLE001 - a failed drill is a finding, reported with its cause
            result["error"] = ctx.redact(f"{type(exc).__name__}: {exc}")
        ctx.maintenance_store.record_drill(ctx.profile.name, name, result, run_id=run.run_id)
        rto_limit = ctx.profile.maintenance.rto_hours * 3600
        ok = result["error"] is None and (result["restore_seconds"] or 0) <= rto_limit
        detail = (
            f"{newest.location}: restored in {result['restore_seconds']:.1f} s (RTO {ctx.profile.maintenance.rto_hours:g} h), "
            f"backup {result['rpo_seconds'] / 3600:.1f} h old, fingerprint equal"
            if ok
            else f"{newest.location}: {result['error'] or 'restore took longer than the RTO'}"
        )
        findings.append(Finding(ctx.profile.name, f"restore drill {name}", ok, detail))
    return findings


def dr_drill_due(now: datetime) -> bool:
    """Seed 004's quarterly disaster-recovery drill: the first weekly run of January, April, July, October."""
    return now.month % 3 == 1 and now.day <= 7


def disaster_recovery_drill(ctx: SystemContext, run: MaintenanceRun) -> list[Finding]:
    """The quarterly drill: the newest backups restored into scratch databases, the running version
    started against them on a spare port, and its critical checks run there. The live service is untouched."""
    from contextlib import ExitStack

    from airflow_rollout.checks import run_http_check
    from airflow_rollout.targets.base import free_port

    findings = not_applicable(ctx, DataCapability.SCRATCH_RESTORE, "disaster recovery drill")
    with ExitStack() as stack:
        database_urls: dict[str, str] = {}
        for target in ctx.data_targets_with(DataCapability.SCRATCH_RESTORE):
            backup = newest_verified_backup(target, backups_as_of(ctx, target, run.at))
            if backup is None:
                return [Finding(ctx.profile.name, "disaster recovery drill", False, f"no intact backup of {target.config.name}")]
            copy = stack.enter_context(target.scratch_copy(backup, scratch_name(ctx, target, run, "dr")))
            if copy.error:
                return [Finding(ctx.profile.name, "disaster recovery drill", False, f"{target.config.name}: {copy.error}")]
            database_urls |= copy.connection_urls or {}
        for name, app in ctx.apps.items():
            if AppCapability.SPARE_COPY not in app.capabilities:
                findings.append(
                    Finding(
                        ctx.profile.name,
                        f"disaster recovery drill {name}",
                        True,
                        f"skipped: a {app.config.kind} app is not started on a spare port",
                    )
                )
                continue
            version = app.recorded_version()
            if version is None:
                findings.append(Finding(ctx.profile.name, f"disaster recovery drill {name}", False, "no version to start"))
                continue
            stand_in = app.spare_copy(free_port(), database_urls, ctx.state / "dr-drill")
            stack.callback(stand_in.stop)
            seconds = stand_in.switch_to(version)
            results = [
                run_http_check(check, stand_in.base_url(), version)
                for check in ctx.profile.checks
                if isinstance(check, HttpCheck) and check.app == name and check.critical
            ]
            failed = [r.detail for r in results if not r.passed]
            findings.append(
                Finding(
                    ctx.profile.name,
                    f"disaster recovery drill {name}",
                    not failed,
                    f"{version} started on the restored data in {seconds:.1f} s; "
                    + ("; ".join(failed) if failed else f"{len(results)} critical checks passed"),
                )
            )
    return findings


def vacuum_due(schedule: VacuumSchedule, now: datetime) -> bool:
    """Weekly: every weekly run; monthly: the first weekly run of a month."""
    return schedule is VacuumSchedule.WEEKLY or (schedule is VacuumSchedule.MONTHLY and now.day <= 7)


def vacuum(ctx: SystemContext, run: MaintenanceRun) -> list[Finding]:
    if not vacuum_due(ctx.profile.maintenance.vacuum, run.at):
        return [Finding(ctx.profile.name, "vacuum", True, f"not due ({ctx.profile.maintenance.vacuum.value})")]
    findings = not_applicable(ctx, DataCapability.VACUUM, "vacuum")
    for target in ctx.data_targets_with(DataCapability.VACUUM):
        findings.append(Finding(ctx.profile.name, f"vacuum {target.config.name}", True, target.vacuum()))
    return findings


def trend_report(ctx: SystemContext, directory: Path, run: MaintenanceRun) -> tuple[Path, str]:
    """A PNG plot and a Markdown table of the p50/p95 latency and error rate of each release finished by the run's time."""
    rows = [r for r in ctx.ledger.release_baselines(ctx.profile.name) if r.finished_at <= run.at]
    lines = ["| release | status | finished | p50 ms | p95 ms | error rate |", "|---|---|---|---|---|---|"]
    lines += [
        f"| {r.version} | {r.status} | {r.finished_at:%Y-%m-%d %H:%M} | {r.p50_ms:.1f} | {r.p95_ms:.1f} | {r.error_rate:.2%} |"
        for r in rows
    ]
    directory.mkdir(parents=True, exist_ok=True)
    png = directory / f"{ctx.profile.name}-trend-{run.tag}.png"
    _plot(rows, png, title=f"{ctx.profile.name}: latency and errors per release")
    return png, "\n".join(lines)


def _plot(rows: list[BaselineRow], path: Path, *, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on a worker
    from matplotlib import pyplot as plt

    figure, latency = plt.subplots(figsize=(8, 4), dpi=100)
    labels = [r.version for r in rows]
    positions = range(len(rows))
    latency.plot(positions, [r.p50_ms for r in rows], marker="o", label="p50 ms")
    latency.plot(positions, [r.p95_ms for r in rows], marker="o", label="p95 ms")
    latency.set_ylabel("latency (ms)")
    latency.set_xticks(list(positions), labels, rotation=30)
    errors = latency.twinx()
    errors.bar(positions, [r.error_rate * 100 for r in rows], alpha=0.25, color="red", label="error rate %")
    errors.set_ylabel("error rate (%)")
    latency.set_title(title)
    latency.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(path, format="png")
    plt.close(figure)


def trend(ctx: SystemContext, run: MaintenanceRun) -> list[Finding]:
    png, table = trend_report(ctx, ctx.state / "reports" / ctx.profile.name, run)
    findings = [Finding(ctx.profile.name, "trend report", True, f"plot: {png}\n{table}")]
    if ctx.profile.slack_files:
        comment = f"{ctx.profile.name}: latency and errors per release\n{table}"
        findings.append(upload_to_slack(ctx, ctx.profile.slack_files, png, comment))
    return findings


def upload_to_slack(ctx: SystemContext, settings: SlackFiles, path: Path, comment: str) -> Finding:
    """Through the Slack provider's Web API hook; a failure is a finding, not a crash."""
    from airflow.providers.slack.hooks.slack import SlackHook

    try:
        SlackHook(slack_conn_id=settings.conn_id, timeout=30).send_file_v2(
            channel_id=settings.channel_id,
            file_uploads={"file": str(path), "filename": path.name, "title": path.stem},
            initial_comment=comment,
        )
    except Exception as exc:  # noqa: BLE001 - reported in the digest with its cause
        return Finding(ctx.profile.name, "trend upload", False, ctx.redact(f"{path.name} not uploaded: {type(exc).__name__}: {exc}"))
    return Finding(ctx.profile.name, "trend upload", True, f"{path.name} uploaded to Slack channel {settings.channel_id}")


# --- the digest ----------------------------------------------------------------------------------------------


def digest(system: str, kind: str, findings: list[Finding], reminders: list[str]) -> tuple[bool, str, list[str]]:
    """(all well, headline, lines): one short line when all is well, every problem spelled out when not."""
    problems = [f for f in findings if not f.ok]
    if not problems:
        headline = f"{kind} maintenance: all {len(findings)} checks passed"
        quiet = [f"{f.check}: {f.detail}" for f in findings if f.check.startswith(("backup ", "restore drill", "trend", "airflow"))]
        return True, headline, quiet + reminders
    headline = f"{kind} maintenance: {len(problems)} of {len(findings)} checks FAILED"
    return False, headline, [f"FAILED {f.check}: {f.detail}" for f in problems] + reminders


def _checklist_items(ctx: SystemContext, phase: str) -> list[Finding]:
    from airflow_rollout.checklist_run import run_maintenance_items
    from airflow_rollout.checklists import Phase

    return [
        Finding(ctx.profile.name, f"checklist {entry.label}", evidence.passed, evidence.detail)
        for entry, evidence in run_maintenance_items(ctx, Phase(phase))
    ]


def checklist_daily_items(ctx: SystemContext, run: MaintenanceRun) -> list[Finding]:
    """The daily items of the system's checklist (`run` unused: each check reads the system as it is)."""
    del run
    return _checklist_items(ctx, "daily")


def checklist_weekly_items(ctx: SystemContext, run: MaintenanceRun) -> list[Finding]:
    """The weekly items of the system's checklist, e.g. seed 001's feature completeness, drift and job success SQL."""
    del run
    return _checklist_items(ctx, "weekly")
