"""The system's lock against a real PostgreSQL: taken in one statement, so runs racing for it cannot both win."""

from __future__ import annotations

import threading

import pytest

from airflow_rollout.ledger import Ledger

pytestmark = pytest.mark.e2e


@pytest.fixture
def ledger(postgres) -> Ledger:
    led = Ledger(conn_id="rollout_ledger")
    led.ensure_schema()
    postgres.psql("rollout_ledger", "DELETE FROM rollout_lock WHERE system LIKE 'race-%'")
    return led


@pytest.mark.parametrize("same_release", [False, True], ids=["releases", "runs-of-one-release"])
def test_of_many_runs_racing_for_the_lock_exactly_one_wins(ledger, same_release):
    system = f"race-{same_release}"
    start = threading.Barrier(8)
    won: list[str] = []

    def claim(n: int) -> None:
        release = "one-release" if same_release else f"release-{n}"
        start.wait()
        if ledger.claim_lock(system, release, f"run-{n}") is None:
            won.append(f"run-{n}")

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(won) == 1
    assert ledger.lock(system).run_id == won[0]


def test_a_release_holding_the_lock_with_no_run_is_taken_over_by_its_next_run_only(ledger):
    assert ledger.claim_lock("race-handover", "r1", "run-a") is None
    ledger.hand_back_lock("race-handover", "r1", "run-a", keep_for_release=True)
    assert ledger.claim_lock("race-handover", "r2", "run-x").release_id == "r1"  # another release: refused
    assert ledger.claim_lock("race-handover", "r1", "run-b") is None  # the same release, a new run: taken over
    assert ledger.claim_lock("race-handover", "r1", "run-c").run_id == "run-b"  # while run-b works: refused
    ledger.hand_back_lock("race-handover", "r1", "run-b", keep_for_release=False)
    assert ledger.lock("race-handover") is None
