"""End to end: the real command, real boto3 over HTTP to the stand-in ECR, real registry and clients."""

from __future__ import annotations

import base64
import json
import os
import pwd
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO_ROOT, require_tool, run_ecr_login, use_helper
from local_registry import build_oci_layout, skopeo_copy
from standin_ecr import DEFAULT_SECRET_ACCESS_KEY, StandinECR

ACCOUNTS = ["111111111111", "222222222222", "333333333333", "444444444444"]
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]


def local_registry_config(endpoint_url: str, address: str, store: str) -> str:
    """One ECR registry whose login is stored under the local registry's address (``store_as``)."""
    return (
        f"[defaults]\nendpoint_url = {endpoint_url}\nstores = {store}\n"
        f"[app]\nhost = 123456789012.dkr.ecr.us-east-1.amazonaws.com\nstore_as = {address}\n"
    )


def docker_config(env: dict[str, str]) -> dict:  # type: ignore[type-arg]
    return json.loads(Path(env["DOCKER_CONFIG"], "config.json").read_text())


def state_file(env: dict[str, str]) -> Path:
    return Path(env["XDG_STATE_HOME"], "ecr-login", "state.json")


@pytest.mark.slow
def test_file_store_login_is_accepted_by_skopeo(ecr, registry, aws_env, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    require_tool("skopeo")
    config = write_config(local_registry_config(ecr.url, registry.address, "file"))
    result = run_ecr_login("login", "--config", config)
    assert result.code == 0, result
    assert ecr.call_count == 1
    config_json = Path(aws_env["DOCKER_CONFIG"], "config.json")
    assert stat.S_IMODE(config_json.stat().st_mode) == 0o600
    assert registry.address in docker_config(aws_env)["auths"]

    # skopeo finds the login where docker keeps it and pushes, then pulls back.
    build_oci_layout(tmp_path / "layout", "v1")
    skopeo_copy(f"oci:{tmp_path / 'layout'}:v1", f"docker://{registry.address}/team/app:v1", env=os.environ)
    pulled = skopeo_copy(f"docker://{registry.address}/team/app:v1", f"oci:{tmp_path / 'pulled'}:v1", env=os.environ)
    assert pulled.returncode == 0
    assert (tmp_path / "pulled" / "index.json").exists()


@pytest.mark.docker
def test_docker_store_without_a_helper_writes_what_docker_login_would(ecr, registry, aws_env, write_config) -> None:  # type: ignore[no-untyped-def]
    require_tool("docker")
    config = write_config(local_registry_config(ecr.url, registry.address, "docker"))
    result = run_ecr_login("--config", config, "-v")
    assert result.code == 0, result
    auth = docker_config(aws_env)["auths"][registry.address]["auth"]
    assert base64.b64decode(auth).decode() == f"AWS:{ecr.password}"  # docker login's own entry, written directly
    assert ecr.password not in result.output
    # byte for byte the entry `docker login` itself writes (it checks the password with the registry first)
    by_docker = Path(aws_env["DOCKER_CONFIG"]).parent / "by-docker"
    done = subprocess.run(["docker", "login", "--username", "AWS", "--password-stdin", registry.address],
                          input=ecr.password, capture_output=True, text=True, timeout=60, check=False,
                          env=dict(os.environ, DOCKER_CONFIG=str(by_docker)))
    assert done.returncode == 0, done.stderr
    docker_entry = json.loads((by_docker / "config.json").read_text())["auths"][registry.address]
    assert docker_config(aws_env)["auths"][registry.address] == docker_entry

    # status reports it, with time left, exit 0; JSON for machines
    status = run_ecr_login("status", "--config", config, "--json")
    assert status.code == 0, status
    row = json.loads(status.stdout)["registries"][0]
    assert row["registry"] == registry.address and row["status"] == "ok"
    assert 11 * 3600 < row["seconds_left"] <= 12 * 3600

    # someone runs `docker logout`: the next run sees it and logs in again
    subprocess.run(["docker", "logout", registry.address], check=True, capture_output=True)
    assert run_ecr_login("status", "--config", config).code == 2
    again = run_ecr_login("--config", config)
    assert again.code == 0, again
    assert ecr.call_count == 2
    assert "logged out" in again.stderr


@pytest.mark.docker
def test_a_password_the_registry_refuses_is_denied(aws_env, registry, write_config, credential_helper) -> None:  # type: ignore[no-untyped-def]
    require_tool("docker")
    use_helper(Path(aws_env["DOCKER_CONFIG"]))  # through `docker login`, which tries the password first
    with StandinECR(password="not-the-registry-password") as wrong:
        config = write_config(local_registry_config(wrong.url, registry.address, "docker"))
        result = run_ecr_login("--config", config)
    assert result.code == 77, result
    assert "refused" in result.stderr
    assert "not-the-registry-password" not in result.output


def many_registries_config(ecr_url: str) -> str:
    sections = "".join(f"\n[{account}.dkr.ecr.{region}.amazonaws.com]\n" for region in REGIONS for account in ACCOUNTS)
    return f"[defaults]\nendpoint_url = {ecr_url}\nstores = file\n" + sections


@pytest.mark.slow
def test_one_call_per_region_and_identity_then_none(ecr, aws_env, write_config) -> None:  # type: ignore[no-untyped-def]
    config = write_config(many_registries_config(ecr.url))
    first = run_ecr_login("--config", config)
    assert first.code == 0, first
    assert ecr.call_count == 3
    assert sorted(call.region for call in ecr.calls) == sorted(REGIONS)
    auths = docker_config(aws_env)["auths"]
    assert len(auths) == 12
    second = run_ecr_login("--config", config)
    assert second.code == 0, second
    assert ecr.call_count == 3  # nothing due: no AWS call
    assert "nothing to do" in second.stderr


@pytest.mark.slow
def test_fetches_for_different_regions_overlap(aws_env, write_config, token_password) -> None:  # type: ignore[no-untyped-def]
    with StandinECR(password=token_password, default_delay=0.6) as slow:
        config = write_config(many_registries_config(slow.url))
        assert run_ecr_login("--config", config).code == 0
        spans = sorted((call.started_monotonic, call.ended_monotonic) for call in slow.calls)
    assert len(spans) == 3
    # every request started before the first one finished: they ran in parallel
    assert all(start < spans[0][1] for start, _ in spans)


@pytest.mark.slow
def test_no_op_run_imports_no_botocore(ecr, aws_env, write_config) -> None:  # type: ignore[no-untyped-def]
    config = write_config(many_registries_config(ecr.url))
    assert run_ecr_login("--config", config).code == 0
    probe = (
        "import sys; from ecr_login_pkg.cli import main; code = main(['--config', sys.argv[1]]);"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('boto3', 'botocore', 'urllib3', 'awscli'));"
        "print(code, len(loaded), ','.join(loaded[:5]))"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run([sys.executable, "-c", probe, config], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.split()[:2] == ["0", "0"], done.stdout
    # and a forced run does import it (the probe can see an import)
    probe_forced = probe.replace("['--config', sys.argv[1]]", "['--config', sys.argv[1], '--force']")
    forced = subprocess.run([sys.executable, "-c", probe_forced, config], capture_output=True, text=True, env=env, check=True)
    assert forced.stdout.split()[0] == "0" and int(forced.stdout.split()[1]) > 0


def test_zero_config_logs_in_to_the_callers_default_registry(ecr, aws_env, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", ecr.url)  # honoured even by old botocore
    monkeypatch.setenv("AWS_REGION", "eu-north-1")
    missing = str(tmp_path / "none.conf")
    env = dict(os.environ, ECR_LOGIN_CONFIG="")
    result = run_ecr_login("--store", "file", env=env) if not Path("/etc/ecr-login/ecr-login.conf").exists() else None
    if result is None:  # a host with ecr-login installed: point at an empty config instead
        Path(missing).write_text("")
        result = run_ecr_login("--store", "file", "--config", missing)
    assert result.code == 0, result
    assert ecr.calls[0].region == "eu-north-1"
    assert "123456789012.dkr.ecr.eu-north-1.amazonaws.com" in docker_config(aws_env)["auths"]
    status = run_ecr_login("status", "--store", "file", "--json", *(["--config", missing] if Path(missing).exists() else []))
    assert json.loads(status.stdout)["registries"][0]["registry"] == "123456789012.dkr.ecr.eu-north-1.amazonaws.com"
    assert status.code == 0


def test_state_directory_from_systemd_and_force(ecr, aws_env, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\n[public.ecr.aws]\n")
    state_dir = tmp_path / "systemd-state"
    env = dict(os.environ, STATE_DIRECTORY=str(state_dir))
    assert run_ecr_login("--config", config, env=env).code == 0
    assert (state_dir / "state.json").exists()
    assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((state_dir / "state.json").stat().st_mode) == 0o600
    assert ecr.calls[0].target.startswith("SpencerFrontendService")  # public.ecr.aws goes to ecr-public
    assert run_ecr_login("--config", config, env=env).code == 0
    assert ecr.call_count == 1
    assert run_ecr_login("--config", config, "--force", env=env).code == 0
    assert ecr.call_count == 2


def test_dry_run_touches_nothing(ecr, aws_env, write_config) -> None:  # type: ignore[no-untyped-def]
    config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\n[123456789012.dkr.ecr.us-east-1.amazonaws.com]\n")
    result = run_ecr_login("--config", config, "--dry-run")
    assert result.code == 0
    assert "would log in to 123456789012.dkr.ecr.us-east-1.amazonaws.com" in result.stderr
    assert ecr.call_count == 0
    assert not Path(aws_env["DOCKER_CONFIG"]).exists()
    assert not state_file(aws_env).exists()


def test_awscli_token_source(ecr, aws_env, write_config) -> None:  # type: ignore[no-untyped-def]
    require_tool("aws")
    config = write_config(f"""
[defaults]
endpoint_url = {ecr.url}
stores = containers
token_source = awscli
[123456789012.dkr.ecr.us-east-1.amazonaws.com]
""")
    result = run_ecr_login("--config", config, "-v")
    assert result.code == 0, result
    auth_file = Path(aws_env["XDG_CONFIG_HOME"], "containers", "auth.json")
    entry = json.loads(auth_file.read_text())["auths"]["123456789012.dkr.ecr.us-east-1.amazonaws.com"]
    import base64

    assert base64.b64decode(entry["auth"]).decode() == f"AWS:{ecr.password}"
    assert ecr.password not in result.output


@pytest.mark.parametrize("store", ["file", "docker"])  # docker: no helper, so written and removed directly
def test_logout_removes_only_what_ecr_login_stored(ecr, aws_env, write_config, store) -> None:  # type: ignore[no-untyped-def]
    docker_dir = Path(aws_env["DOCKER_CONFIG"])
    docker_dir.mkdir()
    foreign = {"auths": {"ghcr.io": {"auth": "Zm9vOmJhcg=="}}, "credHelpers": {"gcr.io": "gcloud"}, "psFormat": "{{.ID}}"}
    (docker_dir / "config.json").write_text(json.dumps(foreign))
    config = write_config(
        f"[defaults]\nendpoint_url = {ecr.url}\nstores = {store}\n[123456789012.dkr.ecr.us-east-1.amazonaws.com]\n"
    )
    assert run_ecr_login("--config", config).code == 0
    after_login = docker_config(aws_env)
    assert after_login["auths"]["ghcr.io"] == foreign["auths"]["ghcr.io"]
    assert after_login["credHelpers"] == foreign["credHelpers"] and after_login["psFormat"] == "{{.ID}}"
    result = run_ecr_login("logout", "--config", config)
    assert result.code == 0, result
    assert docker_config(aws_env) == foreign
    assert run_ecr_login("status", "--config", config).code == 2


@pytest.mark.parametrize("verbosity", ["-q", None, "-v"])
@pytest.mark.parametrize("behaviour", ["ok", "denied", "bad_base64", "no_aws_prefix"])
def test_no_secret_in_output_at_any_verbosity(ecr, aws_env, write_config, verbosity, behaviour) -> None:  # type: ignore[no-untyped-def]
    ecr.script([behaviour])
    config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\n[123456789012.dkr.ecr.us-east-1.amazonaws.com]\n")
    args = ["--config", config] + ([verbosity] if verbosity else [])
    result = run_ecr_login(*args)
    expected = {"ok": 0, "denied": 77, "bad_base64": 65, "no_aws_prefix": 65}[behaviour]
    assert result.code == expected, result
    status = run_ecr_login("status", "--config", config, "--json")
    for text in (result.output, status.output, state_file(aws_env).read_text()):
        assert ecr.password not in text
        assert DEFAULT_SECRET_ACCESS_KEY not in text
    if behaviour != "ok":
        assert not Path(aws_env["DOCKER_CONFIG"], "config.json").exists()


def test_metrics_file_is_written(ecr, aws_env, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    metrics = tmp_path / "ecr-login.prom"
    config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\n[123456789012.dkr.ecr.us-east-1.amazonaws.com]\n")
    assert run_ecr_login("--config", config, "--metrics-file", str(metrics)).code == 0
    text = metrics.read_text()
    me = pwd.getpwuid(os.geteuid()).pw_name
    labels = f'registry="123456789012.dkr.ecr.us-east-1.amazonaws.com",store="file",user="{me}"'
    assert f"ecr_login_expiry_timestamp_seconds{{{labels}}}" in text
    assert "ecr_login_consecutive_failures" in text and ecr.password not in text


def test_journal_format_under_systemd(ecr, aws_env, write_config) -> None:  # type: ignore[no-untyped-def]
    ecr.script(["denied"])
    config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\n[123456789012.dkr.ecr.us-east-1.amazonaws.com]\n")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), INVOCATION_ID="0123456789abcdef")
    done = subprocess.run([sys.executable, "-m", "ecr_login_pkg", "--config", config], capture_output=True, text=True, env=env)
    assert done.returncode == 77
    lines = done.stderr.splitlines()
    assert lines and all(line[:3] in ("<3>", "<4>", "<5>", "<6>", "<7>") for line in lines), lines
    assert any(line.startswith("<3>") and "AccessDenied" in line for line in lines)
    assert not any(re.match(r"<\d>\d{4}-\d\d-\d\dT", line) for line in lines)  # no timestamp of our own


@pytest.mark.slow
def test_zero_config_on_an_ec2_host_with_only_an_instance_profile(aws_env, token_password, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """No region, no keys, no configuration: region and credentials come from instance metadata."""
    with StandinECR(password=token_password, instance_role="build-host", instance_region="ap-northeast-2") as ec2:
        for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_EC2_METADATA_DISABLED"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", ec2.url + "/")
        monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", ec2.url)
        empty = tmp_path / "empty.conf"
        empty.write_text("")
        first = run_ecr_login("--config", str(empty), "--store", "file")
        assert first.code == 0, first
        assert [call.region for call in ec2.ecr_calls()] == ["ap-northeast-2"]
        assert ec2.ecr_calls()[0].issued_by == "imds"
        assert "123456789012.dkr.ecr.ap-northeast-2.amazonaws.com" in docker_config(aws_env)["auths"]
        asked = len(ec2.metadata_requests)
        second = run_ecr_login("--config", str(empty), "--store", "file")
        assert second.code == 0, second
        assert len(ec2.metadata_requests) == asked and len(ec2.ecr_calls()) == 1  # nothing due: nothing asked
        # metadata off and no region anywhere: a clear configuration error
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        forced = run_ecr_login("--config", str(empty), "--store", "file", "--force")
        assert forced.code == 78 and "no AWS region" in forced.stderr, forced


def test_dry_run_reports_what_the_real_run_would_fail_on(aws_env, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    empty = tmp_path / "empty.conf"
    empty.write_text("")
    dry = run_ecr_login("--config", str(empty), "--store", "file", "--dry-run")
    assert dry.code == 78 and "no AWS region" in dry.stderr, dry
    corrupt = Path(aws_env["DOCKER_CONFIG"])
    corrupt.mkdir()
    (corrupt / "config.json").write_text("{broken")
    dry = run_ecr_login("--config", str(empty), "--store", "file", "--dry-run", "--region", "eu-west-1")
    assert dry.code == 78 and "config.json" in dry.stderr, dry


@pytest.mark.slow
def test_status_by_hand_finds_the_services_default_registry(ecr, aws_env, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """The unit's environment (region, endpoint) is not there when an admin runs status by hand."""
    empty = tmp_path / "empty.conf"
    empty.write_text("")
    service_env = dict(os.environ, AWS_REGION="eu-west-3", AWS_ENDPOINT_URL_ECR=ecr.url)
    assert run_ecr_login("--config", str(empty), "--store", "file", env=service_env).code == 0
    by_hand = dict(os.environ)
    by_hand.pop("AWS_DEFAULT_REGION")
    status = run_ecr_login("status", "--config", str(empty), "--store", "file", "--json", env=by_hand)
    rows = json.loads(status.stdout)["registries"]
    assert [row["registry"] for row in rows] == ["123456789012.dkr.ecr.eu-west-3.amazonaws.com"]
    assert status.code == 0 and rows[0]["status"] == "ok", status
    logout = run_ecr_login("logout", "--config", str(empty), "--store", "file", env=by_hand)
    assert logout.code == 0 and "logged out of 123456789012.dkr.ecr.eu-west-3.amazonaws.com" in logout.stderr
    assert docker_config(aws_env)["auths"] == {}
    after = run_ecr_login("status", "--config", str(empty), "--store", "file", "--json", env=by_hand)
    assert [row["registry"] for row in json.loads(after.stdout)["registries"]] == ["default:instance-region"]


@pytest.mark.docker
def test_one_refused_docker_login_does_not_cancel_the_others(  # type: ignore[no-untyped-def]
    ecr, registry, aws_env, write_config, tmp_path, credential_helper
) -> None:
    require_tool("docker")
    from local_registry import LocalRegistry

    use_helper(Path(aws_env["DOCKER_CONFIG"]))  # through `docker login`, once per registry

    with LocalRegistry("a-password-the-token-does-not-carry", workdir=tmp_path / "other") as refusing:
        config = write_config(f"""
[defaults]
endpoint_url = {ecr.url}
stores = docker
[refusing]
host = 111111111111.dkr.ecr.us-east-1.amazonaws.com
store_as = {refusing.address}
[accepting]
host = 222222222222.dkr.ecr.us-east-1.amazonaws.com
store_as = {registry.address}
""")
        result = run_ecr_login("--config", config)
        status = run_ecr_login("status", "--config", config, "--json")
    assert result.code == 77, result
    assert ecr.call_count == 1
    rows = {row["registry"]: row for row in json.loads(status.stdout)["registries"]}
    assert rows[registry.address]["status"] == "ok" and rows[registry.address]["last_error"] is None
    assert rows[refusing.address]["status"] == "missing" and "refused" in rows[refusing.address]["last_error"]
    assert list(docker_config(aws_env)["auths"]) == [registry.address]


@pytest.mark.slow
def test_metrics_on_every_run_and_no_stale_default_placeholder(ecr, aws_env, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    metrics = tmp_path / "ecr-login.prom"
    empty = tmp_path / "empty.conf"
    empty.write_text("")
    monkeypatch.setenv("AWS_ENDPOINT_URL_ECR", ecr.url)
    ecr.script(["denied"])
    args = ("--config", str(empty), "--store", "file", "--metrics-file", str(metrics))
    assert run_ecr_login(*args).code == 77
    assert 'registry="default:us-east-1"' in metrics.read_text()
    assert run_ecr_login(*args).code == 0
    text = metrics.read_text()
    assert "default:us-east-1" not in text  # the failed placeholder is gone once the default is known
    assert 'ecr_login_last_exit_code{registry="123456789012.dkr.ecr.us-east-1.amazonaws.com"' in text
    metrics.unlink()
    assert run_ecr_login(*args).code == 0 and ecr.call_count == 2  # nothing due...
    assert "ecr_login_last_run_timestamp_seconds" in metrics.read_text()  # ...and still written




@pytest.mark.docker
def test_docker_store_honours_a_configured_credential_helper(ecr, registry, aws_env, write_config, credential_helper) -> None:  # type: ignore[no-untyped-def]
    require_tool("docker")
    helper_store = credential_helper
    use_helper(Path(aws_env["DOCKER_CONFIG"]))
    config = write_config(local_registry_config(ecr.url, registry.address, "docker"))
    result = run_ecr_login("--config", config)
    assert result.code == 0, result
    kept = json.loads(helper_store.read_text())
    assert kept[registry.address] == {"Username": "AWS", "Secret": ecr.password}  # in the helper...
    assert "auth" not in docker_config(aws_env).get("auths", {}).get(registry.address, {})  # ...not in config.json
    status = run_ecr_login("status", "--config", config, "--json")
    assert status.code == 0 and json.loads(status.stdout)["registries"][0]["status"] == "ok", status
    assert run_ecr_login("--config", config).code == 0 and ecr.call_count == 1  # the helper's list says it is held
    helper_store.write_text("{}")  # the login vanished from the helper (docker logout elsewhere)
    assert run_ecr_login("--config", config).code == 0 and ecr.call_count == 2


@pytest.mark.parametrize("helper", ["secretservice", "pass"])
def test_docker_store_leaves_it_to_docker_when_docker_would_pick_a_helper(  # type: ignore[no-untyped-def]
    ecr, aws_env, write_config, tmp_path, monkeypatch, helper
) -> None:
    """config.json names no helper, but docker would pick one from PATH: `docker login` must run."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = bin_dir / "calls"
    for name, body in ((f"docker-credential-{helper}", "exit 1"), ("docker", f'echo "$*" >> {calls}; exit 0')):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    host = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = docker\n[{host}]\n")
    run_ecr_login("--config", config)
    assert calls.read_text().startswith(f"login --username AWS --password-stdin {host}")
    assert not Path(aws_env["DOCKER_CONFIG"], "config.json").exists()  # nothing written behind docker's back


def test_helm_store_writes_helms_registry_config(ecr, aws_env, write_config, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    helm_config = tmp_path / "helm" / "registry" / "config.json"
    monkeypatch.setenv("HELM_REGISTRY_CONFIG", str(helm_config))
    config = write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = helm\n[public.ecr.aws]\n")
    assert run_ecr_login("--config", config).code == 0
    import base64

    auth = json.loads(helm_config.read_text())["auths"]["public.ecr.aws"]["auth"]
    assert base64.b64decode(auth).decode() == f"AWS:{ecr.password}"
    assert stat.S_IMODE(helm_config.stat().st_mode) == 0o600
