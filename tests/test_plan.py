"""The plan (what is due, how each login stands) and the refresh engine, called in-process.

Real files in tmp_path and the stand-in ECR over HTTP; no subprocess, so each
decision is checked on its own rather than through the whole command.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from ecr_login_pkg.config import Overrides, Settings, Target, load
from ecr_login_pkg.errors import ConfigError
from ecr_login_pkg.logs import Log
from ecr_login_pkg.plan import Pair, default_key, due_pairs, due_reason, known_pairs, pairs_for, standing
from ecr_login_pkg.refresh import run_login
from ecr_login_pkg.registry import parse_host
from ecr_login_pkg.state import State
from ecr_login_pkg.stores import FileStore

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
OTHER = "210987654321.dkr.ecr.eu-west-1.amazonaws.com"


def target(host: str, stores: tuple[str, ...] = ("file",)) -> Target:
    registry = parse_host(host)
    return Target(name=host, registry=registry, region=registry.region, stores=stores)


def settings(tmp_path: Path, *targets: Target, margin: float = 6 * 3600) -> Settings:
    return Settings(config_path=None, state_dir=str(tmp_path / "state"),
                    docker_config_file=str(tmp_path / "docker" / "config.json"),
                    refresh_margin=margin, targets=targets)


def stored(pair: Pair, state: State, expires_in: float, now: float) -> None:
    """Put a login in the pair's store and record it, as a successful run would."""
    assert pair.address is not None
    fingerprint = pair.store.save({pair.address: ("AWS", "pw")})[pair.address]
    assert isinstance(fingerprint, str)
    entry = state.entry(pair.address, pair.store.kind, pair.store.location)
    entry.fingerprint, entry.expires_at, entry.last_success = fingerprint, now + expires_in, now


def test_one_store_object_per_kind_shared_by_its_targets(tmp_path: Path) -> None:
    chosen = settings(tmp_path, target(HOST, ("file", "helm")), target(OTHER, ("file",)))
    pairs = pairs_for(chosen, {"HOME": str(tmp_path)}, State(str(tmp_path / "state")))
    assert [(pair.address, pair.store.kind) for pair in pairs] == [(HOST, "file"), (HOST, "helm"), (OTHER, "file")]
    assert pairs[0].store is pairs[2].store


def test_due_pairs_carry_their_reason_and_fresh_ones_are_left_out(tmp_path: Path) -> None:
    now = time.time()
    chosen = settings(tmp_path, target(HOST), target(OTHER))
    state = State(chosen.state_dir)
    fresh, due = pairs_for(chosen, {}, state)
    stored(fresh, state, 10 * 3600, now)
    stored(due, state, 2 * 3600, now)
    assert [(pair.address, pair.reason) for pair in due_pairs([fresh, due], state, 6 * 3600, False, now)] == [
        (OTHER, "expires in 2h00m")]
    forced = due_pairs(pairs_for(chosen, {}, state), state, 6 * 3600, True, now)
    assert [pair.reason for pair in forced] == ["forced", "forced"]


def test_a_store_that_cannot_be_read_makes_its_pair_due_with_the_error(tmp_path: Path) -> None:
    chosen = settings(tmp_path, target(HOST))
    Path(chosen.docker_config_file).parent.mkdir()
    Path(chosen.docker_config_file).write_text("{not json")
    state = State(chosen.state_dir)
    pairs = pairs_for(chosen, {}, state)
    state.entry(HOST, "file", chosen.docker_config_file).fingerprint = "abc"
    (due,) = due_pairs(pairs, state, 6 * 3600, False, time.time())
    assert isinstance(due.error, ConfigError) and due.reason == ""


@pytest.mark.parametrize(
    ("expires_in", "last_error", "replace", "condition"),
    [
        (10 * 3600, None, False, "ok"),
        (2 * 3600, None, False, "due"),
        (10 * 3600, "throttled", False, "failing"),
        (-60, None, False, "expired"),
        (10 * 3600, None, True, "replaced"),
    ],
)
def test_standing(tmp_path: Path, expires_in: float, last_error: str | None, replace: bool, condition: str) -> None:
    now = time.time()
    chosen = settings(tmp_path, target(HOST))
    state = State(chosen.state_dir)
    (pair,) = pairs_for(chosen, {}, state)
    stored(pair, state, expires_in, now)
    state.entry(HOST, "file", pair.store.location).last_error = last_error
    if replace:
        pair.store.save({HOST: ("AWS", "someone-else")})
    assert standing(pair, state, 6 * 3600, now) == (condition, None)


def test_standing_of_a_missing_login_and_of_an_unreadable_store(tmp_path: Path) -> None:
    chosen = settings(tmp_path, target(HOST))
    state = State(chosen.state_dir)
    (pair,) = pairs_for(chosen, {}, state)
    assert standing(pair, state, 6 * 3600, time.time()) == ("missing", None)
    Path(chosen.docker_config_file).parent.mkdir()
    Path(chosen.docker_config_file).write_text("[1]")
    condition, problem = standing(pair, state, 6 * 3600, time.time())
    assert condition == "store-error" and problem and chosen.docker_config_file in problem


def test_known_pairs_stand_in_the_remembered_default_registries(tmp_path: Path) -> None:
    """status and logout run by hand lack the unit's region: the state still knows where it logged in."""
    default = Target(name="default", registry=None, region="", stores=("file",))
    chosen = settings(tmp_path, default)
    state = State(chosen.state_dir)
    assert [pair.address for pair in known_pairs(chosen, {}, state)] == [None]
    state.default_hosts = {"eu-west-1|||": OTHER, "us-east-1|||": HOST}
    assert sorted(str(pair.address) for pair in known_pairs(chosen, {}, state)) == sorted([OTHER, HOST])
    state.default_hosts = {default_key(default): HOST}
    assert [pair.address for pair in pairs_for(chosen, {}, state)] == [HOST]


# --- the engine: run_login in-process against the stand-in ECR ---------------


def engine_settings(ecr_url: str, tmp_path: Path, text: str) -> Settings:
    config = tmp_path / "ecr-login.conf"
    config.write_text(f"[defaults]\nendpoint_url = {ecr_url}\n{text}")
    return load(Overrides(config_path=str(config)), {"HOME": str(tmp_path), "XDG_STATE_HOME": str(tmp_path / "state"),
                                                     "DOCKER_CONFIG": str(tmp_path / "docker"), "PATH": "/nonexistent"})


def test_the_engine_logs_in_records_and_then_has_nothing_to_do(ecr, aws_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chosen = engine_settings(ecr.url, tmp_path, f"stores = file, helm\n[{HOST}]\n[{OTHER}]\n")
    assert run_login(chosen, aws_env, Log(), force=False, dry_run=False) == 0
    assert ecr.call_count == 2  # one per region, shared by both stores
    state = State(chosen.state_dir).load()
    assert len(state.entries) == 4 and all(entry.fingerprint and entry.failures == 0 for entry in state.entries.values())
    assert set(json.loads(Path(chosen.docker_config_file).read_text())["auths"]) == {HOST, OTHER}
    assert run_login(chosen, aws_env, Log(), force=False, dry_run=False) == 0
    assert ecr.call_count == 2


def test_one_region_failing_fails_only_its_own_logins(ecr, aws_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chosen = engine_settings(ecr.url, tmp_path, f"stores = file\ntimeout = 2\n[{HOST}]\n[{OTHER}]\n")
    ecr.script(["denied"], region="eu-west-1")
    assert run_login(chosen, aws_env, Log(), force=False, dry_run=False) == 77
    state = State(chosen.state_dir).load()
    good = state.find(HOST, "file", chosen.docker_config_file)
    bad = state.find(OTHER, "file", chosen.docker_config_file)
    assert good is not None and good.fingerprint and good.last_exit == 0
    assert bad is not None and not bad.fingerprint and bad.last_exit == 77 and bad.failures == 1
    assert "AccessDenied" in str(bad.last_error)
    assert set(json.loads(Path(chosen.docker_config_file).read_text())["auths"]) == {HOST}


def test_a_dry_run_changes_nothing(ecr, aws_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chosen = engine_settings(ecr.url, tmp_path, f"stores = file\n[{HOST}]\n")
    assert run_login(chosen, aws_env, Log(), force=True, dry_run=True) == 0
    assert ecr.call_count == 0
    assert not Path(chosen.docker_config_file).exists() and not Path(chosen.state_dir).exists()


def test_a_failed_deploy_hook_makes_a_fresh_login_due_again_only_while_hooks_run(tmp_path: Path) -> None:
    now = time.time()
    chosen = settings(tmp_path, target(HOST))
    state = State(chosen.state_dir)
    (pair,) = pairs_for(chosen, {}, state)
    stored(pair, state, 10 * 3600, now)
    assert due_pairs([pair], state, 6 * 3600, False, now, hooks=True) == []
    state.entry(HOST, "file", pair.store.location).hook_error = "kubectl: exit 1"
    (due,) = due_pairs([pair], state, 6 * 3600, False, now, hooks=True)
    assert "deploy hook failed" in due.reason and "kubectl: exit 1" in due.reason
    assert due_pairs([pair], state, 6 * 3600, False, now, hooks=False) == []  # --no-hooks


# --- why a login is due ------------------------------------------------------------------------------


def pair_in(tmp_path: Path) -> tuple[Pair, State, FileStore]:
    store = FileStore("file", str(tmp_path / "docker" / "config.json"), 5)
    target = Target(name=HOST, registry=parse_host(HOST), region="us-east-1", stores=("file",))
    state = State(str(tmp_path / "state"))
    return Pair(target, store, HOST), state, store


def test_due_reasons(tmp_path: Path) -> None:
    pair, state, store = pair_in(tmp_path)
    now = time.time()
    margin = 6 * 3600
    assert due_reason(pair, state, margin, now) == "no login recorded"
    fingerprints = store.save({HOST: ("AWS", "pw")})
    entry = state.entry(HOST, "file", store.location)
    entry.fingerprint, entry.expires_at = fingerprints[HOST], now + 12 * 3600
    assert due_reason(pair, state, margin, now) is None
    entry.expires_at = now + 5 * 3600
    assert due_reason(pair, state, margin, now) == "expires in 5h00m"
    entry.expires_at = now - 1
    assert due_reason(pair, state, margin, now) == "expired"
    entry.expires_at = now + 12 * 3600
    store.save({HOST: ("AWS", "someone-else")})
    assert "different login" in (due_reason(pair, state, margin, now) or "")
    store.remove([HOST])
    assert "no longer holds it" in (due_reason(pair, state, margin, now) or "")
