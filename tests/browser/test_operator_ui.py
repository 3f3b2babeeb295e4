"""The operator's path through the Airflow UI, in a real Chromium, against a real `airflow standalone`.

One standalone for the module (airflow_standalone.running_standalone: `python -m devtools.up start` on a free port,
private state), over the demo system alone at 1.0.0 with the session's PostgreSQL and Slack receiver. Chromium is
Debian's package (devtools.chromium installs it when missing), driven by Playwright. What the operator does, the
test does with the mouse and keyboard: log in on the login page, trigger `release` from the trigger form (the
system picked in the dropdown, the version typed), watch the run's page until the run ends and read each phase
group's state from the grid, answer *investigate* in Browse → Required Actions, open the Releases dashboard.

The releases, in order: 1.1.0 promoted; 1.3.0 (3 % errors: *investigate*) rolled back by clicking *Roll back*; 1.3.0
again, promoted by clicking *Proceed*. Every page the tests open is saved under build/ui/. A 5xx from the server
(a page or any request it makes) fails the test (browser_page.ServerErrors), and so does an element that does not
show up: every look is Playwright's auto-waiting expect(), never a sleep.

Each test relies on the ones before it (the system's state and the releases carry on), as the operator's day does:
run the module whole (`pytest -m browser`).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

import pytest
import yaml
from airflow_standalone import Standalone, running_standalone, scheduler_saw_exit
from browser_page import ServerErrors, failed, new_page, screenshot
from observe import STATE_DIR, demo_at_start, ledger, served_version
from playwright.sync_api import expect
from testenv import SYSTEMS_DIR

from devtools import demo_system

if TYPE_CHECKING:
    from collections.abc import Iterator

    from playwright.sync_api import Browser, Page

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

# The release DAG's phase groups as the grid shows them, top-level rows (src/airflow_rollout/tasks.py: preflight,
# then the *_group() TaskGroups). Looked up by name: the rows between them may move.
PHASES = ("preflight", "sign_off", "backup", "migrate", "deploy", "verify", "decide", "post_deploy", "rollback")
PROMOTED = dict.fromkeys(PHASES[:-2], "Success")
CONNECTIONS = ("AIRFLOW_CONN_ROLLOUT_LEDGER", "AIRFLOW_CONN_DEMO_DB", "AIRFLOW_CONN_SLACK_DEMO", "AIRFLOW_CONN_SLACK_FILES")
# A release here takes a minute or two; these bound a hang, not the expected run.
RUN_TIMEOUT_MS = 600_000
ASK_TIMEOUT_S = 600
RUN_ENDED = re.compile(r"^\s*(Success|Failed)\s*$")
NAV_MENUS = ("browse", "admin", "docs", "user")  # a plugin view's category puts it in that sidebar menu


@dataclass
class Releases:
    """What the tests released, for the tests after them: version and outcome -> run id."""

    runs: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def airflow(postgres, slack, tmp_path_factory) -> Iterator[Standalone]:
    """The demo system at 1.0.0 and `make up` over its profile alone, on a free port; everything stopped on the way out."""
    from airflow_rollout.tasks import PROCEED_OPTION, ROLLBACK_OPTION

    assert (PROCEED_OPTION, ROLLBACK_OPTION) == ("Proceed", "Roll back")  # the buttons the tests click
    profile = demo_at_start(postgres, slack)
    base = tmp_path_factory.mktemp("browser")
    systems = base / "systems"
    systems.mkdir()
    shutil.copy(SYSTEMS_DIR / "demo.yaml", systems)  # the profile as the session wrote it: its app on a free port
    document = yaml.safe_load((systems / "demo.yaml").read_text())
    # On a shared two-core machine the latency probe's p95 swings by 2-3x between releases: the latency rules would
    # decide 1.3.0 on noise. These tests are about the UI; decision.py's rules have tests of their own.
    document["rollback_criteria"]["latency_min_delta_ms"] = 60_000
    (systems / "demo.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    try:
        connections = {name: os.environ[name] for name in CONNECTIONS}
        with running_standalone(base, systems, connections, postgres, ROLLOUT_STATE_DIR=str(STATE_DIR)) as up:
            yield up
    finally:
        demo_system.stop_apps(profile, STATE_DIR)


@pytest.fixture(scope="module")
def releases() -> Releases:
    return Releases()


@dataclass
class Ui:
    """One browser tab on the standalone's UI, as the operator uses it."""

    page: Page
    airflow: Standalone
    errors: ServerErrors

    # --- logging in ------------------------------------------------------------------------------------------

    def log_in(self, password: str | None = None) -> None:
        self.page.goto("/")
        expect(self.page).to_have_url(re.compile(r"/auth/login"))  # the UI sends a stranger to the login page
        self.page.get_by_label("Username").fill("admin")
        self.page.get_by_label("Password").fill(password or self.airflow.passwords["admin"])
        self.page.get_by_role("button", name="Sign in").click()

    def logged_in(self) -> None:
        self.log_in()
        expect(self.page.get_by_test_id("nav-sidebar")).to_be_visible()
        expect(self.page).not_to_have_url(re.compile(r"/auth/login"))

    # --- the release DAG -------------------------------------------------------------------------------------

    def trigger_release(self, version: str, *, shot: str | None = None) -> str:
        """The trigger form: the system picked in the dropdown, the version typed; the new run's id."""
        page = self.page
        page.goto("/dags/release")
        page.get_by_test_id("trigger-dag-button").click()
        form = page.get_by_role("dialog")
        expect(form).to_contain_text("Trigger Dag - release")
        form.get_by_role("combobox", name="System").click()
        page.get_by_role("option", name="demo", exact=True).click()
        form.locator("input[name=element_version]").fill(version)  # Airflow's form field of the `version` param
        expect(form.locator("input[name=element_system]")).to_have_value("demo")
        if shot:
            screenshot(page, shot)
        with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/api/v2/dags/release/dagRuns")) as posted:
            form.get_by_role("button", name="Trigger").click()
        assert posted.value.status == 200, f"triggering from the form: HTTP {posted.value.status} {posted.value.text()}"
        run_id = str(posted.value.json()["dag_run_id"])
        assert posted.value.json()["conf"] == {"system": "demo", "version": version}
        page.wait_for_url(re.compile(r"/dags/release/runs/"))  # the UI opens the new run
        assert unquote(page.url).rstrip("/").endswith(f"/dags/release/runs/{run_id}"), page.url
        return run_id

    def watch_run(self, run_id: str) -> str:
        """The run's page until the run ends (the UI refreshes itself while it runs); the state its header shows."""
        self.page.goto(f"/dags/release/runs/{run_id}")
        state = self.page.get_by_test_id("header-card").get_by_test_id("state-badge")
        expect(state).to_have_text(RUN_ENDED, timeout=RUN_TIMEOUT_MS)
        return state.inner_text().strip()

    def phase_states(self, run_id: str) -> dict[str, str]:
        """Each phase group's state as the grid shows it: the tooltip of the group's cell in the run's column."""
        states = {}
        for phase in PHASES:
            self.page.get_by_test_id(f"grid-{run_id}-{phase}").hover()
            tooltip = self.page.get_by_role("tooltip").filter(has_text=f"Task ID: {phase}")
            expect(tooltip).to_contain_text("State: ")
            found = re.search(r"State: (\w[\w ]*)", tooltip.inner_text())
            assert found, tooltip.inner_text()
            states[phase] = found.group(1).strip()
            self.page.mouse.move(0, 0)
            expect(tooltip).to_be_hidden()
        return states

    # --- Required Actions ------------------------------------------------------------------------------------

    def answer(self, run_id: str, version: str, option: str, *, shot: str) -> None:
        """Browse → Required Actions, the run's row, its review drawer: click `option`."""
        page = self.page
        page.goto("/")
        page.get_by_role("button", name="Browse").click()
        page.get_by_role("menuitem", name="Required Actions").click()
        expect(page).to_have_url(re.compile(r"/required_actions"))
        row = page.get_by_role("row").filter(has_text=run_id)
        expect(row.get_by_test_id("state-badge")).to_have_text("Choice Required")
        expect(row).to_contain_text(f"Release {version} of demo: proceed or roll back?")
        screenshot(page, f"{shot}-list")
        row.get_by_role("button", name="Open Review Drawer").click()
        drawer = page.get_by_role("dialog")
        expect(drawer).to_contain_text(run_id)
        expect(drawer).to_contain_text("error rate 3% within 1%-10%")  # why the criteria asked
        screenshot(page, f"{shot}-drawer")
        with page.expect_response(lambda r: r.request.method == "PATCH" and "/hitlDetails" in r.url) as answered:
            drawer.get_by_role("button", name=option, exact=True).click()
        assert answered.value.status == 200, f"answering {option!r}: HTTP {answered.value.status} {answered.value.text()}"
        assert answered.value.json()["chosen_options"] == [option]
        expect(row.get_by_test_id("state-badge")).to_have_text("Choice Received")
        screenshot(page, f"{shot}-answered")

    # --- the Releases dashboard ------------------------------------------------------------------------------

    def open_nav_entry(self, name: str, *, showing: str) -> None:
        """Click the navigation's `name` entry, a plugin's view, and wait until it shows `showing`.

        The entry is where the UI puts the view: in the sidebar menu its category names (Browse, Admin, Docs,
        User), else at the sidebar's top level. An external view is shown in an iframe, a React app in the page.
        """
        response = self.airflow.api.client.get("/api/v2/plugins", params={"limit": 100})
        response.raise_for_status()
        views = [
            (kind, view)
            for plugin in response.json()["plugins"]
            for kind in ("external_views", "react_apps")
            for view in plugin.get(kind, [])
            if view.get("name") == name and view.get("destination", "nav") == "nav"
        ]
        assert views, f"no plugin puts {name!r} in the navigation: {response.json()}"
        kind, view = views[0]
        category = str(view.get("category") or "").lower()
        page = self.page
        page.goto("/")
        sidebar = page.get_by_test_id("nav-sidebar")
        if category in NAV_MENUS:
            sidebar.get_by_role("button", name=category.title(), exact=True).click()
            page.get_by_role("menuitem", name=name, exact=True).click()
        else:
            entry = sidebar.get_by_role("link", name=name, exact=True).or_(sidebar.get_by_role("button", name=name, exact=True))
            entry.or_(sidebar.get_by_text(name, exact=True)).first.click()
        expect(page).to_have_url(re.compile(r"/plugin/|/rollout"))
        if kind == "external_views":
            expect(page.frame_locator("iframe").first.locator("body")).to_contain_text(showing)
        else:
            expect(page.get_by_test_id("main-content")).to_contain_text(showing)


@pytest.fixture
def ui(request: pytest.FixtureRequest, browser: Browser, airflow: Standalone) -> Iterator[Ui]:
    """A fresh browser tab (no cookie: logged out); a 5xx the server answered it with fails the test. A failed
    test's tab is saved as build/ui/FAILED-<test>.png."""
    page, errors = new_page(browser, airflow.base_url)
    yield Ui(page=page, airflow=airflow, errors=errors)
    if failed(request.node):
        screenshot(page, f"FAILED-{request.node.name}")
    page.context.close()
    assert errors.seen == [], f"the server failed requests of the UI: {errors.seen}; see {airflow.api.log}"


def wait_for_question(airflow: Standalone, run_id: str) -> None:
    """Until `ask_operator` waits for a human, and the scheduler saw its worker park it (an earlier answer is lost to
    a race in Airflow 3.3.2, see airflow_standalone.scheduler_saw_exit): what the operator's pager would wait for."""
    api = airflow.api
    path = f"/api/v2/dags/release/dagRuns/{run_id}/taskInstances/decide.ask_operator"

    def asked() -> bool:
        ti = api.client.get(path).json()
        if api.run_state("release", run_id) in ("success", "failed"):
            pytest.fail(f"the release ended without asking: {ti.get('state')}; decision {ledger().release(run_id).decision_reasons}")
        return ti.get("state") == "awaiting_input" and ti["id"] in scheduler_saw_exit(airflow, "awaiting_input")

    started = time.monotonic()
    api.wait(f"release {run_id} to ask_operator", asked, timeout=ASK_TIMEOUT_S)
    print(f"{run_id} asked the operator after {time.monotonic() - started:.0f} s")


# --- the tests -------------------------------------------------------------------------------------------------


def test_log_in_through_the_login_page(ui):
    ui.log_in(password="not-the-password")
    expect(ui.page.get_by_text("Invalid credentials")).to_be_visible()
    expect(ui.page).to_have_url(re.compile(r"/auth/login"))
    screenshot(ui.page, "01-login-refused")

    ui.log_in()
    expect(ui.page.get_by_test_id("nav-sidebar")).to_be_visible()
    ui.page.get_by_test_id("nav-dags-link").click()
    expect(ui.page.get_by_role("link", name="release", exact=True).first).to_be_visible()
    screenshot(ui.page, "02-dags")


def test_release_triggered_from_the_form_is_promoted(ui, releases):
    ui.logged_in()
    started = time.monotonic()

    run_id = ui.trigger_release("1.1.0", shot="03-trigger-form")
    state = ui.watch_run(run_id)
    phases = ui.phase_states(run_id)
    screenshot(ui.page, "04-release-1.1.0-promoted")

    print(f"release 1.1.0 from the form to its end: {time.monotonic() - started:.0f} s")
    record = ledger().release(run_id)
    assert (state, record.status) == ("Success", "promoted"), f"{record}; grid: {phases}"
    assert phases == {**PROMOTED, "post_deploy": "Success", "rollback": "Skipped"}
    assert served_version() == "1.1.0"
    releases.runs["1.1.0 promoted"] = run_id


@pytest.mark.parametrize(
    ("option", "shot", "ends", "serving"),
    [
        # Rolled back: the run is red (the version did not ship), and the release the Releases test reads.
        ("Roll back", "05-required-action-roll-back", ("Failed", "rolled_back"), "1.1.0"),
        ("Proceed", "07-required-action-proceed", ("Success", "promoted"), "1.3.0"),
    ],
    ids=["rolled back", "promoted"],
)
def test_investigate_answered_in_required_actions(ui, airflow, releases, option, shot, ends, serving):
    ui.logged_in()
    run_id = ui.trigger_release("1.3.0")
    wait_for_question(airflow, run_id)

    ui.answer(run_id, "1.3.0", option, shot=shot)
    state = ui.watch_run(run_id)
    phases = ui.phase_states(run_id)
    outcome = ends[1].replace("_", "-")
    screenshot(ui.page, f"{int(shot[:2]) + 1:02d}-release-1.3.0-{outcome}")
    ui.page.get_by_role("button", name="Show Graph (Press g)").click()
    expect(ui.page.locator(".react-flow__node").first).to_be_visible()
    screenshot(ui.page, f"{int(shot[:2]) + 1:02d}-release-1.3.0-{outcome}-graph")

    record = ledger().release(run_id)
    assert (state, record.status) == ends, f"{record}; grid: {phases}"
    taken, not_taken = ("rollback", "post_deploy") if record.status == "rolled_back" else ("post_deploy", "rollback")
    assert phases == {**PROMOTED, taken: "Success", not_taken: "Skipped"}
    assert record.decision_reasons and record.decision_reasons[-1] == f"investigated: admin chose {option!r}"
    assert served_version() == serving
    releases.runs[f"1.3.0 {ends[1].replace('_', ' ')}"] = run_id


def test_releases_dashboard_shows_systems_and_a_release(ui, releases):
    from airflow_rollout.ledger import FingerprintStage

    rolled_back = releases.runs.get("1.3.0 rolled back")
    if rolled_back is None:
        pytest.skip("needs the release the Required Actions test rolled back: run the module whole")
    ui.logged_in()

    ui.open_nav_entry("Releases", showing="demo")  # the Systems page, inside the UI
    screenshot(ui.page, "09-releases-nav")

    systems = ui.page.goto("/rollout/")
    assert systems is not None and systems.status == 200, f"GET /rollout/: HTTP {systems and systems.status}"
    page = ui.page.locator("body")
    expect(page).to_contain_text("demo")
    expect(page).to_contain_text(served_version())  # the version running now
    screenshot(ui.page, "10-releases-systems")

    path = f"/rollout/systems/demo/releases/{quote(rolled_back, safe='')}"
    release = ui.page.goto(path)
    assert release is not None and release.status == 200, f"GET {path}: HTTP {release and release.status}"
    record = ledger().release(rolled_back)
    assert record.decision_reasons
    for reason in record.decision_reasons:
        expect(page).to_contain_text(reason)
    expect(ui.page.locator("#criteria")).to_contain_text(re.compile(r"Error rate\s*3(\.\d+)?\s*%.*roll back > 10\s*%", re.S))
    before = ledger().fingerprint(rolled_back, "app_db", FingerprintStage.BEFORE)
    assert before is not None and ledger().fingerprint(rolled_back, "app_db", FingerprintStage.AFTER_RESTORE) == before
    # The restored data's fingerprint against the one before the release, as the page states it for the data target.
    expect(ui.page.locator("#restored-app_db")).to_have_text("equal to before the release")
    screenshot(ui.page, "11-release-1.3.0-rolled-back")
    screenshot(ui.page, "11-release-1.3.0-rolled-back-top", full_page=False)
