"""Unit tests of authfile: reading, merging and rewriting auths JSON files, on real files."""

from __future__ import annotations

import base64
import json
import os
import stat
from decimal import Decimal
from pathlib import Path

import pytest

from ecr_login_pkg.authfile import AuthFile, JsonNumber, NotJsonError, dump_json, encode_auth, fingerprint, parse_json
from ecr_login_pkg.errors import EX_CONFIG, ConfigError

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
NOBODY = 65534


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


def test_a_symlink_or_a_directory_is_refused(config_json: Path, tmp_path: Path) -> None:
    (tmp_path / "real.json").write_text("{}")
    config_json.symlink_to(tmp_path / "real.json")
    with pytest.raises(ConfigError, match="is a symlink"):
        AuthFile(str(config_json)).held(HOST)
    config_json.unlink()
    config_json.mkdir()
    with pytest.raises(ConfigError, match="not a regular file"):
        AuthFile(str(config_json)).held(HOST)


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
