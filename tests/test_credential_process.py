"""``credential_process`` programs that misbehave (#18.5-7), run for real by botocore.

Each test writes a real program (a shell script, or ``/bin/echo``) into a
profile of a real ``~/.aws/config`` and runs ``python -m ecr_login_pkg`` as a
process against the stand-in ECR API. The program's faults are the host's
set-up (78, naming the program and the profile), except one that does not
finish: ``timeout`` bounds it like any call (75), and it is killed.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from aws_fakes import HOST, PYTHONS, errors_of, run, without_aws_keys


def profile_with(aws_env: dict[str, str], process: str, name: str = "builder") -> None:
    Path(aws_env["AWS_CONFIG_FILE"]).write_text(f"[profile {name}]\ncredential_process = {process}\n")


def program(tmp_path: Path, body: str, name: str = "creds.sh") -> str:
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return str(path)


def config_for(write_config, ecr, extra: str = "") -> str:  # type: ignore[no-untyped-def]
    return write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\ntimeout = 5s\nprofile = builder\n"
                        f"{extra}\n[{HOST}]\n")


@pytest.fixture
def keyless(aws_env, monkeypatch):  # type: ignore[no-untyped-def]
    without_aws_keys(monkeypatch)
    return aws_env


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.slow  # waits out a timeout (or a throttled bucket): not in make test-fast
@pytest.mark.parametrize("python", PYTHONS)
def test_a_credential_process_that_hangs_is_bounded_by_timeout_and_killed(python, keyless, ecr, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Was: the run still going after 25 s (credentials were resolved on the main thread, outside the deadline)."""
    pidfile = tmp_path / "pid"
    profile_with(keyless, program(tmp_path, f"echo $$ > {pidfile}\nexec sleep 60\n"))
    result, took = run(python, "--config", config_for(write_config, ecr), timeout=50)
    assert result.code == 75, result
    assert took < 5 + 6, took  # the 5 s timeout, start-up and the grace
    (line,) = errors_of(result)
    assert "credential_process" in line and "builder" in line, line
    pid = int(pidfile.read_text())
    for _ in range(20):
        if not alive(pid):
            break
        time.sleep(0.1)
    assert not alive(pid), f"the credential process {pid} outlived the run"
    assert ecr.call_count == 0


@pytest.mark.parametrize("python", PYTHONS)
def test_a_credential_process_printing_no_json_is_named(python, keyless, ecr, write_config) -> None:  # type: ignore[no-untyped-def]
    """Was: 78 "the endpoint URL 'http://…' is not valid"."""
    profile_with(keyless, "/bin/echo this is not json")
    result, _ = run(python, "--config", config_for(write_config, ecr))
    assert result.code == 78, result
    (line,) = errors_of(result)
    assert "credential_process" in line and "'builder'" in line and "/bin/echo" in line and "JSON" in line, line
    assert "endpoint URL" not in line, line


@pytest.mark.parametrize("python", PYTHONS)
def test_a_bad_metadata_timeout_variable_is_named(python, aws_env, ecr, write_config, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AWS_METADATA_SERVICE_TIMEOUT", "banana")
    result, _ = run(python, "--config", write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\n\n[{HOST}]\n"))
    assert result.code == 78, result
    (line,) = errors_of(result)
    assert "AWS_METADATA_SERVICE_TIMEOUT" in line and "banana" in line and "endpoint URL" not in line, line


@pytest.mark.parametrize("python", PYTHONS)
def test_a_credential_process_program_that_does_not_exist_is_named(python, keyless, ecr, write_config) -> None:  # type: ignore[no-untyped-def]
    """Was: 75 "unexpected FileNotFoundError while asking for a token"."""
    profile_with(keyless, "/opt/vault/bin/aws-creds --role builder")
    result, _ = run(python, "--config", config_for(write_config, ecr))
    assert result.code == 78, result
    (line,) = errors_of(result)
    assert "/opt/vault/bin/aws-creds" in line and "'builder'" in line and "credential_process" in line, line
    assert "unexpected" not in line, line


@pytest.mark.parametrize("python", PYTHONS)
def test_a_non_string_session_token_is_named(python, keyless, ecr, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Was: 75 "unexpected AttributeError while asking for a token"."""
    answer = '{"Version": 1, "AccessKeyId": "AKIDSTANDIN", "SecretAccessKey": "standin-secret", "SessionToken": 42}'
    profile_with(keyless, program(tmp_path, f"echo '{answer}'\n"))
    result, _ = run(python, "--config", config_for(write_config, ecr))
    assert result.code == 78, result
    (line,) = errors_of(result)
    assert "SessionToken" in line and "'builder'" in line, line
    assert "standin-secret" not in result.output
    assert ecr.call_count == 0


def test_a_working_credential_process_signs_the_call(keyless, ecr, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The same path, working: the program's keys sign the ECR call (so the checks above prove something)."""
    answer = '{"Version": 1, "AccessKeyId": "AKIDSTANDIN", "SecretAccessKey": "standin-secret"}'
    profile_with(keyless, program(tmp_path, f"echo '{answer}'\n"))
    result, _ = run(PYTHONS[0].values[0], "--config", config_for(write_config, ecr))
    assert result.code == 0, result
    (call,) = ecr.ecr_calls()
    assert call.access_key == "AKIDSTANDIN"
    assert os.path.exists(Path(keyless["DOCKER_CONFIG"], "config.json"))
