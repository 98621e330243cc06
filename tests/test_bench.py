"""bench/bench.py's own arithmetic: the goals of #12 and the before/after table.

The benchmark itself is run by `make bench`, not by the tests; these check, on
made-up medians, that a goal is judged against the right yardstick and that the
before and after of a ratio land in the same row, for each interpreter; and, for
real, that the package as the benchmark installs it (a stock Debian 12 tree, chroot)
logs in and then has nothing to do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from guest import require_guest_support
from standin_ecr import StandinECR

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import bench  # noqa: E402

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


def test_the_installed_package_gets_its_own_rows() -> None:
    interpreters = {**INTERPRETERS, f"{bench.STOCK}ecr-login_0.1.0-1_all.deb": "the .deb on stock Debian 12"}
    cases = summaries(pipeline=0.4, forced=0.19, no_op=0.039)
    cases |= {key.replace("_deb", "_stock"): value for key, value in cases.items() if "_deb" in key}
    rows = bench.goal_rows(cases, interpreters, [1, 50])
    stock = [row for row in rows if row["tag"] == "stock"]
    assert {row["interpreter"] for row in stock} == {"the .deb on stock Debian 12"}
    assert {row["numerator"] for row in stock if row["goal"]} >= {"ecr_login_stock_1_docker", "noop_stock_50_file"}


def test_a_home_in_the_tree_is_named_as_the_chrooted_run_sees_it(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    env = bench.isolated_env({"PATH": "/root/.pyenv/shims:/usr/bin", "AWS_PROFILE": "mine"},
                             root / "bench" / "home", "http://127.0.0.1:1", root)
    assert env["HOME"] == "/bench/home" and env["DOCKER_CONFIG"] == "/bench/home/.docker"
    assert (root / "bench" / "home" / ".aws" / "config").is_file()
    assert "pyenv" not in env["PATH"] and "AWS_PROFILE" not in env
    case = bench.Case("k", "s", "t", "i", 1, [], env, 1, root=root)
    assert case.host_path(env["DOCKER_CONFIG"]) == root / "bench" / "home" / ".docker"
    assert bench.seen_from(root, case.host_path(env["DOCKER_CONFIG"])) == Path(env["DOCKER_CONFIG"])


@pytest.fixture
def work_dir() -> Iterator[Path]:
    """Scratch for a whole Debian tree: under /var/tmp (other tests walk /tmp), removed after."""
    with tempfile.TemporaryDirectory(prefix="ecr-login-bench-", dir="/var/tmp") as directory:
        yield Path(directory)


def test_the_package_installed_in_a_stock_debian_12_tree_logs_in_through_chroot(
    tmp_path: Path, work_dir: Path, ecr: StandinECR
) -> None:
    """What `make bench` measures as the package: the .deb, dpkg-installed in the tests'
    debootstrapped Debian 12, run with chroot, against the stand-in on loopback."""
    require_guest_support()
    out = tmp_path / "out"
    subprocess.run(["make", "deb", f"OUT={out}"], cwd=REPO, check=True, capture_output=True, timeout=600)
    (deb,) = out.glob("ecr-login_*_all.deb")
    label, botocore_version = bench.install_stock(work_dir, deb)
    assert label.startswith(f"{deb.name} on stock Debian 12, python 3.11") and "pyOpenSSL" not in label
    assert botocore_version.startswith("1.29.")
    root = bench.stock_root(work_dir)
    env = bench.isolated_env(dict(os.environ), root / "bench" / "home", ecr.url, root)
    config = bench.write_config(root / "bench" / "ecr-login.conf", ecr.url, "file",
                                bench.registry_hosts(1), ["127.0.0.1:5999"])
    command = [bench.CHROOT, str(root), "/usr/bin/ecr-login", "--config", "/bench/ecr-login.conf"]
    assert config == root / "bench" / "ecr-login.conf"
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert ecr.call_count == 1
    assert "127.0.0.1:5999" in json.loads((root / "bench" / "home" / ".docker" / "config.json").read_text())["auths"]
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "nothing to do" in again.stderr
    assert ecr.call_count == 1  # nothing due: no AWS call
