"""Deploy hooks (issue #10.2): the real command, real boto3 to the stand-in ECR, real hook processes.

Each hook here is a small shell script that records what it was given (its
argv, its environment, its standard input, the order it ran in) into a
directory of the test, so every promise is checked on what a real child
process saw: the password on stdin only, never in argv or the environment;
name order; once per refreshed (registry, store); none when nothing is due; a
failure or a timeout keeps the login, exits 75, shows in ``status`` and the
metrics, and is rerun by the next run until it succeeds.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import subprocess
import time
from pathlib import Path

import pytest
from conftest import require_tool, run_ecr_login
from guest import Guest
from local_registry import basic_token
from test_boot import deb  # noqa: F401  (a fixture: this tree's .deb)
from test_lifecycle import backends  # noqa: F401  (a fixture: stand-in ECR + registry with an image)
from test_login import docker_config, local_registry_config

RECORDER = """#!/bin/sh
# Records what this hook was given (tests/test_hooks.py).
set -eu
name=$(basename "$0")
umask 077
cat > "$HOOK_RECORD/$name.stdin"
env > "$HOOK_RECORD/$name.env"
printf '%s\\n' "$0" "$@" > "$HOOK_RECORD/$name.argv"
echo "$name" >> "$HOOK_RECORD/order"
if [ -e "$HOOK_RECORD/fail" ]; then echo "cannot reach the cluster" >&2; exit 3; fi
"""

ME = pwd.getpwuid(os.geteuid()).pw_name  # the user label of the metrics


@pytest.fixture
def record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where the hooks record what they saw (HOOK_RECORD in ecr-login's, and so the hooks', environment)."""
    directory = tmp_path / "record"
    directory.mkdir()
    monkeypatch.setenv("HOOK_RECORD", str(directory))
    return directory


def _hook(directory: Path, name: str, text: str = RECORDER, mode: int = 0o755) -> Path:
    directory.mkdir(exist_ok=True)
    path = directory / name
    path.write_text(text)
    path.chmod(mode)
    return path


def _config(write_config, ecr, registry, hooks: Path, extra: str = "") -> str:  # type: ignore[no-untyped-def]
    text = local_registry_config(ecr.url, registry.address, "file")
    return write_config(text.replace("[defaults]\n", f"[defaults]\nhooks_dir = {hooks}\n{extra}", 1))


def _order(record: Path) -> list[str]:
    path = record / "order"
    return path.read_text().split() if path.exists() else []


def _status(config: str) -> dict:  # type: ignore[type-arg]
    shown = run_ecr_login("status", "--json", "--config", config)
    rows = json.loads(shown.stdout)["registries"]
    assert len(rows) == 1, rows
    return rows[0]  # type: ignore[no-any-return]


def test_hooks_run_in_name_order_with_the_password_on_stdin_only(  # type: ignore[no-untyped-def]
    ecr, registry, aws_env, write_config, token_password, record, tmp_path
) -> None:
    hooks = tmp_path / "hooks.d"
    _hook(hooks, "20-second")
    _hook(hooks, "10-first")
    _hook(hooks, "30-not-executable", mode=0o644)
    _hook(hooks, "40-backup~")
    _hook(hooks, ".hidden")
    _hook(hooks, "50-old.dpkg-old")
    config = _config(write_config, ecr, registry, hooks)
    before = time.time()

    result = run_ecr_login("login", "--config", config)
    assert result.code == 0, result
    assert _order(record) == ["10-first", "20-second"], result
    assert "deploy hook 10-first done" in result.stderr and token_password not in result.output
    for name in ("10-first", "20-second"):
        assert (record / f"{name}.stdin").read_text() == token_password
        assert token_password not in (record / f"{name}.argv").read_text()
        env_text = (record / f"{name}.env").read_text()
        assert token_password not in env_text
        env = dict(line.split("=", 1) for line in env_text.splitlines() if "=" in line)
        assert env["ECR_LOGIN_REGISTRY"] == registry.address
        assert env["ECR_LOGIN_USERNAME"] == "AWS"
        assert env["ECR_LOGIN_STORE"] == "file"
        assert before + 11 * 3600 < int(env["ECR_LOGIN_EXPIRES_AT"]) <= time.time() + 12 * 3600
        assert not [key for key in env if key.startswith("AWS_")], "AWS settings reached a hook"
    assert docker_config(aws_env)["auths"][registry.address]["auth"] == basic_token(token_password)

    # Nothing due, no failed hook: no hook runs, no AWS call.
    calls = ecr.call_count
    again = run_ecr_login("login", "--config", config)
    assert again.code == 0 and ecr.call_count == calls, again
    assert _order(record) == ["10-first", "20-second"]


@pytest.mark.slow
def test_a_failed_hook_keeps_the_login_exits_75_and_is_rerun_until_it_succeeds(  # type: ignore[no-untyped-def]
    ecr, registry, aws_env, write_config, token_password, record, tmp_path
) -> None:
    hooks = tmp_path / "hooks.d"
    _hook(hooks, "10-deploy")
    config = _config(write_config, ecr, registry, hooks)
    metrics = tmp_path / "metrics.prom"
    (record / "fail").touch()

    failed = run_ecr_login("login", "--config", config, "--metrics-file", str(metrics))
    assert failed.code == 75, failed
    assert "deploy hook 10-deploy exited 3" in failed.stderr and "cannot reach the cluster" in failed.stderr
    assert docker_config(aws_env)["auths"][registry.address]["auth"] == basic_token(token_password), "the login was undone"
    row = _status(config)
    assert row["status"] == "failing" and "10-deploy exited 3" in row["hook_error"], row
    assert run_ecr_login("status", "--config", config).code == 1
    assert f'ecr_login_hook_failed{{registry="{registry.address}",store="file",user="{ME}"}} 1' in metrics.read_text()

    # Still failing: the next run logs in again (the hook needs a password) and reruns it.
    calls = ecr.call_count
    still = run_ecr_login("login", "--config", config)
    assert still.code == 75 and ecr.call_count == calls + 1, still
    assert "deploy hook failed after the last login" in run_ecr_login("login", "--dry-run", "--config", config).stderr

    (record / "fail").unlink()
    fixed = run_ecr_login("login", "--config", config, "--metrics-file", str(metrics))
    assert fixed.code == 0 and ecr.call_count == calls + 2, fixed
    assert _order(record) == ["10-deploy"] * 3
    row = _status(config)
    assert row["status"] == "ok" and row["hook_error"] is None, row
    assert f'ecr_login_hook_failed{{registry="{registry.address}",store="file",user="{ME}"}} 0' in metrics.read_text()

    # Succeeded: nothing due and no failed hook, so nothing runs.
    quiet = run_ecr_login("login", "--config", config)
    assert quiet.code == 0 and ecr.call_count == calls + 2 and len(_order(record)) == 3, quiet


@pytest.mark.slow
def test_a_hook_that_hangs_is_killed_at_hook_timeout(ecr, registry, aws_env, write_config, record, tmp_path) -> None:  # type: ignore[no-untyped-def]
    hooks = tmp_path / "hooks.d"
    _hook(hooks, "10-hangs", '#!/bin/sh\ncat > /dev/null\nsleep 300 &\necho $! > "$HOOK_RECORD/child"\nwait\n')
    config = _config(write_config, ecr, registry, hooks, "hook_timeout = 2s\n")
    started = time.monotonic()
    result = run_ecr_login("login", "--config", config)
    took = time.monotonic() - started
    assert result.code == 75 and "10-hangs timed out after 2 s (hook_timeout)" in result.stderr, result
    assert took < 15, f"the run took {took:.1f} s"
    child = int((record / "child").read_text())
    time.sleep(0.2)
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2], (
        "the hook's child outlived the timeout"
    )
    assert docker_config(aws_env)["auths"][registry.address]


def test_no_hooks_runs_none(ecr, registry, aws_env, write_config, record, tmp_path) -> None:  # type: ignore[no-untyped-def]
    hooks = tmp_path / "hooks.d"
    _hook(hooks, "10-deploy")
    config = _config(write_config, ecr, registry, hooks)
    result = run_ecr_login("login", "--no-hooks", "--config", config)
    assert result.code == 0 and _order(record) == [], result
    assert _status(config)["hook_error"] is None


def test_a_hook_others_can_modify_is_not_run(ecr, registry, aws_env, write_config, record, tmp_path) -> None:  # type: ignore[no-untyped-def]
    hooks = tmp_path / "hooks.d"
    _hook(hooks, "10-deploy", mode=0o775)
    config = _config(write_config, ecr, registry, hooks)
    result = run_ecr_login("login", "--config", config)
    assert result.code == 75 and "10-deploy not run: writable by group or others (chmod go-w)" in result.stderr, result
    assert _order(record) == []


@pytest.mark.parametrize(
    ("setting", "environment", "words"),
    [
        ("hooks_dir = hooks.d\n", {}, "[defaults] hooks_dir: must be an absolute directory path"),
        ("hook_timeout = soon\n", {}, "[defaults] hook_timeout: 'soon' is not a duration"),
        ("hook_timeout = 0\n", {}, "[defaults] hook_timeout: must be between"),
        ("", {"ECR_LOGIN_HOOKS_DIR": "relative/hooks"}, "ECR_LOGIN_HOOKS_DIR (environment): 'relative/hooks' must be an absolute"),
    ],
)
def test_bad_hook_settings_are_one_line_and_exit_78(  # type: ignore[no-untyped-def]
    ecr, registry, aws_env, write_config, tmp_path, monkeypatch, setting, environment, words
) -> None:
    text = local_registry_config(ecr.url, registry.address, "file").replace("[defaults]\n", f"[defaults]\n{setting}", 1)
    config = write_config(text)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    result = run_ecr_login("login", "--config", config)
    assert result.code == 78 and words in result.stderr and len(result.stderr.strip().splitlines()) == 1, result
    assert ecr.call_count == 0


def test_the_environment_names_an_instances_own_hooks_dir(  # type: ignore[no-untyped-def]
    ecr, registry, aws_env, write_config, record, tmp_path, monkeypatch
) -> None:
    """ecr-login@USER sets ECR_LOGIN_HOOKS_DIR: it wins over the file's hooks_dir."""
    _hook(tmp_path / "system-hooks.d", "10-system")
    _hook(tmp_path / "user-hooks.d", "10-user")
    config = _config(write_config, ecr, registry, tmp_path / "system-hooks.d")
    monkeypatch.setenv("ECR_LOGIN_HOOKS_DIR", str(tmp_path / "user-hooks.d"))
    assert run_ecr_login("login", "--config", config).code == 0
    assert _order(record) == ["10-user"]


# --- the shipped Kubernetes example, under the real service, with the real kubectl ----------

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "hooks"


@pytest.mark.guest
@pytest.mark.slow
def test_kubernetes_example_applies_a_secret_that_logs_in(  # type: ignore[no-untyped-def]
    deb,  # noqa: F811
    backends,  # noqa: F811
    tmp_path,
    capsys,
) -> None:
    """examples/hooks/kubernetes-secret in ecr-login.service's hooks.d on a booted Debian 12.

    kubectl is Debian's own (kubernetes-client, installed in the guest): its
    client-side dry run writes the Secret it would apply, since no API server
    runs here. That Secret, decoded, logs in to the real registry.
    """
    from test_lifecycle import (
        APT,
        APT_ENV,
        SERVICE_HOME,
        Steps,
        _print_timing,
        assert_no_secret,
        start_service,
        wait_out_timer_tick,
    )

    require_tool("skopeo")
    step = Steps()
    dry_run = f"{SERVICE_HOME}/kube-dry-run"
    binds = {deb.parent: "/srv/current", EXAMPLES: "/srv/hooks"}
    with Guest(bind_ro=binds) as guest:
        with step("install ecr-login and Debian's kubectl"):
            guest.run(["apt-get", "-q", "update"], timeout=300)
            guest.run([*APT, "install", f"/srv/current/{deb.name}", "kubernetes-client"], env=APT_ENV, timeout=600)
        with step("install the example hook, as the man page says"):
            hook = "/etc/ecr-login/hooks.d/50-kubernetes-secret"
            guest.run(["install", "-d", "/etc/ecr-login/hooks.d"])
            guest.run(["install", "-m", "0755", "/srv/hooks/kubernetes-secret", hook])
            guest.write_file(f"{hook}.conf", f'NAMESPACES="default ci"\nDRY_RUN_DIR={dry_run}\n')
            guest.run(["install", "-d", "-o", "ecr-login", "-g", "ecr-login", "-m", "0700", dry_run])
        with step("the service logs in and runs the hook"):
            wait_out_timer_tick(guest)  # the run the timer started at install must not swallow ours
            guest.write_file("/etc/default/ecr-login", backends.environment_file(), mode=0o600)
            shown = start_service(guest, "ecr-login.service")
            journal = guest.journal("ecr-login.service")
            assert shown["Result"] == "success", f"{shown}\n{journal}"
            assert "deploy hook 50-kubernetes-secret done" in journal, journal
            assert_no_secret(guest.run(["journalctl", "-b", "--no-pager", "-o", "export"]).stdout, backends, "the journal")
        with step("the Secret it would apply, decoded, logs in to the registry"):
            name = "ecr-login-" + backends.registry.address.replace(".", "-").replace(":", "-")
            for namespace in ("default", "ci"):
                secret = json.loads(guest.read_file(f"{dry_run}/{namespace}-{name}.json"))
                assert secret["kind"] == "Secret" and secret["type"] == "kubernetes.io/dockerconfigjson", secret
                assert secret["metadata"] == {"name": name, "namespace": namespace, "creationTimestamp": None}
            assert guest.run(["stat", "-c", "%a %U", f"{dry_run}/ci-{name}.json"]).stdout.split() == ["600", "ecr-login"]
            dockerconfig = json.loads(base64.b64decode(secret["data"][".dockerconfigjson"]))
            entry = dockerconfig["auths"][backends.registry.address]
            assert entry["auth"] == basic_token(backends.password) and entry["username"] == "AWS"
            authfile = tmp_path / "from-the-secret.json"
            authfile.write_text(json.dumps(dockerconfig))
            ref = f"docker://{backends.image}"
            inspected = subprocess.run(
                ["skopeo", "inspect", "--tls-verify=false", "--authfile", str(authfile), ref],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            assert inspected.returncode == 0 and json.loads(inspected.stdout)["Digest"] == backends.image_digest, inspected
            authfile.write_text(json.dumps({"auths": {}}))
            refused = subprocess.run(
                ["skopeo", "inspect", "--tls-verify=false", "--authfile", str(authfile), ref],
                capture_output=True, text=True, check=False,
            )  # fmt: skip
            assert refused.returncode != 0, "the registry lets anyone in: the check above proves nothing"
        with step("nothing due: no hook"):
            start_service(guest, "ecr-login.service")
            assert guest.journal("ecr-login.service").count("deploy hook 50-kubernetes-secret done") == 1
        with step("ecr-login@builder runs its own hooks, as builder"):
            guest.run(["useradd", "--create-home", "builder"])
            guest.write_file("/etc/default/ecr-login@builder", backends.environment_file(), mode=0o600)
            whoami = '#!/bin/sh\ncat > /dev/null\n{ id -un; echo "$ECR_LOGIN_STORE"; } > "$HOME/hook-ran-as"\n'
            guest.run(["install", "-d", "/etc/ecr-login/hooks@builder.d"])
            guest.write_file("/etc/ecr-login/hooks@builder.d/10-whoami", whoami, mode=0o755)
            shown = start_service(guest, "ecr-login@builder.service")
            journal = guest.journal("ecr-login@builder.service")
            assert shown["Result"] == "success", f"{shown}\n{journal}"
            assert guest.read_file("/home/builder/hook-ran-as").split() == ["builder", "file"], journal
            assert "kubernetes-secret" not in journal, "the system service's hook ran for builder"
    _print_timing(capsys, step.report("kubernetes hook example"))
