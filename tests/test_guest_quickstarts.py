"""README's quick starts, run as written on a booted Debian 12 guest with the .deb installed.

Each ``<!-- quickstart: NAME -->`` block of README.md runs with ``sh -e`` as root in the
guest, with only what cannot be real here swapped in: the placeholder AWS keys become
the stand-in's, the example ECR registry is stored under the local registry's address
(``store_as``) and its ``docker pull`` pulls the local registry's image, and the
environment file also names the stand-in's endpoint. The CI agents' users exist (their
packages would make them); ``docker`` reaches a real Docker daemon. After each block, the
user it serves holds the login in their own file, and the registry takes it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from guest import Guest
from local_registry import basic_token
from test_boot import deb  # noqa: F401  (a fixture: this tree's .deb)
from test_docs import quickstarts
from test_guest_consumers import _static_docker, docker_daemon  # noqa: F401  (docker_daemon is a fixture)
from test_lifecycle import APT, APT_ENV, HOST_DOCKER, REGION, Backends, backends  # noqa: F401

pytestmark = [pytest.mark.guest, pytest.mark.slow, pytest.mark.docker]

EXAMPLE_HOST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
# Who each quick start serves, and where that user's docker login lands.
SERVED = {
    "jenkins": ("builder", "/home/builder"),
    "gitlab-runner-shell": ("gitlab-runner", "/home/gitlab-runner"),
    "gitlab-runner-docker": ("root", "/root"),
    "github-actions": ("runner", "/home/runner"),
    "buildkite": ("buildkite-agent", "/var/lib/buildkite-agent"),
    "own-identity": ("jenkins", "/var/lib/jenkins"),
}


def as_run_here(script: str, backends: Backends) -> str:  # noqa: F811
    """The quick start with the stand-ins swapped in for what only AWS has."""
    script = script.replace("AWS_ACCESS_KEY_ID=AKIA...", f"AWS_ACCESS_KEY_ID={backends.access_key}")
    script = script.replace("AWS_SECRET_ACCESS_KEY=...", f"AWS_SECRET_ACCESS_KEY={backends.secret_key}"
                            f"\nAWS_REGION={REGION}\nAWS_ENDPOINT_URL_ECR={backends.ecr.url}")
    script = script.replace(f"[{EXAMPLE_HOST}]\n", f"[{EXAMPLE_HOST}]\nstore_as = {backends.registry.address}\n")
    return re.sub(rf"{re.escape(EXAMPLE_HOST)}/\S+", backends.image, script)


def test_every_quick_start_runs_as_written(deb: Path, backends: Backends, docker_daemon: Path) -> None:  # noqa: F811
    blocks = quickstarts()
    assert set(SERVED) <= set(blocks), f"README lost quick starts: {sorted(set(SERVED) - set(blocks))}"
    binds = {deb.parent: "/srv/current", _static_docker(): HOST_DOCKER}
    with Guest(bind_ro=binds, bind={docker_daemon: "/run/docker-host"}) as guest:
        guest.run(["apt-get", "-q", "update"], timeout=300)
        guest.run([*APT, "install", f"/srv/current/{deb.name}", "sudo"], env=APT_ENV, timeout=600)
        guest.run(["ln", "-sf", "/run/docker-host/d.sock", "/run/docker.sock"])  # docker's default socket
        guest.run(["groupadd", "--force", "docker"])
        for user, home in SERVED.values():
            if user != "root":
                guest.run(["useradd", "--create-home", "--home-dir", home, "--groups", "docker", user])
        # The host's keys: what the access-keys quick start writes, the others build on.
        access = as_run_here(blocks["access-keys"], backends)
        guest.run(["sh", "-e", "-c", access])
        for name, (user, home) in SERVED.items():
            script = as_run_here(blocks[name], backends)
            done = guest.run(["sh", "-e", "-c", script], check=False, timeout=300)
            journal = guest.journal("ecr-login.service")[-3000:]
            assert done.returncode == 0, f"quick start {name}:\n{script}\n{done.stdout}\n{done.stderr}\n{journal}"
            if name == "own-identity":
                guest.run(["systemctl", "start", "ecr-login@jenkins.service"])  # its first run, done by now
            auths = json.loads(guest.read_file(f"{home}/.docker/config.json"))["auths"]
            assert auths.get(backends.registry.address) == {"auth": basic_token(backends.password)}, (name, auths)
            owner = guest.run(["stat", "-c", "%U %a", f"{home}/.docker/config.json"]).stdout.split()
            assert owner == [user, "600"], (name, owner)
            status = guest.run(["ecr-login", "status"], user=user, check=False)
            assert status.returncode == 0, f"quick start {name}: status as {user}:\n{status.stdout}"
        # The Jenkins quick start's pull went through the daemon: the image is there, as builder's.
        images = guest.run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}"], user="builder").stdout
        assert backends.image in images.split(), images
