"""bench/bench.py's own arithmetic: the goals of #12 and the before/after table.

The benchmark itself is run by `make bench`, not by the tests; these check, on
made-up medians, that a goal is judged against the right yardstick and that the
before and after of a ratio land in the same row, for each interpreter.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))

import bench

INTERPRETERS = {"/usr/bin/python3": "python 3.11.2 (/usr/bin/python3)", "/opt/py/bin/python3": "python 3.12.1 (/opt/py)"}


def summaries(pipeline: float, forced: float, no_op: float) -> dict[str, dict[str, float]]:
    cases = {"pipeline_1": pipeline, "pipeline_50": 50 * pipeline, "pass_deb": 0.01, "pass_local": 0.03,
             "aws_alone": pipeline}
    for tag in ("deb", "local"):
        for store in ("docker", "file"):
            cases[f"ecr_login_{tag}_1_{store}"] = forced
            cases[f"ecr_login_{tag}_50_{store}"] = forced * 1.2
            cases[f"noop_{tag}_1_{store}"] = no_op
            cases[f"noop_{tag}_50_{store}"] = no_op
        cases[f"botocore_{tag}"] = forced * 0.8
    return {key: {"median_s": value, "median_cpu_s": value, "median_peak_rss_kb": 1000} for key, value in cases.items()}


def test_the_no_op_goal_is_a_tenth_of_the_pipeline_not_a_ratio_to_the_interpreter() -> None:
    rows = bench.goal_rows(summaries(pipeline=0.4, forced=0.19, no_op=0.039), INTERPRETERS, [1, 50])
    no_op = [row for row in rows if row["goal"] == "no_op"]
    assert {row["denominator"] for row in no_op} == {"pipeline_1"}
    assert all(row["met"] for row in no_op) and len(no_op) == 4
    missed = bench.goal_rows(summaries(pipeline=0.4, forced=0.19, no_op=0.041), INTERPRETERS, [1, 50])
    assert not any(row["met"] for row in missed if row["goal"] == "no_op")
    # the old yardstick stays, for information only
    assert all(row["goal"] is None for row in rows if row["denominator"].startswith("pass_"))


def test_each_goal_is_judged_on_its_own_limit() -> None:
    rows = bench.goal_rows(summaries(pipeline=0.4, forced=0.21, no_op=0.01), INTERPRETERS, [1, 50])
    forced = [row for row in rows if row["goal"] == "one_registry"]
    assert forced and all(not row["met"] and row["ratio"] == 0.21 / 0.4 for row in forced)
    many = [row for row in rows if row["goal"] == "many_registries"]
    assert many and all(row["met"] for row in many)  # 0.252 s / 20 s
    assert not [row for row in rows if row["measure"] == "rss" and row["goal"] is not None]  # memory: no goal


def test_before_and_after_share_a_row_per_ratio_and_a_column_pair_per_interpreter() -> None:
    before = bench.goal_rows(summaries(pipeline=0.5, forced=0.2, no_op=0.02), INTERPRETERS, [1, 50])
    after = bench.goal_rows(summaries(pipeline=0.4, forced=0.26, no_op=0.04), INTERPRETERS, [1, 50])
    table = bench.comparison(before, after, "abc1234").splitlines()
    assert table[0].count("before (abc1234)") == 2
    forced_row = next(line for line in table if line.startswith("| 1 registry: ecr-login --force (docker store)"))
    cells = [cell.strip() for cell in forced_row.strip("|").split("|")]
    assert cells[1] == "<= 0.5x"
    assert cells[2:] == ["0.200 s / 0.500 s = 0.400x, met", "0.260 s / 0.400 s = 0.650x, MISSED"] * 2
    assert len(table) == 2 + len(after) // len(INTERPRETERS)


def test_a_ratio_missing_before_is_shown_as_missing_not_as_zero() -> None:
    old = summaries(pipeline=0.5, forced=0.2, no_op=0.02)
    del old["botocore_deb"]
    before = bench.goal_rows(old, INTERPRETERS, [1, 50])
    after = bench.goal_rows(summaries(pipeline=0.4, forced=0.26, no_op=0.04), INTERPRETERS, [1, 50])
    row = next(line for line in bench.comparison(before, after, "x").splitlines() if "botocore alone" in line)
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[2] == "-" and cells[3].endswith("x")
