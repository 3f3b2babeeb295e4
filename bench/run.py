"""`make bench`: what the orchestration costs and how fast it gets a system back to safety.

Measured in one run, side by side with the raw tools, on a pgbench database of about 1 GB
(`BENCH_SCALE`, default 70) in the embedded PostgreSQL:

  rollback_seconds          previous app version serving and the data restored (app + data), through
                            the rollback phase's own functions, after a release that changed data;
  backup_ratio              the backup phase (dump + read back + sha256 + fingerprint) / raw pg_dump;
  restore_ratio             the restore step (sha256 check + one-transaction restore) / raw pg_restore;
  parse_max_seconds         the slowest DAG file's parse time, and an empty DAG file's;
  release_overhead_ratio    a good release under `airflow standalone` / the same phase functions
                            called in order in one process, on the demo system.

It prints a table and writes bench/results.json. It stops a running `make demo` (it needs its ports).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = ROOT / ".state" / "bench"
SCALE = int(os.environ.get("BENCH_SCALE", "70"))
GOALS = {
    "rollback_seconds": ("<", 60.0),
    "backup_ratio": ("<", 1.1),
    "restore_ratio": ("<", 1.1),
    "parse_max_seconds": ("<", 0.2),
    "release_overhead_ratio": ("<", 2.0),
}


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


def bench_profile(backup: dict[str, Any]) -> Any:
    from airflow_rollout.config import parse_profile

    return parse_profile(
        {
            "name": "bench",
            "ledger_conn_id": "bench_ledger",
            "data_targets": [{"name": "db", "kind": "postgres", "conn_id": "bench_db", "backup": backup}],
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
    results["fingerprint_seconds"], _ = timed(target.fingerprint)

    say("backup: raw pg_dump (custom, compress 6) ...")
    raw_dump = raw([pg_program("pg_dump"), "--format=custom", "--compress=6", "--schema=public", f"--file={work / 'raw.dump'}"], env)
    say("backup: the backup phase (custom, compress 6) ...")
    ours_dump, record = timed(lambda: target.backup(work / "ours.dump"))
    results.update(raw_pg_dump_seconds=raw_dump, backup_seconds=ours_dump, backup_ratio=ours_dump / raw_dump)

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
    # The alternative the design could adopt as a first line of rollback: a same-cluster copy of the
    # database taken before the release (the dump stays the durable copy). Measured, not used yet.
    copy_seconds, _ = timed(lambda: cluster.psql("postgres", "CREATE DATABASE bench_copy TEMPLATE bench STRATEGY FILE_COPY"))
    cluster.psql("postgres", "DROP DATABASE bench_copy")
    results["same_cluster_copy_seconds"] = copy_seconds
    results.update(
        raw_pg_restore_seconds=restore_raw,
        restore_seconds=restore_ours,
        restore_ratio=restore_ours / restore_raw,
        raw_pg_restore_parallel_seconds=restore_raw_parallel,
        restore_from_directory_seconds=restore_ours_parallel,
    )


def rollback(results: dict[str, Any]) -> None:
    """A release that changed data and switched the app, rolled back through the rollback phase's functions."""
    from airflow_rollout import phases
    from airflow_rollout.targets.local_process import LocalProcessApp

    profile = bench_profile({})
    state = BENCH_DIR / "state"
    app = LocalProcessApp(config=profile.app_targets[0], system="bench", state_dir=state)
    app.switch_to("1.0.0")
    ctx = phases.ReleaseContext(profile=profile, release_id=f"bench-{int(time.time())}", version="1.2.0", state=state)
    ctx.ledger.ensure_schema()
    ctx.ledger.open_release(release_id=ctx.release_id, system="bench", version="1.2.0", triggered_by="bench")
    ctx.ledger.set_previous_version(ctx.release_id, "1.0.0")
    say("rollback: backup, a data-changing 'migration', deploy 1.2.0 ...")
    phases.backup(ctx)
    target = ctx.postgres_targets[0]
    with target.connect() as conn:
        conn.execute("ALTER TABLE pgbench_branches ADD COLUMN note text")
        conn.execute("UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid % 100 = 0")
    phases.deploy(ctx)
    say("rollback: stop the new version, restore the data, start the previous version ...")
    stop_seconds, _ = timed(lambda: recorded(ctx, "stop_apps", phases.stop_apps))
    data_seconds, outcome = timed(lambda: recorded(ctx, "restore_data", phases.restore_data))
    start_seconds, _ = timed(lambda: recorded(ctx, "start_previous", phases.start_previous))
    app_seconds = stop_seconds + start_seconds
    check_seconds, _ = timed(lambda: phases.verify_restored(ctx))
    app.stop()
    results.update(
        rollback_app_seconds=app_seconds,
        rollback_data_seconds=data_seconds,
        rollback_check_seconds=check_seconds,
        rollback_seconds=app_seconds + data_seconds + check_seconds,
        rollback_outcome=outcome["db"],
    )


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


def release_overhead(results: dict[str, Any]) -> None:
    """A good release of the demo under airflow standalone, against the same phases called in order."""
    from airflow_rollout import phases
    from airflow_rollout.config import HttpCheck, LatencyCheck, load_profile
    from airflow_rollout.ledger import Ledger
    from devtools import demo, demo_system

    say("release overhead: starting airflow standalone through the demo set-up ...")
    profile, api, _ = demo.start_services()
    try:
        run_id = api.trigger("release", {"system": "demo", "version": "1.1.0"})
        api.wait("the release", lambda: api.run_state("release", run_id) in demo.TERMINAL)
        run = api.client.get(f"/api/v2/dags/release/dagRuns/{run_id}").json()
        from datetime import datetime

        airflow_seconds = (datetime.fromisoformat(run["end_date"]) - datetime.fromisoformat(run["start_date"])).total_seconds()
        status = Ledger(conn_id=profile.ledger_conn_id).release(run_id).status
        if status != "promoted":
            raise SystemExit(f"the benchmark release ended {status}, not promoted: the overhead figure would be meaningless")

        say("release overhead: the same phases called in order, no Airflow ...")
        demo_system.reset(load_profile("demo"), demo.ROLLOUT_STATE)
        ctx = phases.ReleaseContext(profile=profile, release_id=f"plain-{int(time.time())}", version="1.1.0", state=demo.ROLLOUT_STATE)

        def plain_release() -> None:
            ctx.ledger.ensure_schema()
            ctx.ledger.open_release(release_id=ctx.release_id, system="demo", version="1.1.0", triggered_by="bench")
            phases.preflight(ctx)
            phases.backup(ctx)
            phases.migrate(ctx)
            phases.deploy(ctx)
            phases.verify(ctx, (HttpCheck,))
            phases.verify(ctx, (LatencyCheck,))
            phases.fingerprint_after_verify(ctx)
            phases.make_decision(ctx)
            phases.promote(ctx)

        plain_seconds, _ = timed(plain_release)
    finally:
        demo.stop(quiet=True)
    results.update(
        release_airflow_seconds=airflow_seconds,
        release_plain_seconds=plain_seconds,
        release_overhead_ratio=airflow_seconds / plain_seconds,
    )


def main() -> None:
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
        rollback(results)
    finally:
        from devtools import local_postgres

        local_postgres.stop(BENCH_DIR / "postgres")
    parse_times(results)
    release_overhead(results)
    results["bench_wall_seconds"] = time.perf_counter() - began
    (ROOT / "bench" / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    print_table(results)


def print_table(results: dict[str, Any]) -> None:
    print()
    print(f"{'measure':28} {'value':>10}  goal")
    for key, (_, limit) in GOALS.items():
        value = results[key]
        verdict = "met" if value < limit else "NOT met"
        print(f"{key:28} {value:10.3f}  < {limit:g} ({verdict})")
    for key in (
        "database_bytes", "raw_pg_dump_seconds", "backup_seconds", "raw_pg_dump_parallel_seconds", "backup_parallel_seconds",
        "raw_pg_restore_seconds", "restore_seconds", "raw_pg_restore_parallel_seconds", "restore_from_directory_seconds",
        "same_cluster_copy_seconds", "fingerprint_seconds", "rollback_app_seconds", "rollback_data_seconds",
        "rollback_check_seconds", "parse_empty_seconds", "release_airflow_seconds", "release_plain_seconds", "bench_wall_seconds",
    ):  # fmt: skip
        value = results[key]
        print(f"{key:28} {value:10.3f}" if isinstance(value, float) else f"{key:28} {value:>10}")
    print(f"\nwritten to {ROOT / 'bench' / 'results.json'}")


if __name__ == "__main__":
    main()
