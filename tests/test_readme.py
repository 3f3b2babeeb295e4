"""The README's profile example must stay a profile the package accepts."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from airflow_rollout.config import parse_profile

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_profile_example_is_valid():
    blocks = re.findall(r"```yaml\n(.*?)```", README.read_text(), flags=re.S)
    example = next(block for block in blocks if "ledger_conn_id" in block)
    profile = parse_profile(yaml.safe_load(example), "README.md")
    assert profile.name == "billing"
    assert profile.data_targets[0].backup.jobs == 4
