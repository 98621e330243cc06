"""The places a login can be written, behind one small interface.

``docker`` keeps a login where ``docker login`` would (through the docker CLI when a
credential helper applies); ``file``, ``containers`` and ``helm`` write their auths
JSON directly, no subprocess.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from . import paths
from .dockercli import DockerCliStore
from .errors import EcrLoginError
from .filestore import FileStore


class Store(Protocol):
    kind: str
    location: str

    def held(self, address: str) -> str | None:
        """Fingerprint of the login stored for ``address``; None when there is none."""

    def save(self, logins: dict[str, tuple[str, str]]) -> dict[str, str | EcrLoginError]:
        """Store ``{address: (username, password)}``; return each address's fingerprint, or why it failed.

        Raises EcrLoginError when nothing could be stored at all (the file is unusable).
        """

    def remove(self, addresses: list[str]) -> list[str]:
        """Remove the logins; return the addresses that were there."""

    def helpers(self, addresses: list[str]) -> list[str]:
        """The credential helpers that keep these addresses' logins ([] when the file itself does);
        MissingHelperError when one is named but not installed."""


def open_store(kind: str, docker_config_file: str, environ: Mapping[str, str], lock_timeout: float) -> Store:
    if kind == "docker":
        return DockerCliStore(docker_config_file, dict(environ), lock_timeout)
    if kind == "file":
        return FileStore(kind, docker_config_file, lock_timeout)
    if kind == "containers":
        return FileStore(kind, paths.containers_auth_file(environ), lock_timeout)
    if kind == "helm":
        return FileStore(kind, paths.helm_registry_config(environ), lock_timeout)
    raise ValueError(f"unknown store {kind}")
