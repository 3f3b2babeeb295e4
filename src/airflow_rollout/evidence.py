"""Evidence a checklist item can point at with `check: {kind: python, function: NAME}`.

Each function reads what the release itself did (the ledger), or what a system declares that no release
check asks (a Deployment's probes, the services of a compose project), and says whether the item holds, with
the numbers that prove it. Only the functions registered here can be named, so a checklist can never make
the release import or run arbitrary code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from airflow_rollout.ledger import FingerprintStage, ReleaseStatus
from airflow_rollout.notify import Event

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_rollout.context import ReleaseContext
    from airflow_rollout.targets.compose import ComposeServiceApp


@dataclass(frozen=True)
class Evidence:
    passed: bool
    detail: str
    numbers: dict[str, Any] = field(default_factory=dict)


def backup_verified(ctx: ReleaseContext) -> Evidence:
    """Every data target has a backup for this release, checksummed and checked readable."""
    rows = {t.config.name: ctx.ledger.backup(ctx.release_id, t.config.name) for t in ctx.data_targets}
    missing = [name for name, row in rows.items() if row is None]
    if missing:
        return Evidence(False, f"no backup of {', '.join(missing)}")
    if not rows:
        return Evidence(True, "the system has no data target to back up")
    parts = [f"{name}: {row.location} sha256 {row.sha256[:12]}… ({row.size_bytes} bytes)" for name, row in rows.items() if row]
    return Evidence(True, "; ".join(parts), {name: row.sha256 for name, row in rows.items() if row})


def migrations_recorded(ctx: ReleaseContext) -> Evidence:
    """The migrations this release applied are in the record (none is a valid answer)."""
    applied = ctx.ledger.migrations(ctx.release_id)
    failed = [s for s in ctx.ledger.steps(ctx.release_id) if s.phase == "migrate" and s.status == "failed"]
    if failed:
        return Evidence(False, f"migration failed: {failed[-1].error}")
    return Evidence(True, f"applied: {', '.join(applied)}" if applied else "no pending migration", {"applied": len(applied)})


def release_checks_passed(ctx: ReleaseContext, checks: list[str] | None = None) -> Evidence:
    """The profile's checks (all, or the ones named) ran in verify and passed."""
    measured = {m.name: m for m in ctx.ledger.measurements(ctx.release_id)}
    wanted = checks or [c.name for c in ctx.profile.checks]
    missing = [name for name in wanted if name not in measured]
    failed = [f"{name}: {measured[name].detail}" for name in wanted if name in measured and not measured[name].passed]
    if missing or failed:
        return Evidence(False, "; ".join([*(f"{m}: not run" for m in missing), *failed]))
    return Evidence(True, "; ".join(f"{name}: {measured[name].detail}" for name in wanted))


def data_fingerprint_recorded(ctx: ReleaseContext) -> Evidence:
    """A fingerprint of every data target was taken before anything changed."""
    tables = {}
    for target in ctx.data_targets:
        fingerprint = ctx.ledger.fingerprint(ctx.release_id, target.config.name, FingerprintStage.BEFORE)
        if fingerprint is None:
            return Evidence(False, f"no fingerprint of {target.config.name}")
        tables[target.config.name] = len(fingerprint)
    return Evidence(True, ", ".join(f"{name}: {count} tables" for name, count in tables.items()) or "no data target", tables)


def rollback_ready(ctx: ReleaseContext) -> Evidence:
    """A rollback is possible: the previous version is known and every backup is verified."""
    release = ctx.release()
    backups = backup_verified(ctx)
    if not backups.passed:
        return backups
    return Evidence(True, f"previous version: {release.previous_version or 'none (first release)'}; {backups.detail}")


def release_lock_held(ctx: ReleaseContext) -> Evidence:
    """No other release of the system runs: this one holds the lock."""
    holder = ctx.ledger.lock_holder(ctx.profile.name)
    return Evidence(holder == ctx.release_id, f"lock held by {holder or 'nobody'}")


def slack_delivered(ctx: ReleaseContext) -> Evidence:
    """The release's first message ("release started") reached the team's channel: Slack's webhook accepted it.

    A connection id in the profile proves nothing: its webhook may be wrong, revoked or missing.
    """
    conn_id = ctx.profile.slack_conn_id
    if conn_id is None:
        return Evidence(False, "no Slack connection in the profile: the release posts nothing")
    started = [n for n in ctx.ledger.notifications(ctx.release_id) if n.event == Event.STARTED]
    if not started:
        return Evidence(False, f"no release-started message of this release on record (Slack connection {conn_id})")
    if not any(n.delivered for n in started):
        return Evidence(False, f"the release-started message did not reach Slack through {conn_id}: {started[-1].error}")
    return Evidence(True, f"release-started message delivered to Slack through {conn_id}")


def compose_services_up(ctx: ReleaseContext, app: str) -> Evidence:
    """`docker compose ps` of the app's project shows every service of its compose file Up (running, not unhealthy).

    Every service the file defines counts, those the release does not deploy too (seed 003's nginx): a release check
    of the deployed apps would never look at them.
    """
    read = getattr(ctx.apps[app], "project_state", None)
    if read is None:
        return Evidence(False, f"{app} is not a docker compose service: there is no compose project to list")
    services = read()
    shown = {name: f"{c.state}{f' ({c.health})' if c.health else ''}" if c else "no container" for name, c in services.items()}
    down = [f"{name} {shown[name]}" for name, c in services.items() if c is None or c.state != "running" or c.health == "unhealthy"]
    detail = ", ".join(f"{name} {state}" for name, state in shown.items())
    if down:
        return Evidence(False, f"not Up: {', '.join(down)} (of {len(services)} services: {detail})", {"down": len(down)})
    return Evidence(True, f"{len(services)} services Up: {detail}", {"services": len(services)})


def server_resources(ctx: ReleaseContext, target: str, min_memory_gb: float, min_disk_gb: float, min_cpus: int | None = None) -> Evidence:
    """The server a files target's root is on has at least this much memory, a disk of at least this size and, when
    `min_cpus` is given, at least that many CPUs.

    The worker reads its own host: a files target's paths are local to it, so it runs on the system's server. Memory is
    the physical memory the kernel counts, the disk the size of the filesystem holding the root; GB are 10^9 bytes, as
    a machine's size is sold (a 4 GiB machine's kernel counts about 3.8 GiB, which is more than 4 GB). CPUs are those the
    kernel counts (`os.cpu_count()`), as a server's cores are sold (vCPUs).
    """
    import os
    import shutil

    from airflow_rollout.targets.files import item_path

    root = item_path(ctx, target, ".").resolve()
    memory_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    disk = shutil.disk_usage(root)
    cpus = os.cpu_count() or 0
    numbers = {
        "memory_gb": round(memory_gb, 1),
        "disk_gb": round(disk.total / 1e9, 1),
        "disk_free_gb": round(disk.free / 1e9, 1),
        "cpus": cpus,
    }
    disk_found = f"the disk holding {root} {numbers['disk_gb']} GB ({numbers['disk_free_gb']} GB free)"
    found = f"{cpus} CPUs, {numbers['memory_gb']} GB memory, {disk_found}"
    limits = (("memory", memory_gb, min_memory_gb), ("disk", disk.total / 1e9, min_disk_gb))
    short = [f"{what} below {least:g} GB" for what, size, least in limits if size < least]
    if min_cpus is not None and cpus < min_cpus:
        short.insert(0, f"fewer than {min_cpus} CPUs")
    wanted = f"{min_cpus} CPUs, " if min_cpus is not None else ""
    return Evidence(
        not short,
        found + (f": {', '.join(short)}" if short else f" (at least {wanted}{min_memory_gb:g} and {min_disk_gb:g} GB)"),
        numbers,
    )


def files_owned(ctx: ReleaseContext, target: str, owner: str, group: str) -> Evidence:
    """Every path of a files target (seed 003's `.env` and `models/`, what its backup takes), and everything under a
    directory among them, belongs to this user and group: what `chown app:app .env` and `chown -R app:app ./models/` set.

    Read on the worker, the system's server (a files target's paths are local to it); a user or group id the server
    does not name shows as the number.
    """
    import grp
    import os
    import pwd
    from pathlib import Path

    from airflow_rollout.targets.files import FilesTarget

    config = next(t for t in ctx.profile.data_targets if t.name == target)
    if not isinstance(config, FilesTarget):
        return Evidence(False, f"{target} is a {config.kind} target, not a files target: it has no files to own")

    def name_of(lookup: Callable[[int], Any], number: int) -> str:
        try:
            return str(lookup(number)[0])
        except KeyError:
            return str(number)

    root = config.resolved_root()
    missing = [str(root / path) for path in config.paths if not (root / path).exists()]
    if missing:
        return Evidence(False, f"not found: {', '.join(missing)}")
    entries: list[Path] = []
    for path in (root / p for p in config.paths):
        entries.append(path)
        if path.is_dir() and not path.is_symlink():
            for directory, names, files in os.walk(path):
                entries.extend(Path(directory) / name for name in [*names, *files])
    wrong = []
    for entry in entries:
        stat = entry.lstat()
        found = f"{name_of(pwd.getpwuid, stat.st_uid)}:{name_of(grp.getgrgid, stat.st_gid)}"
        if found != f"{owner}:{group}":
            wrong.append(f"{entry.relative_to(root)} {found}")
    numbers = {"entries": len(entries), "wrong": len(wrong)}
    owned = f"{len(entries)} files and directories of {', '.join(config.paths)} under {root}"
    if wrong:
        shown = ", ".join(wrong[:5]) + (f" and {len(wrong) - 5} more" if len(wrong) > 5 else "")
        return Evidence(False, f"{owned}: {len(wrong)} not owned by {owner}:{group}: {shown}", numbers)
    return Evidence(True, f"{owned}: all owned by {owner}:{group}", numbers)


def _compose_app(ctx: ReleaseContext, app: str) -> ComposeServiceApp | None:
    """The app's compose project (`ComposeServiceApp`), or None when the app is not a docker compose service."""
    from airflow_rollout.targets.compose import ComposeServiceApp

    found = ctx.apps[app]
    return found if isinstance(found, ComposeServiceApp) else None


def compose_logs_readable(ctx: ReleaseContext, app: str, services: list[str]) -> Evidence:
    """`docker compose logs` of the app's project reads each named service's log, and it is not empty."""
    project = _compose_app(ctx, app)
    if project is None:
        return Evidence(False, f"{app} is not a docker compose service: there is no compose project to read logs from")
    defined = project.services()
    if unknown := [service for service in services if service not in defined]:
        return Evidence(False, f"not services of the compose project ({', '.join(defined)}): {', '.join(unknown)}")
    counts = {service: len(project.logs(service)) for service in services}
    shown = ", ".join(f"{service} {count} lines" for service, count in counts.items())
    if empty := [service for service, count in counts.items() if count == 0]:
        return Evidence(False, f"docker compose logs: nothing logged by {', '.join(empty)} ({shown})", counts)
    return Evidence(True, f"docker compose logs: {shown}", counts)


# A line logged at an error level: Python's logging (`ERROR:name:message`, its default format) and uvicorn
# (`ERROR:    message`) both begin it with the level and a colon.
ERROR_LINE = re.compile(r"^(?:ERROR|CRITICAL):")
SHOWN_ERROR_LINES = 3


def compose_logs_clean(ctx: ReleaseContext, app: str) -> Evidence:
    """No service of the app's compose project logged a line at ERROR or CRITICAL since the release began.

    The window starts at the release's record (when it was created), not at the clock: a retry reads the same lines.
    Docker keeps the current container's log: a service the release recreated shows its new version's lines only.
    """
    project = _compose_app(ctx, app)
    if project is None:
        return Evidence(False, f"{app} is not a docker compose service: there is no compose project to read logs from")
    began = ctx.release().created_at
    read = {service: project.logs(service, since=began) for service in project.services()}
    errors = [f"{service}: {line[:200]}" for service, lines in read.items() for line in lines if ERROR_LINE.match(line)]
    counts = {service: len(lines) for service, lines in read.items()}
    scope = f"{sum(counts.values())} lines of {', '.join(read)} since {began:%Y-%m-%d %H:%M:%S} UTC"
    if errors:
        more = f" and {len(errors) - SHOWN_ERROR_LINES} more" if len(errors) > SHOWN_ERROR_LINES else ""
        return Evidence(False, f"{scope}: {len(errors)} at ERROR or CRITICAL: {'; '.join(errors[:SHOWN_ERROR_LINES])}{more}", counts)
    return Evidence(True, f"{scope}: none at ERROR or CRITICAL", counts)


# Drivers whose log docker rotates: json-file when max-size is set, local always (20 MB, 5 files by default).
ROTATING_DRIVERS = {"json-file": "max-size", "local": None}


def compose_log_rotation(ctx: ReleaseContext, app: str) -> Evidence:
    """Every service of the app's compose project logs through a driver docker rotates: `json-file` (docker's default
    driver) with a `max-size`, or `local`, as `docker compose config` resolves the file."""
    project = _compose_app(ctx, app)
    if project is None:
        return Evidence(False, f"{app} is not a docker compose service: there is no compose file to read")
    drivers = {}
    unrotated = []
    for name, service in project.project_config().get("services", {}).items():
        logging_config = service.get("logging") or {}
        driver, options = logging_config.get("driver") or "json-file", logging_config.get("options") or {}
        drivers[name] = f"{driver}" + (f" max-size {options['max-size']}" if "max-size" in options else "")
        if driver not in ROTATING_DRIVERS:
            unrotated.append(f"{name} logs to {driver}, which docker does not rotate")
        elif (needed := ROTATING_DRIVERS[driver]) is not None and needed not in options:
            unrotated.append(f"{name} logs to {driver} without {needed}: its log grows without end")
    shown = ", ".join(f"{name} {driver}" for name, driver in drivers.items())
    if unrotated or not drivers:
        return Evidence(False, f"{'; '.join(unrotated) or 'no service in the compose file'} ({shown})")
    return Evidence(True, f"every service's log rotated: {shown}")


PROBES = ("liveness", "readiness", "startup")


def deployment_probe(ctx: ReleaseContext, app: str, probe: str, path: str) -> Evidence:
    """The app's Deployment declares the probe as an HTTP GET of `path`: what the cluster reads, not the path answering.

    A request to the path proves the service answers there, not that Kubernetes restarts (liveness) or withholds
    traffic from (readiness) a pod that stops answering.
    """
    if probe not in PROBES:
        raise ValueError(f"probe must be one of {', '.join(PROBES)}, not {probe!r}")
    read = getattr(ctx.apps[app], "probe", None)
    if read is None:
        return Evidence(False, f"{app} is not a Kubernetes Deployment: it has no {probe} probe to read")
    declared = read(probe)
    if declared is None:
        return Evidence(False, f"the Deployment of {app} declares no {probe}Probe")
    if declared.http_get is None:
        return Evidence(False, f"the {probe}Probe of {app} is not an HTTP GET, so it does not call {path}")
    found = declared.http_get.path
    numbers = {"path": found, "period_seconds": declared.period_seconds, "failure_threshold": declared.failure_threshold}
    if found != path:
        return Evidence(False, f"the {probe}Probe of {app} GETs {found}, expected {path}", numbers)
    return Evidence(True, f"the {probe}Probe of {app} GETs {found} on port {declared.http_get.port}", numbers)


def restore_drill_recent(ctx: ReleaseContext, max_age_days: float = 8) -> Evidence:
    """The weekly restore drill proved a backup restorable recently, within the RTO."""
    drills = [d for d in ctx.maintenance_store.drills(ctx.profile.name) if d.succeeded]
    if not drills:
        return Evidence(False, "no successful restore drill on record (maintenance_weekly runs them)")
    age_days = (datetime.now(UTC) - max(d.drilled_at for d in drills)).total_seconds() / 86400
    return Evidence(age_days <= max_age_days, f"last drill {age_days:.1f} days ago", {"age_days": round(age_days, 2)})


def restore_within_rto(ctx: ReleaseContext) -> Evidence:
    """The newest restore drill of each data target restored its backup intact in less than the profile's RTO."""
    limit = ctx.profile.maintenance.rto_hours * 3600
    newest = {d.target: d for d in sorted(ctx.maintenance_store.drills(ctx.profile.name), key=lambda d: d.drilled_at)}
    if not newest:
        return Evidence(False, "no restore drill on record (maintenance_weekly runs them): no restore time measured")
    numbers = {target: d.restore_seconds for target, d in newest.items()}
    wrong = []
    for target, drill in newest.items():
        if not drill.succeeded or drill.restore_seconds is None:
            wrong.append(f"{target}: {drill.error or 'the restored data differs from the backup'}")
        elif drill.restore_seconds >= limit:
            wrong.append(f"{target}: restored in {drill.restore_seconds:.1f} s, not under {limit:.0f} s")
    if wrong:
        return Evidence(
            False, f"newest restore drills against the RTO of {ctx.profile.maintenance.rto_hours:g} h: {'; '.join(wrong)}", numbers
        )
    measured = ", ".join(f"{target} restored in {d.restore_seconds:.1f} s" for target, d in newest.items())
    return Evidence(True, f"newest restore drills: {measured} (RTO {ctx.profile.maintenance.rto_hours:g} h)", numbers)


def rollback_tested(ctx: ReleaseContext) -> Evidence:
    """The system's newest rollback on record ran through, app and data: its release is rolled back (the previous version
    started again and passed its health checks, which a first release has none of), and every data target its backup
    covered was restored to the fingerprint taken before that release.

    Fails when no release was ever rolled back, when the newest rollback could not finish (status failed), rolled back a
    first release, or left data that differs from before: the procedure as it works now, not an older run of it.
    """
    last = ctx.ledger.last_rollback(ctx.profile.name)
    if last is None:
        return Evidence(False, f"no release of {ctx.profile.name} was ever rolled back: the rollback has not been run")
    which = f"the newest rollback, of {last.version} (release {last.release_id})"
    if last.status != ReleaseStatus.ROLLED_BACK.value:
        return Evidence(False, f"{which}, did not finish: {last.outcome_reason}")
    if last.previous_version is None:
        return Evidence(False, f"{which}, undid a first release: no previous version was started again")
    equal: list[str] = []
    differing: list[str] = []
    for target in ctx.profile.data_targets:
        before = ctx.ledger.fingerprint(last.release_id, target.name, FingerprintStage.BEFORE)
        if before is not None:  # backed up, so changed and restored; a target without a backup was never touched
            after = ctx.ledger.fingerprint(last.release_id, target.name, FingerprintStage.AFTER_RESTORE)
            (equal if after == before else differing).append(target.name)
    if differing:
        return Evidence(False, f"{which}: after the restore, {', '.join(differing)} differ from before the release")
    if ctx.profile.data_targets and not equal:
        return Evidence(False, f"{which}: no data target had been backed up, so no data was restored")
    restored = f"{', '.join(equal)} restored equal to before" if equal else "no data target"
    ended = last.finished_at.isoformat() if last.finished_at else None
    return Evidence(True, f"{which}: {last.previous_version} serving again, {restored}", {"ended": ended, "restored": equal})


def decision_recorded(ctx: ReleaseContext) -> Evidence:
    """The release's decision and its reasons are in the record."""
    release = ctx.release()
    if not release.decision:
        return Evidence(False, "no decision yet")
    return Evidence(True, f"{release.decision}: {'; '.join(release.decision_reasons or []) or 'within the criteria'}")


EVIDENCE: dict[str, Callable[..., Evidence]] = {
    function.__name__: function
    for function in (
        backup_verified,
        migrations_recorded,
        release_checks_passed,
        data_fingerprint_recorded,
        rollback_ready,
        release_lock_held,
        slack_delivered,
        deployment_probe,
        compose_services_up,
        restore_drill_recent,
        decision_recorded,
        restore_within_rto,
        server_resources,
        rollback_tested,
        files_owned,
        compose_logs_readable,
        compose_logs_clean,
        compose_log_rotation,
    )
}
