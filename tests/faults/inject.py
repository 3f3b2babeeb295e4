"""Ways to inject one fault at one point of a real release.

- `pg_programs`: a directory standing in for the PostgreSQL client programs (ROLLOUT_PG_BIN), every
  program the real one except those given a script: a pg_dump that finds the disk full, a psql that
  hangs before or after doing its work...
- `add_build`: a build of the demo service with a behaviour of its own (slow, crashing, lying).
- `when`: run an action in a thread as soon as the ledger shows a step in a given state.
- `run_detached`: a DAG run in a separate process, with its own Airflow metadata database, that can be
  killed like a worker or left running while another release starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from typing import TYPE_CHECKING, Any

from testenv import RELEASES_DIR, ROOT, SESSION_DIR

from devtools.local_postgres import pg_bin_dir

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def pg_programs(directory: Path, scripts: dict[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for program in pg_bin_dir().iterdir():
        target = directory / program.name
        if program.name in scripts:
            real = program
            target.write_text("#!/usr/bin/env bash\n" + scripts[program.name].replace("$REAL", str(real)) + "\n")
            target.chmod(0o755)
        else:
            target.symlink_to(program)
    return directory


def add_build(version: str, **behaviour: Any) -> Path:
    path = RELEASES_DIR / f"{version}.json"
    path.write_text(json.dumps({"description": f"fault-test build {version}", **behaviour}))
    return path


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120, give_up: Callable[[], bool] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline or (give_up is not None and give_up()):
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(0.1)


def step_state(phase: str, step: str, release_id: str | None = None) -> str | None:
    """Status of `phase.step` in `release_id` or the newest release of demo; None before it starts."""
    from observe import ledger

    release_id = release_id or ledger().newest_release_id("demo")
    return ledger().step_status(release_id, phase, step) if release_id else None


class When:
    """Runs `action` in a thread once `phase.step` of the current release reaches `state`."""

    def __init__(self, phase: str, step: str, state: str, action: Callable[[], None], release_id: str | None = None) -> None:
        self.error: BaseException | None = None
        self.done = threading.Event()

        def run() -> None:
            try:
                wait_for(lambda: step_state(phase, step, release_id) == state, f"{phase}.{step} to be {state}")
                action()
            except BaseException as exc:
                self.error = exc
            finally:
                self.done.set()

        threading.Thread(target=run, daemon=True).start()

    def check(self) -> None:
        self.done.wait(timeout=30)
        if self.error:
            raise self.error
        assert self.done.is_set(), "the injected fault never fired"


DETACHED_RUN = textwrap.dedent(
    """
    import json, sys
    from airflow.utils import db
    db.resetdb()
    from airflow.dag_processing.dagbag import DagBag
    dag_id, conf = sys.argv[1], json.loads(sys.argv[2])
    bag = DagBag(dag_folder=sys.argv[3])
    run = bag.dags[dag_id].test(run_conf=conf)
    print("DETACHED-RUN-STATE", run.state, flush=True)
    """
)


def run_detached(name: str, dag_id: str, conf: dict[str, Any], extra_env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """Start `dag_id` in its own process group with its own metadata database (SQLite allows one writer)."""
    home = SESSION_DIR / f"detached-{name}"
    home.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
        **(extra_env or {}),
    }
    return subprocess.Popen(
        [sys.executable, "-c", DETACHED_RUN, dag_id, json.dumps(conf), str(ROOT / "dags" / f"{dag_id}.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
