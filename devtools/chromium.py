"""Debian's `chromium` for the browser tests: found where it is, installed with apt-get when it is missing.

Playwright (from PyPI) drives it through `executable_path`: Playwright's own browser download reaches a host
that these machines cannot, so the browser comes from Debian's packages instead. `make test` runs this before
pytest, and the browser tests' fixture calls `executable()` again, so `pytest -m browser` alone works on a fresh
machine too. Idempotent and silent when Chromium is there already.

    python -m devtools.chromium        # prints nothing when Chromium is installed; installs it otherwise
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from devtools.debian_packages import DebianPackageUnavailableError, apt_install

# fonts-liberation: metric-compatible Arial/Times/Courier, so that the screenshots under build/ui/ read as they would
# on a desktop; without any font Chromium draws boxes (the tests, reading the DOM, would still pass).
PACKAGES = ("chromium", "fonts-liberation")
CANDIDATES = ("chromium", "chromium-browser")
# Where Debian puts it, should PATH not have /usr/bin (a stripped CI environment).
DEBIAN_PATH = Path("/usr/bin/chromium")
# CHROMIUM overrides the search: a browser of one's own (e.g. a Chrome on a developer's laptop).
OVERRIDE = "CHROMIUM"


class ChromiumUnavailableError(RuntimeError):
    """Chromium is not installed and could not be installed here (not root, no apt-get, apt-get failed)."""


def find() -> Path | None:
    """The Chromium executable on this machine, or None."""
    if override := os.environ.get(OVERRIDE):
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise ChromiumUnavailableError(f"{OVERRIDE}={override} is not an executable file")
        return path
    for name in CANDIDATES:
        if found := shutil.which(name):
            return Path(found)
    return DEBIAN_PATH if DEBIAN_PATH.is_file() else None


def install() -> None:
    """apt-get installs Debian's chromium (and a font)."""
    try:
        apt_install(PACKAGES, "chromium", hint=f": install Chromium and set {OVERRIDE} to its path")
    except DebianPackageUnavailableError as exc:
        raise ChromiumUnavailableError(str(exc)) from None


def executable() -> Path:
    """Chromium's path, installing it first when it is missing."""
    if (found := find()) is not None:
        return found
    install()
    if (found := find()) is None:
        raise ChromiumUnavailableError(f"apt-get installed {' '.join(PACKAGES)}, yet no chromium is on PATH nor at {DEBIAN_PATH}")
    return found


def main() -> None:
    try:
        executable()
    except ChromiumUnavailableError as exc:
        raise SystemExit(f"[chromium] {exc}") from None


if __name__ == "__main__":
    main()
