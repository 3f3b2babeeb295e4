"""docs/guarantees.md and the fault matrix (every tests/faults/test_fault_matrix*.py) name the same scenarios, one row per test case."""

from __future__ import annotations

import ast
import re

from testenv import ROOT


def scenarios_in_tests() -> set[str]:
    names: set[str] = set()
    for path in sorted((ROOT / "tests" / "faults").glob("test_fault_matrix*.py")):
        names |= scenarios_in(ast.parse(path.read_text()))
    return names


def scenarios_in(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test_"):
            continue
        ids = [
            ast.literal_eval(keyword.value)
            for decorator in node.decorator_list
            if isinstance(decorator, ast.Call)
            for keyword in decorator.keywords
            if keyword.arg == "ids"
        ]
        names |= {f"{node.name}[{case}]" for case in ids[0]} if ids else {node.name}
    return names


def scenarios_in_doc() -> list[str]:
    text = (ROOT / "docs" / "guarantees.md").read_text()
    return re.findall(r"^\| `(test_[^`]+)` \|", text, flags=re.M)


def test_every_scenario_has_one_row_and_every_row_a_test():
    documented = scenarios_in_doc()
    assert len(documented) == len(set(documented)), "a scenario is documented twice"
    assert set(documented) == scenarios_in_tests()
    assert len(documented) >= 15
