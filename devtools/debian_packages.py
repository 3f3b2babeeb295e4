"""Debian packages the tests need on a fresh machine (Chromium, redis-server), installed with apt-get when missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys


class DebianPackageUnavailableError(RuntimeError):
    """A package is not installed and could not be installed here (not root, no apt-get, apt-get failed)."""


def apt_install(packages: tuple[str, ...], what: str, hint: str = "") -> None:
    """`apt-get update`, then `apt-get install` the packages, quietly; the output is shown on failure."""
    apt_get = shutil.which("apt-get")
    if apt_get is None:
        raise DebianPackageUnavailableError(f"{what} is not installed and there is no apt-get to install it{hint}")
    if os.geteuid() != 0:
        raise DebianPackageUnavailableError(f"{what} is not installed; as root: apt-get update && apt-get install -y {' '.join(packages)}")
    print(f"[{what}] installing Debian's {', '.join(packages)} with apt-get (about a minute) ...", file=sys.stderr, flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Another apt-get (another checkout's test run) may hold dpkg's lock: wait for it rather than fail.
    wait = ["-o", "DPkg::Lock::Timeout=600"]
    for args in ([apt_get, "-qq", *wait, "update"], [apt_get, "-qq", *wait, "install", "-y", "--no-install-recommends", *packages]):
        done = subprocess.run(args, env=env, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL)  # noqa: S603
        if done.returncode != 0:
            raise DebianPackageUnavailableError(f"`{' '.join(args[1:])}` exited with {done.returncode}:\n{done.stdout}{done.stderr}")
