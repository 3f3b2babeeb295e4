"""Release versions: the one strict form every version must have, and their order.

A version travels into process arguments, file names and Slack text, so it is checked against a
pattern that admits no path separator, no whitespace and no shell metacharacter.
"""

from __future__ import annotations

import re
from functools import total_ordering

# v1.2, 1.2.3, v1.0-p2, 2.0.0-rc.1: the forms the seeds use (their tags are v0.9, v1.0-p2, v0.1.0).
# JSON schema `pattern` is searched, not fully matched, and in Python `$` also matches before a final
# newline: the look-ahead refuses "1.2.0\n". (Valid in ECMAScript too, where the UI form checks it.)
VERSION_PATTERN = r"^v?[0-9]{1,6}(\.[0-9]{1,6}){1,3}(-[0-9A-Za-z]{1,20}(\.[0-9A-Za-z]{1,20}){0,3})?(?!\n)$"
_VERSION_RE = re.compile(VERSION_PATTERN)


class InvalidVersionError(ValueError):
    pass


def validate_version(text: str) -> str:
    if not isinstance(text, str) or not _VERSION_RE.fullmatch(text):
        raise InvalidVersionError(
            f"{text!r} is not a release version: expected digits separated by dots with an optional "
            "leading 'v' and an optional '-suffix', e.g. 1.2.0, v1.0-p2, 2.0.0-rc.1"
        )
    return text


@total_ordering
class Version:
    """A validated version; pre-release suffixes sort before the release they precede."""

    def __init__(self, text: str) -> None:
        self.text = validate_version(text)
        core, _, suffix = self.text.lstrip("v").partition("-")
        self._numbers = tuple(int(part) for part in core.split("."))
        self._suffix = suffix

    def _key(self) -> tuple[tuple[int, ...], int, tuple[tuple[int, int | str], ...]]:
        padded = self._numbers + (0,) * (4 - len(self._numbers))
        suffix_key = tuple((0, int(p)) if p.isdigit() else (1, p) for p in self._suffix.split(".")) if self._suffix else ()
        return padded, 0 if self._suffix else 1, suffix_key  # type: ignore[return-value]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and self._key() == other._key()

    def __lt__(self, other: Version) -> bool:
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Version({self.text!r})"
