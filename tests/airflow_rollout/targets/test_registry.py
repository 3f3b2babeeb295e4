"""A target kind from outside the package: registered once, it is accepted by profiles, built by the release
context, and driven through backup, deploy and rollback by the same phase functions as the built-in kinds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airflow_rollout.config import ProfileError, parse_profile
from airflow_rollout.context import ReleaseContext
from airflow_rollout.ledger import Attempt, FingerprintStage
from airflow_rollout.release.steps import STEPS
from airflow_rollout.targets import registry
from airflow_rollout.targets.base import AppTarget, DataTarget

TOY_KIND_DIR = Path(__file__).resolve().parents[2] / "fixtures" / "toy_kind"


@pytest.fixture
def toy_kind(monkeypatch):
    monkeypatch.syspath_prepend(str(TOY_KIND_DIR))
    import toy_kind

    toy_kind.register()
    yield toy_kind
    toy_kind.unregister()


def toy_profile(tmp_path: Path, **app_extra) -> dict:
    data = tmp_path / "data.json"
    if not data.exists():
        data.write_text(json.dumps({"rows": 3}))
    return {
        "name": "toy",
        "ledger_conn_id": "rollout_ledger",
        "data_targets": [{"kind": "toy_file", "name": "store", "path": str(data)}],
        "app_targets": [{"kind": "toy_app", "name": "svc", "state_file": str(tmp_path / "svc"), "token_conn_id": "toy_token", **app_extra}],
        "checks": [{"kind": "http", "name": "health", "app": "svc", "path": "/health"}],
    }


def test_a_registered_kind_is_accepted_by_profiles_and_names_its_connections(toy_kind, tmp_path):
    profile = parse_profile(toy_profile(tmp_path), "toy.yaml")
    assert isinstance(profile.data_targets[0], toy_kind.ToyFileConfig)
    assert isinstance(profile.app_targets[0], toy_kind.ToyAppConfig)
    assert profile.connection_ids() == ["rollout_ledger", "toy_token"]


def test_a_registered_kinds_errors_read_like_the_built_in_ones(toy_kind, tmp_path):
    with pytest.raises(ProfileError) as caught:
        parse_profile(toy_profile(tmp_path, colour="red"), "toy.yaml")
    assert "app_targets[0].colour: unknown field" in str(caught.value)


def test_an_unregistered_kind_is_refused_with_the_kinds_there_are(tmp_path):
    with pytest.raises(ProfileError) as caught:
        parse_profile(toy_profile(tmp_path), "toy.yaml")
    message = str(caught.value)
    assert "data_targets[0]: Input tag 'toy_file' found using 'kind' does not match any of the expected tags: 'files'," in message
    assert "app_targets[0]: Input tag 'toy_app' found using 'kind' does not match any of the expected tags: 'compose'," in message


def test_a_kind_must_declare_its_capabilities():
    with pytest.raises(TypeError, match="must declare `capabilities`"):

        class Undeclared(DataTarget):  # every abstract method implemented, capabilities forgotten
            ping = fingerprint = backup_path = backup = verify_integrity = restore = query_value = lambda *a: None


def test_a_tag_is_registered_once(toy_kind):
    with pytest.raises(ValueError, match="'toy_app' is registered already"):
        registry.register_app_kind(toy_kind.ToyAppConfig, lambda config, _env: toy_kind.ToyApp(config))


def test_the_release_phases_back_up_deploy_and_roll_back_a_registered_kind(toy_kind, tmp_path, postgres):
    profile = parse_profile(toy_profile(tmp_path), "toy.yaml")
    ctx = ReleaseContext(profile=profile, release_id=f"toy-{tmp_path.name}", version="2.0.0", state=tmp_path / "state")
    [store], app = ctx.data_targets, ctx.apps["svc"]
    assert isinstance(store, DataTarget) and isinstance(app, AppTarget)
    app.switch_to("1.0.0")
    ctx.ledger.ensure_schema()
    ctx.ledger.open_release(release_id=ctx.release_id, system="toy", version="2.0.0", triggered_by="test")

    STEPS["backup"](ctx)
    STEPS["deploy"](ctx)
    store.path.write_text(json.dumps({"rows": 4}))  # what the new version did to the data
    for step in ("stop_apps", "restore_data", "start_previous"):  # as their tasks run them: each attempt in the ledger
        attempt = Attempt(run_id=ctx.release_id, try_number=1)
        ctx.ledger.step_started(ctx.release_id, "rollback", step, attempt)
        result = STEPS[step](ctx)
        ctx.ledger.step_finished(ctx.release_id, "rollback", step, attempt, status="succeeded", detail=result)

    assert app.recorded_version() == "1.0.0"
    assert json.loads(store.path.read_text()) == {"rows": 3}
    assert ctx.ledger.fingerprint(ctx.release_id, "store", FingerprintStage.AFTER_RESTORE) == store.fingerprint()
