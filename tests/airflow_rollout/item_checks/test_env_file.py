"""`env_file` items on real files: a .env held against its .env.example, values never shown."""

from __future__ import annotations

from types import SimpleNamespace
from typing import TYPE_CHECKING

import pytest
from pydantic import ValidationError

from airflow_rollout.checklist_run import evaluate
from airflow_rollout.item_checks.env_file import EnvFileItemCheck

if TYPE_CHECKING:
    from pathlib import Path

    from airflow_rollout.evidence import Evidence

EXAMPLE = "DATABASE_URL=postgresql://app:change-me@db/app\nSECRET_KEY=change-me-secret\n# optional\nLOG_LEVEL=INFO\n"
SECRET = "s3cr3t-value-of-forty-characters-exactly"


def env_check(tmp_path: Path, env: str, **fields: object) -> Evidence:
    (tmp_path / ".env.example").write_text(EXAMPLE)
    (tmp_path / ".env").write_text(env)
    check = EnvFileItemCheck.model_validate({"kind": "env_file", "path": str(tmp_path / ".env"), **fields})
    return evaluate(SimpleNamespace(), check)  # type: ignore[arg-type]


GOOD = f"DATABASE_URL=postgresql://app:pw@db/app\nSECRET_KEY={SECRET}\nLOG_LEVEL=INFO\n"


def test_a_env_with_every_key_changed_and_long_enough_passes(tmp_path: Path) -> None:
    evidence = env_check(tmp_path, GOOD, complete=True, changed=["SECRET_KEY", "DATABASE_URL"], min_length={"SECRET_KEY": 32})
    assert evidence.passed, evidence.detail
    assert evidence.detail.endswith(
        "against .env.example: all 3 keys of the example set; SECRET_KEY, DATABASE_URL differ from the example; "
        "SECRET_KEY 40 characters (at least 32)"
    )
    assert SECRET not in evidence.detail and "pw@" not in evidence.detail
    assert evidence.numbers["SECRET_KEY_length"] == 40


@pytest.mark.parametrize(
    ("env", "fields", "problem"),
    [
        ("DATABASE_URL=x\nLOG_LEVEL=INFO\n", {"complete": True}, "not set: SECRET_KEY"),
        ("DATABASE_URL=x\nSECRET_KEY=\nLOG_LEVEL=INFO\n", {"complete": True}, "not set: SECRET_KEY"),
        (GOOD.replace(SECRET, "change-me-secret"), {"changed": ["SECRET_KEY"]}, "still the example's value: SECRET_KEY"),
        (GOOD.replace(SECRET, "short-one"), {"min_length": {"SECRET_KEY": 32}}, "SECRET_KEY has 9 characters, fewer than 32"),
        ("LOG_LEVEL=INFO\n", {"changed": ["SECRET_KEY"]}, "absent: SECRET_KEY"),
    ],
    ids=["key-missing", "key-empty", "default-kept", "secret-short", "changed-key-absent"],
)
def test_a_env_that_misses_the_example_fails_naming_the_key_never_the_value(
    tmp_path: Path, env: str, fields: dict[str, object], problem: str
) -> None:
    evidence = env_check(tmp_path, env, **fields)
    assert not evidence.passed
    assert evidence.detail.endswith(problem)
    assert "change-me-secret" not in evidence.detail and "short-one" not in evidence.detail


def test_a_missing_example_fails(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(GOOD)
    check = EnvFileItemCheck(kind="env_file", path=str(tmp_path / ".env"), example="missing.example", complete=True)
    evidence = evaluate(SimpleNamespace(), check)  # type: ignore[arg-type]
    assert not evidence.passed
    assert evidence.detail == f"{tmp_path / 'missing.example'} not found"


def test_min_length_alone_needs_no_example(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(GOOD)
    check = EnvFileItemCheck(kind="env_file", path=str(tmp_path / ".env"), example=None, min_length={"SECRET_KEY": 32})
    evidence = evaluate(SimpleNamespace(), check)  # type: ignore[arg-type]
    assert evidence.passed, evidence.detail
    assert evidence.detail == f"{tmp_path / '.env'}: SECRET_KEY 40 characters (at least 32)"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "needs something to compare"),
        ({"example": None, "complete": True}, "complete and changed compare with the example"),
        ({"min_length": {"SECRET KEY": 3}}, "String should match pattern"),
    ],
)
def test_a_check_that_asks_nothing_or_names_a_bad_key_is_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        EnvFileItemCheck.model_validate({"kind": "env_file", **fields})


# --- seed 004's items as shipped, on its server's .env and .env.example --------------------------------------

MLOPS_ENV_ITEMS = {
    "`.env` file created from `.env.example`": "not set: F1_SCORE_THRESHOLD",
    "Database credentials updated": "still the example's value: POSTGRES_PASSWORD, DATABASE_URL",
    "Airflow secret key changed": "still the example's value: AIRFLOW__WEBSERVER__SECRET_KEY",
    "Changed default PostgreSQL password": "still the example's value: POSTGRES_PASSWORD",
    "Changed default Airflow admin password": "still the example's value: _AIRFLOW_WWW_USER_PASSWORD",
}


def mlops_server(tmp_path: Path, env: dict[str, str]) -> object:
    """Seed 004's system with its server_files target on tmp_path, holding the shipped example and this .env."""
    from seed_platforms import MLOPS_ENV_EXAMPLE, context

    (tmp_path / ".env.example").write_text(MLOPS_ENV_EXAMPLE)
    (tmp_path / ".env").write_text("".join(f"{key}={value}\n" for key, value in env.items()))
    ctx = context("mlops-system")
    targets = [t.model_copy(update={"root": str(tmp_path)}) if t.name == "server_files" else t for t in ctx.profile.data_targets]
    return type(ctx)(profile=ctx.profile.model_copy(update={"data_targets": targets}))


def test_seed_004_env_items_pass_on_the_env_made_from_the_example_with_its_defaults_changed(tmp_path: Path) -> None:
    from seed_platforms import mlops_env, shipped_checks

    ctx = mlops_server(tmp_path, mlops_env("postgresql://mlops:pw@db.internal:5432/mlops"))
    checks = shipped_checks("mlops-system", "env_file")
    assert set(checks) == set(MLOPS_ENV_ITEMS)
    for text, check in [
        *checks.items(),
        ("Model path configured", shipped_checks("mlops-system", "file_present")["Model path configured"]),
    ]:
        evidence = evaluate(ctx, check)  # type: ignore[arg-type]
        assert evidence.passed, f"{text}: {evidence.detail}"


@pytest.mark.parametrize("text", sorted(MLOPS_ENV_ITEMS))
def test_seed_004_env_items_fail_on_the_example_copied_with_a_key_left_out(tmp_path: Path, text: str) -> None:
    from seed_platforms import MLOPS_ENV_EXAMPLE, shipped_checks

    from airflow_rollout.item_checks.env_file import env_file_values

    (tmp_path / "example").write_text(MLOPS_ENV_EXAMPLE)
    copied = {key: value for key, value in env_file_values(tmp_path / "example").items() if key != "F1_SCORE_THRESHOLD"}
    evidence = evaluate(mlops_server(tmp_path, copied), shipped_checks("mlops-system", "env_file")[text])  # type: ignore[arg-type]
    assert not evidence.passed
    assert MLOPS_ENV_ITEMS[text] in evidence.detail, evidence.detail
    assert "mlops_password" not in evidence.detail


def test_seed_004_model_path_fails_when_the_env_does_not_set_it(tmp_path: Path) -> None:
    from seed_platforms import mlops_env, shipped_checks

    env = {key: value for key, value in mlops_env("postgresql://x").items() if key != "MODEL_PATH"}
    evidence = evaluate(mlops_server(tmp_path, env), shipped_checks("mlops-system", "file_present")["Model path configured"])  # type: ignore[arg-type]
    assert not evidence.passed and "MODEL_PATH" in evidence.detail, evidence.detail


def test_seed_004_model_saved_in_models_passes_with_the_file_and_fails_without(tmp_path: Path) -> None:
    from seed_platforms import mlops_env, shipped_checks

    check = shipped_checks("mlops-system", "file_present")["Model saved to `models/` directory"]
    ctx = mlops_server(tmp_path, mlops_env("postgresql://x"))
    missing = evaluate(ctx, check)  # type: ignore[arg-type]
    assert not missing.passed and missing.detail == f"{tmp_path}/models/default/model.joblib does not exist", missing.detail
    (tmp_path / "models" / "default").mkdir(parents=True)
    (tmp_path / "models" / "default" / "model.joblib").write_bytes(b"trained classifier")
    saved = evaluate(ctx, check)  # type: ignore[arg-type]
    assert saved.passed and "model.joblib present, mode 0" in saved.detail and saved.detail.endswith(", 18 bytes"), saved.detail


def routing_server(tmp_path: Path, versions: dict[str, bool]) -> object:
    """Seed 003's system with its model_files target on tmp_path: models/default (copied in by Step 8, no metrics) and
    each version directory, holding metrics.json or not."""
    from seed_platforms import context

    (tmp_path / "models" / "default").mkdir(parents=True)
    (tmp_path / "models" / "default" / "manifest.json").write_text("{}")
    for version, with_metrics in versions.items():
        (tmp_path / "models" / version).mkdir()
        (tmp_path / "models" / version / "training_request.json").write_text("{}")
        if with_metrics:
            (tmp_path / "models" / version / "metrics.json").write_text('{"accuracy": 0.91}')
    ctx = context("routing-ml-platform")
    targets = [t.model_copy(update={"root": str(tmp_path)}) if t.name == "model_files" else t for t in ctx.profile.data_targets]
    return type(ctx)(profile=ctx.profile.model_copy(update={"data_targets": targets}))


def metrics_json(ctx: object) -> Evidence:
    from seed_platforms import shipped_checks

    return evaluate(ctx, shipped_checks("routing-ml-platform", "file_present")["metrics.json generated for new models"])  # type: ignore[arg-type]


def test_seed_003_metrics_json_passes_when_every_trained_model_has_one(tmp_path: Path) -> None:
    evidence = metrics_json(routing_server(tmp_path, {"v1.1-retrain": True, "v1.2-retrain": True}))
    assert evidence.passed, evidence.detail
    assert evidence.detail == f"{tmp_path}/models: metrics.json in each of 2 directories (v1.1-retrain, v1.2-retrain)"


def test_seed_003_metrics_json_fails_for_a_trained_model_without_one_or_with_no_model_trained(tmp_path: Path) -> None:
    evidence = metrics_json(routing_server(tmp_path / "one", {"v1.1-retrain": True, "v1.2-retrain": False}))
    assert not evidence.passed
    assert "1 of 2 directories lack it: v1.2-retrain: " in evidence.detail and "metrics.json does not exist" in evidence.detail
    evidence = metrics_json(routing_server(tmp_path / "none", {}))
    assert not evidence.passed and evidence.detail == f"{tmp_path}/none/models: no directory to hold metrics.json but default"


def test_excluding_without_directories_is_refused() -> None:
    from airflow_rollout.checklists import FilePresentItemCheck

    with pytest.raises(ValidationError, match="excluding names directories of in_each_directory_of"):
        FilePresentItemCheck(kind="file_present", path="metrics.json", excluding=["default"])
