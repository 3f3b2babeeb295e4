"""Release versions: the one strict form every version must have, and their order under a profile's scheme.

A version travels into process arguments, file names and Slack text, so it is checked against a
pattern that admits no path separator, no whitespace and no shell metacharacter. Which of two versions
is the newer one is the profile's `version_scheme`: SemVer (the default), PEP 440, or seed 003's patch
suffixes, where `v1.0-p2` is v1.0 plus patches and so comes after v1.0.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from enum import StrEnum
from functools import total_ordering
from typing import Any, ClassVar, TypeVar

from packaging.version import InvalidVersion
from packaging.version import Version as Pep440Version

# v1.2, 1.2.3, v1.0-p2, 2.0.0-rc.1: the forms the seeds use (their tags are v0.9, v1.0-p2, v0.1.0);
# 1.0rc1, 1.0.post1, 2.0.0.dev3: PEP 440's normalized pre-, post- and dev-release tails.
# JSON schema `pattern` is searched, not fully matched, and in Python `$` also matches before a final
# newline: the look-ahead refuses "1.2.0\n". (Valid in ECMAScript too, where the UI form checks it.)
VERSION_PATTERN = (
    r"^v?[0-9]{1,6}(\.[0-9]{1,6}){1,3}"
    r"(-[0-9A-Za-z]{1,20}(\.[0-9A-Za-z]{1,20}){0,3}|((a|b|rc)[0-9]{1,6})?(\.post[0-9]{1,6})?(\.dev[0-9]{1,6})?)"
    r"(?!\n)$"
)
_VERSION_RE = re.compile(VERSION_PATTERN)


class InvalidVersionError(ValueError):
    pass


class VersionScheme(StrEnum):
    """A profile's `version_scheme`: what decides which of two versions is the newer one."""

    SEMVER = "semver"  # 1.0.0-rc.1 < 1.0.0 < 1.0.1; any -suffix is a pre-release
    PEP440 = "pep440"  # 1.0.dev1 < 1.0rc1 < 1.0 < 1.0.post1, as pip orders them
    PATCH_SUFFIX = "patch_suffix"  # seed 003: v1.0-rc1 < v1.0 < v1.0-p1 < v1.0-p2 < v1.1


SortKey = tuple[Any, ...]


class Scheme(ABC):
    name: ClassVar[VersionScheme]

    @abstractmethod
    def key(self, text: str) -> SortKey:
        """What a valid version sorts by; InvalidVersionError for a form the scheme has no place for."""


SCHEMES: dict[VersionScheme, Scheme] = {}
_S = TypeVar("_S", bound=type[Scheme])


def _register(cls: _S) -> _S:
    SCHEMES[cls.name] = cls()
    return cls


_DASHED = re.compile(r"v?(?P<core>[0-9]+(?:\.[0-9]+)*)(?:-(?P<suffix>[0-9A-Za-z.]+))?")


def _dashed(text: str, scheme: VersionScheme) -> tuple[tuple[int, ...], list[str]]:
    """The numbers, padded to four, and the dot-separated identifiers of the `-suffix`."""
    match = _DASHED.fullmatch(text)
    if not match:
        raise InvalidVersionError(
            f"{text!r} has no place in the {scheme} order: PEP 440 tails (rc1, .post1, .dev1) need version_scheme: pep440"
        )
    numbers = tuple(int(part) for part in match["core"].split("."))
    return numbers + (0,) * (4 - len(numbers)), match["suffix"].split(".") if match["suffix"] else []


def _identifiers(parts: list[str]) -> tuple[tuple[int, int | str], ...]:
    # As in SemVer: numeric identifiers compare as numbers and before alphanumeric ones.
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in parts)


@_register
class SemVer(Scheme):
    """SemVer's precedence: a `-suffix` is a pre-release, before the release it names."""

    name = VersionScheme.SEMVER

    def key(self, text: str) -> SortKey:
        numbers, suffix = _dashed(text, self.name)
        return numbers, 0 if suffix else 1, _identifiers(suffix)


@_register
class Pep440(Scheme):
    """PEP 440 as `packaging` (pip's own) orders it: dev < pre (a, b, rc) < release < post."""

    name = VersionScheme.PEP440

    def key(self, text: str) -> SortKey:
        try:
            return (Pep440Version(text),)
        except InvalidVersion:
            raise InvalidVersionError(f"{text!r} is not a PEP 440 version, e.g. 1.0rc1, 1.0, 1.0.post1, 2.0.0.dev3") from None


_PATCH = re.compile(r"[pP](?P<n>[0-9]+)")


@_register
class PatchSuffix(Scheme):
    """Seed 003's tags: `-pN` is a patch after the release, in order of N; any other suffix (rc1, beta) a pre-release."""

    name = VersionScheme.PATCH_SUFFIX

    def key(self, text: str) -> SortKey:
        numbers, suffix = _dashed(text, self.name)
        if not suffix:
            return numbers, 1, 0, ()
        if patch := _PATCH.fullmatch(suffix[0]):
            return numbers, 2, int(patch["n"]), _identifiers(suffix[1:])
        return numbers, 0, 0, _identifiers(suffix)


def validate_version(text: str, scheme: VersionScheme | str | None = None) -> str:
    """`text` if it has the one safe form (and, given a scheme, a place in its order); InvalidVersionError if not."""
    if not isinstance(text, str) or not _VERSION_RE.fullmatch(text):
        raise InvalidVersionError(
            f"{text!r} is not a release version: expected digits separated by dots with an optional leading 'v' and an "
            "optional '-suffix' or PEP 440 tail, e.g. 1.2.0, v1.0-p2, 2.0.0-rc.1, 1.0rc1, 1.0.post1"
        )
    if scheme is not None:
        SCHEMES[VersionScheme(scheme)].key(text)
    return text


@total_ordering
class Version:
    """A validated version, ordered by its scheme; versions of different schemes do not compare."""

    def __init__(self, text: str, scheme: VersionScheme | str = VersionScheme.SEMVER) -> None:
        self.text = validate_version(text)
        self.scheme = VersionScheme(scheme)
        self._key = SCHEMES[self.scheme].key(self.text)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Version) and other.scheme is self.scheme and self._key == other._key

    def __lt__(self, other: Version) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        if other.scheme is not self.scheme:
            raise TypeError(f"{self!r} and {other!r} are versions of different schemes: neither is the newer")
        return bool(self._key < other._key)

    def __hash__(self) -> int:
        return hash((self.scheme, self._key))

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Version({self.text!r})" if self.scheme is VersionScheme.SEMVER else f"Version({self.text!r}, {self.scheme.value!r})"
