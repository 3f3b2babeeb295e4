"""Expectations over a JSON document an item check read (a Kubernetes object, a Databricks API answer, a Delta table's detail).

An expectation names a path into the document and what every value found there must be. A path is a list of
keys and list indexes; `"*"` stands for every element of a list (or every value of a mapping), so
`[spec, template, spec, containers, "*", resources, limits, memory]` reads the memory limit of each container.
Keys holding dots (`pod-security.kubernetes.io/enforce`) are one step: no escaping is needed. A string that
holds a JSON object (a cluster policy's `definition`) is read as that object when the path goes on into it.

With `match: all` (the default) every value must satisfy the comparison, and a branch of a `"*"` that lacks the
rest of the path counts as a value that is missing (a container without `resources.limits` fails "every container
has a memory limit"); with `match: any`, at least `min_count` values must satisfy it (an HPA among several that
scales the backend). Either way at least `min_count` values must be found, so an expectation cannot pass on a
document that lacks what the item states. Without a comparison, each value must be present and not empty.
With `absent: true` the path must lead nowhere: a value found fails, and each branch that breaks off counts toward
`min_count` (`match: any`, `min_count: 3` over nodes' control-plane label: three nodes without it).
`contains` with a mapping finds a list element holding those fields (a condition `{type: Ready, status: "True"}`
among its reason, message and times). `equals_path` compares with the one value at another path of the same
document (a StatefulSet's `status.readyReplicas` with its `spec.replicas`: every replica ready, whatever the count).
`max_age_days` holds an RFC 3339 time to at most that many days before the run's time (the check's context's `at`,
never the wall clock of a retry). `where_present` keeps, of the list the path's first `"*"` runs over, only the
elements that hold a value at that path of their own (the managedFields entries of a Secret's writers of `data`).
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, model_validator

from airflow_rollout.config import StrictModel
from airflow_rollout.item_checks.expectation import same

if TYPE_CHECKING:
    from airflow_rollout.evidence import Evidence

Scalar = str | int | float | bool
PathStep = Annotated[str, Field(min_length=1, max_length=253)] | Annotated[int, Field(ge=0)]


class Expectation(StrictModel):
    path: list[PathStep] = Field(min_length=1)
    equals: Scalar | dict[str, Any] | list[Any] | None = None
    one_of: list[Scalar] | None = Field(default=None, min_length=1)
    at_least: float | None = None
    at_most: float | None = None
    contains: Scalar | dict[str, Any] | None = Field(
        default=None, description="a list value holds this element (a mapping: an element with these fields, others allowed)"
    )
    absent: bool = Field(False, description="the path must lead nowhere: a value found fails, each branch without it counts")
    min_count: Annotated[int, Field(ge=1)] = Field(1, description="how many values the path must find at least")
    match: Literal["all", "any"] = Field("all", description="all: every value found must satisfy it; any: min_count of them")
    equals_path: list[PathStep] | None = Field(
        default=None,
        min_length=1,
        description="equals the one value at this other path of the document (a StatefulSet's readyReplicas its spec.replicas)",
    )
    max_age_days: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="an RFC 3339 time at most this many days before the run's time"
    )
    where_present: list[PathStep] | None = Field(
        default=None, min_length=1, description="only the elements of the path's first '*' list holding a value at this path of theirs"
    )

    @model_validator(mode="after")
    def _bounds_in_order(self) -> Expectation:
        if self.at_least is not None and self.at_most is not None and self.at_least > self.at_most:
            raise ValueError(f"at_least {self.at_least:g} is above at_most {self.at_most:g}: nothing could pass")
        compared = (self.equals, self.one_of, self.contains, self.at_least, self.at_most, self.equals_path, self.max_age_days)
        if self.where_present is not None and "*" not in self.path:
            raise ValueError("where_present picks elements of the list a '*' of the path runs over: the path has none")
        if self.absent and any(c is not None for c in compared):
            raise ValueError("absent compares nothing: a value found fails it")
        if self.equals is not None and self.equals_path is not None:
            raise ValueError("equals and equals_path both name the value wanted: give one")
        return self

    def path_text(self) -> str:
        return ".".join(f"[{step}]" if isinstance(step, int) or "." in step else step for step in self.path)

    def wanted(self) -> str:
        parts = [f"{name} {json.dumps(value)}" for name in ("equals", "one_of", "contains") if (value := getattr(self, name)) is not None]
        parts += [f"at least {self.at_least:g}"] if self.at_least is not None else []
        parts += [f"at most {self.at_most:g}"] if self.at_most is not None else []
        parts += [f"at most {self.max_age_days:g} days before the run"] if self.max_age_days is not None else []
        if self.absent:
            return f"{self.min_count}+ branches without it" if self.match == "any" else "no value"
        found = f"{self.min_count}+ values" if self.min_count > 1 else "a value"
        which = "each" if self.match == "all" else f"{self.min_count}+ of them"
        return f"{found}, {which} {' and '.join(parts) if parts else 'set'}"

    def problem(self, value: Any, at: datetime | None = None) -> str | None:
        """Why `value` does not satisfy the comparison (`at`: the run's time, for max_age_days), or None when it does."""
        if self.absent:
            return "present"
        if self.max_age_days is not None and (why := _age_problem(value, self.max_age_days, at)):
            return why
        compared = (self.equals, self.one_of, self.contains, self.at_least, self.at_most, self.max_age_days)
        if all(c is None for c in compared):
            return "empty" if value is None or value in ("", [], {}) else None
        number = _number(value)
        failures = [
            (self.equals is not None and not _same(value, self.equals), "differs"),
            (self.one_of is not None and not any(_same(value, choice) for choice in self.one_of or []), "not one of them"),
            (
                self.contains is not None and not (isinstance(value, list) and any(_holds(e, self.contains) for e in value)),
                "does not contain it",
            ),
            ((self.at_least is not None or self.at_most is not None) and number is None, "not a number"),
            (number is not None and self.at_least is not None and number < self.at_least, "below the bound"),
            (number is not None and self.at_most is not None and number > self.at_most, "above the bound"),
        ]
        return next((why for failed, why in failures if failed), None)


def _age_problem(value: Any, max_age_days: float, at: datetime | None) -> str | None:
    if at is None:
        return "no run time to measure the age from"
    try:
        written = datetime.fromisoformat(str(value))
    except ValueError:
        return "not an RFC 3339 time"
    if written.tzinfo is None:
        return "a time without its zone"
    age_days = (at - written).total_seconds() / 86400
    return f"{age_days:.1f} days before the run" if age_days > max_age_days else None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _same(value: Any, expected: Any) -> bool:
    """A scalar compares as the value kinds do (APIs answer numbers and booleans as strings at times); a mapping or list as is."""
    return same(value, expected) if isinstance(expected, Scalar) else bool(value == expected)


def _holds(element: Any, wanted: Scalar | dict[str, Any]) -> bool:
    """A list element is the scalar wanted, or has each field of the mapping wanted: a Kubernetes condition
    ({type: Ready, status: "True"}) carries a reason, a message and times beside them."""
    if isinstance(wanted, dict):
        return isinstance(element, dict) and all(key in element and _same(element[key], value) for key, value in wanted.items())
    return _same(element, wanted)


def _label(index: int, element: Any) -> str:
    """How the evidence names a list element: by its name when it has one (a Deployment, a policy, a job's task), else its index."""
    if isinstance(element, dict):
        name = (element.get("metadata") or {}).get("name") if isinstance(element.get("metadata"), dict) else None
        name = name or element.get("name") or element.get("task_key")
        if isinstance(name, str) and name:
            return name
    return str(index)


def _parsed(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def values_at(document: Any, path: list[str | int]) -> tuple[list[tuple[str, Any]], list[str]]:
    """Each value at `path` with the concrete path it was found at, and where the path broke off (a missing key)."""
    found: list[tuple[str, Any]] = [("", document)]
    missing: list[str] = []
    for step in path:
        following: list[tuple[str, Any]] = []
        for where, value in found:
            node = _parsed(value) if isinstance(value, str) and value.lstrip().startswith(("{", "[")) else value
            if step == "*":
                children = enumerate(node) if isinstance(node, list) else node.items() if isinstance(node, dict) else []
                following += [
                    (f"{where}[{_label(key, child)}]" if isinstance(key, int) else f"{where}.{key}", child) for key, child in children
                ]
            elif isinstance(step, int) and isinstance(node, list) and step < len(node):
                following.append((f"{where}[{step}]", node[step]))
            elif isinstance(step, str) and isinstance(node, dict) and step in node:
                following.append((f"{where}.{step}", node[step]))
            else:
                missing.append(f"{where}.{step}".lstrip(".") if isinstance(step, str) else f"{where}[{step}]")
        found = following
    return [(where.lstrip("."), value) for where, value in found], missing


class JsonGetCheck(StrictModel):
    """What the item kinds that GET a documented JSON API share: the query parameters, the expectations on the answer."""

    params: dict[Annotated[str, Field(pattern=r"^[a-z_]{1,64}$")], str] = Field(
        default_factory=dict, description="the documented GET parameters"
    )
    expect: list[Expectation] = Field(min_length=1)

    def judge(self, document: Any, path: str, conn_id: str) -> Evidence:
        """The evidence of the answer `document` to GET `path` (with the check's parameters) through `conn_id`."""
        from airflow_rollout.evidence import Evidence

        query = "?" + "&".join(f"{k}={v}" for k, v in self.params.items()) if self.params else ""
        passed, detail, numbers = check_document(document, self.expect, f"GET {path}{query} via {conn_id}")
        return Evidence(passed, detail, numbers)


def _resolved(document: Any, expectation: Expectation) -> Expectation:
    """The expectation with `equals_path` read from the document into `equals`: that path must find exactly one value,
    else nothing equals it (a StatefulSet without spec.replicas has no count its ready pods could reach)."""
    if expectation.equals_path is None:
        return expectation
    found, _ = values_at(document, list(expectation.equals_path))
    other = ".".join(str(step) for step in expectation.equals_path)
    wanted: Any = found[0][1] if len(found) == 1 and found[0][1] is not None else f"<{len(found)} values at {other}>"
    return Expectation.model_validate({**expectation.model_dump(exclude={"equals_path"}), "equals": wanted})


def _narrowed(document: Any, expectation: Expectation) -> Any:
    """The document with the list the path's first "*" runs over holding only the elements `where_present` keeps."""
    if expectation.where_present is None:
        return document
    star = expectation.path.index("*")
    narrowed = copy.deepcopy(document)
    found, _ = values_at(narrowed, list(expectation.path[:star]))
    for _, elements in found:
        if isinstance(elements, list):
            elements[:] = [
                e for e in elements if any(v not in (None, "", [], {}) for _, v in values_at(e, list(expectation.where_present))[0])
            ]
    return narrowed


def check_document(
    document: Any, expectations: list[Expectation], source: str, at: datetime | None = None
) -> tuple[bool, str, dict[str, Any]]:
    """Whether every expectation holds of `document` (`at`: the run's time), what was compared (for the evidence), and the
    values found."""
    lines, numbers, passed = [], {}, True
    for expectation in (_resolved(document, e) for e in expectations):
        found, missing = values_at(_narrowed(document, expectation), list(expectation.path))
        wrong = [f"{where} = {json.dumps(value)} ({why})" for where, value in found if (why := expectation.problem(value, at))]
        wrong += [f"{where} missing" for where in missing] if expectation.match == "all" and not expectation.absent else []
        shown = ", ".join(json.dumps(value) for _, value in found[:6]) + (", ..." if len(found) > 6 else "")
        numbers[expectation.path_text()] = [value for _, value in found[:20]]
        satisfying = len(found) - len(wrong) + (len(missing) if expectation.match == "all" or expectation.absent else 0)
        held = satisfying >= expectation.min_count and (expectation.match == "any" or not wrong)
        if not held:
            passed = False
            reason = "; ".join(wrong[:4]) if wrong else f"found {len(found)} value(s)"
            if expectation.absent and expectation.match == "any":  # the present values are not the point: too few lack it
                reason = f"{len(missing)} branch(es) without it"
            lines.append(f"{expectation.path_text()}: FAILED, expected {expectation.wanted()}: {reason}")
        else:
            lines.append(f"{expectation.path_text()} = {shown} (expected {expectation.wanted()})")
    return passed, f"{source}: " + "; ".join(lines), numbers
