"""`make bench`: what the orchestration costs and how fast it gets a system back to safety.

Measured in one run, side by side with the raw tools, on a pgbench database of about 1 GB
(`BENCH_SCALE`, default 70) in the embedded PostgreSQL:

  rollback_seconds          previous app version serving and the data restored (app + data), through
                            the rollback phase's own functions, after a release that changed data, the data
                            restored from the dump (= rollback_dump_seconds); rollback_copy_seconds the same
                            rollback of a profile keeping a database copy (snapshot: database_copy), switched in;
                            rollback_copy_sampled_seconds that one again with fingerprint: sampled;
  backup_ratio              the backup phase (dump hashed as it is written + read back + fingerprint) / raw pg_dump,
                            with its parts measured alone (pg_dump = raw_pg_dump_seconds, the dump through the hashing
                            writer, the sha256 alone over the archive in memory, the read-back, the fingerprint in each
                            form, and the second read of the archive the hashing writer saves); backup_sampled_ratio
                            the same with fingerprint: sampled;
  restore_ratio             the restore step (sha256 check + one-transaction restore) / raw pg_restore;
  parse_max_seconds         the slowest DAG file's parse time, and an empty DAG file's;
  release_overhead_ratio    a good release under `airflow standalone` / the same phase functions
                            called in order in one process, on the demo system;
  task_overhead_seconds     of that same release, the mean scheduling + start cost per task, from Airflow's
                            task-instance timings (REST API) against our ledger's step rows, in its parts
                            (ready_to_queue, queue_to_start, start_to_step = start_to_execute + execute_to_step).
  dashboard_seconds         the Releases dashboard's Systems page (plugins/rollout_dashboard.py) served by that same
                            standalone's API server, signed in, with 1,000 releases in the ledger (inserted directly,
                            with their step attempts, backups, measurements and messages): the median of 5 loads
                            after a first one; the release and trends pages beside it.

`python bench/run.py data` measures the backup, the restore and both rollbacks alone (the 1 GB database, no Airflow)
and updates their figures in bench/results.json.

`python bench/run.py dashboard` measures the dashboard alone (airflow standalone with the demo, no 1 GB database) and
updates its figures in bench/results.json.

It prints a table and writes bench/results.json. It stops a running `make demo` (it needs its ports).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from statistics import fmean
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from airflow_rollout.ledger import StepAttemptRow

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / ".state" / "bench"
SCALE = int(os.environ.get("BENCH_SCALE", "70"))
GOALS = {
    "rollback_seconds": ("<", 60.0),
    "rollback_copy_seconds": ("<", 5.0),
    "rollback_dump_seconds": ("<", 30.0),
    "backup_ratio": ("<=", 1.2),
    "restore_ratio": ("<", 1.1),
    "parse_max_seconds": ("<", 0.2),
    "release_overhead_ratio": ("<", 2.0),
    "task_overhead_seconds": ("<=", 0.5),  # issue 17: Airflow's mean cost per task under airflow standalone
    "dashboard_seconds": ("<", 1.0),
}
DASHBOARD_RELEASES = 1000
DASHBOARD_LOADS = 5


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = action()
    return time.perf_counter() - began, result


def say(text: str) -> None:
    print(f"[bench] {text}", flush=True)


# --- the 1 GB database -----------------------------------------------------------------------------------


def prepare_database() -> Any:
    from devtools import local_postgres

    cluster = local_postgres.start(BENCH_DIR / "postgres")
    for database in ("bench", "bench_ledger"):
        cluster.create_database(database)
    os.environ["AIRFLOW_CONN_BENCH_DB"] = cluster.airflow_conn_json("bench")
    os.environ["AIRFLOW_CONN_BENCH_LEDGER"] = cluster.airflow_conn_json("bench_ledger")
    marker = BENCH_DIR / f"pgbench-scale-{SCALE}"
    if not marker.exists():
        say(f"generating the pgbench database at scale {SCALE} (about {SCALE * 15} MB; a minute or two) ...")
        env = {**os.environ, "PGPASSWORD": cluster.password}
        subprocess.run(  # noqa: S603 - the wheel's pgbench, an argument list
            [str(local_postgres.pg_bin_dir() / "pgbench"), "-i", "-q", "-I", "dtGvp", "-s", str(SCALE), "-h", cluster.host,
             "-p", str(cluster.port), "-U", local_postgres.SUPERUSER, "bench"],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        marker.write_text("ok")
    return cluster


def bench_profile(backup: dict[str, Any], snapshot: str = "none", fingerprint: str = "rows") -> Any:
    from airflow_rollout.config import parse_profile

    target = {"name": "db", "kind": "postgres", "conn_id": "bench_db", "backup": backup, "snapshot": snapshot, "fingerprint": fingerprint}
    return parse_profile(
        {
            "name": "bench",
            "ledger_conn_id": "bench_ledger",
            "data_targets": [target],
            # A database copy needs the app gone while it is taken; the dump alone works with either order.
            "deploy_order": "stop_first" if snapshot != "none" else "migrate_live",
            "app_targets": [
                {
                    "name": "web",
                    "kind": "local_process",
                    "command": ["{python}", "{include}/demo_app/server.py", "--version", "{version}", "--port", "{port}"],
                    "port": int(os.environ.get("BENCH_APP_PORT", "8799")),
                    "env_from_connections": {"DATABASE_URL": "bench_db"},
                }
            ],
            "checks": [{"name": "health", "kind": "http", "app": "web", "path": "/health", "expect_json": {"version": "{version}"}}],
        },
        "bench profile",
    )


def raw(args: list[str], env: dict[str, str]) -> float:
    seconds, _ = timed(lambda: subprocess.run(args, env=env, check=True, capture_output=True))  # noqa: S603 - PostgreSQL programs
    return seconds


def backup_and_restore(cluster: Any, results: dict[str, Any]) -> None:
    from airflow_rollout.targets.postgres import PostgresDataTarget, pg_program

    work = BENCH_DIR / "dumps"
    shutil.rmtree(work, ignore_errors=True)  # pg_dump's directory format wants a directory that is not there
    work.mkdir(parents=True)
    target = PostgresDataTarget(config=bench_profile({}).data_targets[0])
    env = target.client_env()
    results["database_bytes"] = int(cluster.psql("bench", "SELECT pg_database_size('bench')").strip())
    sampled = PostgresDataTarget(config=bench_profile({}, fingerprint="sampled").data_targets[0])
    results["fingerprint_seconds"], _ = timed(target.fingerprint)
    results["fingerprint_sampled_seconds"], _ = timed(sampled.fingerprint)

    say("backup: raw pg_dump (custom, compress 6) ...")
    raw_dump = raw([pg_program("pg_dump"), "--format=custom", "--compress=6", "--schema=public", f"--file={work / 'raw.dump'}"], env)
    say("backup: the backup phase (custom, compress 6) ...")
    ours_dump, record = timed(lambda: target.backup(work / "ours.dump"))
    results.update(raw_pg_dump_seconds=raw_dump, backup_seconds=ours_dump, backup_ratio=ours_dump / raw_dump)
    say("backup: the backup phase with fingerprint: sampled ...")
    sampled_dump, _ = timed(lambda: sampled.backup(work / "sampled.dump"))
    results.update(backup_sampled_seconds=sampled_dump, backup_sampled_ratio=sampled_dump / raw_dump)
    say("backup: its parts, each alone ...")
    results.update(backup_parts(target, work, env))

    say("backup: directory format with 2 jobs, raw and ours ...")
    raw_parallel = raw(
        [pg_program("pg_dump"), "--format=directory", "--jobs=2", "--compress=6", "--schema=public", f"--file={work / 'raw.dir'}"], env
    )
    parallel_target = PostgresDataTarget(config=bench_profile({"format": "directory", "jobs": 2}).data_targets[0])
    ours_parallel, parallel_record = timed(lambda: parallel_target.backup(work / "ours.dir"))
    results.update(raw_pg_dump_parallel_seconds=raw_parallel, backup_parallel_seconds=ours_parallel)

    say("restore: raw pg_restore --clean, then ours (sha256 check + one transaction) ...")
    restore_raw = raw([pg_program("pg_restore"), "--clean", "--if-exists", "--dbname=bench", str(work / "raw.dump")], env)
    restore_ours, _ = timed(lambda: target.restore(record.location, record.sha256))
    restore_raw_parallel = raw(
        [pg_program("pg_restore"), "--clean", "--if-exists", "--jobs=2", "--dbname=bench", str(work / "raw.dir")], env
    )
    restore_ours_parallel, _ = timed(lambda: parallel_target.restore(parallel_record.location, parallel_record.sha256))
    # snapshot: database_copy copies with FILE_COPY (a checkpoint, then the files); WAL_LOG, PostgreSQL's default, beside it.
    for strategy, key in (("FILE_COPY", "same_cluster_copy_seconds"), ("WAL_LOG", "same_cluster_copy_wal_log_seconds")):
        results[key] = raw(
            [pg_program("psql"), "-X", "-q", "-d", "postgres", "-c", f"CREATE DATABASE bench_copy TEMPLATE bench STRATEGY {strategy}"], env
        )
        cluster.psql("postgres", "DROP DATABASE bench_copy")
    results.update(
        raw_pg_restore_seconds=restore_raw,
        restore_seconds=restore_ours,
        restore_ratio=restore_ours / restore_raw,
        raw_pg_restore_parallel_seconds=restore_raw_parallel,
        restore_from_directory_seconds=restore_ours_parallel,
    )


def backup_parts(target: Any, work: Path, env: dict[str, str]) -> dict[str, float]:
    """What the backup phase is made of, each part alone: pg_dump streamed through the hashing writer, the read-back
    (pg_restore --list), and the second read of the archive that hashing it afterwards took (saved now)."""
    from airflow_rollout.targets.base import file_sha256, write_hashed
    from airflow_rollout.targets.postgres import pg_program

    def dump_hashed() -> str:
        args = [pg_program("pg_dump"), "--format=custom", "--compress=6", "--schema=public"]
        dump = subprocess.Popen(args, env=env, stdout=subprocess.PIPE)  # noqa: S603 - the wheel's pg_dump
        assert dump.stdout is not None  # noqa: S101 - started with stdout=PIPE
        sha = write_hashed(dump.stdout, work / "parts.dump")
        if dump.wait():
            raise SystemExit("pg_dump failed while measuring the backup's parts")
        return sha

    streamed, _ = timed(dump_hashed)
    readback, _ = timed(lambda: target.check_readable(work / "parts.dump"))
    reread, _ = timed(lambda: file_sha256(work / "parts.dump"))
    archive = (work / "parts.dump").read_bytes()
    hashing, _ = timed(lambda: hashlib.sha256(archive).hexdigest())  # the sha256 alone, the bytes in memory
    return {
        "backup_dump_hashed_seconds": streamed,
        "backup_hashing_seconds": hashing,
        "backup_readback_seconds": readback,
        "backup_sha256_reread_seconds": reread,
    }


def rollbacks(results: dict[str, Any]) -> None:
    """The same release rolled back through the dump, then through a database copy (proven by each fingerprint form);
    the dump's is `rollback_seconds`."""
    through_dump = rollback("none")
    through_copy = rollback("database_copy")
    through_copy_sampled = rollback("database_copy", "sampled")
    results.update({f"rollback_dump_{key}": value for key, value in through_dump.items()})
    results.update({f"rollback_copy_{key}": value for key, value in through_copy.items()})
    results.update({f"rollback_copy_sampled_{key}": value for key, value in through_copy_sampled.items()})
    results.update(
        rollback_seconds=through_dump["seconds"],
        rollback_app_seconds=through_dump["app_seconds"],
        rollback_data_seconds=through_dump["data_seconds"],
        rollback_check_seconds=through_dump["check_seconds"],
        rollback_outcome=through_dump["outcome"],
    )


def rollback(snapshot: str, fingerprint: str = "rows") -> dict[str, Any]:
    """A release that changed data and switched the app, rolled back through the rollback phase's functions."""
    from airflow_rollout.context import ReleaseContext
    from airflow_rollout.release.steps import STEPS
    from airflow_rollout.targets.local_process import LocalProcessApp
    from airflow_rollout.targets.postgres import PostgresDataTarget

    profile = bench_profile({}, snapshot, fingerprint)
    state = BENCH_DIR / "state"
    # The demo app starts only on a schema revision its build knows, as an Alembic-managed service does
    # (include/demo_app/server.py): the database is at 1.0.0's revision, the 'migration' below moves it to 1.2.0's,
    # so the previous version can start again only once the data is restored.
    with PostgresDataTarget(config=profile.data_targets[0]).connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_revision (revision text PRIMARY KEY)")
        conn.execute("DELETE FROM schema_revision")
        conn.execute("INSERT INTO schema_revision VALUES ('1.0.0')")
    app = LocalProcessApp(config=profile.app_targets[0], system="bench", state_dir=state)
    app.switch_to("1.0.0")
    ctx = ReleaseContext(profile=profile, release_id=f"bench-{snapshot}-{fingerprint}-{int(time.time())}", version="1.2.0", state=state)
    ctx.ledger.ensure_schema()
    ctx.ledger.open_release(release_id=ctx.release_id, system="bench", version="1.2.0", triggered_by="bench")
    ctx.ledger.set_previous_version(ctx.release_id, "1.0.0")
    say(f"rollback (snapshot: {snapshot}, fingerprint: {fingerprint}): backup, migrate (a copy first, if chosen), deploy 1.2.0 ...")
    STEPS["backup"](ctx)
    snapshot_seconds, _ = timed(lambda: STEPS["migrate"](ctx))  # stop_first, the copy, the after-migrate fingerprint
    [target] = [t for t in ctx.data_targets if isinstance(t, PostgresDataTarget)]
    with target.connect() as conn:
        conn.execute("ALTER TABLE pgbench_branches ADD COLUMN note text")
        conn.execute("UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 100 = 0")
        conn.execute("UPDATE schema_revision SET revision = '1.2.0'")
    STEPS["deploy"](ctx)
    say("rollback: stop the new version, restore the data, start the previous version ...")
    stop_seconds, _ = timed(lambda: recorded(ctx, "stop_apps", STEPS["stop_apps"]))
    data_seconds, outcome = timed(lambda: recorded(ctx, "restore_data", STEPS["restore_data"]))
    start_seconds, _ = timed(lambda: recorded(ctx, "start_previous", STEPS["start_previous"]))
    app_seconds = stop_seconds + start_seconds
    check_seconds, _ = timed(lambda: STEPS["verify_restored"](ctx))
    app.stop()
    return {
        "seconds": app_seconds + data_seconds + check_seconds,
        "app_seconds": app_seconds,
        "data_seconds": data_seconds,
        "check_seconds": check_seconds,
        "migrate_step_seconds": snapshot_seconds,
        "outcome": outcome["db"],
    }


def recorded(ctx: Any, step: str, action: Any) -> Any:
    """A rollback step run as its task runs it: its attempt in the ledger, which the next step looks at."""
    from airflow_rollout.ledger import Attempt

    attempt = Attempt(run_id=ctx.release_id, try_number=1)
    ctx.ledger.step_started(ctx.release_id, "rollback", step, attempt)
    result = action(ctx)
    ctx.ledger.step_finished(ctx.release_id, "rollback", step, attempt, status="succeeded", detail=result)
    return result


PARSE = """
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
times = {}
for path in sys.argv[1:]:
    began = time.perf_counter()
    bag = DagBag(dag_folder=path)
    times[path] = time.perf_counter() - began
    assert not bag.import_errors, bag.import_errors
print(json.dumps(times))
"""

EMPTY_DAG = """
import pendulum
from airflow.sdk import DAG
from airflow.providers.standard.operators.empty import EmptyOperator

with DAG(dag_id="empty", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    EmptyOperator(task_id="nothing")
"""


def parse_times(results: dict[str, Any]) -> None:
    say("parse: every DAG file, and an empty one, in a fresh interpreter (after a warm-up parse) ...")
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.py"
        empty.write_text(EMPTY_DAG)
        files = [str(empty), *map(str, sorted((ROOT / "dags").glob("*.py")))]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        # The first file parsed pays for importing Airflow itself: parse the empty file first, then measure all.
        output = subprocess.run([sys.executable, "-c", PARSE, str(empty), *files], env=env, check=True, capture_output=True, text=True)  # noqa: S603
    times = json.loads(output.stdout.strip().splitlines()[-1])
    per_file = {Path(path).name: seconds for path, seconds in times.items()}
    results["parse_seconds"] = per_file
    results["parse_empty_seconds"] = per_file.pop("empty.py")
    results["parse_max_seconds"] = max(per_file.values())


def release_overhead(results: dict[str, Any], *, with_dashboard: bool = True) -> None:
    """A good release of the demo under airflow standalone, against the same phases called in order; then, on the same
    Airflow, the dashboard (unless `with_dashboard` is False)."""
    import httpx

    from airflow_rollout.config import load_profile
    from airflow_rollout.context import ReleaseContext
    from airflow_rollout.ledger import Ledger
    from airflow_rollout.release.decide import make_decision
    from airflow_rollout.release.steps import STEPS
    from devtools import demo, demo_system

    say("release overhead: starting airflow standalone through the demo set-up ...")
    profile, api, _ = demo.start_services()
    # The release's seconds are Airflow's own run start and end; a busy machine's slow answer to the polling is not the
    # measurement, and must not end it (the client's 30 s did, on a machine at load 18).
    api.client.timeout = httpx.Timeout(120)
    try:
        run_id = api.trigger("release", {"system": "demo", "version": "1.1.0"})
        api.wait("the release", lambda: api.run_state("release", run_id) in demo.TERMINAL)
        run = api.client.get(f"/api/v2/dags/release/dagRuns/{run_id}").json()
        airflow_seconds = (datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])).total_seconds()
        ledger = Ledger(conn_id=profile.ledger_conn_id)
        status = ledger.release(run_id).status
        if status != "promoted":
            raise SystemExit(f"the benchmark release ended {status}, not promoted: the overhead figure would be meaningless")
        say("release overhead: where each task's seconds went (task instances, their logs, the ledger's step rows) ...")
        results.update(task_timings(api, ledger, run_id, run))
        say("release overhead: a task's start before its step, part by part, in fresh interpreters ...")
        results.update(task_start_parts(profile.name))

        say("release overhead: the same phases called in order, no Airflow ...")
        demo_system.reset(load_profile("demo"), demo.ROLLOUT_STATE)
        ctx = ReleaseContext(profile=profile, release_id=f"plain-{int(time.time())}", version="1.1.0", state=demo.ROLLOUT_STATE)

        def plain_release() -> None:
            ctx.ledger.ensure_schema()
            ctx.ledger.open_release(release_id=ctx.release_id, system="demo", version="1.1.0", triggered_by="bench")
            for step in ("preflight", "backup", "migrate", "deploy", "check_endpoints", "probe_latency", "fingerprint_after_verify"):
                STEPS[step](ctx)
            make_decision(ctx)
            STEPS["promote"](ctx)

        plain_seconds, _ = timed(plain_release)
        if with_dashboard:
            dashboard(api, profile, results)
    finally:
        demo.stop(quiet=True)
    results.update(
        release_airflow_seconds=airflow_seconds,
        release_plain_seconds=plain_seconds,
        release_overhead_ratio=airflow_seconds / plain_seconds,
    )


# --- the Releases dashboard ------------------------------------------------------------------------------------

# 1,000 releases of the demo, an hour apart, as the release DAG leaves them: one in ten rolled back, one in 25 stopped
# before any change, the rest promoted; each with 34 step attempts, a backup and its fingerprint, three measurements
# and six Slack messages; and a year of weekly restore drills.
DASHBOARD_LEDGER_SQL = """
INSERT INTO rollout_release (release_id, system, version, previous_version, triggered_by, status, decision, decision_reasons,
                             decision_numbers, decided_by, outcome_reason, created_at, finished_at)
SELECT 'bench-dashboard-' || n, %(system)s, '2.' || (n / 100) || '.' || (n %% 100), '2.' || ((n - 1) / 100) || '.' || ((n - 1) %% 100),
       'bench', s.status, s.decision, s.reasons, jsonb_build_object('error_rate', (n %% 13) / 100.0, 'p95_ms', 40 + n %% 30),
       'airflow_rollout.decision', s.decision, now() - (%(count)s + 1 - n) * interval '1 hour',
       now() - (%(count)s + 1 - n) * interval '1 hour' + interval '4 minutes'
FROM generate_series(1, %(count)s) AS n,
     LATERAL (SELECT CASE WHEN n %% 10 = 0 THEN 'rolled_back' WHEN n %% 25 = 0 THEN 'aborted' ELSE 'promoted' END AS status,
                     CASE WHEN n %% 10 = 0 THEN 'rollback' ELSE 'proceed' END AS decision,
                     CASE WHEN n %% 10 = 0 THEN '["error rate 12%% > 10%%"]'::jsonb ELSE '[]'::jsonb END AS reasons) AS s;
INSERT INTO rollout_step_attempt (release_id, phase, step, run_id, try_number, status, started_at, finished_at, detail)
SELECT r.release_id, 'phase' || (step %% 7), 'step' || step, r.release_id, 1, 'succeeded',
       r.created_at + step * interval '5 seconds', r.created_at + step * interval '5 seconds' + interval '2 seconds', '{"ok": true}'
FROM rollout_release r, generate_series(1, 34) AS step WHERE r.release_id LIKE 'bench-dashboard-%%';
INSERT INTO rollout_backup (release_id, target, location, format, sha256, size_bytes, toc_entries, taken_at)
SELECT release_id, 'app_db', '/bench/' || release_id || '.dump', 'custom', md5(release_id) || md5(version), 5000000, 24,
       created_at + interval '10 seconds'
FROM rollout_release WHERE release_id LIKE 'bench-dashboard-%%';
INSERT INTO rollout_fingerprint (release_id, target, stage, fingerprint, taken_at)
SELECT release_id, 'app_db', 'before', '{"public.items": {"rows": 10000, "content": "1", "columns": "id integer"}}', created_at
FROM rollout_release WHERE release_id LIKE 'bench-dashboard-%%';
INSERT INTO rollout_measurement (release_id, check_name, kind, critical, passed, detail, metrics, measured_at)
SELECT release_id, c.name, c.kind, true, true, 'bench', jsonb_build_object('p50_ms', 20, 'p95_ms', 60, 'error_rate', 0.0), created_at
FROM rollout_release, (VALUES ('health', 'http'), ('items_smoke', 'http'), ('items_latency', 'latency')) AS c(name, kind)
WHERE release_id LIKE 'bench-dashboard-%%';
INSERT INTO rollout_notification (notification_id, release_id, event, delivered, sent_at, idempotency_key)
SELECT gen_random_uuid(), release_id, 'event' || k, true, created_at, release_id || '|event' || k || '|-|bench'
FROM rollout_release, generate_series(1, 6) AS k WHERE release_id LIKE 'bench-dashboard-%%';
INSERT INTO rollout_drill (system, target, location, restore_seconds, rpo_seconds, fingerprint_equal, drilled_at, run_id)
SELECT %(system)s, 'app_db', '/bench/drill-' || w, 40 + w, 3600 * (2 + w %% 5), true, now() - w * interval '1 week', 'bench-drill-' || w
FROM generate_series(0, 51) AS w;
"""


def dashboard(api: Any, profile: Any, results: dict[str, Any]) -> None:
    """The Releases dashboard's pages, served by the standalone's API server with 1,000 releases in the ledger."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    from airflow_rollout.ledger import Ledger
    from airflow_rollout.targets.postgres import autocommit_connection

    say(f"dashboard: {DASHBOARD_RELEASES} releases into the ledger, then the Systems page through the API server ...")
    Ledger(conn_id=profile.ledger_conn_id).ensure_schema()
    conn = autocommit_connection(PostgresHook(postgres_conn_id=profile.ledger_conn_id))
    try:
        for statement in DASHBOARD_LEDGER_SQL.split(";\n"):  # one statement per execute: they carry parameters
            if statement.strip():
                conn.execute(statement, {"system": profile.name, "count": DASHBOARD_RELEASES})  # type: ignore[call-overload]
        released = conn.execute("SELECT count(*) FROM rollout_release WHERE system = %s", (profile.name,)).fetchone()[0]  # type: ignore[index]
    finally:
        conn.close()

    def load(path: str, expect: str) -> float:
        seconds, response = timed(lambda: api.client.get(path))
        if response.status_code != 200 or expect not in response.text:
            raise SystemExit(f"the dashboard's {path} answered {response.status_code} without {expect!r}: {response.text[:500]}")
        return seconds

    systems = "/rollout/"
    first = load(systems, f"{released} releases")
    loads = sorted(load(systems, f"{released} releases") for _ in range(DASHBOARD_LOADS))
    release_page = f"/rollout/systems/{profile.name}/releases/bench-dashboard-{DASHBOARD_RELEASES // 2}"
    trends_page = f"/rollout/systems/{profile.name}/trends"
    load(release_page, "Timeline")
    results.update(
        dashboard_releases=released,
        dashboard_first_seconds=first,
        dashboard_seconds=loads[len(loads) // 2],
        dashboard_max_seconds=loads[-1],
        dashboard_release_seconds=sorted(load(release_page, "Timeline") for _ in range(DASHBOARD_LOADS))[DASHBOARD_LOADS // 2],
        dashboard_trends_seconds=sorted(load(trends_page, "<svg") for _ in range(DASHBOARD_LOADS))[DASHBOARD_LOADS // 2],
    )


def dashboard_only() -> None:
    """`python bench/run.py dashboard`: the dashboard's figures alone, merged into bench/results.json."""
    from devtools import demo

    results_file = ROOT / "bench" / "results.json"
    results: dict[str, Any] = json.loads(results_file.read_text()) if results_file.exists() else {}
    profile, api, _ = demo.start_services()
    try:
        dashboard(api, profile, results)
    finally:
        demo.stop(quiet=True)
    results_file.write_text(json.dumps(results, indent=2, default=str) + "\n")
    for key in ("dashboard_seconds", *DASHBOARD_KEYS):
        print(f"{key:28} {results[key]:10.3f}" if isinstance(results[key], float) else f"{key:28} {results[key]:>10}")
    print(f"\nwritten to {results_file}")


DASHBOARD_KEYS = (
    "dashboard_releases", "dashboard_first_seconds", "dashboard_max_seconds", "dashboard_release_seconds", "dashboard_trends_seconds",
)  # fmt: skip


# --- where a task's seconds go ---------------------------------------------------------------------------

# The task runner opens a "Pre Execute" log group as the task process starts and closes it just before it calls
# the operator's execute() (airflow/sdk/execution_time/task_runner.py): before the close, Airflow's start-up of
# the task; after it, our code. (The log reader puts a group of its own, untimed, in front of the task's lines.)
PRE_EXECUTE = ("::group::Pre Execute", "::endgroup::")
# Inside that group the task runner logs how long parsing the DAG file took (the release DAG: its imports, its wiring).
PARSED = "Worker startup parse complete"
TASK_PARTS = ("ready_to_queue", "queue_to_start", "start_to_step")


def when(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def gap(first: datetime | None, then: datetime | None) -> float | None:
    return (then - first).total_seconds() if first and then else None


def api_json(api: Any, path: str, params: dict[str, Any] | None = None) -> Any:
    response = api.client.get(path, params=params, headers={"Accept": "application/json"})
    response.raise_for_status()
    return response.json()


def task_instances(api: Any, run_id: str) -> list[dict[str, Any]]:
    """Every task instance of the run (GET /api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances, offset paging)."""
    found: list[dict[str, Any]] = []
    while True:
        page = api_json(api, f"/api/v2/dags/release/dagRuns/{run_id}/taskInstances", {"limit": 100, "offset": len(found)})
        found += page["task_instances"]
        if not page["task_instances"] or len(found) >= page["total_entries"]:
            return found


def task_log_marks(api: Any, run_id: str, ti: dict[str, Any]) -> tuple[datetime | None, float | None]:
    """From the task's structured log: when the task runner handed over to execute(), and how long it took to parse the
    DAG file (its "Worker startup parse complete" event's dag_file_parse_ms); None where the log does not say."""
    log = api_json(
        api,
        f"/api/v2/dags/release/dagRuns/{run_id}/taskInstances/{ti['task_id']}/logs/{ti['try_number']}",
        {"map_index": ti["map_index"], "full_content": True},
    )
    opened = False
    parse_seconds = None
    for event in log.get("content", []):
        if not isinstance(event, dict):
            continue
        if event.get("event") == PARSED and isinstance(event.get("dag_file_parse_ms"), int):
            parse_seconds = event["dag_file_parse_ms"] / 1000
        if event.get("event") == PRE_EXECUTE[0]:
            opened = True
        elif opened and event.get("event") == PRE_EXECUTE[1]:
            return when(event.get("timestamp")), parse_seconds
    return None, parse_seconds


def is_checklist_task(task_id: str) -> bool:
    """A checklist task of the release, in its phase's group (`backup.check_backup_items`, `sign_off.list_sign_off_roles`)."""
    name = task_id.rsplit(".", 1)[-1]
    return name == "list_sign_off_roles" or (name.startswith(("list_", "check_")) and name.endswith("_items"))


def match_steps(ran: list[dict[str, Any]], rows: list[StepAttemptRow]) -> dict[int, StepAttemptRow]:
    """Each task instance that ran (by index in `ran`) -> the ledger row of the step it recorded (same try).

    A step task records the step named as its task id (`backup.backup_data` -> backup/backup_data). The
    checklist tasks (`list_<phase>_items`, `check_<phase>_items` mapped per item, `list_sign_off_roles`) record
    steps named otherwise: they get the step row that began inside their own start..end, intervals taken by
    earliest end, each row once. Where such tasks ran side by side two of them may swap rows; the means
    do not change (the same starts and the same rows are summed). Tasks that record no step (decide, the
    branches, complete_checklist, report_outcome) stay unmatched.
    """
    matched: dict[int, StepAttemptRow] = {}
    used: set[int] = set()
    for index, ti in enumerate(ran):
        name = ti["task_id"].rsplit(".", 1)[-1]
        same = [i for i, row in enumerate(rows) if row.step == name and row.try_number == ti["try_number"] and i not in used]
        if len(same) == 1:
            matched[index] = rows[same[0]]
            used.add(same[0])
    checklist = [i for i, ti in enumerate(ran) if i not in matched and is_checklist_task(ti["task_id"])]
    for index in sorted(checklist, key=lambda i: ran[i]["end_date"]):
        ti = ran[index]
        start, end = when(ti["start_date"]), when(ti["end_date"])
        inside = [
            i
            for i, row in enumerate(rows)
            if i not in used and row.try_number == ti["try_number"] and start and end and start <= row.started_at <= end
        ]
        if inside:
            first = min(inside, key=lambda i: rows[i].started_at)
            matched[index] = rows[first]
            used.add(first)
    return matched


# What a task of ours does between execute() and its step's ledger row, part by part, in a fresh interpreter that has
# parsed the release DAG file first (as the task runner has by then), against the running demo's ledger. A step task
# imports the phases (`release.steps`); a checklist task does not.
TASK_START = """
import json, sys, time
from airflow.dag_processing.dagbag import DagBag
parts = {}
def lap(name, action):
    began = time.perf_counter()
    result = action()
    parts[name] = time.perf_counter() - began
    return result
bag = lap("parse", lambda: DagBag(dag_folder=sys.argv[1]))
assert not bag.import_errors, bag.import_errors
lap("import_context", lambda: [__import__(m) for m in (
    "airflow_rollout.context", "airflow_rollout.notify", "airflow_rollout.ledger", "airflow_rollout.release.errors",
    "airflow_rollout.release.preflight", "airflow_rollout.versions")])
lap("import_steps", lambda: __import__("airflow_rollout.release.steps"))
from airflow_rollout.context import ReleaseContext
from airflow_rollout.ledger import Attempt
from airflow_rollout.release.preflight import check_connections
release_id = "bench-task-start-" + sys.argv[2]
ctx = lap("profile", lambda: ReleaseContext.load(system=sys.argv[3], version="1.1.0", release_id=release_id))
lap("connections", lambda: check_connections(ctx.profile))
lap("ledger_connect", lambda: ctx.ledger.database.connect().__enter__())
lap("ledger_schema", ctx.ledger.ensure_schema)
lap("ledger_release_row", lambda: ctx.ledger.open_release(release_id=release_id, system=sys.argv[3], version="1.1.0", triggered_by=None))
lap("ledger_step_row", lambda: ctx.ledger.step_started(release_id, "bench", "task_start", Attempt(run_id=release_id, try_number=1)))
print(json.dumps(parts))
"""
TASK_START_RUNS = 3
TASK_START_NOTES = {
    "task_start_parse_seconds": "the release DAG file parsed, Airflow imported (Airflow's part, for scale)",
    "task_start_import_context_seconds": "importing the release context's modules (psycopg with the ledger)",
    "task_start_import_steps_seconds": "importing the phases (step tasks only; checklist tasks skip it)",
    "task_start_profile_seconds": "the profile read and validated",
    "task_start_connections_seconds": "every connection the profile names looked up",
    "task_start_ledger_connect_seconds": "the ledger's connection (the Postgres hook imported, connected)",
    "task_start_ledger_schema_seconds": "the ledger schema's version checked",
    "task_start_ledger_release_row_seconds": "the release's row (insert or read)",
    "task_start_ledger_step_row_seconds": "the step attempt's row",
}


def task_start_parts(system: str) -> dict[str, float]:
    """The medians over TASK_START_RUNS fresh interpreters of each part of a task's start (TASK_START), as task_start_<part>_seconds."""
    env = {**os.environ, "PYTHONPATH": ""}  # as a task process: the installed package only
    runs = []
    for attempt in range(TASK_START_RUNS):
        output = subprocess.run(  # noqa: S603 - this interpreter, an argument list
            [sys.executable, "-c", TASK_START, str(ROOT / "dags" / "release.py"), f"{int(time.time())}-{attempt}", system],
            env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        runs.append(json.loads(output.stdout.strip().splitlines()[-1]))
    return {f"task_start_{part}_seconds": sorted(run[part] for run in runs)[TASK_START_RUNS // 2] for part in runs[0]}


def task_timings(api: Any, ledger: Any, run_id: str, run: dict[str, Any]) -> dict[str, Any]:
    """Where a task's seconds go in the release just run: Airflow's task-instance timings against our ledger's step rows.

    For each task instance a worker ran that recorded a step:
      ready_to_queue    its upstream tasks all ended (the run started, for the first task) -> Airflow queued it: the
                        scheduler noticing (a wait for a free slot among tasks running side by side counts here too);
      queue_to_start    queued -> its start_date: the executor's worker picks it up and the supervisor starts the task;
      start_to_step     start_date -> our step's row began (rollout_step_attempt.started_at), split at the task
                        runner's call of execute() (from the task's log) into start_to_execute (Airflow: the task
                        runner's start-up, plugins, the DAG file parsed) and execute_to_step (ours: the release
                        context built before the step row: profile, connections checked, ledger schema, release row);
      step_to_end       our step's row finished -> the task's end_date (XCom pushed, state reported): reported beside
                        the overhead, not in it.
    task_overhead_seconds = ready_to_queue + queue_to_start + start_to_step, means over the same tasks.
    """
    instances = task_instances(api, run_id)
    upstream: dict[str, set[str]] = {}
    for task in api_json(api, "/api/v2/dags/release/tasks")["tasks"]:
        for downstream in task.get("downstream_task_ids") or []:
            upstream.setdefault(downstream, set()).add(task["task_id"])
    ended: dict[str, list[datetime]] = {}
    for ti in instances:
        if end := when(ti["end_date"]):
            ended.setdefault(ti["task_id"], []).append(end)
    run_start = when(run["start_date"])

    def ready(task_id: str) -> datetime | None:
        """When the last of its upstream tasks was done; the run's start for the first task."""
        dones = [done for parent in upstream.get(task_id, ()) if (done := done_at(parent))]
        return max(dones) if dones else run_start

    def done_at(task_id: str) -> datetime | None:
        # A task skipped without running (a mapped task over nothing: sign_off without required roles) has no
        # end_date: it was done once its own upstream was.
        return max(ended[task_id]) if task_id in ended else ready(task_id)

    # Queued and started: run by a worker (an EmptyOperator or a skipped task never is).
    ran = sorted((ti for ti in instances if ti["queued_when"] and ti["start_date"] and ti["end_date"]), key=lambda ti: ti["start_date"])
    rows = [row for row in ledger.step_attempts(run_id) if row.run_id == run_id]
    matched = match_steps(ran, rows)
    per_task: list[dict[str, Any]] = []
    for index, ti in enumerate(ran):
        label = ti["task_id"] + (f"[{ti['map_index']}]" if ti["map_index"] >= 0 else "")
        row = matched.get(index)
        start = when(ti["start_date"])
        execute, parse = task_log_marks(api, run_id, ti) if row else (None, None)
        per_task.append(
            {
                "task": label,
                "step": f"{row.phase}/{row.step}" if row else None,
                "ready_to_queue": gap(ready(ti["task_id"]), when(ti["queued_when"])),
                "scheduled_to_queue": gap(when(ti["scheduled_when"]), when(ti["queued_when"])),
                "queue_to_start": gap(when(ti["queued_when"]), start),
                "start_to_step": gap(start, row.started_at) if row else None,
                "start_to_execute": gap(start, execute),
                "dag_file_parse": parse,
                "execute_to_step": gap(execute, row.started_at) if row else None,
                "step_seconds": gap(row.started_at, row.finished_at) if row else None,
                "step_to_end": gap(row.finished_at, when(ti["end_date"])) if row else None,
            }
        )
    measured = [t for t in per_task if t["step"] and all(t[part] is not None for part in TASK_PARTS)]
    if not measured:
        raise SystemExit("no task instance of the release could be matched to a step row of the ledger: see release_task_timings")
    split = [t for t in measured if t["start_to_execute"] is not None and t["execute_to_step"] is not None]
    means = {f"{part}_seconds": fmean(t[part] for t in measured) for part in (*TASK_PARTS, "step_to_end")}
    for part in ("start_to_execute", "execute_to_step"):
        means[f"{part}_seconds"] = fmean(t[part] for t in split) if split else float("nan")
    parsed = [t["dag_file_parse"] for t in measured if t["dag_file_parse"] is not None]
    means["dag_file_parse_seconds"] = fmean(parsed) if parsed else float("nan")
    return {
        "task_overhead_seconds": sum(means[f"{part}_seconds"] for part in TASK_PARTS),
        **means,
        "task_overhead_tasks": len(measured),
        "task_split_tasks": len(split),
        "release_tasks_run": len(ran),
        "release_tasks_without_step": [t["task"] for t in per_task if t not in measured],
        "release_task_timings": per_task,
    }


def release_only() -> None:
    """`python bench/run.py release`: the release overhead and where a task's seconds go, merged into bench/results.json."""
    results_file = ROOT / "bench" / "results.json"
    results: dict[str, Any] = json.loads(results_file.read_text()) if results_file.exists() else {}
    release_overhead(results, with_dashboard=False)
    results_file.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print_release(results)
    print(f"\nwritten to {results_file}")


def main() -> None:
    if sys.argv[1:] == ["dashboard"]:
        dashboard_only()
        return
    if sys.argv[1:] == ["release"]:
        release_only()
        return
    data_only = sys.argv[1:] == ["data"]
    os.environ.setdefault("AIRFLOW_HOME", str(BENCH_DIR / "airflow"))
    os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{BENCH_DIR / 'airflow' / 'airflow.db'}")
    os.environ["ROLLOUT_STATE_DIR"] = str(BENCH_DIR / "state")
    (BENCH_DIR / "airflow").mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    results: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                    "python": platform.python_version(), "pgbench_scale": SCALE},
    }  # fmt: skip
    from devtools import demo

    demo.stop(quiet=True)  # its ports and processes would disturb the measurements
    cluster = prepare_database()
    try:
        backup_and_restore(cluster, results)
        rollbacks(results)
    finally:
        from devtools import local_postgres

        local_postgres.stop(BENCH_DIR / "postgres")
    if data_only:
        results_file = ROOT / "bench" / "results.json"
        merged = {**(json.loads(results_file.read_text()) if results_file.exists() else {}), **results}
        results_file.write_text(json.dumps(merged, indent=2, default=str) + "\n")
        print_data(merged)
        return
    parse_times(results)
    release_overhead(results)
    results["bench_wall_seconds"] = time.perf_counter() - began
    (ROOT / "bench" / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    print_table(results)


# The 1 GB database's figures beside the goals: what `bench/run.py data` measures and prints.
DATA_GOALS = ("rollback_seconds", "rollback_copy_seconds", "rollback_dump_seconds", "backup_ratio", "restore_ratio")
# fingerprint: sampled beside the default rows: the same goals, reported, not the headline figures.
DATA_KEYS = (
    "database_bytes", "raw_pg_dump_seconds", "backup_seconds", "backup_dump_hashed_seconds",
    "backup_hashing_seconds", "backup_readback_seconds", "backup_sha256_reread_seconds",
    "fingerprint_seconds", "fingerprint_sampled_seconds", "backup_sampled_seconds", "backup_sampled_ratio",
    "raw_pg_dump_parallel_seconds", "backup_parallel_seconds",
    "raw_pg_restore_seconds", "restore_seconds", "raw_pg_restore_parallel_seconds", "restore_from_directory_seconds",
    "same_cluster_copy_seconds", "same_cluster_copy_wal_log_seconds", "rollback_dump_app_seconds", "rollback_dump_data_seconds",
    "rollback_dump_check_seconds", "rollback_copy_app_seconds", "rollback_copy_data_seconds", "rollback_copy_check_seconds",
    "rollback_dump_migrate_step_seconds", "rollback_copy_migrate_step_seconds", "rollback_copy_outcome",
    "rollback_copy_sampled_seconds", "rollback_copy_sampled_app_seconds", "rollback_copy_sampled_data_seconds",
    "rollback_copy_sampled_check_seconds", "rollback_copy_sampled_outcome",
)  # fmt: skip


def print_values(results: dict[str, Any], goals: tuple[str, ...], keys: tuple[str, ...]) -> None:
    print()
    print(f"{'measure':34} {'value':>10}  goal")
    for key in goals:
        value, (operator, limit) = results[key], GOALS[key]
        verdict = "met" if (value <= limit if operator == "<=" else value < limit) else "NOT met"
        print(f"{key:34} {value:10.3f}  {operator} {limit:g} ({verdict})")
    for key in keys:
        value = results[key]
        print(f"{key:34} {value:10.3f}" if isinstance(value, float) else f"{key:34} {value:>10}")


def print_data(results: dict[str, Any]) -> None:
    print_values(results, DATA_GOALS, DATA_KEYS)
    print_backup_parts(results)
    print(f"\nwritten to {ROOT / 'bench' / 'results.json'}")


def print_backup_parts(results: dict[str, Any]) -> None:
    """What backup_ratio is made of: pg_dump and the fingerprint run side by side on one snapshot, so the phase costs
    about the longer of the two, plus the read-back."""
    ratio, backup, raw_dump = results["backup_ratio"], results["backup_seconds"], results["raw_pg_dump_seconds"]
    print(f"\nbackup_ratio {ratio:.2f}x = backup {backup:.2f} s / raw pg_dump {raw_dump:.2f} s")
    for key, note in (
        ("raw_pg_dump_seconds", "pg_dump alone, to a file"),
        ("backup_dump_hashed_seconds", "pg_dump through the hashing writer (what the backup runs)"),
        ("backup_hashing_seconds", "of which the sha256 alone (the archive's bytes in memory)"),
        ("fingerprint_seconds", "fingerprint: rows, alone (runs beside pg_dump on the same snapshot)"),
        ("fingerprint_sampled_seconds", "fingerprint: sampled, alone"),
        ("backup_readback_seconds", "pg_restore --list, after the dump"),
        ("backup_sampled_seconds", f"the backup with fingerprint: sampled ({results['backup_sampled_ratio']:.2f}x)"),
    ):  # fmt: skip
        print(f"  {key:30} {results[key]:8.3f}  {note}")


def print_table(results: dict[str, Any]) -> None:
    print_values(
        results,
        tuple(GOALS),
        (*DATA_KEYS, "parse_empty_seconds", "release_airflow_seconds", "release_plain_seconds", *DASHBOARD_KEYS, "bench_wall_seconds"),
    )
    print_backup_parts(results)
    print_release(results)
    print(f"\nwritten to {ROOT / 'bench' / 'results.json'}")


def print_release(results: dict[str, Any]) -> None:
    """The release overhead and where a task's seconds go (`release_overhead`)."""
    print(
        f"\nrelease_overhead_ratio {results['release_overhead_ratio']:.2f} "
        f"({results['release_airflow_seconds']:.2f} s under standalone / {results['release_plain_seconds']:.2f} s in one process)"
    )
    print(
        f"\nper task of that release under standalone: means over {results['task_overhead_tasks']} of its "
        f"{results['release_tasks_run']} task runs (those that recorded a step)"
    )
    for key, note in (
        ("task_overhead_seconds", "= ready_to_queue + queue_to_start + start_to_step"),
        ("  ready_to_queue_seconds", "upstream ended -> queued (scheduler; a wait for a free slot too)"),
        ("  queue_to_start_seconds", "queued -> task start_date (executor, supervisor)"),
        ("  start_to_step_seconds", "start_date -> our step's ledger row began, of which:"),
        ("    start_to_execute_seconds", f"Airflow's task runner to execute() ({results['task_split_tasks']} task logs), of which:"),
        ("      dag_file_parse_seconds", "the release DAG file parsed (its imports, its wiring; the task runner's own figure)"),
        ("    execute_to_step_seconds", "ours: release context before the step row"),
        ("step_to_end_seconds", "not in the overhead: step finished -> task end_date"),
    ):  # fmt: skip
        print(f"{key:32} {results[key.strip()]:10.3f}  {note}")
    print(f"\nours, part by part, in a fresh interpreter after the DAG file's parse (medians of {TASK_START_RUNS}; a step task's start):")
    for key, note in TASK_START_NOTES.items():
        print(f"{key:40} {results[key]:10.3f}  {note}")


if __name__ == "__main__":
    main()
