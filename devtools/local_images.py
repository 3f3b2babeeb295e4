"""Container images played by local processes, for the stand-ins of Kubernetes, Databricks and docker.

No container runtime runs here, so a stand-in maps an image repository to what the image would run:
an entrypoint (an argument list with `{version}` for the image tag, `{port}`, `{python}`, `{include}`)
and a directory of the image's own tools (`alembic`, ...) put first on PATH for commands run "inside" it.
The map is a JSON file:

    {"registry.example.com/ai-etl/backend": {"command": ["{python}", "{include}/demo_app/server.py",
        "--version", "{version}", "--port", "{port}"], "bin_dir": "/path/to/tools", "readiness_path": "/health"}}

The processes are real and answer real HTTP, so a release's checks against them are real too.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from airflow_rollout.config import Readiness
from airflow_rollout.targets.local_process import LocalProcessApp, LocalProcessTarget

# Given to commands run "inside" an image (a Job, `docker compose run` or `exec`): a real image carries its
# version in its code; the stand-ins' tools (an image's `alembic`) learn it from here.
IMAGE_TAG_ENV = "STANDIN_IMAGE_TAG"


@dataclass(frozen=True)
class LocalImage:
    command: list[str]
    bin_dir: Path | None = None
    readiness_path: str = "/health"


def load_image_map(path: Path | str | None) -> dict[str, LocalImage]:
    if not path:
        return {}
    raw = json.loads(Path(path).read_text())
    return {
        repo: LocalImage(
            command=list(entry["command"]),
            bin_dir=Path(entry["bin_dir"]) if entry.get("bin_dir") else None,
            readiness_path=entry.get("readiness_path", "/health"),
        )
        for repo, entry in raw.items()
    }


def image_process(
    image: LocalImage, *, name: str, tag: str, port: int, state_dir: Path, env: dict[str, str], ready_timeout: float = 30
) -> LocalProcessApp:
    """The process playing a container of `image` at `tag` (start it with `.switch_to(tag)`, stop with `.stop()`)."""
    config = LocalProcessTarget(
        kind="local_process",
        name=re.sub(r"[^a-z0-9_-]", "-", name.lower())[:63] or "app",
        command=image.command,
        port=port,
        readiness=Readiness(path=image.readiness_path, timeout_seconds=ready_timeout),
    )
    return LocalProcessApp(config=config, system="standin", state_dir=state_dir, extra_env=image_env(image, env))


def image_env(image: LocalImage, env: dict[str, str]) -> dict[str, str]:
    # The image's tools first, then this interpreter's directory: an image's `python3` is the one running
    # the stand-in, with the same libraries (a tool's `#!/usr/bin/env python3` finds it).
    path = os.pathsep.join(filter(None, [str(image.bin_dir or ""), str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    return {**env, "PATH": path}


def run_in_image(
    image: LocalImage, args: list[str], *, env: dict[str, str], timeout: float = 900, tag: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `args` as the image would (its tools first on PATH); output and exit code as a container's."""
    tagged = {IMAGE_TAG_ENV: tag} if tag else {}
    return subprocess.run(  # noqa: S603 - an argument list from the pod or service spec, never a shell string
        args,
        env={**os.environ, **image_env(image, env), **tagged},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
