"""Release versions: the strict form (they reach argv, file names and Slack) and their order."""

from __future__ import annotations

import re

import pytest

from rollout.versions import VERSION_PATTERN, InvalidVersionError, Version, validate_version

VALID = [
    "1.2.0",
    "v1.0-p2",
    "2.0.0-rc.1",
    "v0.9",
    "1.2.3.4",
    "0.1.0",
    "v1.2.3-alpha.beta.gamma.delta",
    "999999.0",
]

INVALID = [
    "",
    "1",
    "v",
    "1.2.0; rm -rf /",
    "$(reboot)",
    "1.2.0`id`",
    "../1.2",
    "1.2/../../etc",
    "1.2.0/x",
    "1.2.0\n",
    "1.2.0\r\n",
    " 1.2.0",
    "1.2.0 ",
    "1.2.0\x00",
    "V1.2",
    "1.2.3.4.5",
    "1.2.0-",
    "1.2.0-rc_1",
    "1.2.0-a.b.c.d.e",
    "1234567.0",
    "1." + "1" * 1000,
    "1.2.0-" + "a" * 1000,
]


@pytest.mark.parametrize("text", VALID)
def test_valid_versions(text: str) -> None:
    assert validate_version(text) == text
    assert str(Version(text)) == text


@pytest.mark.parametrize("text", INVALID, ids=repr)
def test_invalid_versions(text: str) -> None:
    with pytest.raises(InvalidVersionError) as caught:
        validate_version(text)
    # The operator sees this on the trigger form's failed run: it must quote the input and show the form.
    assert repr(text) in str(caught.value)
    assert "e.g. 1.2.0, v1.0-p2, 2.0.0-rc.1" in str(caught.value)


@pytest.mark.parametrize("value", [None, 1.2, 120, b"1.2.0"], ids=repr)
def test_non_strings_are_rejected(value: object) -> None:
    with pytest.raises(InvalidVersionError):
        validate_version(value)  # type: ignore[arg-type]


def test_version_object_refuses_invalid_text() -> None:
    with pytest.raises(InvalidVersionError):
        Version("1.2.0; rm -rf /")


# --- the same pattern in the trigger form's JSON schema -------------------------------------------------


@pytest.mark.parametrize("text", VALID)
def test_schema_pattern_accepts_valid(text: str) -> None:
    assert re.search(VERSION_PATTERN, text)


@pytest.mark.parametrize("text", INVALID, ids=repr)
def test_schema_pattern_rejects_invalid(text: str) -> None:
    # JSON schema `pattern` is an unanchored search (jsonschema calls re.search), so the pattern's own
    # anchors are all that keep a bad version out of the form.
    assert re.search(VERSION_PATTERN, text) is None


def test_re_search_is_what_jsonschema_does() -> None:
    # Ties the test above to the real validator Airflow's Param uses, so it is not a guess about semantics.
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator({"type": "string", "pattern": VERSION_PATTERN})
    for text in VALID + INVALID:
        assert validator.is_valid(text) == bool(re.search(VERSION_PATTERN, text)), repr(text)


# --- order ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lower", "higher"),
    [
        ("1.2.0", "1.10.0"),
        ("1.9", "1.10"),
        ("1.0.0-rc.1", "1.0.0"),
        ("1.0.0-rc.2", "1.0.0-rc.10"),
        ("1.0.0-alpha", "1.0.0-beta"),
        ("1.0.0-1", "1.0.0-rc"),  # numeric identifiers sort before alphanumeric ones, as in SemVer
        ("1.2", "1.2.0.1"),
        ("v0.9", "v1.0-p2"),
        ("1.0", "1.0.1-rc.1"),
    ],
    ids=lambda v: v,
)
def test_ordering(lower: str, higher: str) -> None:
    assert Version(lower) < Version(higher)
    assert Version(higher) > Version(lower)
    assert Version(lower) != Version(higher)


@pytest.mark.parametrize(("a", "b"), [("v1.2", "1.2.0"), ("1.2", "1.2.0.0"), ("v2.0.0-rc.1", "2.0-rc.1")])
def test_equal_spellings(a: str, b: str) -> None:
    assert Version(a) == Version(b)
    assert hash(Version(a)) == hash(Version(b))
    assert len({Version(a), Version(b)}) == 1
    assert Version(a) <= Version(b) <= Version(a)


def test_sorting_a_mixed_list() -> None:
    # v1.0-p2 is left out on purpose: the seed's "-p2" reads as a later patch, SemVer says pre-release.
    texts = ["1.10.0", "1.2.0", "1.0.0", "1.0.0-rc.10", "v0.9", "1.0.0-rc.2", "1.0.0-rc.1"]
    assert [str(v) for v in sorted(Version(t) for t in texts)] == [
        "v0.9",
        "1.0.0-rc.1",
        "1.0.0-rc.2",
        "1.0.0-rc.10",
        "1.0.0",
        "1.2.0",
        "1.10.0",
    ]


def test_a_version_is_not_equal_to_its_text() -> None:
    assert Version("1.2.0") != "1.2.0"
    assert repr(Version("v1.2")) == "Version('v1.2')"
