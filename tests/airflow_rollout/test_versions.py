"""Release versions: the strict form (they reach argv, file names and Slack) and their order."""

from __future__ import annotations

import random
import re

import pytest

from airflow_rollout.config import INCLUDE_DIR, load_profile
from airflow_rollout.versions import SCHEMES, VERSION_PATTERN, InvalidVersionError, Version, VersionScheme, validate_version

SEMVER, PEP440, PATCH_SUFFIX = VersionScheme.SEMVER, VersionScheme.PEP440, VersionScheme.PATCH_SUFFIX

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

# PEP 440's normalized tails: the pattern accepts them, only the pep440 scheme orders them.
PEP440_TAILS = ["1.0.post1", "1.0rc1", "2.0.0.dev3", "1.0a1", "1.0b2", "v1.0a1.post2.dev3", "1.2.3.4rc999999"]

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
    "1.0..post1",
    "1.0.post",
    "1.0rc",
    "1.0.rc1",
    "1.0c1",
    "1.0.POST1",
    "1.0+local",
    "1.0rc1\n",
    "1.0.post1;id",
    "1.0.dev3/../x",
    "1.0 rc1",
    "1.0rc1234567",
]


@pytest.mark.parametrize("text", VALID)
def test_valid_versions(text: str) -> None:
    assert validate_version(text) == text
    assert str(Version(text)) == text


@pytest.mark.parametrize("text", PEP440_TAILS)
def test_pep440_tails_are_valid_and_only_pep440_orders_them(text: str) -> None:
    assert validate_version(text) == validate_version(text, PEP440) == text
    assert str(Version(text, PEP440)) == text
    for scheme in (SEMVER, PATCH_SUFFIX):
        with pytest.raises(InvalidVersionError, match=f"no place in the {scheme} order.*version_scheme: pep440"):
            Version(text, scheme)
        with pytest.raises(InvalidVersionError):
            validate_version(text, scheme)


@pytest.mark.parametrize("text", ["v1.0-p2", "1.0.0-alpha.beta", "1.2.3-x.y"])
def test_pep440_refuses_what_it_cannot_order(text: str) -> None:
    assert validate_version(text) == text  # the safe form: only the scheme has no place for it
    with pytest.raises(InvalidVersionError, match="is not a PEP 440 version"):
        validate_version(text, PEP440)
    with pytest.raises(InvalidVersionError, match="is not a PEP 440 version"):
        Version(text, "pep440")


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


@pytest.mark.parametrize("text", VALID + PEP440_TAILS)
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
    for text in VALID + PEP440_TAILS + INVALID:
        assert validator.is_valid(text) == bool(re.search(VERSION_PATTERN, text)), repr(text)


# --- order, per scheme -----------------------------------------------------------------------------------


def test_every_scheme_is_registered_under_its_name() -> None:
    assert set(SCHEMES) == set(VersionScheme)
    assert all(scheme.name is name for name, scheme in SCHEMES.items())


def test_seed_003_orders_its_tags_as_patches() -> None:
    # "v1.0-p2" is v1.0 with its P2 improvements: a later release than v1.0, not a pre-release of it.
    profile = load_profile("routing-ml-platform", INCLUDE_DIR / "systems")
    assert profile.version_scheme is PATCH_SUFFIX
    assert Version("v0.9", profile.version_scheme) < Version("v1.0", profile.version_scheme) < Version("v1.0-p2", profile.version_scheme)


ORDERED = [
    (SEMVER, "1.2.0", "1.10.0"),
    (SEMVER, "1.9", "1.10"),
    (SEMVER, "1.0.0-rc.1", "1.0.0"),
    (SEMVER, "1.0.0-rc.2", "1.0.0-rc.10"),
    (SEMVER, "1.0.0-alpha", "1.0.0-beta"),
    (SEMVER, "1.0.0-1", "1.0.0-rc"),  # numeric identifiers sort before alphanumeric ones, as in SemVer
    (SEMVER, "1.2", "1.2.0.1"),
    (SEMVER, "v0.9", "v1.0-p2"),
    (SEMVER, "1.0", "1.0.1-rc.1"),
    (SEMVER, "v1.0-p2", "v1.0"),  # SemVer's reading of seed 003's tag: a pre-release (hence patch_suffix)
    (PATCH_SUFFIX, "v1.0", "v1.0-p2"),
    (PATCH_SUFFIX, "v1.0-p2", "v1.1"),
    (PATCH_SUFFIX, "v1.0-p1", "v1.0-p2"),
    (PATCH_SUFFIX, "v1.0-p2", "v1.0-p10"),
    (PATCH_SUFFIX, "v1.0-p2", "v1.0-p2.1"),
    (PATCH_SUFFIX, "v1.0-p99", "v1.0.1"),
    (PATCH_SUFFIX, "v0.9", "v1.0-p2"),
    (PATCH_SUFFIX, "v1.0-rc1", "v1.0"),
    (PATCH_SUFFIX, "v1.0-beta", "v1.0-rc1"),
    (PATCH_SUFFIX, "1.0.0-rc.2", "1.0.0-rc.10"),
    (PATCH_SUFFIX, "v1.0-P1", "v1.0-p2"),
    (PEP440, "1.0rc1", "1.0"),
    (PEP440, "1.0", "1.0.post1"),
    (PEP440, "1.0rc1", "1.0.post1"),
    (PEP440, "1.0.dev1", "1.0a1"),
    (PEP440, "1.0a1", "1.0b1"),
    (PEP440, "1.0b1", "1.0rc1"),
    (PEP440, "2.0.0.dev3", "2.0.0"),
    (PEP440, "1.0.post1", "1.0.1"),
    (PEP440, "1.0.post1.dev1", "1.0.post1"),
    (PEP440, "v1.9", "1.10"),
    (PEP440, "2.0.0-rc.1", "2.0.0"),  # PEP 440 reads the dashed spelling too
]


@pytest.mark.parametrize(("scheme", "lower", "higher"), ORDERED, ids=str)
def test_ordering(scheme: VersionScheme, lower: str, higher: str) -> None:
    assert Version(lower, scheme) < Version(higher, scheme)
    assert Version(higher, scheme) > Version(lower, scheme)
    assert Version(lower, scheme) != Version(higher, scheme)


def test_the_default_scheme_is_semver() -> None:
    assert Version("v1.0-p2") == Version("v1.0-p2", SEMVER) < Version("v1.0")


EQUAL = [
    (SEMVER, "v1.2", "1.2.0"),
    (SEMVER, "1.2", "1.2.0.0"),
    (SEMVER, "v2.0.0-rc.1", "2.0-rc.1"),
    (PATCH_SUFFIX, "v1.0-p2", "1.0.0-p2"),
    (PATCH_SUFFIX, "v1.0", "1.0.0.0"),
    (PEP440, "v1.0rc1", "1.0.0rc1"),
    (PEP440, "2.0.0-rc.1", "2.0.0rc1"),
]


@pytest.mark.parametrize(("scheme", "a", "b"), EQUAL, ids=str)
def test_equal_spellings(scheme: VersionScheme, a: str, b: str) -> None:
    assert Version(a, scheme) == Version(b, scheme)
    assert hash(Version(a, scheme)) == hash(Version(b, scheme))
    assert len({Version(a, scheme), Version(b, scheme)}) == 1
    assert Version(a, scheme) <= Version(b, scheme) <= Version(a, scheme)


# Each scheme's whole order, oldest first.
CHAINS = {
    SEMVER: ["v0.9", "1.0.0-1", "1.0.0-alpha", "v1.0-p2", "1.0.0-rc.1", "1.0.0-rc.2", "1.0.0-rc.10", "1.0.0", "1.0.1", "1.2.0", "1.10.0"],
    PATCH_SUFFIX: ["v0.9", "v1.0-beta", "v1.0-rc1", "v1.0", "v1.0-p1", "v1.0-p2", "v1.0-p10", "v1.0.1", "v1.1", "v1.10"],
    PEP440: ["0.9", "1.0.dev1", "1.0a1", "1.0b2", "1.0rc1", "1.0", "1.0.post1.dev1", "1.0.post1", "1.0.1", "1.1", "1.10"],
}


@pytest.mark.parametrize("scheme", list(CHAINS))
def test_sorting_a_mixed_list(scheme: VersionScheme) -> None:
    texts = CHAINS[scheme]
    shuffled = random.Random(3).sample(texts, len(texts))
    assert [str(v) for v in sorted(Version(t, scheme) for t in shuffled)] == texts


def test_versions_of_different_schemes_do_not_compare() -> None:
    assert Version("1.0") != Version("1.0", PEP440)
    with pytest.raises(TypeError, match="different schemes"):
        _ = Version("1.0") < Version("1.0", PATCH_SUFFIX)


def test_an_unknown_scheme_is_refused() -> None:
    with pytest.raises(ValueError, match="calver"):
        Version("1.0", "calver")


def test_a_version_is_not_equal_to_its_text() -> None:
    assert Version("1.2.0") != "1.2.0"
    assert repr(Version("v1.2")) == "Version('v1.2')"
    assert repr(Version("v1.0-p2", PATCH_SUFFIX)) == "Version('v1.0-p2', 'patch_suffix')"
