"""Unit tests of authfile: reading, merging and rewriting auths JSON files, on real files."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import REPO_ROOT, errors_of, file_snapshot, file_store_config, no_traceback, require_tool, run_ecr_login

from ecr_login_pkg import fsutil
from ecr_login_pkg.authfile import AuthFile, JsonNumber, NotJsonError, dump_json, encode_auth, fingerprint, parse_json
from ecr_login_pkg.errors import EX_CONFIG, ConfigError

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
NOBODY = 65534
PYTHONS = ["venv", "/usr/bin/python3"]  # this venv's, and Debian 12's with python3-boto3 1.26


def run_with(python: str, *args: str) -> subprocess.CompletedProcess[str]:
    """A real ``python -m ecr_login_pkg`` process in the test's environment."""
    interpreter = sys.executable if python == "venv" else require_tool(python)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    env.pop("JOURNAL_STREAM", None)
    env.pop("INVOCATION_ID", None)
    return subprocess.run([interpreter, "-m", "ecr_login_pkg", *args], capture_output=True, text=True, env=env,
                          timeout=60, stdin=subprocess.DEVNULL, check=False)


def file_config(write_config, ecr, stores: str = "file") -> str:  # type: ignore[no-untyped-def]
    return write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = {stores}\ntimeout = 5s\n[{HOST}]\n")


def test_encode_auth_is_what_docker_writes() -> None:
    assert base64.b64decode(encode_auth("AWS", "pässword")) == "AWS:pässword".encode()


def test_fingerprint_is_short_stable_and_hides_the_login() -> None:
    auth = encode_auth("AWS", "secret-password")
    assert fingerprint(auth) == fingerprint(auth) and len(fingerprint(auth)) == 16
    assert fingerprint(auth) != fingerprint(encode_auth("AWS", "other"))
    assert "secret" not in fingerprint(auth) and auth not in fingerprint(auth)


# --- parse_json / dump_json -----------------------------------------------------------------

NUMBERS = '{"a": 1e400, "b": [1.0e2, -0, 0.1000, 123456789012345678901234567890, 5E-324], "c": {"d": 7}, "e": "1e400"}'


def test_numbers_come_back_as_written() -> None:
    data = parse_json(NUMBERS)
    assert isinstance(data, dict) and isinstance(data["a"], JsonNumber) and data["e"] == "1e400"
    text = dump_json(data)
    for literal in ("1e400", "1.0e2", "-0", "0.1000", "123456789012345678901234567890", "5E-324"):
        assert f"{literal}" in text
    assert json.loads(text, parse_float=Decimal) == json.loads(NUMBERS, parse_float=Decimal)
    assert '"e": "1e400"' in text  # a string that looks like a number stays a string
    assert "Infinity" not in text


def test_a_string_shaped_like_the_placeholder_stays_a_string() -> None:
    data = parse_json('{"x": 1, "y": "ecr-login-number-0000000000000000-0"}')
    assert json.loads(dump_json(data))["y"] == "ecr-login-number-0000000000000000-0"


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(constant: str) -> None:
    with pytest.raises(NotJsonError, match=constant):
        parse_json('{"x": ' + constant + "}")


def test_deep_nesting_raises_recursion_error_not_a_crash_later() -> None:
    with pytest.raises(RecursionError):
        parse_json("[" * 100_000 + "]" * 100_000)


def test_dump_json_refuses_what_json_cannot_hold() -> None:
    with pytest.raises(TypeError):
        dump_json({"x": object()})


# --- AuthFile -------------------------------------------------------------------------------


@pytest.fixture
def config_json(tmp_path: Path) -> Path:
    directory = tmp_path / ".docker"
    directory.mkdir(mode=0o700)
    return directory / "config.json"


def test_read_absent_and_empty_files_are_no_logins(config_json: Path) -> None:
    assert AuthFile(str(config_json)).read() == {}
    config_json.write_text("  \n")
    assert AuthFile(str(config_json)).read() == {}
    assert AuthFile(str(config_json)).held(HOST) is None


@pytest.mark.parametrize(("text", "words"), [
    ("{not json", r"not valid JSON \(line 1\)"),
    ("[1, 2]", "top level is not a JSON object"),
    ('{"auths": []}', "'auths' is not an object"),
    ('{"auths": {}, "x": NaN}', "not valid JSON: NaN is not a JSON number"),
    ('{"auths": {}, "x": ' + "[" * 5000 + "]" * 5000 + "}", "nested too deeply"),
])
def test_unusable_files_are_config_errors_left_untouched(config_json: Path, text: str, words: str) -> None:
    config_json.write_text(text)
    before = config_json.read_bytes()
    file = AuthFile(str(config_json), lock_timeout=1)
    with pytest.raises(ConfigError, match=words) as caught:
        file.update({HOST: encode_auth("AWS", "pw")})
    assert caught.value.exit_code == EX_CONFIG and "left untouched" in str(caught.value)
    assert config_json.read_bytes() == before


def test_update_merges_keeps_everything_else_and_writes_0600(config_json: Path) -> None:
    foreign = {
        "auths": {"ghcr.io": {"auth": "Zm9yZWlnbg=="}, HOST: {"auth": "old", "identitytoken": "x", "email": "e@x"}},
        "credHelpers": {"gcr.io": "gcloud"},
        "proxies": {"default": {"httpProxy": "http://p:3128"}},
        "detachKeys": "ctrl-e,e",
        "retries": 3,
    }
    config_json.write_text(json.dumps(foreign))
    config_json.chmod(0o644)
    auth = encode_auth("AWS", "new-password")
    assert AuthFile(str(config_json)).update({HOST: auth}) == {HOST: fingerprint(auth)}
    data = json.loads(config_json.read_text())
    assert data["auths"][HOST] == {"auth": auth, "email": "e@x"}  # the stale token kinds dropped, the rest kept
    assert data["auths"]["ghcr.io"] == foreign["auths"]["ghcr.io"]  # type: ignore[index]
    for key in ("credHelpers", "proxies", "detachKeys", "retries"):
        assert data[key] == foreign[key]
    assert stat.S_IMODE(config_json.stat().st_mode) == 0o600
    assert AuthFile(str(config_json)).held(HOST) == fingerprint(auth)


def test_update_without_a_change_writes_nothing(config_json: Path) -> None:
    auth = encode_auth("AWS", "pw")
    AuthFile(str(config_json)).update({HOST: auth})
    before = config_json.stat()
    AuthFile(str(config_json)).update({HOST: auth})
    after = config_json.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_update_rewrites_a_readable_file_holding_our_login_0600(config_json: Path) -> None:
    auth = encode_auth("AWS", "pw")
    AuthFile(str(config_json)).update({HOST: auth})
    config_json.chmod(0o644)
    AuthFile(str(config_json)).update({HOST: auth})
    assert stat.S_IMODE(config_json.stat().st_mode) == 0o600


def test_update_removes_and_creates_the_directory(tmp_path: Path) -> None:
    path = tmp_path / "new" / "auth.json"
    file = AuthFile(str(path))
    file.update({HOST: encode_auth("AWS", "pw"), "other.example": encode_auth("u", "p")})
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    file.update({HOST: None})
    assert set(json.loads(path.read_text())["auths"]) == {"other.example"}
    assert file.held(HOST) is None


def test_snapshot_is_parsed_again_only_when_the_file_changes(config_json: Path) -> None:
    file = AuthFile(str(config_json))
    file.update({HOST: encode_auth("AWS", "one")})
    first = file.snapshot()
    assert file.snapshot() is first
    AuthFile(str(config_json)).update({HOST: encode_auth("AWS", "two")})
    assert file.snapshot() is not first
    assert file.held(HOST) == fingerprint(encode_auth("AWS", "two"))


@pytest.mark.root
def test_a_symlink_another_user_owns_or_a_directory_is_refused(config_json: Path, tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to hand the link to another user")
    (tmp_path / "real.json").write_text("{}")
    config_json.symlink_to(tmp_path / "real.json")
    os.lchown(config_json, NOBODY, NOBODY)
    with pytest.raises(ConfigError, match=f"is a symlink owned by uid {NOBODY}"):
        AuthFile(str(config_json)).held(HOST)
    config_json.unlink()
    config_json.mkdir()
    with pytest.raises(ConfigError, match="not a regular file"):
        AuthFile(str(config_json)).held(HOST)


@pytest.mark.root
def test_a_file_another_user_owns_is_refused_for_root_too(config_json: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to hand the file to another user")
    config_json.write_text('{"auths": {}}')
    os.chown(config_json, NOBODY, NOBODY)
    with pytest.raises(ConfigError, match=f"owned by uid {NOBODY}"):
        AuthFile(str(config_json)).update({HOST: encode_auth("AWS", "pw")})
    with pytest.raises(ConfigError, match=f"owned by uid {NOBODY}"):
        AuthFile(str(config_json)).held(HOST)
    assert config_json.read_text() == '{"auths": {}}' and config_json.stat().st_uid == NOBODY


# --- #18.4 a key given twice ------------------------------------------------------------------

DUPLICATED = ('{"auths": {"ghcr.io": {"auth": "Z2hjcjpvbmU="}}, "psFormat": "x", '
              '"auths": {"quay.io": {"auth": "cXVheTp0d28="}}, "psFormat": "y"}')


def test_a_key_given_twice_is_merged_as_docker_reads_it(config_json: Path) -> None:
    config_json.write_text(DUPLICATED)
    auth = encode_auth("AWS", "pw")
    AuthFile(str(config_json)).update({HOST: auth})
    text = config_json.read_text()
    data = json.loads(text)
    assert set(data["auths"]) == {"ghcr.io", "quay.io", HOST}  # was: ghcr.io gone
    assert data["psFormat"] == "y" and text.count('"auths"') == 1  # a value given twice: the later, as Go's json


@pytest.mark.docker
def test_docker_itself_keeps_both_objects_of_a_key_given_twice(config_json: Path) -> None:
    """What the rule above follows: the real docker CLI rewriting such a file keeps both."""
    docker = require_tool("docker")
    config_json.write_text(DUPLICATED)
    env = dict(os.environ, DOCKER_CONFIG=str(config_json.parent))
    subprocess.run([docker, "logout", "quay.io"], env=env, capture_output=True, check=True, stdin=subprocess.DEVNULL)
    assert set(json.loads(config_json.read_text())["auths"]) == {"ghcr.io"}


@pytest.mark.parametrize("python", PYTHONS)
def test_a_run_keeps_every_login_of_a_key_given_twice(ecr, aws_env, write_config, python) -> None:  # type: ignore[no-untyped-def]
    config_json = Path(aws_env["DOCKER_CONFIG"], "config.json")
    config_json.parent.mkdir(mode=0o700)
    config_json.write_text(DUPLICATED)
    done = run_with(python, "--config", file_config(write_config, ecr))
    assert done.returncode == 0, done
    assert set(json.loads(config_json.read_text())["auths"]) == {"ghcr.io", "quay.io", HOST}


# --- #18.2 links of a dotfiles manager --------------------------------------------------------


def test_a_directory_link_of_the_user_is_written_through_and_kept(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "docker"
    real.mkdir(parents=True, mode=0o700)
    (tmp_path / ".docker").symlink_to(real)
    auth = encode_auth("AWS", "pw")
    file = AuthFile(str(tmp_path / ".docker" / "config.json"))
    assert file.update({HOST: auth}) == {HOST: fingerprint(auth)}
    assert (tmp_path / ".docker").is_symlink()
    assert json.loads((real / "config.json").read_text())["auths"][HOST] == {"auth": auth}
    assert file.held(HOST) == fingerprint(auth)
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".ecr-login")]  # the lock is beside the real file


def test_a_file_link_of_the_user_is_written_through_and_kept(config_json: Path, tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "docker-config.json"
    real.parent.mkdir(mode=0o700)
    real.write_text('{"auths": {"ghcr.io": {"auth": "eDp5"}}}')
    config_json.symlink_to(Path("..") / "dotfiles" / "docker-config.json")  # relative, as stow makes them
    AuthFile(str(config_json)).update({HOST: encode_auth("AWS", "pw")})
    assert config_json.is_symlink() and os.readlink(config_json) == "../dotfiles/docker-config.json"
    assert set(json.loads(real.read_text())["auths"]) == {"ghcr.io", HOST}
    assert stat.S_IMODE(real.stat().st_mode) == 0o600


def _as_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to hand a link or a directory to another user")


@pytest.mark.root
def test_a_link_to_a_file_another_user_owns_is_refused_untouched(config_json: Path, tmp_path: Path) -> None:
    _as_root()
    real = tmp_path / "theirs.json"
    real.write_text('{"auths": {}}')
    os.chown(real, NOBODY, NOBODY)
    config_json.symlink_to(real)
    with pytest.raises(ConfigError, match=f"links to {real}, owned by uid {NOBODY}") as caught:
        AuthFile(str(config_json)).update({HOST: encode_auth("AWS", "pw")})
    assert caught.value.exit_code == EX_CONFIG
    assert real.read_text() == '{"auths": {}}' and config_json.is_symlink()


@pytest.mark.parametrize("through", ["world-writable", "another user's"])
@pytest.mark.root
def test_a_link_through_a_directory_others_can_change_is_refused(tmp_path: Path, through: str) -> None:
    _as_root()
    shared = tmp_path / "shared"
    shared.mkdir()
    if through == "world-writable":
        shared.chmod(0o777)
    else:
        os.chown(shared, NOBODY, NOBODY)
    real = shared / "docker"
    real.mkdir(mode=0o700)
    (tmp_path / ".docker").symlink_to(real)
    words = "writable by others" if through == "world-writable" else f"owned by uid {NOBODY}"
    with pytest.raises(ConfigError, match=f"through {shared}, {words}"):
        AuthFile(str(tmp_path / ".docker" / "config.json")).update({HOST: encode_auth("AWS", "pw")})
    assert os.listdir(real) == []


def test_a_dangling_link_is_refused(tmp_path: Path) -> None:
    (tmp_path / ".docker").symlink_to(tmp_path / "gone")
    with pytest.raises(ConfigError, match="whose directory does not exist"):
        AuthFile(str(tmp_path / ".docker" / "config.json")).update({HOST: encode_auth("AWS", "pw")})
    assert not (tmp_path / "gone").exists()


@pytest.mark.parametrize("python", PYTHONS)
def test_linked_docker_and_containers_directories_are_used_and_kept(  # type: ignore[no-untyped-def]
    ecr, aws_env, write_config, tmp_path, python
) -> None:
    """~/.docker and ~/.config/containers linked into a dotfiles tree: exit 0 (was 78 "is a
    symlink; refusing to use it"), the links kept, skopeo reads the login through the link."""
    home = Path(aws_env["HOME"])
    dotfiles = home / "dotfiles"
    for name in ("docker", "containers"):
        (dotfiles / name).mkdir(parents=True, mode=0o700)
    Path(aws_env["DOCKER_CONFIG"]).symlink_to(dotfiles / "docker")
    (home / ".config").mkdir(mode=0o700)
    (home / ".config" / "containers").symlink_to(dotfiles / "containers")
    done = run_with(python, "--config", file_config(write_config, ecr, stores="file, containers"))
    assert done.returncode == 0, done
    assert Path(aws_env["DOCKER_CONFIG"]).is_symlink() and (home / ".config" / "containers").is_symlink()
    assert HOST in json.loads((dotfiles / "docker" / "config.json").read_text())["auths"]
    assert HOST in json.loads((dotfiles / "containers" / "auth.json").read_text())["auths"]
    skopeo = require_tool("skopeo")
    got = subprocess.run([skopeo, "login", "--get-login", HOST], capture_output=True, text=True, check=False,
                         env=dict(os.environ, XDG_RUNTIME_DIR=str(tmp_path / "no-runtime-dir")))
    assert got.returncode == 0 and got.stdout.strip() == "AWS", got


# --- #18.3 a writer that takes no lock (docker login) -----------------------------------------

DOCKER_STYLE_WRITER = r"""
# As docker's configfile.Save: read config.json, add an entry, write a temp file, rename it over; no lock.
import json, os, sys, time
path, stop = sys.argv[1], sys.argv[2]
count = 0
while not os.path.exists(stop):
    with open(path) as handle:
        data = json.load(handle)
    data.setdefault("auths", {})[f"writer-{count:05d}.example"] = {"auth": "d3JpdGVyOng="}
    temp = f"{path}.writer-tmp"
    with open(temp, "w") as handle:
        json.dump(data, handle)
    os.rename(temp, path)
    count += 1
    time.sleep(0.02)
print(count)
"""


@pytest.mark.slow
def test_a_writer_without_a_lock_loses_nothing_during_40_refreshes(ecr, aws_env, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config_json = Path(aws_env["DOCKER_CONFIG"], "config.json")
    config_json.parent.mkdir(mode=0o700)
    config_json.write_text('{"auths": {}}')
    config_json.chmod(0o600)
    stop = tmp_path / "stop"
    writer = subprocess.Popen([sys.executable, "-c", DOCKER_STYLE_WRITER, str(config_json), str(stop)],
                              stdout=subprocess.PIPE, text=True)
    config = file_config(write_config, ecr)
    try:
        for _ in range(40):
            done = run_with("venv", "--config", config, "--force")
            assert done.returncode == 0, done
    finally:
        stop.touch()
        written = int(writer.communicate(timeout=10)[0])
    auths = json.loads(config_json.read_text())["auths"]
    lost = [index for index in range(written) if f"writer-{index:05d}.example" not in auths]
    assert written > 100 and lost == [], f"{len(lost)} of {written} entries lost"


@pytest.mark.docker
@pytest.mark.slow
def test_a_real_docker_login_during_a_slowed_write_is_kept(ecr, registry, aws_env, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    strace, docker = require_tool("strace"), require_tool("docker")
    docker_dir = Path(aws_env["DOCKER_CONFIG"])
    docker_dir.mkdir(mode=0o700)
    (docker_dir / "config.json").write_text('{"auths": {}}')
    (docker_dir / "config.json").chmod(0o600)
    config = file_config(write_config, ecr)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    slowed = subprocess.Popen(
        [strace, "-f", "-qq", "-o", "/dev/null", "-e", "trace=fsync", "-e", "inject=fsync:delay_enter=2000000",
         sys.executable, "-m", "ecr_login_pkg", "--config", config, "--force"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not [name for name in os.listdir(docker_dir) if name.endswith(".tmp")]:  # ecr-login is in its fsync
            assert time.monotonic() < deadline and slowed.poll() is None, "ecr-login never started its write"
            time.sleep(0.01)
        login = subprocess.run([docker, "login", "--username", "AWS", "--password-stdin", registry.address],
                               input=registry.password, capture_output=True, text=True, env=env, timeout=60, check=False)
        assert "Login Succeeded" in login.stdout, login
        _, stderr = slowed.communicate(timeout=60)
    finally:
        slowed.kill()
    assert slowed.returncode == 0, stderr
    auths = json.loads((docker_dir / "config.json").read_text())["auths"]
    assert registry.address in auths, "docker login's entry was lost"  # was: gone, ecr-login exit 0
    assert HOST in auths


# --- merging into a file others write too (from test_stores_and_state) -------------------------------


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


@pytest.mark.root
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


# --- unusable paths, and one check per update (from test_robustness) ---------------------------------


def test_docker_config_under_a_regular_file_is_a_config_error(ecr, aws_env, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    env = dict(os.environ, DOCKER_CONFIG=str(blocker / "docker"))
    config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\nlock_timeout = 3\n[{HOST}]\n")
    result = run_ecr_login("--config", config, env=env)
    no_traceback(result)
    assert result.code == 78, result
    assert str(blocker / "docker") in result.stderr and "not a directory" in result.stderr
    assert blocker.read_text() == "x"


def test_update_checks_the_target_once_under_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {"ghcr.io": {"auth": "eDp5"}}}))
    path.chmod(0o644)
    auth_file = AuthFile(str(path))
    checks: list[bool] = []
    original = AuthFile._check_target

    def counted(self: AuthFile) -> os.stat_result | None:
        checks.append(bool(fsutil._HELD))  # was the lock held?
        return original(self)

    monkeypatch.setattr(AuthFile, "_check_target", counted)
    stored = auth_file.update({HOST: encode_auth("AWS", "pw")})
    # once under the lock (what is read is what is replaced); the check before it only refuses a bad
    # file before its directory gets a lock file
    assert checks == [False, True]
    assert stored == {HOST: fingerprint(encode_auth("AWS", "pw"))}
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # a group-readable file is rewritten 0600
    assert json.loads(path.read_text())["auths"]["ghcr.io"] == {"auth": "eDp5"}


# --- pathological JSON in a store file (from test_hostile, #11.4) ------------------------------------


def test_deeply_nested_store_file_is_refused_untouched(ecr, aws_env, write_config, request) -> None:  # type: ignore[no-untyped-def]
    docker_dir = Path(aws_env["DOCKER_CONFIG"])
    docker_dir.mkdir(mode=0o700)
    config_json = docker_dir / "config.json"
    config_json.write_text('{"auths": {}, "x": ' + "[" * 1200 + "]" * 1200 + "}")
    before = file_snapshot(config_json)
    result = run_ecr_login("--config", file_store_config(write_config, ecr), "--force")
    assert result.code == 78, result
    errors = errors_of(result)
    assert len(errors) == 1 and str(config_json) in errors[0] and "nested" in errors[0], result.stderr
    assert file_snapshot(config_json) == before
    request.node.user_properties.append(("observed", f"exit 78: {errors[0].split(': error: ', 1)[1]}"))


STORE_NUMBERS = '{"auths": {}, "huge": 1e400, "tiny": 5E-324, "list": [1.0e2, -0, 0.1000, 123456789012345678901234567890], "n": 7}'


def test_numbers_in_a_store_file_are_kept_as_written(ecr, aws_env, write_config) -> None:  # type: ignore[no-untyped-def]
    docker_dir = Path(aws_env["DOCKER_CONFIG"])
    docker_dir.mkdir(mode=0o700)
    config_json = docker_dir / "config.json"
    config_json.write_text(STORE_NUMBERS)
    result = run_ecr_login("--config", file_store_config(write_config, ecr), "--force")
    assert result.code == 0, result
    text = config_json.read_text()
    for literal in ("1e400", "5E-324", "1.0e2", "-0", "0.1000", "123456789012345678901234567890", "7"):
        assert f" {literal}" in text or f"\t{literal}" in text, (literal, text)
    assert "Infinity" not in text
    data = json.loads(text)
    assert data["auths"][HOST]["auth"] == ecr.token()


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_constants_in_a_store_file_are_refused_untouched(ecr, aws_env, write_config, constant) -> None:  # type: ignore[no-untyped-def]
    docker_dir = Path(aws_env["DOCKER_CONFIG"])
    docker_dir.mkdir(mode=0o700)
    config_json = docker_dir / "config.json"
    config_json.write_text('{"auths": {}, "x": ' + constant + "}")
    before = file_snapshot(config_json)
    result = run_ecr_login("--config", file_store_config(write_config, ecr), "--force")
    assert result.code == 78, result
    errors = errors_of(result)
    assert len(errors) == 1 and constant in errors[0] and "not valid JSON" in errors[0], result.stderr
    assert file_snapshot(config_json) == before
