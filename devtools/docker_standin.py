"""A `docker` stand-in that plays docker compose v2 with local processes, for tests of release tools.

No Docker engine runs here. A container of an image listed in the image map (see `local_images`) is the
local process that image's entry names, started by `LocalProcessApp`; the compose file is read and
interpolated as the Compose specification says, health is played from the service's `healthcheck`, and
the answers (`ps --format json`, exit codes, error messages) are shaped like those of docker compose v2.2x.
Put `devtools/bin` first on PATH and `docker` is this module.

    docker --version | docker version [--format json|TEMPLATE]
    docker compose [-f FILE]... [-p NAME] [--project-directory DIR] [--env-file FILE]... [--profile P]... COMMAND
      up -d [--no-deps] [--force-recreate] [--no-recreate] [--wait] [--wait-timeout S] [SERVICE...]
      ps [-a] [-q] [--services] [--no-trunc] [--status S]... [--format table|json|TEMPLATE] [SERVICE...]
      exec [-T] [-e K[=V]]... [-w DIR] SERVICE COMMAND [ARG...]
      run [--rm] [--no-deps] [-T] [-e K[=V]]... SERVICE COMMAND [ARG...]   (attached, a one-off command)
      stop [-t S] [SERVICE...] | down [-v] [--remove-orphans] [--rmi all|local] | pull [SERVICE...]
      images [-q] [--format table|json] [SERVICE...] | logs [--tail N] [--since T] [-t] [--no-log-prefix] [SERVICE...]
      config [-q] [--services] [--images] [--no-interpolate] [--format yaml|json] | version [--short] [--format pretty|json]
      ls [-a] [-q] [--format table|json]   (the projects with containers here: needs the state, as compose needs the Engine)

Environment:
    ROLLOUT_DOCKER_STANDIN_STATE   directory of what runs (required for the commands that touch containers)
    ROLLOUT_DOCKER_STANDIN_IMAGES  the image map, a JSON file (see `local_images`); an image not in it cannot be pulled
    ROLLOUT_DOCKER_STANDIN_LOG     when set, every invocation appends {"argv", "cwd", "env_subset"} as a JSON line
    STANDIN_IMAGE_TAG              given to commands run in an image (exec, run): the image's tag

What differs from docker, knowingly: a container's `command`/`entrypoint` come from the image map, not the
compose file; volumes and networks are not played; health checks run when asked (each `ps`, `up --wait`)
for the checks their schedule says are due, curl and wget checks as an HTTP GET made here, other checks
with `run_in_image`; the exit code of a process that died on its own is not known here and shows as 1.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import functools
import hashlib
import json
import logging
import os
import re
import secrets
import shlex
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import yaml

from airflow_rollout.targets.compose import split_image
from devtools.local_images import LocalImage, image_process, load_image_map, run_in_image

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

    from airflow_rollout.targets.local_process import LocalProcessApp

STATE_ENV = "ROLLOUT_DOCKER_STANDIN_STATE"
IMAGES_ENV = "ROLLOUT_DOCKER_STANDIN_IMAGES"
LOG_ENV = "ROLLOUT_DOCKER_STANDIN_LOG"

DOCKER_VERSION = "27.3.1"
API_VERSION = "1.47"
COMPOSE_VERSION = "v2.29.7"
DEFAULT_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
TAG_PATTERN = re.compile(r"^[\w][\w.-]{0,127}$")
DOUBLE_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


# The logging driver a container's process is started under (devtools/container_log.py): it stores each line with its time.
LOGGING_DRIVER = (sys.executable, str(Path(__file__).with_name("container_log.py")))

OCI_EXEC_FAILED = "OCI runtime exec failed: exec failed: unable to start container process"


class UsageError(Exception):
    """A command or flag docker does not know (or the stand-in does not play): exit 125."""


class ComposeError(Exception):
    """What docker compose reports as an error: the message on stderr, exit 1 unless told otherwise."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# --- interpolation (Compose specification, "Interpolation") -------------------------------------------------


class Interpolator:
    """`${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?err}`, `${VAR?err}`, `${VAR:+alt}`, `${VAR+alt}`, `$VAR`, `$$`.

    Defaults and alternatives may hold interpolations of their own. An unset variable without default
    becomes "" with docker compose's warning; `collect` gathers every name referenced instead of failing.
    """

    def __init__(self, lookup: Mapping[str, str], *, warn: Callable[[str], None] | None = None) -> None:
        self.lookup = lookup
        self.warn = warn
        self.warned: set[str] = set()
        self.referenced: set[str] = set()

    def __call__(self, text: str, path: str) -> str:
        out: list[str] = []
        i = 0
        while i < len(text):
            char = text[i]
            if char != "$":
                out.append(char)
                i += 1
                continue
            following = text[i + 1 : i + 2]
            if following == "$":
                out.append("$")
                i += 2
            elif following == "{":
                end = self._closing_brace(text, i + 2, path)
                out.append(self._braced(text[i + 2 : end], text, path))
                i = end + 1
            elif match := NAME.match(text, i + 1):
                out.append(self._value(match.group(), text, path))
                i = match.end()
            else:
                raise self._invalid(text, path)
        return "".join(out)

    @staticmethod
    def _invalid(text: str, path: str) -> ComposeError:
        return ComposeError(f'invalid interpolation format for {path}: "{text}"; you may need to escape any $ with another $')

    def _closing_brace(self, text: str, start: int, path: str) -> int:
        depth = 0
        i = start
        while i < len(text):
            if text.startswith("$$", i):
                i += 2
                continue
            if text.startswith("${", i):
                depth += 1
                i += 2
                continue
            if text[i] == "}":
                if depth == 0:
                    return i
                depth -= 1
            i += 1
        raise self._invalid(text, path)

    def _braced(self, body: str, text: str, path: str) -> str:
        match = NAME.match(body)
        if match is None:
            raise self._invalid(text, path)
        name, rest = match.group(), body[match.end() :]
        if not rest:
            return self._value(name, text, path)
        self.referenced.add(name)
        for operator in (":-", ":?", ":+", "-", "?", "+"):
            if rest.startswith(operator):
                argument = rest[len(operator) :]
                break
        else:
            raise self._invalid(text, path)
        value = self.lookup.get(name)
        is_set = value is not None
        usable = is_set and value != "" if operator.startswith(":") else is_set
        if operator.endswith("-"):
            return value if usable and value is not None else self(argument, path)
        if operator.endswith("+"):
            return self(argument, path) if usable else ""
        if usable and value is not None:
            return value
        reason = f": {argument}" if argument else ""
        raise ComposeError(f"error while interpolating {path}: required variable {name} is missing a value{reason}")

    def _value(self, name: str, text: str, path: str) -> str:
        self.referenced.add(name)
        value = self.lookup.get(name)
        if value is None:
            if self.warn is not None and name not in self.warned:
                self.warned.add(name)
                self.warn(f'The "{name}" variable is not set. Defaulting to a blank string.')
            return ""
        return value

    def tree(self, node: Any, path: str = "") -> Any:
        """Interpolate every string value of a loaded YAML document (keys stay as written, as in compose)."""
        if isinstance(node, dict):
            return {key: self.tree(value, f"{path}.{key}" if path else str(key)) for key, value in node.items()}
        if isinstance(node, list):
            return [self.tree(value, f"{path}[{index}]") for index, value in enumerate(node)]
        if isinstance(node, str):
            return self(node, path)
        return node


def referenced_variables(node: Any) -> set[str]:
    """Names a compose document refers to: in interpolations, and `environment` entries taken from the environment."""
    collector = Interpolator({})
    names: set[str] = set()

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, f"{path}.{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{path}[{index}]")
        elif isinstance(value, str):
            with contextlib.suppress(ComposeError):
                collector(value, path)

    walk(node, "")
    services = node.get("services") if isinstance(node, dict) else None
    for service in (services or {}).values():
        environment = service.get("environment") if isinstance(service, dict) else None
        if isinstance(environment, list):
            names.update(str(item) for item in environment if isinstance(item, str) and "=" not in item)
        elif isinstance(environment, dict):
            names.update(str(key) for key, value in environment.items() if value is None)
    return names | collector.referenced


def parse_dotenv(text: str, lookup: Mapping[str, str], *, source: str) -> dict[str, str]:
    """A `.env` / `env_file`: KEY=VALUE lines, `export`, comments, 'literal' and "escaped, $interpolated" values."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, has_value, value = line.partition("=")
        key = key.strip()
        if not NAME.fullmatch(key):
            raise ComposeError(f"failed to read {source}: line {number}: unexpected character in variable name {key!r}")
        if not has_value:
            if key in lookup:
                values[key] = lookup[key]
            continue
        value = value.strip()
        interpolate = Interpolator({**values, **lookup})
        if value.startswith("'") and value.count("'") >= 2:
            values[key] = value[1 : value.index("'", 1)]
        elif value.startswith('"') and (quoted := DOUBLE_QUOTED.match(value)):
            unescaped = re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1)), quoted.group(1))
            values[key] = interpolate(unescaped, f"{source}:{number}")
        else:
            value = re.split(r"\s+#", value, maxsplit=1)[0].strip()
            values[key] = interpolate(value, f"{source}:{number}")
    return values


# --- the compose project ------------------------------------------------------------------------------------


def parse_duration(value: Any, default: float) -> float:
    if value is None or value == "":
        return default
    if isinstance(value, int | float):
        return float(value) / 1e9  # a number in a compose file is nanoseconds
    text = str(value).strip()
    parts = DURATION_PART.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        raise ComposeError(f"invalid duration {text!r}")
    return sum(float(number) * DURATION_UNITS[unit] for number, unit in parts)


@dataclass(frozen=True)
class Port:
    target: int
    published: int | None
    host_ip: str = "0.0.0.0"  # noqa: S104 - the address docker reports for a port published on all interfaces
    protocol: str = "tcp"


@dataclass(frozen=True)
class HealthCheck:
    test: list[str]  # ["CMD", ...] or ["CMD-SHELL", "..."]
    interval: float = 30.0
    timeout: float = 30.0
    retries: int = 3
    start_period: float = 0.0
    start_interval: float | None = None


@dataclass(frozen=True)
class Service:
    name: str
    image: str
    ports: list[Port]
    environment: dict[str, str]
    healthcheck: HealthCheck | None
    depends_on: list[str]
    profiles: list[str]
    config: dict[str, Any]

    def config_hash(self) -> str:
        return hashlib.sha256(json.dumps(self.config, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Project:
    name: str
    directory: Path
    files: list[Path]
    variables: dict[str, str]
    raw: dict[str, Any]
    model: dict[str, Any]
    profiles: list[str] = field(default_factory=list)
    services: dict[str, Service] = field(default_factory=dict)


def _merge(base: Any, override: Any) -> Any:
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = _merge(base[key], value) if key in base else value
        return merged
    return override


def _normalize_project_name(name: str) -> str:
    return re.sub(r"[^a-z0-9_-]", "", name.lower()).lstrip("_-")


def _parse_ports(entries: Any, service: str) -> list[Port]:
    ports: list[Port] = []
    for entry in entries or []:
        if isinstance(entry, dict):
            published = entry.get("published")
            ports.append(
                Port(
                    target=int(str(entry["target"]).split("-")[0]),
                    published=int(str(published).split("-")[0]) if published not in (None, "") else None,
                    host_ip=str(entry.get("host_ip") or "0.0.0.0"),  # noqa: S104 - as docker reports it
                    protocol=str(entry.get("protocol") or "tcp"),
                )
            )
            continue
        spec, _, protocol = str(entry).partition("/")
        parts = spec.rsplit(":", 2)
        try:
            target = int(parts[-1].split("-")[0])
            published = int(parts[-2].split("-")[0]) if len(parts) >= 2 and parts[-2] else None
        except ValueError:
            raise ComposeError(f"services.{service}.ports: invalid port specification {entry!r}") from None
        host_ip = parts[0] if len(parts) == 3 and parts[0] else "0.0.0.0"  # noqa: S104 - as docker reports it
        ports.append(Port(target=target, published=published, host_ip=host_ip, protocol=protocol or "tcp"))
    return ports


def _parse_healthcheck(spec: Any) -> HealthCheck | None:
    if not isinstance(spec, dict) or spec.get("disable") in (True, "true"):
        return None
    test = spec.get("test")
    if test is None:
        return None
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    test = [str(part) for part in test]
    if not test or test[0] == "NONE":
        return None
    if test[0] not in ("CMD", "CMD-SHELL"):
        raise ComposeError(f"healthcheck.test must start with CMD, CMD-SHELL or NONE, not {test[0]!r}")
    start_interval = spec.get("start_interval")
    return HealthCheck(
        test=test,
        interval=parse_duration(spec.get("interval"), 30.0) or 30.0,
        timeout=parse_duration(spec.get("timeout"), 30.0) or 30.0,
        retries=int(spec.get("retries") or 3),
        start_period=parse_duration(spec.get("start_period"), 0.0),
        start_interval=parse_duration(start_interval, 5.0) if start_interval not in (None, "") else None,
    )


def _service_environment(spec: dict[str, Any], project_dir: Path, variables: Mapping[str, str]) -> dict[str, str]:
    env: dict[str, str] = {}
    env_files = spec.get("env_file") or []
    for entry in [env_files] if isinstance(env_files, str) else env_files:
        path_text, required = (entry, True) if isinstance(entry, str) else (entry["path"], entry.get("required", True))
        path = project_dir / str(path_text)
        if not path.is_file():
            if required in (False, "false"):
                continue
            raise ComposeError(f"env file {path} not found: stat {path}: no such file or directory")
        env.update(parse_dotenv(path.read_text(), variables, source=str(path)))
    environment = spec.get("environment") or {}
    if isinstance(environment, list):
        items = [(item.partition("=")[0], item.partition("=")[2] if "=" in item else None) for item in map(str, environment)]
    else:
        items = [(str(key), value) for key, value in environment.items()]
    for key, value in items:
        if value is None:
            if key in variables:
                env[key] = variables[key]
        elif isinstance(value, bool):
            env[key] = "true" if value else "false"
        else:
            env[key] = str(value)
    return env


def _depends_on(spec: Any) -> list[str]:
    if isinstance(spec, dict):
        return [str(name) for name in spec]
    return [str(name) for name in spec or []]


@dataclass(frozen=True)
class ProjectOptions:
    files: list[str] = field(default_factory=list)
    project_name: str | None = None
    project_directory: str | None = None
    env_files: list[str] = field(default_factory=list)
    profiles: list[str] = field(default_factory=list)


def compose_files(options: ProjectOptions, cwd: Path) -> list[Path]:
    if options.files:
        return [(cwd / file).resolve() for file in options.files]
    for name in DEFAULT_FILES:
        if (cwd / name).is_file():
            return [(cwd / name).resolve()]
    raise ComposeError("no configuration file provided: not found")


def load_project(options: ProjectOptions, *, interpolate: bool = True) -> Project:
    cwd = Path.cwd()
    files = compose_files(options, cwd)
    raw: dict[str, Any] = {}
    for file in files:
        if not file.is_file():
            raise ComposeError(f"open {file}: no such file or directory")
        try:
            document = yaml.safe_load(file.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ComposeError(f"yaml: {exc}") from None
        if not isinstance(document, dict):
            raise ComposeError(f"{file}: top-level object must be a mapping")
        raw = _merge(raw, document)
    directory = Path(options.project_directory).resolve() if options.project_directory else files[0].parent
    variables: dict[str, str] = {}
    env_files = [cwd / name for name in options.env_files] if options.env_files else [directory / ".env"]
    for env_file in env_files:
        if env_file.is_file():
            variables.update(parse_dotenv(env_file.read_text(), {**variables, **os.environ}, source=str(env_file)))
        elif options.env_files:
            raise ComposeError(f"couldn't find env file: {env_file}")
    variables.update(os.environ)  # the environment wins over the env file
    model = Interpolator(variables, warn=warn).tree(raw) if interpolate else raw
    name = options.project_name or variables.get("COMPOSE_PROJECT_NAME") or model.get("name") or directory.name
    project = Project(
        name=_normalize_project_name(str(name)),
        directory=directory,
        files=files,
        variables=variables,
        raw=raw,
        model=model,
        profiles=[*options.profiles, *filter(None, variables.get("COMPOSE_PROFILES", "").split(","))],
    )
    if not project.name:
        raise ComposeError(f"project name {name!r} must contain a lowercase letter, a digit, a dash or an underscore")
    for service_name, service_spec in (model.get("services") or {}).items():
        spec = service_spec or {}
        image = spec.get("image")
        if not image:
            image = f"{project.name}-{service_name}"  # docker's name for an image built for the service
        project.services[str(service_name)] = Service(
            name=str(service_name),
            image=str(image),
            ports=_parse_ports(spec.get("ports"), str(service_name)),
            environment=_service_environment(spec, directory, variables),
            healthcheck=_parse_healthcheck(spec.get("healthcheck")),
            depends_on=_depends_on(spec.get("depends_on")),
            profiles=[str(profile) for profile in spec.get("profiles") or []],
            config=spec,
        )
    return project


# --- state ----------------------------------------------------------------------------------------------------


def state_root() -> Path:
    value = os.environ.get(STATE_ENV)
    if not value:
        raise ComposeError(f"the docker stand-in needs {STATE_ENV}: the directory where it keeps what runs (set it, e.g. to a temp dir)")
    return Path(value)


class Store:
    """`<state>/compose/<project>/<service>.json` per container; the process itself is LocalProcessApp's (`<state>/apps/standin/`)."""

    def __init__(self, root: Path, project: str) -> None:
        self.root = root
        self.directory = root / "compose" / project
        self.directory.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        with (self.directory / ".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def load(self, service: str) -> dict[str, Any] | None:
        path = self.directory / f"{service}.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def save(self, record: dict[str, Any]) -> None:
        path = self.directory / f"{record['service']}.json"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=1))
        tmp.replace(path)

    def remove(self, service: str) -> None:
        (self.directory / f"{service}.json").unlink(missing_ok=True)

    def services(self) -> list[str]:
        return sorted(path.stem for path in self.directory.glob("*.json"))


def find_image(images: dict[str, LocalImage], reference: str) -> LocalImage | None:
    repo, _ = split_image(reference)
    for candidate in (repo, repo.removeprefix("docker.io/"), repo.removeprefix("docker.io/library/")):
        if candidate in images:
            return images[candidate]
    for known, image in images.items():
        if known.removeprefix("docker.io/").removeprefix("library/") == repo.removeprefix("docker.io/").removeprefix("library/"):
            return image
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def warn(message: str) -> None:
    print(f"WARN[0000] {message}", file=sys.stderr)


def progress(container: str, what: str) -> None:
    print(f" Container {container}  {what}", file=sys.stderr)


class Compose:
    def __init__(self, project: Project) -> None:
        self.project = project
        self.images = load_image_map(os.environ.get(IMAGES_ENV))

    @functools.cached_property
    def state_dir(self) -> Path:
        return state_root()

    @functools.cached_property
    def store(self) -> Store:
        return Store(self.state_dir, self.project.name)

    def container_name(self, service: str) -> str:
        return f"{self.project.name}-{service}-1"

    def process(self, record: dict[str, Any], image: LocalImage | None = None) -> LocalProcessApp:
        name = str(record["name"])
        played = image or find_image(self.images, record["image"]) or LocalImage(command=["true"])
        return image_process(
            # the container's output goes through the logging driver, which stores each line with its time
            dataclasses.replace(played, command=[*LOGGING_DRIVER, *played.command]),
            name=name if name[:1].isalpha() else f"c-{name}",
            tag=str(record["tag"]),
            port=int(record["port"]),
            state_dir=self.state_dir,
            env=dict(record.get("env") or {}),
        )

    def is_running(self, record: dict[str, Any]) -> bool:
        if record.get("stopped"):
            return False
        current = self.process(record).current()
        return current is not None and current.pid == record["pid"] and current.version == record["tag"]

    def service(self, name: str) -> Service:
        if name not in self.project.services:
            raise ComposeError(f"no such service: {name}")
        return self.project.services[name]

    def selected(self, names: list[str], *, with_deps: bool = False) -> list[Service]:
        if not names:
            active = set(self.project.profiles)
            names = [name for name, service in self.project.services.items() if not service.profiles or active & set(service.profiles)]
        ordered: list[str] = []

        def visit(name: str, trail: tuple[str, ...]) -> None:
            if name in ordered:
                return
            if name in trail:
                raise ComposeError(f"dependency cycle detected: {' -> '.join((*trail, name))}")
            if with_deps:
                for dependency in self.service(name).depends_on:
                    visit(dependency, (*trail, name))
            self.service(name)
            ordered.append(name)

        for name in names:
            visit(name, ())
        return [self.project.services[name] for name in ordered]

    # --- up / stop / down ---

    def up(self, names: list[str], *, no_deps: bool, force: bool, no_recreate: bool) -> list[Service]:
        services = self.selected(names, with_deps=not no_deps)
        for service in services:  # like docker, every image is pulled before any container changes
            self.resolve_image(service)
        with self.store.locked():
            for service in services:
                self.up_service(service, force=force, no_recreate=no_recreate)
        return services

    def resolve_image(self, service: Service) -> LocalImage:
        repo, tag = split_image(service.image)
        if not TAG_PATTERN.match(tag) or not repo or repo != repo.lower():
            raise ComposeError(f"invalid reference format: {service.image}")
        image = find_image(self.images, service.image)
        if image is None:
            hint = f" (docker stand-in: {repo} is not in the image map {os.environ.get(IMAGES_ENV) or f'- {IMAGES_ENV} is not set'})"
            raise ComposeError(
                f"Error response from daemon: pull access denied for {repo}, repository does not exist or may require 'docker login':"
                f" denied: requested access to the resource is denied{hint}"
            )
        return image

    def up_service(self, service: Service, *, force: bool, no_recreate: bool) -> None:
        image = self.resolve_image(service)
        _, tag = split_image(service.image)
        name = self.container_name(service.name)
        record = self.store.load(service.name)
        running = record is not None and self.is_running(record)
        if record is not None and running:
            unchanged = record["image"] == service.image and record["config_hash"] == service.config_hash()
            if no_recreate or (unchanged and not force):
                progress(name, "Running")
                return
        if record is not None:
            progress(name, "Recreate")
            self.process(record).stop()
            progress(name, "Recreated")
        else:
            progress(name, "Creating")
            progress(name, "Created")
        ports = [
            Port(target=port.target, published=port.published or free_port(), host_ip=port.host_ip, protocol=port.protocol)
            for port in service.ports
        ]
        now = time.time()
        record = {
            "id": secrets.token_hex(32),
            "name": name,
            "project": self.project.name,
            "service": service.name,
            "image": service.image,
            "tag": tag,
            "command": [],
            "port": ports[0].published if ports else free_port(),
            "ports": [port.__dict__ for port in ports],
            "env": service.environment,
            "config_hash": service.config_hash(),
            "created": now,
            "started": now,
            "stopped": False,
            "exit_code": None,
            "health": {"status": "starting", "failures": 0, "checked_until": 0.0, "output": ""},
        }
        if record["port"] < 1024:
            raise ComposeError(f"the docker stand-in cannot publish port {record['port']} (below 1024) of {service.name}")
        progress(name, "Starting")
        app = self.process(record, image)
        record["command"] = app.command(tag)[len(LOGGING_DRIVER) :]
        running_app = app.start(tag)
        record["pid"] = running_app.pid
        self.store.save(record)
        progress(name, "Started")

    def stop(self, names: list[str]) -> None:
        targets = [service.name for service in self.selected(names)] if names else self.store.services()
        with self.store.locked():
            for service in targets:
                record = self.store.load(service)
                if record is None:
                    continue
                progress(record["name"], "Stopping")
                if self.is_running(record):
                    self.process(record).stop()
                    record["exit_code"] = 0
                record["stopped"] = True
                record["finished"] = record.get("finished") or time.time()
                self.store.save(record)
                progress(record["name"], "Stopped")

    def down(self) -> None:
        with self.store.locked():
            for service in self.store.services():
                record = self.store.load(service)
                if record is None:
                    continue
                progress(record["name"], "Stopping")
                if self.is_running(record):
                    self.process(record).stop()
                progress(record["name"], "Stopped")
                self.store.remove(service)
                progress(record["name"], "Removed")
        print(f" Network {self.project.name}_default  Removed", file=sys.stderr)

    # --- health and ps ---

    def observe(self, record: dict[str, Any]) -> dict[str, Any]:
        """The container as `ps` sees it now; plays the health checks that are due (record updated in place)."""
        running = self.is_running(record)
        service = self.project.services.get(record["service"])
        check = service.healthcheck if service is not None else None
        health = ""
        if running and check is not None:
            health = self.play_health(record, check)
        if not running and not record.get("finished"):
            record["finished"] = time.time()
        return {"running": running, "health": health}

    def play_health(self, record: dict[str, Any], check: HealthCheck) -> str:
        state = record["health"]
        elapsed = time.time() - float(record["started"])
        due = [moment for moment in check_schedule(check, elapsed) if moment > float(state["checked_until"])]
        if due:
            ok, output = self.probe(record, check)
            state["output"] = output
            for moment in due:
                if ok:
                    state["status"], state["failures"] = "healthy", 0
                elif not (state["status"] == "starting" and moment < check.start_period):
                    state["failures"] += 1
                    if state["failures"] >= check.retries:
                        state["status"] = "unhealthy"
            state["checked_until"] = due[-1]
        return str(state["status"])

    def probe(self, record: dict[str, Any], check: HealthCheck) -> tuple[bool, str]:
        http = http_probe(check.test)
        if http is not None:
            url, fail_on_error = http
            return get(self.host_url(url, record), timeout=min(check.timeout, 10.0), fail_on_error=fail_on_error)
        args = check.test[1:] if check.test[0] == "CMD" else ["/bin/sh", "-c", check.test[1]]
        image = find_image(self.images, record["image"]) or LocalImage(command=["true"])
        try:
            result = run_in_image(image, args, env=dict(record.get("env") or {}), timeout=min(check.timeout, 30.0))
        except (OSError, subprocess.SubprocessError) as exc:
            return False, str(exc)
        return result.returncode == 0, (result.stdout + result.stderr)[-4096:]

    @staticmethod
    def host_url(url: str, record: dict[str, Any]) -> str:
        """A URL as seen inside the container (its own ports, localhost) -> the same on this machine."""
        match = re.match(r"^(https?://)(localhost|127\.0\.0\.1|0\.0\.0\.0|\[::1\])(?::(\d+))?(.*)$", url)
        if match is None:
            return url
        scheme, _, port_text, rest = match.groups()
        port = int(port_text) if port_text else (443 if scheme == "https://" else 80)
        for mapped in record["ports"]:
            if mapped["target"] == port:
                port = int(mapped["published"])
                break
        else:
            if not record["ports"]:
                port = int(record["port"])
        return f"{scheme}127.0.0.1:{port}{rest}"

    def summaries(self, names: list[str], *, all_states: bool) -> list[dict[str, Any]]:
        services = [service.name for service in self.selected(names)] if names else self.store.services()
        rows: list[dict[str, Any]] = []
        with self.store.locked():
            for service in services:
                record = self.store.load(service)
                if record is None:
                    continue
                seen = self.observe(record)
                self.store.save(record)
                if seen["running"] or all_states:
                    rows.append(summary(record, running=seen["running"], health=seen["health"]))
        return rows


def check_schedule(check: HealthCheck, elapsed: float) -> Iterator[float]:
    """When docker would have run the checks, in seconds since the start, up to `elapsed`."""
    moment = 0.0
    for _ in range(100_000):
        in_start_period = moment < check.start_period
        moment += check.start_interval if (check.start_interval and in_start_period) else check.interval
        if moment > elapsed:
            return
        yield moment


def http_probe(test: list[str]) -> tuple[str, bool] | None:
    """(url, fail on HTTP error) of a curl or wget health check; None for any other check."""
    words = test[1:]
    if test[0] == "CMD-SHELL":
        try:
            chunks = list(_split_shell(shlex.split(test[1])))
        except ValueError:
            return None
        words = next((chunk for chunk in chunks if chunk and Path(chunk[0]).name in ("curl", "wget")), [])
    if not words or Path(words[0]).name not in ("curl", "wget"):
        return None
    url = next((word for word in words[1:] if re.match(r"^https?://", word)), None)
    if url is None:
        return None
    if Path(words[0]).name == "wget":
        return url, True
    fail = any(
        word in ("--fail", "--fail-with-body") or (re.match(r"^-[A-Za-z]+$", word) is not None and "f" in word) for word in words[1:]
    )
    return url, fail


def _split_shell(words: list[str]) -> Iterator[list[str]]:
    chunk: list[str] = []
    for word in words:
        if word in ("||", "&&", ";", "|"):
            yield chunk
            chunk = []
        else:
            chunk.append(word)
    yield chunk


def get(url: str, *, timeout: float, fail_on_error: bool) -> tuple[bool, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - a health check URL of the compose file
            return True, response.read(2048).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return not fail_on_error, f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return False, str(getattr(exc, "reason", exc))


def human_duration(seconds: float) -> str:
    """docker's units.HumanDuration (to the day)."""
    minutes, hours = int(seconds / 60), round(seconds / 3600)
    steps = [
        (seconds < 1, "Less than a second"),
        (seconds < 2, "1 second"),
        (seconds < 60, f"{int(seconds)} seconds"),
        (minutes == 1, "About a minute"),
        (minutes < 60, f"{minutes} minutes"),
        (hours == 1, "About an hour"),
        (hours < 48, f"{hours} hours"),
    ]
    return next((text for matches, text in steps if matches), f"{hours // 24} days")


def summary(record: dict[str, Any], *, running: bool, health: str) -> dict[str, Any]:
    now = time.time()
    exit_code = 0 if running else int(record["exit_code"] if record.get("exit_code") is not None else 1)
    if running:
        status = f"Up {human_duration(now - float(record['started']))}"
        if health:
            status += " (health: starting)" if health == "starting" else f" ({health})"
    else:
        status = f"Exited ({exit_code}) {human_duration(now - float(record.get('finished') or now))} ago"
    publishers = [
        {"URL": port["host_ip"], "TargetPort": port["target"], "PublishedPort": port["published"], "Protocol": port["protocol"]}
        for port in record["ports"]
    ]
    command = " ".join(record.get("command") or [])
    return {
        "Command": f'"{command}"',
        "CreatedAt": datetime.fromtimestamp(float(record["created"]), tz=UTC).strftime("%Y-%m-%d %H:%M:%S +0000 UTC"),
        "ExitCode": exit_code,
        "Health": health,
        "ID": record["id"],
        "Image": record["image"],
        "Labels": f"com.docker.compose.project={record['project']},com.docker.compose.service={record['service']}",
        "LocalVolumes": "0",
        "Mounts": "",
        "Name": record["name"],
        "Names": record["name"],
        "Networks": f"{record['project']}_default",
        "Ports": ", ".join(f"{p['URL']}:{p['PublishedPort']}->{p['TargetPort']}/{p['Protocol']}" for p in publishers if running),
        "Project": record["project"],
        "Publishers": publishers,
        "RunningFor": f"{human_duration(now - float(record['created']))} ago",
        "Service": record["service"],
        "Size": "0B",
        "State": "running" if running else "exited",
        "Status": status,
    }


# --- output -----------------------------------------------------------------------------------------------------


def render_template(template: str, value: Any) -> str:
    """The few Go templates callers use: `{{.Field}}`, `{{.A.B}}`, `{{json .}}`, `{{json .Field}}`."""

    def resolve(path: str) -> Any:
        current = value
        for part in filter(None, path.split(".")):
            current = current.get(part, "") if isinstance(current, dict) else ""
        return current

    def replace(match: re.Match[str]) -> str:
        expression = match.group(1).strip()
        if expression.startswith("json "):
            return json.dumps(resolve(expression[len("json ") :].strip()), separators=(",", ":"))
        if not expression.startswith("."):
            raise UsageError(f"template: the docker stand-in cannot evaluate {{{{{expression}}}}}")
        result = resolve(expression)
        return json.dumps(result) if isinstance(result, list | dict) else str(result)

    rendered = re.sub(r"{{(.*?)}}", replace, template)
    return rendered.replace("\\n", "\n").replace("\\t", "\t")


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)]
    for row in [headers, *rows]:
        print("   ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=False)).rstrip())


# --- command line ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flag:
    names: tuple[str, ...]
    takes_value: bool = False

    @property
    def key(self) -> str:
        return max(self.names, key=len).lstrip("-")


def flags(*specs: str) -> list[Flag]:
    """'-d,--detach' is a switch; '-f,--file=' takes a value."""
    return [Flag(tuple(spec.rstrip("=").split(",")), spec.endswith("=")) for spec in specs]


def parse_flags(args: list[str], known: list[Flag], *, command: str, interspersed: bool = True) -> tuple[dict[str, list[str]], list[str]]:
    by_name = {name: flag for flag in known for name in flag.names}
    values: dict[str, list[str]] = {}
    positional: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            positional.extend(args[i:])
            break
        if not arg.startswith("-") or arg == "-":
            positional.append(arg)
            if not interspersed:
                positional.extend(args[i:])
                break
            continue
        names, inline = _expand_flag(arg, by_name)
        for index, flag_name in enumerate(names):
            flag = by_name.get(flag_name)
            if flag is None:
                unknown = f"flag: {flag_name}" if flag_name.startswith("--") else f"shorthand flag: '{flag_name[1:]}' in {arg}"
                raise UsageError(f"unknown {unknown}\nSee '{command} --help'.")
            if not flag.takes_value:
                values.setdefault(flag.key, []).append("true")
                continue
            if inline is not None and index == len(names) - 1:
                value = inline
            elif i < len(args):
                value = args[i]
                i += 1
            else:
                raise UsageError(f"flag needs an argument: {flag_name}\nSee '{command} --help'.")
            values.setdefault(flag.key, []).append(value)
    return values, positional


def _expand_flag(arg: str, by_name: dict[str, Flag]) -> tuple[list[str], str | None]:
    """`--flag[=value]` or a cluster of short flags (`-dT`, `-fFILE`, `-f=FILE`) -> (flag names, inline value of the last)."""
    name, has_inline, inline = arg.partition("=")
    value = inline if has_inline else None
    if name.startswith("--"):
        return [name], value
    names: list[str] = []
    for position, letter in enumerate(name[1:], start=1):
        names.append(f"-{letter}")
        flag = by_name.get(f"-{letter}")
        if flag is not None and flag.takes_value and position < len(name) - 1:
            return names, name[position + 1 :] + (f"={inline}" if has_inline else "")
    return names, value


def last(values: dict[str, list[str]], key: str, default: str | None = None) -> str | None:
    return values[key][-1] if key in values else default


COMPOSE_FLAGS = flags(
    "-f,--file=", "-p,--project-name=", "--project-directory=", "--env-file=", "--profile=", "--ansi=", "--progress=", "--parallel="
)
COMMAND_FLAGS: dict[str, list[Flag]] = {
    "up": flags(
        "-d,--detach",
        "--no-deps",
        "--force-recreate",
        "--no-recreate",
        "--no-build",
        "--pull=",
        "--quiet-pull",
        "--remove-orphans",
        "--wait",
        "--wait-timeout=",
        "-t,--timeout=",
        "--no-color",
        "-V,--renew-anon-volumes",
        "--always-recreate-deps",
        "-y,--yes",
    ),
    "ps": flags("--format=", "-a,--all", "-q,--quiet", "--services", "--status=", "--no-trunc", "--orphans", "--filter="),
    "exec": flags("-T,--no-TTY", "-e,--env=", "-w,--workdir=", "-u,--user=", "--index=", "--privileged", "-i,--interactive", "-t,--tty"),
    "run": flags("--rm", "--no-deps", "-T,--no-TTY", "-e,--env=", "-w,--workdir=", "-u,--user=", "-d,--detach", "-i,--interactive"),
    "stop": flags("-t,--timeout="),
    "down": flags("-v,--volumes", "--remove-orphans", "--rmi=", "-t,--timeout="),
    "pull": flags("-q,--quiet", "--ignore-pull-failures", "--include-deps", "--policy=", "--ignore-buildable"),
    "images": flags("--format=", "-q,--quiet"),
    "logs": flags("--tail=", "--no-color", "--no-log-prefix", "-t,--timestamps", "--since="),
    "config": flags("--format=", "-q,--quiet", "--services", "--images", "--no-interpolate", "-o,--output=", "--resolve-image-digests"),
    "version": flags("-f,--format=", "--short"),
    "ls": flags("--format=", "-a,--all", "-q,--quiet", "--filter="),
}


def fail(message: str, code: int) -> NoReturn:
    print(message, file=sys.stderr)
    raise SystemExit(code)


def docker_version(args: list[str]) -> int:
    values, positional = parse_flags(args, flags("-f,--format="), command="docker version")
    if positional:
        raise UsageError("\"docker version\" accepts no arguments.\nSee 'docker version --help'.\n\nUsage:  docker version [OPTIONS]")
    info: dict[str, Any] = {
        "Client": {"Version": DOCKER_VERSION, "ApiVersion": API_VERSION, "Os": "linux", "Arch": "amd64", "GoVersion": "go1.22.7"},
        "Server": {
            "Platform": {"Name": "Docker Engine stand-in (local processes)"},
            "Version": DOCKER_VERSION,
            "ApiVersion": API_VERSION,
            "MinAPIVersion": "1.24",
            "Os": "linux",
            "Arch": "amd64",
        },
    }
    template = last(values, "format")
    if template in ("json", "{{json .}}"):
        print(json.dumps(info, separators=(",", ":")))
    elif template:
        print(render_template(template, info))
    else:
        print(f"Client:\n Version:           {DOCKER_VERSION}\n API version:       {API_VERSION}\n OS/Arch:           linux/amd64\n")
        print(f"Server: {info['Server']['Platform']['Name']}\n Engine:")
        print(f"  Version:          {DOCKER_VERSION}\n  API version:      {API_VERSION}")
    return 0


def compose_version(values: dict[str, list[str]]) -> int:
    template = last(values, "format", "pretty")
    if "short" in values:
        print(COMPOSE_VERSION.lstrip("v"))
    elif template == "json":
        print(json.dumps({"version": COMPOSE_VERSION}))
    else:
        print(f"Docker Compose version {COMPOSE_VERSION}")
    return 0


def compose(args: list[str]) -> int:
    values, rest = parse_flags(args, COMPOSE_FLAGS, command="docker compose", interspersed=False)
    if not rest:
        raise UsageError("docker compose needs a command\nSee 'docker compose --help'.")
    command, command_args = rest[0], rest[1:]
    if command not in COMMAND_FLAGS:
        raise UsageError(f"unknown docker command: \"compose {command}\"\nSee 'docker compose --help'.")
    options, positional = parse_flags(
        command_args, COMMAND_FLAGS[command], command=f"docker compose {command}", interspersed=command not in {"exec", "run"}
    )
    if command == "version":
        return compose_version(options)
    if command == "ls":
        return ls_command(options)
    project_options = ProjectOptions(
        files=values.get("file", []),
        project_name=last(values, "project-name"),
        project_directory=last(values, "project-directory"),
        env_files=values.get("env-file", []),
        profiles=values.get("profile", []),
    )
    if command == "config":
        return config_command(load_project(project_options, interpolate="no-interpolate" not in options), options)
    handler = {
        "up": up_command,
        "ps": ps_command,
        "exec": exec_command,
        "run": run_command,
        "stop": stop_command,
        "down": down_command,
        "pull": pull_command,
        "images": images_command,
        "logs": logs_command,
    }[command]
    return handler(Compose(load_project(project_options)), options, positional)


def ls_command(options: dict[str, list[str]]) -> int:
    """`docker compose ls`: each project with containers (only running ones without --all), its status as compose
    counts it ("running(2), exited(1)"); a container counts as running until the stand-in stopped it."""
    rows = []
    for directory in sorted(path for path in (state_root() / "compose").glob("*") if path.is_dir()):
        records = [json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))]
        running = sum(not record.get("stopped") for record in records)
        if running or (records and "all" in options):
            counts = [f"running({running})"] * bool(running) + [f"exited({len(records) - running})"] * (len(records) > running)
            rows.append({"Name": directory.name, "Status": ", ".join(counts), "ConfigFiles": ""})
    if "quiet" in options:
        print("".join(f"{row['Name']}\n" for row in rows), end="")
    elif last(options, "format", "table") == "json":
        print(json.dumps(rows))
    else:
        print_table(["NAME", "STATUS", "CONFIG FILES"], [[row["Name"], row["Status"], row["ConfigFiles"]] for row in rows])
    return 0


def up_command(ctx: Compose, options: dict[str, list[str]], services: list[str]) -> int:
    if "detach" not in options and "wait" not in options:
        raise UsageError("the docker stand-in runs only detached: use `docker compose up -d` (or --wait)\nSee 'docker compose up --help'.")
    started = ctx.up(services, no_deps="no-deps" in options, force="force-recreate" in options, no_recreate="no-recreate" in options)
    if "wait" in options:
        return wait_healthy(ctx, started, timeout=float(last(options, "wait-timeout") or 0) or None)
    return 0


def wait_healthy(ctx: Compose, services: list[Service], *, timeout: float | None) -> int:
    deadline = time.monotonic() + timeout if timeout else None
    waiting = {service.name for service in services}
    while waiting:
        for service in sorted(waiting):
            progress(ctx.container_name(service), "Waiting")
            with ctx.store.locked():
                record = ctx.store.load(service)
                if record is None:
                    continue
                seen = ctx.observe(record)
                ctx.store.save(record)
            if not seen["running"]:
                fail(f"container {record['name']} exited ({record.get('exit_code') or 1})", 1)
            if seen["health"] == "unhealthy":
                fail(f"container {record['name']} is unhealthy", 1)
            if seen["health"] in ("", "healthy"):
                progress(record["name"], "Healthy")
                waiting.discard(service)
        if waiting:
            if deadline is not None and time.monotonic() > deadline:
                fail(f"application not healthy after {timeout:g}s", 1)
            time.sleep(0.1)
    return 0


def ps_command(ctx: Compose, options: dict[str, list[str]], services: list[str]) -> int:
    rows = ctx.summaries(services, all_states="all" in options)
    statuses = set(options.get("status", []))
    if statuses:
        rows = [row for row in rows if row["State"] in statuses]
    if "no-trunc" not in options:
        rows = [{**row, "ID": row["ID"][:12], "Command": _truncate(row["Command"])} for row in rows]
    template = last(options, "format", "table") or "table"
    if "services" in options:
        for row in rows:
            print(row["Service"])
    elif "quiet" in options:
        for row in rows:
            print(row["ID"])
    elif template in ("json", "{{json .}}"):
        for row in rows:
            print(json.dumps(row, separators=(",", ":")))
    elif template in ("table", "pretty"):
        print_table(
            ["NAME", "IMAGE", "COMMAND", "SERVICE", "CREATED", "STATUS", "PORTS"],
            [[r["Name"], r["Image"], r["Command"], r["Service"], r["RunningFor"], r["Status"], r["Ports"]] for r in rows],
        )
    else:
        template = template.removeprefix("table ")
        for row in rows:
            print(render_template(template, row))
    return 0


def _truncate(command: str) -> str:
    inner = command[1:-1]
    return f'"{inner[:19]}…"' if len(inner) > 20 else command


def exec_command(ctx: Compose, options: dict[str, list[str]], positional: list[str]) -> int:
    if len(positional) < 2:
        raise UsageError("'docker compose exec' requires at least 2 arguments\nSee 'docker compose exec --help'.")
    name, args = positional[0], positional[1:]
    service = ctx.service(name)
    record = ctx.store.load(name)
    if record is None or not ctx.is_running(record):
        raise ComposeError(f'service "{name}" is not running')
    env = dict(record.get("env") or service.environment)
    for item in options.get("env", []):
        key, has_value, value = item.partition("=")
        if has_value:
            env[key] = value
        elif key in os.environ:
            env[key] = os.environ[key]
    workdir = last(options, "workdir")
    if workdir is not None:
        if not Path(workdir).is_dir():
            raise ComposeError(
                f'{OCI_EXEC_FAILED}: chdir to cwd ("{workdir}") set in config.json failed: no such file or directory',
                126,
            )
        os.chdir(workdir)
    image = (
        ctx.resolve_image(service)
        if record["image"] == service.image
        else (find_image(ctx.images, record["image"]) or LocalImage(["true"]))
    )
    try:
        result = run_in_image(image, args, env=env, tag=str(record["tag"]))
    except FileNotFoundError:
        raise ComposeError(f'{OCI_EXEC_FAILED}: exec: "{args[0]}": executable file not found in $PATH: unknown', 127) from None
    except PermissionError:
        raise ComposeError(f'{OCI_EXEC_FAILED}: exec: "{args[0]}": permission denied: unknown', 126) from None
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


def run_command(ctx: Compose, options: dict[str, list[str]], positional: list[str]) -> int:
    """`run --rm SERVICE CMD...`: a one-off container of the service's image as the file names it now (the tag variable
    included), e.g. the migrations of a new version before its service is recreated."""
    if len(positional) < 2:
        raise UsageError("the docker stand-in runs `docker compose run` with a command: run [OPTIONS] SERVICE COMMAND [ARGS...]")
    if "detach" in options:
        raise UsageError("the docker stand-in runs `docker compose run` attached only")
    service = ctx.service(positional[0])
    env = dict(service.environment)
    for item in options.get("env", []):
        key, has_value, value = item.partition("=")
        if has_value:
            env[key] = value
        elif key in os.environ:
            env[key] = os.environ[key]
    args = positional[1:]
    try:
        result = run_in_image(ctx.resolve_image(service), args, env=env, tag=split_image(service.image)[1])
    except FileNotFoundError:
        raise ComposeError(f'{OCI_EXEC_FAILED}: exec: "{args[0]}": executable file not found in $PATH: unknown', 127) from None
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


def stop_command(ctx: Compose, options: dict[str, list[str]], services: list[str]) -> int:
    del options
    ctx.stop(services)
    return 0


def down_command(ctx: Compose, options: dict[str, list[str]], services: list[str]) -> int:
    del options
    if services:
        raise UsageError("\"docker compose down\" accepts no service names\nSee 'docker compose down --help'.")
    ctx.down()
    return 0


def pull_command(ctx: Compose, options: dict[str, list[str]], services: list[str]) -> int:
    for service in ctx.selected(services, with_deps="include-deps" in options):
        print(f" {service.name} Pulling", file=sys.stderr)
        try:
            ctx.resolve_image(service)
        except ComposeError as exc:
            if "ignore-pull-failures" not in options:
                raise
            print(f" {service.name} Error {exc}", file=sys.stderr)
            continue
        print(f" {service.name} Pulled", file=sys.stderr)
    return 0


def images_command(ctx: Compose, options: dict[str, list[str]], services: list[str]) -> int:
    names = [service.name for service in ctx.selected(services)] if services else ctx.store.services()
    rows = []
    for service in names:
        record = ctx.store.load(service)
        if record is None:
            continue
        repo, tag = split_image(record["image"])
        digest = hashlib.sha256(record["image"].encode()).hexdigest()
        rows.append(
            {
                "ID": f"sha256:{digest}",
                "ContainerName": record["name"],
                "Repository": repo,
                "Tag": tag,
                "Platform": "linux/amd64",
                "Size": 0,
                "LastTagTime": "0001-01-01T00:00:00Z",
            }
        )
    template = last(options, "format", "table")
    if "quiet" in options:
        for row in rows:
            print(row["ID"])
    elif template == "json":
        print(json.dumps(rows, separators=(",", ":")))
    else:
        print_table(
            ["CONTAINER", "REPOSITORY", "TAG", "PLATFORM", "IMAGE ID", "SIZE"],
            [[r["ContainerName"], r["Repository"], r["Tag"], r["Platform"], r["ID"][7:19], "0B"] for r in rows],
        )
    return 0


def logs_command(ctx: Compose, options: dict[str, list[str]], services: list[str]) -> int:
    """The lines each service's container printed, as the json-file driver stored them: only the current container's
    (a recreated one starts a new log), since `--since` (RFC 3339, Unix seconds or a duration back from now), the
    last `--tail` of them, each with its time under `--timestamps`."""
    tail = last(options, "tail", "all")
    since = log_since(last(options, "since"))
    for service in [service.name for service in ctx.selected(services)] if services else ctx.store.services():
        record = ctx.store.load(service)
        if record is None:
            continue
        path = ctx.process(record).directory / f"{record['tag']}.log"
        entries = [json.loads(line) for line in path.read_text(errors="replace").splitlines()] if path.exists() else []
        begun = max(float(record["started"]), since or 0.0)
        lines = [(entry["time"], entry["log"].rstrip("\n")) for entry in entries if log_time(entry["time"]) >= begun]
        if tail not in (None, "all"):
            lines = lines[-int(tail) :] if int(tail) > 0 else []
        for moment, line in lines:
            shown = f"{moment} {line}" if "timestamps" in options else line
            print(shown if "no-log-prefix" in options else f"{record['name']}  | {shown}")
    return 0


def log_time(moment: str) -> float:
    return datetime.fromisoformat(moment).timestamp()


def log_since(value: str | None) -> float | None:
    """`--since` as docker reads it: an RFC 3339 time (2026-12-02T11:40:00Z), Unix seconds, or a duration (42m) ago."""
    if value is None:
        return None
    with contextlib.suppress(ValueError):
        return float(value)
    with contextlib.suppress(ValueError):
        moment = datetime.fromisoformat(value)
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    try:
        return time.time() - parse_duration(value, 0.0)
    except ComposeError:
        raise ComposeError(f'invalid value "{value}" for flag --since: not a timestamp or a duration') from None


def config_command(project: Project, options: dict[str, list[str]]) -> int:
    if "services" in options:
        for name in project.services:
            print(name)
        return 0
    if "images" in options:
        for service in project.services.values():
            print(service.image)
        return 0
    if "quiet" in options:
        return 0
    model = {**project.model, "name": project.name}
    model.setdefault("networks", {"default": {"name": f"{project.name}_default"}})
    text = (
        json.dumps(model, indent=2)
        if last(options, "format") == "json"
        else yaml.safe_dump(model, sort_keys=True, default_flow_style=False, allow_unicode=True)
    )
    output = last(options, "output")
    if output:
        Path(output).write_text(text)
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def record_invocation(argv: list[str]) -> None:
    """Append {"argv", "cwd", "env_subset"} to $ROLLOUT_DOCKER_STANDIN_LOG; env_subset holds the variables the compose file refers to."""
    log_path = os.environ.get(LOG_ENV)
    if not log_path:
        return
    names: set[str] = set()
    with contextlib.suppress(Exception):  # a broken command line or compose file is still logged, with what can be read
        names = _logged_variables(argv[1:])
    entry = {"argv": argv, "cwd": os.getcwd(), "env_subset": {name: os.environ[name] for name in sorted(names) if name in os.environ}}
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(entry) + "\n").encode())
    finally:
        os.close(fd)


def _logged_variables(args: list[str]) -> set[str]:
    if "compose" not in args:
        return set()
    values, _ = _lenient_flags(args[args.index("compose") + 1 :])
    options = ProjectOptions(files=values.get("file", []))
    names: set[str] = set()
    for file in compose_files(options, Path.cwd()):
        names |= referenced_variables(yaml.safe_load(file.read_text()) or {})
    return names


def _lenient_flags(args: list[str]) -> tuple[dict[str, list[str]], list[str]]:
    try:
        return parse_flags(args, COMPOSE_FLAGS, command="docker compose", interspersed=False)
    except UsageError:
        files = [args[i + 1] for i, arg in enumerate(args[:-1]) if arg in ("-f", "--file")]
        return {"file": files}, []


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    logging.getLogger("airflow_rollout").setLevel(logging.WARNING)  # docker prints its own progress, on stderr
    record_invocation(["docker", *args])
    try:
        _, rest = parse_flags(
            args,
            flags("--config=", "-c,--context=", "-D,--debug", "-H,--host=", "-l,--log-level=", "--tls", "--tlsverify", "-v,--version"),
            command="docker",
            interspersed=False,
        )
        if not rest:
            if "-v" in args or "--version" in args:
                print(f"Docker version {DOCKER_VERSION}, build stand-in")
                return 0
            raise UsageError("Usage:  docker [OPTIONS] COMMAND\n\nRun 'docker --help' for more information")
        command, command_args = rest[0], rest[1:]
        if command == "compose":
            return compose(command_args)
        if command == "version":
            return docker_version(command_args)
        raise UsageError(f"docker: '{command}' is not a docker command.\nSee 'docker --help'")
    except UsageError as exc:
        print(str(exc), file=sys.stderr)
        return 125
    except ComposeError as exc:
        print(str(exc), file=sys.stderr)
        return exc.code


if __name__ == "__main__":
    sys.exit(main())
