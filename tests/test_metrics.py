"""The Prometheus textfile metrics (metrics.py): one series per registry and store, no stale
placeholders, one atomic write. Each test pins down a bug a code review found: the metrics
repeated a series per location, and kept stale ``default:`` placeholders."""

from __future__ import annotations

import os
import pwd
import stat
from pathlib import Path

import pytest

from ecr_login_pkg.metrics import render, write_metrics
from ecr_login_pkg.state import State

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"

ME = pwd.getpwuid(os.geteuid()).pw_name  # the user label of the metrics


def series(text: str) -> list[str]:
    return [line.rsplit(" ", 1)[0] for line in text.splitlines() if line and not line.startswith("#")]


def test_metrics_have_one_series_per_registry_and_store_the_newest(tmp_path: Path) -> None:
    state = State(str(tmp_path))
    old = state.entry(HOST, "file", "/home/a/.docker/config.json")  # DOCKER_CONFIG used to point here
    old.expires_at, old.last_success, old.last_attempt, old.failures = 1.0e9, 0.9e9, 1.5e9, 9
    new = state.entry(HOST, "file", "/home/b/.docker/config.json")
    new.expires_at, new.last_success, new.last_attempt = 2e9, 1.9e9, 1.9e9
    state.entry(HOST, "containers", "/home/b/.config/containers/auth.json").expires_at = 3e9
    text = render(state, 1.95e9)
    names = series(text)
    assert len(names) == len(set(names)), text
    expiry = f'ecr_login_expiry_timestamp_seconds{{registry="{HOST}",store="file",user="{ME}"}}'
    assert f"{expiry} 2000000000" in text.splitlines()
    assert f'ecr_login_consecutive_failures{{registry="{HOST}",store="file",user="{ME}"}} 0' in text.splitlines()
    assert f'ecr_login_expiry_timestamp_seconds{{registry="{HOST}",store="containers",user="{ME}"}} 3000000000' in text.splitlines()


def test_superseded_default_placeholders_are_not_rendered_and_can_be_forgotten(tmp_path: Path) -> None:
    state = State(str(tmp_path))
    failed = state.entry("default:us-east-1", "file", "/c.json")
    failed.last_attempt, failed.failures, failed.last_exit = 100.0, 2, 75
    other = state.entry("default:eu-west-1", "file", "/c.json")  # its registry is still unknown: kept
    other.last_attempt, other.failures = 100.0, 1
    real = state.entry(HOST, "file", "/c.json")
    real.last_success, real.expires_at = 200.0, 5000.0
    state.default_hosts["us-east-1|||"] = HOST
    text = render(state, 300.0)
    assert "default:us-east-1" not in text and "default:eu-west-1" in text and HOST in text
    state.forget_default_placeholders()
    assert state.find("default:us-east-1", "file", "/c.json") is None
    assert state.find("default:eu-west-1", "file", "/c.json") is not None
    later = state.entry("default:us-east-1", "file", "/c.json")  # failed again after that success: shown
    later.last_attempt = 400.0
    assert "default:us-east-1" in render(state, 500.0)


def test_write_metrics_is_one_atomic_write_without_fsync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ecr_login_pkg.logs import Log

    state = State(str(tmp_path))
    state.entry(HOST, "file", "/c.json").expires_at = 2e9
    fsyncs: list[int] = []
    monkeypatch.setattr(os, "fsync", lambda fd: fsyncs.append(fd))
    path = tmp_path / "ecr_login.prom"
    write_metrics(str(path), state, Log())
    assert fsyncs == []
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert 'registry="' + HOST in path.read_text()
    assert [name for name in os.listdir(tmp_path) if name.endswith(".tmp")] == []
