"""The docker stand-in's logging driver: runs a container's process and writes each line it prints as json-file would.

    python container_log.py COMMAND [ARG...]     (stdout is the container's log file)

Docker reads a container's output through a pipe and stores every line with the moment it arrived
(`{"log": "...\\n", "stream": "stdout", "time": "2026-12-02T11:40:00.123456Z"}`, the json-file driver's format):
that time is what `docker compose logs --since` and `--timestamps` use. The stand-in starts this module as the
container's process and the command under it, in the same process group, so a stop reaches both. The command's
stderr goes into the same pipe, so every line is stored as stdout.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import UTC, datetime


def main() -> int:
    # A stop signals the whole group: the command decides how it ends, this relay stays to store its last lines and
    # ends when the command's output closes. A handler, unlike SIG_IGN, is not inherited by the command.
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: None)
    process = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)  # noqa: S603 - the image map's command
    assert process.stdout is not None  # noqa: S101 - piped above
    out = sys.stdout
    for raw in process.stdout:
        moment = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        out.write(json.dumps({"log": raw.decode(errors="replace"), "stream": "stdout", "time": moment}) + "\n")
        out.flush()
    return process.wait()


if __name__ == "__main__":
    sys.exit(main())
