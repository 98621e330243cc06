"""A real container registry on loopback, and the tools to use it in tests.

Why: a stored login is only proven good when a real client gets through a
real registry with it. ``LocalRegistry`` runs Debian's ``docker-registry``
(distribution v2) with htpasswd auth for user ``AWS`` and the password the
stand-in ECR puts in its tokens. ``build_oci_layout`` makes an image to push
without a daemon or network, and ``skopeo_copy`` moves it with credentials
taken only from an auth file, never from a command line.

Standard library only, so it runs under any Python 3.9+ on the host.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import secrets
import shutil
import socket
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = [
    "DOCKER_REGISTRY",
    "LocalRegistry",
    "SkopeoError",
    "basic_token",
    "build_oci_layout",
    "skopeo_copy",
    "write_auth_file",
]

DOCKER_REGISTRY = "/usr/bin/docker-registry"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

# Variables through which a client could find credentials other than the
# auth file a test hands it (containers/image also falls back to these
# when --authfile is given).
_CREDENTIAL_ENV = (
    "HOME",
    "DOCKER_CONFIG",
    "REGISTRY_AUTH_FILE",
    "XDG_CONFIG_HOME",
    "XDG_RUNTIME_DIR",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalRegistry:
    """``docker-registry serve`` on 127.0.0.1:<free port> with htpasswd auth.

    Everything (config, htpasswd, blobs, ``registry.log``) lives in
    ``workdir``; when none is given a temporary directory is made and
    removed on stop. Pass pytest's ``tmp_path`` to keep the log for a
    failed test.
    """

    def __init__(
        self,
        password: str,
        *,
        username: str = "AWS",
        workdir: str | os.PathLike[str] | None = None,
        binary: str = DOCKER_REGISTRY,
        htpasswd: str = "htpasswd",
        start_timeout: float = 20.0,
    ) -> None:
        self.password = password
        self.username = username
        self.binary = binary
        self.htpasswd = htpasswd
        self.start_timeout = start_timeout
        self._own_workdir = workdir is None
        self._workdir_arg = workdir
        self.workdir = Path()
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``: the registry name for docker, skopeo, auth files."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT`` (for a stand-in's proxy endpoint)."""
        return f"http://{self.address}"

    @property
    def log_path(self) -> Path:
        """The registry's combined stdout/stderr."""
        return self.workdir / "registry.log"

    def log_text(self) -> str:
        """The log so far, for assertion messages."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def start(self) -> LocalRegistry:
        """Write config and htpasswd, start the server, wait for ``/v2/`` 401."""
        if self._process is not None:
            raise RuntimeError("LocalRegistry already started")
        if self._workdir_arg is None:
            self.workdir = Path(tempfile.mkdtemp(prefix="local-registry-"))
        else:
            self.workdir = Path(self._workdir_arg)
            self.workdir.mkdir(parents=True, exist_ok=True)
        htpasswd_file = self.workdir / "htpasswd"
        # -i reads the password from stdin; -B is bcrypt, the only hash
        # distribution's htpasswd backend accepts.
        subprocess.run(
            [self.htpasswd, "-i", "-B", "-c", str(htpasswd_file), self.username],
            input=self.password + "\n",
            text=True,
            check=True,
            capture_output=True,
        )
        # Loopback port races with other tests are possible: retry a few times.
        for attempt in range(3):
            self.port = _free_port()
            self._launch(htpasswd_file)
            try:
                self._wait_ready()
                return self
            except _ExitedEarly:
                if attempt == 2:
                    self.stop()
                    raise
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def _launch(self, htpasswd_file: Path) -> None:
        config = {
            "version": "0.1",
            "log": {"level": "info", "formatter": "text"},
            "storage": {
                "filesystem": {"rootdirectory": str(self.workdir / "data")},
                "delete": {"enabled": True},
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {
                "addr": self.address,
                "secret": secrets.token_hex(16),
                "headers": {"X-Content-Type-Options": ["nosniff"]},
            },
            "auth": {"htpasswd": {"realm": "ecr-login-tests", "path": str(htpasswd_file)}},
        }
        config_file = self.workdir / "config.yml"
        # JSON is valid YAML, and needs no quoting rules for odd temp paths.
        config_file.write_text(json.dumps(config, indent=2))
        # REGISTRY_* variables override the config file; do not inherit any.
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                [self.binary, "serve", str(config_file)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
            )

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                self._process = None
                raise _ExitedEarly(f"docker-registry exited early:\n{self.log_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{self.url}/v2/", timeout=2).close()
            except urllib.error.HTTPError as err:
                if err.code == 401:
                    return
                raise RuntimeError(f"/v2/ answered {err.code}, expected 401") from None
            except OSError:
                time.sleep(0.05)
                continue
            raise RuntimeError("/v2/ answered without auth: htpasswd not in effect")
        raise TimeoutError(f"docker-registry not ready after {self.start_timeout}s:\n{self.log_text()[-2000:]}")

    def change_password(self, password: str) -> None:
        """Take ``password`` from now on (as ECR does when a token expires): the server restarts
        on the same address with the new htpasswd, keeping its images."""
        assert self._process is not None, "not started"
        subprocess.run([self.htpasswd, "-i", "-B", "-c", str(self.workdir / "htpasswd"), self.username],
                       input=password + "\n", text=True, check=True, capture_output=True)
        self.password = password
        process, self._process = self._process, None
        process.terminate()
        process.wait(timeout=10)
        self._launch(self.workdir / "htpasswd")
        self._wait_ready()

    def stop(self) -> None:
        """Terminate the server (SIGTERM, then SIGKILL) and tidy up."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._own_workdir and self.workdir != Path():
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _ExitedEarly(RuntimeError):
    """The registry process died while starting (e.g. its port was taken)."""


def _write_blob(blobs: Path, data: bytes) -> dict[str, Any]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    (blobs / digest.split(":", 1)[1]).write_bytes(data)
    return {"digest": digest, "size": len(data)}


def build_oci_layout(
    directory: str | os.PathLike[str],
    tag: str,
    content: str = "hello from the ecr-login tests\n",
    filename: str = "hello.txt",
) -> str:
    """Write a tiny valid OCI image layout and return its manifest digest.

    One gzipped layer holding ``filename`` with ``content``; fixed
    timestamps make the digests depend on the content only, so a test can
    tell two images apart and recognise one after a round trip.
    """
    root = Path(directory)
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)

    payload = content.encode("utf-8")
    tar_buffer = io.BytesIO()
    with tarfile.open(fileobj=tar_buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo(filename)
        info.size = len(payload)
        info.mode = 0o644
        info.mtime = 0
        tar.addfile(info, io.BytesIO(payload))
    layer_tar = tar_buffer.getvalue()
    layer = _write_blob(blobs, gzip.compress(layer_tar, mtime=0))

    config = {
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": {},
        "rootfs": {
            "type": "layers",
            "diff_ids": ["sha256:" + hashlib.sha256(layer_tar).hexdigest()],
        },
    }
    config_ref = _write_blob(blobs, json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, **config_ref},
        "layers": [{"mediaType": OCI_LAYER, **layer}],
    }
    manifest_ref = _write_blob(blobs, json.dumps(manifest, sort_keys=True).encode())
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                **manifest_ref,
                "annotations": {"org.opencontainers.image.ref.name": tag},
            }
        ],
    }
    (root / "index.json").write_text(json.dumps(index, sort_keys=True))
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return str(manifest_ref["digest"])


def write_auth_file(path: str | os.PathLike[str], registry: str, token: str) -> Path:
    """Write a docker/containers auth file (0600) holding one login.

    ``token`` is base64("user:password"), which is exactly what ECR returns
    as ``authorizationToken``, so a token can be stored without decoding.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps({"auths": {registry: {"auth": token}}}, indent=2) + "\n"
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(data)
    os.chmod(target, 0o600)
    return target


def basic_token(password: str, username: str = "AWS") -> str:
    """base64("user:password"), the form auth files and ECR tokens use."""
    return base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


class SkopeoError(subprocess.CalledProcessError):
    """A failed skopeo run whose message includes skopeo's own explanation."""

    def __str__(self) -> str:
        return f"{super().__str__()}\n{self.stderr}"


def _is_loopback_docker(ref: str) -> bool:
    return ref.startswith(("docker://127.0.0.1:", "docker://localhost:"))


def skopeo_copy(
    src: str,
    dst: str,
    authfile: str | os.PathLike[str] | None = None,
    *,
    src_authfile: str | os.PathLike[str] | None = None,
    dest_authfile: str | os.PathLike[str] | None = None,
    check: bool = True,
    timeout: float = 120.0,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``skopeo copy SRC DST``; credentials only ever from auth files.

    TLS verification is off only for ``docker://`` references on loopback
    (the local registry speaks plain HTTP). When any auth file is given,
    skopeo runs with HOME, DOCKER_CONFIG, XDG_* pointing to an empty
    directory: containers/image otherwise also reads ``~/.docker/config.json``
    and friends, and a test could pass on credentials it did not mean to use.
    With no auth file the caller's environment (or ``env``) is used as is,
    so a test can check what skopeo finds where the program stored a login.
    Raises :class:`SkopeoError` (its message includes stderr) when ``check``.
    """
    command = ["skopeo", "--insecure-policy", "copy"]
    if _is_loopback_docker(src):
        command.append("--src-tls-verify=false")
    if _is_loopback_docker(dst):
        command.append("--dest-tls-verify=false")
    if authfile is not None:
        command += ["--authfile", os.fspath(authfile)]
    if src_authfile is not None:
        command += ["--src-authfile", os.fspath(src_authfile)]
    if dest_authfile is not None:
        command += ["--dest-authfile", os.fspath(dest_authfile)]
    command += [src, dst]
    run_env = dict(os.environ if env is None else env)
    isolate = authfile is not None or src_authfile is not None or dest_authfile is not None
    with tempfile.TemporaryDirectory(prefix="skopeo-home-") as empty_home:
        if isolate:
            for name in _CREDENTIAL_ENV:
                run_env.pop(name, None)
            run_env["HOME"] = empty_home
            run_env["XDG_CONFIG_HOME"] = os.path.join(empty_home, ".config")
            run_env["XDG_RUNTIME_DIR"] = empty_home
        result = subprocess.run(
            command,
            env=run_env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    if check and result.returncode != 0:
        raise SkopeoError(result.returncode, command, result.stdout, result.stderr)
    return result
