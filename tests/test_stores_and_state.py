"""Auth-file merging, refresh-due decisions and state handling, on real files in tmp_path."""

from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest

from ecr_login_pkg.authfile import AuthFile, encode_auth, fingerprint
from ecr_login_pkg.config import Target
from ecr_login_pkg.errors import ConfigError
from ecr_login_pkg.plan import Pair, due_reason
from ecr_login_pkg.registry import parse_host
from ecr_login_pkg.state import State
from ecr_login_pkg.stores import FileStore

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
FOREIGN = {
    "auths": {"ghcr.io": {"auth": "Zm9vOmJhcg==", "email": "x@example.org"}, HOST: {"auth": "b2xkOm9sZA==", "note": 1}},
    "credHelpers": {"gcr.io": "gcloud"},
    "HttpHeaders": {"User-Agent": "ci"},
    "proxies": {"default": {"httpProxy": "http://127.0.0.1:3128"}},
}


def test_merge_keeps_every_foreign_key_and_entry(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(FOREIGN))
    stored = AuthFile(str(path)).update({HOST: encode_auth("AWS", "pw")})
    data = json.loads(path.read_text())
    assert data["auths"]["ghcr.io"] == FOREIGN["auths"]["ghcr.io"]
    assert data["auths"][HOST] == {"auth": encode_auth("AWS", "pw"), "note": 1}
    for key in ("credHelpers", "HttpHeaders", "proxies"):
        assert data[key] == FOREIGN[key]
    assert stored == {HOST: fingerprint(encode_auth("AWS", "pw"))}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_unchanged_login_is_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    auth_file = AuthFile(str(path))
    auth_file.update({HOST: encode_auth("AWS", "pw")})
    before = path.stat().st_ino
    auth_file.update({HOST: encode_auth("AWS", "pw")})
    assert path.stat().st_ino == before


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"auths": []}', '"text"'])
def test_corrupt_file_is_never_overwritten(tmp_path: Path, content: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match="left untouched"):
        AuthFile(str(path)).update({HOST: encode_auth("AWS", "pw")})
    assert path.read_text() == content


def test_empty_file_is_treated_as_no_logins(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("")
    AuthFile(str(path)).update({HOST: encode_auth("AWS", "pw")})
    assert HOST in json.loads(path.read_text())["auths"]


def test_symlinked_file_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text("{}")
    (tmp_path / "docker").mkdir()
    link = tmp_path / "docker" / "config.json"
    link.symlink_to(elsewhere)
    if os.geteuid() != 0:
        pytest.skip("needs root to hand the link to another user (the user's own link is followed: #18.2)")
    os.lchown(link, 65534, 65534)
    with pytest.raises(ConfigError, match="symlink owned by uid 65534"):
        AuthFile(str(link)).update({HOST: encode_auth("AWS", "pw")})
    assert elsewhere.read_text() == "{}" and link.is_symlink()


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


def test_state_round_trip_and_corrupt_state_is_rebuilt(tmp_path: Path) -> None:
    state = State(str(tmp_path / "state"))
    state.entry(HOST, "file", "/x/config.json").expires_at = 123.0
    state.default_hosts["us-east-1||"] = HOST
    state.save()
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    loaded = State(str(tmp_path / "state")).load()
    assert loaded.find(HOST, "file", "/x/config.json").expires_at == 123.0
    assert loaded.default_hosts == {"us-east-1||": HOST}
    (tmp_path / "state" / "state.json").write_text('{"entries": [1')
    rebuilt = State(str(tmp_path / "state")).load()
    assert rebuilt.entries == {} and "corrupt" in (rebuilt.problem or "")


def test_planted_state_dir_symlink_is_refused(tmp_path: Path) -> None:
    (tmp_path / "target").mkdir()
    (tmp_path / "state").symlink_to(tmp_path / "target")
    with pytest.raises(ConfigError, match="symlink"):
        State(str(tmp_path / "state")).save()
    assert os.listdir(tmp_path / "target") == []


@pytest.mark.docker
def test_a_failed_direct_write_does_not_stop_the_logins_docker_makes(  # type: ignore[no-untyped-def]
    registry, token_password, credential_helper, tmp_path, monkeypatch
) -> None:
    """One docker store, two registries: one behind a credential helper (real `docker login`),
    one written directly. The direct write failing fails that registry only."""
    from conftest import require_tool, use_helper

    from ecr_login_pkg.dockercli import DockerCliStore

    require_tool("docker")
    docker_dir = tmp_path / "docker"
    use_helper(docker_dir, registry.address)
    store = DockerCliStore(str(docker_dir / "config.json"), dict(os.environ), lock_timeout=10)

    def broken_update(logins: dict[str, str | None]) -> dict[str, str]:
        raise ConfigError(f"{docker_dir / 'config.json'}: cannot write: No space left on device")

    monkeypatch.setattr(store.file, "update", broken_update)
    direct = "127.0.0.1:1"  # never contacted: written directly (here: failing to be)
    result = store.save({direct: ("AWS", "direct-password"), registry.address: ("AWS", token_password)})
    assert isinstance(result[direct], ConfigError) and "No space left" in str(result[direct])
    assert result[registry.address] == "helper:teststore"  # docker login ran, the helper holds it
    assert json.loads(credential_helper.read_text())[registry.address]["Secret"] == token_password
