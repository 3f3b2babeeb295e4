"""The root docker-compose.yml: valid against the Compose specification, a Celery Airflow 3 with this package, no secret in it."""

# compose-spec.json is schema/compose-spec.json of compose-spec/compose-spec, commit b2835e8acc1e42e7aecbc27a9bc4a1fc66ef21ba.

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from devtools import distributed
from devtools.docker_standin import Interpolator, parse_dotenv

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SCHEMA = json.loads((Path(__file__).parent / "compose-spec.json").read_text())
AIRFLOW_SERVICES = [
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker-a",
    "airflow-worker-b",
    "airflow-init",
]
SECRET_KEY = re.compile(r"PASSWORD|SECRET|FERNET|TOKEN|_KEY$")
REQUIRED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?\?")
URL_PASSWORD = re.compile(r"://[^:/@\s]*:([^@\s]*)@")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE_FILE.read_text())


@pytest.fixture(scope="module")
def example_env() -> dict[str, str]:
    return parse_dotenv(ENV_EXAMPLE.read_text(), {}, source=".env.example")


def validate(document: dict) -> None:
    validator_class = jsonschema.validators.validator_for(SCHEMA)
    assert validator_class is jsonschema.Draft201909Validator  # what the vendored schema's $schema names
    validator_class.check_schema(SCHEMA)
    errors = sorted(validator_class(SCHEMA).iter_errors(document), key=lambda error: list(error.absolute_path))
    assert not errors, "\n".join(f"{'.'.join(map(str, error.absolute_path))}: {error.message}" for error in errors)


@pytest.mark.parametrize("path", [COMPOSE_FILE, ROOT / "tests" / "devtools" / "docker_fixtures" / "compose.yaml"])
def test_valid_against_the_compose_specification(path):
    validate(yaml.safe_load(path.read_text()))


def test_valid_once_interpolated_with_the_example_env(compose, example_env):
    validate(Interpolator(example_env).tree(compose))


def test_a_celery_airflow_with_its_services(compose):
    services = compose["services"]
    assert {"postgres", "redis", *AIRFLOW_SERVICES} <= set(services)
    for name, service in services.items():
        if name != "airflow-init":
            assert service.get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert services["airflow-apiserver"]["command"] == "api-server"
    # The workers as tests/distributed proved them (devtools/distributed.py): a hostname each, the shared default queue
    # and one of their own, the state volume mounted where ROLLOUT_STATE_DIR points.
    for worker in distributed.WORKERS:
        service = services[f"airflow-{worker}"]
        assert (service["hostname"], service["command"]) == (worker, f"celery worker --queues {distributed.DEFAULT_QUEUE},{worker}")
        assert service["restart"] == "always"
        state_dir = service["environment"]["ROLLOUT_STATE_DIR"]
        assert f"rollout-state:{state_dir}" in service["volumes"]
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false", "example DAGs must stay out"
        assert 1 <= int(env["AIRFLOW__CORE__PARALLELISM"]) <= 16
        assert services[name]["image"].endswith(":-airflow-rollout:3.3.2-python3.11}")
    build = compose["x-airflow-common"]["build"]["dockerfile_inline"]
    assert (
        build.startswith("FROM apache/airflow:3.3.2-python3.11\n")
        and "-r /src/requirements.txt" in build
        and "pip install --no-cache-dir --no-deps /src" in build
    )
    assert compose["x-airflow-common"]["user"] == "${AIRFLOW_UID:-50000}:0"


def test_dags_plugins_and_include_are_mounted(compose):
    for name in AIRFLOW_SERVICES:
        mounts = dict(reversed(volume.rsplit(":", 1)) for volume in compose["services"][name]["volumes"])
        for directory in ("dags", "plugins", "include", "logs"):
            assert mounts[f"/opt/airflow/{directory}"] == f"${{AIRFLOW_PROJ_DIR:-.}}/{directory}"


def _strings(node, path=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _strings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _strings(value, f"{path}[{index}]")
    elif node is not None:
        yield path, str(node)


def test_no_secret_is_written_in_the_file(compose):
    checked = 0
    for path, value in _strings(compose):
        key = path.rsplit(".", 1)[-1]
        if SECRET_KEY.search(key) and ".environment." in path:
            assert re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}]+\}", value), f"{path} must come from .env as ${{VAR:?...}}: {value!r}"
            checked += 1
        for password in URL_PASSWORD.findall(value):
            assert re.fullmatch(r"\$\{[A-Za-z_][A-Za-z0-9_]*:\?[^}]+\}", password), f"{path} has a literal password in a URL"
            checked += 1
    assert checked >= 10
    assert "airflow:airflow@" not in COMPOSE_FILE.read_text()


def test_the_example_env_defines_every_required_variable(compose, example_env):
    required = {name for _, value in _strings(compose) for name in REQUIRED.findall(value)}
    assert {"POSTGRES_PASSWORD", "REDIS_PASSWORD", "FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY"} <= required
    assert required <= set(example_env), f"missing in .env.example: {sorted(required - set(example_env))}"
    assert "AIRFLOW_UID" in example_env
    lines = ENV_EXAMPLE.read_text().splitlines()
    for index, line in enumerate(lines):
        if re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", line):
            assert lines[index - 1].startswith("# "), f"{line.split('=')[0]} needs a one-line comment above it"
            assert line.split("=", 1)[1], f"{line} needs a placeholder value"
    Interpolator(example_env).tree(compose)  # every required variable resolves
