"""A fleet boot storm against GetAuthorizationToken's throttle (#18.12).

AWS documents the call's limit as a token bucket per account and region: 200
calls, refilled at 20 per second. A throttled run must wait for what the
bucket can give (``deadline.retry_delay``: full jitter over a window sized by
the refill, as the AWS SDKs' standard and adaptive retry modes do), not retry
after 0.25-0.5 s when only 5-10 calls have refilled.

Two proofs: a model of the fleet that runs ``deadline.retry_delay`` itself on
a simulated clock (600 hosts, and the small storm), and a storm of 20 real
``ecr-login`` processes against the stand-in ECR API throttling with a real
token bucket (``StandinECR(throttle_bucket=...)``).
"""

from __future__ import annotations

import heapq
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aws_fakes import HOST
from conftest import REPO_ROOT
from standin_ecr import StandinECR

from ecr_login_pkg.deadline import LAST_CALL_ROOM, retry_delay

TIMEOUT = 120.0  # the default ``timeout``


def model(hosts: int, capacity: float, rate: float, seed: int, timeout: float = TIMEOUT) -> tuple[float, int, float]:
    """(calls per host, hosts logged in, when the last one was) for ``hosts`` starting within 1 s."""
    rng = random.Random(seed)
    tokens, counted = capacity, 0.0
    events = [(rng.uniform(0, 1), host, 0, False) for host in range(hosts)]
    heapq.heapify(events)
    calls, served, last_served = 0, 0, 0.0
    while events:
        now, host, attempt, last = heapq.heappop(events)
        tokens, counted = min(capacity, tokens + (now - counted) * rate), now
        calls += 1
        if tokens >= 1:
            tokens -= 1
            served, last_served = served + 1, now
            continue
        wait = retry_delay(attempt, True, timeout - now, last, rng.uniform)
        if wait is not None:
            heapq.heappush(events, (now + wait[0], host, attempt + 1, wait[1]))
    return calls / hosts, served, last_served


@pytest.mark.parametrize(("hosts", "capacity", "rate", "most"), [(600, 200, 20, 2.0), (300, 200, 20, 2.0), (20, 5, 1, 3.0)])
def test_a_modelled_storm_costs_few_calls_per_host_and_every_host_logs_in(hosts, capacity, rate, most) -> None:  # type: ignore[no-untyped-def]
    """Was (equal jitter from 0.5 s): 3.9 calls per host for 600 hosts, 4.2 in the small storm."""
    for seed in range(10):
        per_host, served, last = model(hosts, capacity, rate, seed)
        assert served == hosts, (seed, served)
        assert per_host <= most, (seed, per_host)
        assert last < TIMEOUT - LAST_CALL_ROOM, (seed, last)


def test_a_last_try_uses_the_time_left() -> None:
    """A delay that would pass the deadline: one last try LAST_CALL_ROOM before it, then no more."""
    assert retry_delay(5, False, 10.0, False, lambda a, b: b) == (10.0 - LAST_CALL_ROOM, True)
    assert retry_delay(5, False, 10.0, True, lambda a, b: b) is None
    assert retry_delay(0, True, 3.5, False, lambda a, b: b) == (0.5, True)  # too little to spread over
    assert retry_delay(0, False, 100.0, False, lambda a, b: b) == (0.5, False)


@pytest.mark.slow  # waits out a timeout (or a throttled bucket): not in make test-fast
def test_a_storm_of_real_processes_against_a_throttling_endpoint(aws_env, write_config, token_password, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """20 hosts at once, a bucket of 5 refilled at 1/s: all 20 log in, at most 3 calls per host
    (the AWS CLI pipeline in standard retry mode got a password for 8 of them)."""
    hosts = 20
    with StandinECR(password=token_password, throttle_bucket=(5, 1)) as ecr:
        config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\n\n[{HOST}]\n")
        runs = []
        started = time.monotonic()
        for host in range(hosts):
            home = tmp_path / f"host{host}"
            home.mkdir()
            env = dict(os.environ, HOME=str(home), DOCKER_CONFIG=str(home / ".docker"),
                       XDG_STATE_HOME=str(home / "state"), XDG_RUNTIME_DIR=str(home), PYTHONPATH=str(REPO_ROOT))
            env.pop("JOURNAL_STREAM", None)
            env.pop("INVOCATION_ID", None)
            runs.append(subprocess.Popen([sys.executable, "-m", "ecr_login_pkg", "--config", config],
                                         env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, text=True))
        outcomes = [(run.wait(timeout=TIMEOUT + 30), run.communicate()[1]) for run in runs]
        took = time.monotonic() - started
        calls = ecr.ecr_calls()
    failed = [stderr for code, stderr in outcomes if code != 0]
    assert not failed, failed[:2]
    assert took < TIMEOUT + 10, took
    for host in range(hosts):
        assert HOST in Path(tmp_path / f"host{host}" / ".docker" / "config.json").read_text()
    assert len([call for call in calls if call.behaviour != "throttled"]) == hosts
    assert len(calls) <= 3 * hosts, len(calls)


@pytest.mark.slow  # waits out a timeout (or a throttled bucket): not in make test-fast
def test_a_run_that_gives_up_used_its_time_and_says_how_long_it_retried(aws_env, write_config, token_password) -> None:  # type: ignore[no-untyped-def]
    """503 for ever, ``timeout = 8s``: the last try starts shortly before the deadline (was: the run
    stopped when the next delay would pass it), and the message says how long it retried (was
    "within 8s", whatever start-up had used)."""
    with StandinECR(password=token_password) as ecr:
        ecr.script(["503"] * 100)
        config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\ntimeout = 8s\n\n[{HOST}]\n")
        done = subprocess.run([sys.executable, "-m", "ecr_login_pkg", "--config", config], capture_output=True, text=True,
                              env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)), stdin=subprocess.DEVNULL, timeout=60)
        calls = ecr.ecr_calls()
    assert done.returncode == 75, done.stderr
    (line,) = [line for line in done.stderr.splitlines() if ": error: " in line]
    assert "gave up after" in line and " over " in line and "the run's timeout: 8s" in line, line
    spent = float(line.split(" over ", 1)[1].split("s;", 1)[0])
    assert 8 - LAST_CALL_ROOM - 1 <= spent <= 8, line
    assert calls[-1].started_monotonic - calls[0].started_monotonic >= 8 - LAST_CALL_ROOM - 1
