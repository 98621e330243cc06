"""examples/hooks/docker-swarm-update against a real one-node Docker Swarm (Debian's dockerd).

A Swarm service created ``--with-registry-auth`` keeps the login it was created with; when
the registry's password changes (an ECR token expires after 12 hours), its tasks can no
longer pull. The hook gives the service the fresh login: after it ran, the daemon's pulls
for the service's tasks succeed again. What is checked is what the registry sees of the
daemon's own pulls (the image has no command, so its containers never run: the pulls are
the point), as NOTES-real-systemd.md advises.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from conftest import REPO_ROOT, require_tool, run_ecr_login
from local_registry import LocalRegistry, basic_token, build_oci_layout, skopeo_copy, write_auth_file
from standin_ecr import StandinECR
from test_guest_consumers import docker_daemon  # noqa: F401  (a fixture: dockerd in a temporary directory)

pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.root]

ECR_HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
# The daemon's own requests (a task's pull); those the CLI drives carry "UpstreamClient(".
_DAEMON_PULL = re.compile(r'http\.request\.uri="?/v2/team/app/manifests/[^ ]* '
                          r'http\.request\.useragent="docker/[^"(]*"')


def _daemon_pulls(log: str) -> tuple[int, int]:
    """(successful, refused) manifest requests of the daemon's own pulls in this registry log."""
    ok = sum(1 for line in log.splitlines() if _DAEMON_PULL.search(line) and "http.response.status=200" in line)
    refused = sum(1 for line in log.splitlines()
                  if "invalid authorization credential" in line and "UpstreamClient(" not in line)
    return ok, refused


def _wait_for(what: str, check, timeout: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def test_the_swarm_hook_keeps_a_service_pulling_after_the_password_changes(
        docker_daemon: Path, aws_env: dict[str, str], tmp_path: Path) -> None:  # noqa: F811
    require_tool("docker")
    require_tool("skopeo")
    if os.geteuid() != 0:
        pytest.skip("needs root: dockerd")
    docker_env = {**os.environ, "DOCKER_HOST": f"unix://{docker_daemon / 'd.sock'}",
                  "DOCKER_CONFIG": str(tmp_path / "admin-docker")}  # the admin's CLI: no login of its own

    def docker(*args: str, check: bool = True, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["docker", *args], env=docker_env, capture_output=True, text=True, timeout=120,
                              input=stdin, check=False)
        assert not check or done.returncode == 0, f"docker {' '.join(args)}: {done.stderr}"
        return done

    def forget_image() -> None:
        """The daemon drops the image (by ID: a task's digest reference keeps it otherwise), so it pulls anew."""
        for image_id in set(docker("image", "ls", "--quiet", "--no-trunc").stdout.split()):
            docker("image", "rm", "--force", image_id, check=False)

    first = secrets.token_urlsafe(18)
    with LocalRegistry(first, workdir=tmp_path / "registry") as registry, StandinECR(password=first) as ecr:
        image = f"{registry.address}/team/app:v1"
        build_oci_layout(tmp_path / "image", "v1")
        skopeo_copy(f"oci:{tmp_path / 'image'}:v1", f"docker://{image}",
                    write_auth_file(tmp_path / "push.json", registry.address, basic_token(first)))
        docker("swarm", "init", "--advertise-addr", "127.0.0.1")
        try:
            # The service, created with the login of the day.
            creator = {**docker_env, "DOCKER_CONFIG": str(tmp_path / "creator")}
            subprocess.run(["docker", "login", "--username", "AWS", "--password-stdin", registry.address],
                           input=first, env=creator, capture_output=True, text=True, check=True)
            subprocess.run(["docker", "service", "create", "--with-registry-auth", "--detach", "--name", "web", image],
                           env=creator, capture_output=True, text=True, check=True)
            shutil.rmtree(tmp_path / "creator")
            _wait_for("the service's first pull", lambda: _daemon_pulls(registry.log_text())[0] > 0)

            # The hook, installed as its header says, for the user of this run.
            hooks = tmp_path / "hooks.d"
            hooks.mkdir()
            shutil.copy(REPO_ROOT / "examples/hooks/docker-swarm-update", hooks / "60-docker-swarm-update")
            (hooks / "60-docker-swarm-update").chmod(0o755)
            me = subprocess.run(["id", "-un"], capture_output=True, text=True, check=True).stdout.strip()
            (hooks / "60-docker-swarm-update.conf").write_text(
                f'SERVICES="web"\nDOCKER_HOST={docker_env["DOCKER_HOST"]}\nFOR_USER={me}\n')
            config = tmp_path / "ecr-login.conf"
            config.write_text(f"[defaults]\nendpoint_url = {ecr.url}\nstores = file\nhooks_dir = {hooks}\n"
                              f"[app]\nhost = {ECR_HOST}\nstore_as = {registry.address}\n")

            # The password changes; the service's stored login no longer pulls.
            second = secrets.token_urlsafe(18)
            registry.change_password(second)
            ecr.password = second
            forget_image()
            docker("service", "update", "--force", "--detach", "web")
            _wait_for("a refused pull with the old login", lambda: _daemon_pulls(registry.log_text())[1] > 0)

            # ecr-login logs in, the hook hands the new login to the service: its pulls work again.
            mark = len(registry.log_text())
            done = run_ecr_login("login", "--config", str(config), env={**os.environ, **aws_env})
            assert done.code == 0, done
            assert "updated web" in done.stderr and "deploy hook 60-docker-swarm-update done" in done.stderr, done.stderr
            assert second not in done.output
            forget_image()
            docker("service", "update", "--force", "--detach", "web")  # a new task: the daemon pulls again
            try:
                _wait_for("a pull with the new login", lambda: _daemon_pulls(registry.log_text()[mark:])[0] > 0)
            except AssertionError:
                raise AssertionError(registry.log_text()[mark:][-6000:] + docker("service", "ps", "--no-trunc", "web").stdout
                                     + docker("service", "inspect", "web").stdout) from None
            tasks = docker("service", "ps", "--no-trunc", "--format", "{{.Image}}", "web").stdout
            assert f"{image}@sha256:" in tasks, tasks
        finally:
            docker("service", "rm", "web", check=False)
            docker("swarm", "leave", "--force", check=False)
