"""What a failed tool said, cut down to the line an error message leads with.

An error reaches Slack and the ledger as one message; the tool's whole output belongs in the task log.
`error_line` picks the line of that output an operator needs first: the last one that reads like an
error (a traceback's final `XxxError: ...`, psql's `ERROR:  ...`, `pg_dump: error: ...`), else the last
non-empty line, at most MAX_ERROR_LINE characters.
"""

from __future__ import annotations

import re
import shlex
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

MAX_ERROR_LINE = 300
MAX_SHOWN_COMMAND = 200  # an inline `sh -c` or `python -c` script is cut, not carried whole into Slack

# A Python exception as a traceback's last line prints it: `RuntimeError: boom`, `sqlalchemy.exc.ProgrammingError: (...)`.
_EXCEPTION_LINE = re.compile(r"^(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt|Failure|Fault)(?::.*)?$")
# A tool's own error line: `psql:f.sql:3: ERROR:  ...`, `FATAL:  ...`, alembic's `FAILED: ...`, `pg_dump: error: ...`,
# `Error response from daemon: ...`; not SQLAlchemy's closing `(Background on this error at: ...)`.
_TOOL_ERROR_LINE = re.compile(r"\b(?:ERROR|FATAL|PANIC|FAILED)\b|\b(?i:error):|^(?i:error)\b")


def error_line(output: str, limit: int = MAX_ERROR_LINE) -> str:
    """The line of `output` that says what went wrong, shortened to `limit` characters; '(no output)' when empty."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if not lines:
        return "(no output)"
    line = next(
        (line for line in reversed(lines) if _EXCEPTION_LINE.match(line)),
        next((line for line in reversed(lines) if _TOOL_ERROR_LINE.search(line)), lines[-1]),
    )
    return line if len(line) <= limit else line[: limit - 1] + "…"


def shown_command(args: Sequence[str], limit: int = MAX_SHOWN_COMMAND) -> str:
    """An argument list as written, at most `limit` characters; arguments with spaces or quotes are shell-quoted, placeholders not."""
    shown = " ".join(arg if re.fullmatch(r"[\w@%+=:,./{}$-]+", arg) else shlex.quote(arg) for arg in args)
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"
