"""The inline SVG charts: labels escaped, gaps where nothing was measured, readable axes."""

from __future__ import annotations

import re

import pytest

from airflow_rollout.dashboard.charts import Chart, Series, Threshold, nice_top, svg


def test_labels_and_names_are_escaped():
    chart = Chart('<b onmouseover="x">p95</b>', "ms", ["1.0.0", "<script>alert(1)</script>"], [Series("<i>check</i>", [10.0, 20.0])])

    drawn = str(svg(chart))

    assert "<script>" not in drawn and "<b " not in drawn and "<i>" not in drawn
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in drawn and "&lt;i&gt;check&lt;/i&gt;" in drawn


def test_a_release_without_a_measurement_leaves_a_gap_and_thresholds_are_drawn():
    chart = Chart("Error rate", "%", ["a", "b", "c"], [Series("probe", [0.0, None, 0.33])], [Threshold("roll back", 0.1)], scale=100)

    drawn = str(svg(chart))

    assert len(re.findall(r"<circle ", drawn)) == 2
    assert "probe at c: 33 %" in drawn and "probe at b" not in drawn
    assert "roll back 10</text>" in drawn


def test_nothing_measured_is_said_in_words():
    assert "nothing measured yet" in str(svg(Chart("RTO", "s", [], [Series("RTO", [])])))


@pytest.mark.parametrize(("value", "top"), [(0.8, 1.0), (1.0, 1.0), (3.3, 5.0), (36.7, 50.0), (101, 200.0), (0, 1.0), (2.2, 2.5)])
def test_axis_tops_are_round_numbers(value, top):
    assert nice_top(value) == top
