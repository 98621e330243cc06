"""The places a login can be written, behind one small interface.

``docker`` keeps a login where ``docker login`` would (through the docker CLI when a
credential helper applies); ``file``, ``containers`` and ``helm`` write their auths
JSON directly, no subprocess.
"""

from __future__ import annotations

from collections.abc import Mapping

from . import paths
from .authfile import AuthFile, encode_auth
from .errors import EcrLoginError

# The interface is checked by mypy only: importing `typing` would cost milliseconds on every run.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Protocol
else:
    Protocol = object


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


class FileStore:
    """A direct writer for an auths JSON file: one atomic write for all registries."""

    def __init__(self, kind: str, path: str, lock_timeout: float) -> None:
        self.kind = kind
        self.location = path
        self.file = AuthFile(path, lock_timeout)

    def held(self, address: str) -> str | None:
        return self.file.held(address)

    def save(self, logins: dict[str, tuple[str, str]]) -> dict[str, str | EcrLoginError]:
        """One write for all: it succeeds or fails for every address together."""
        return dict(self.file.update({address: encode_auth(*login) for address, login in logins.items()}))

    def remove(self, addresses: list[str]) -> list[str]:
        present = [address for address in addresses if self.file.held(address) is not None]
        if present:
            self.file.update({address: None for address in present})
        return present


def open_store(kind: str, docker_config_file: str, environ: Mapping[str, str], lock_timeout: float) -> Store:
    if kind == "docker":
        from .dockercli import DockerCliStore  # imported by the configurations that use it only

        return DockerCliStore(docker_config_file, dict(environ), lock_timeout)
    if kind == "file":
        return FileStore(kind, docker_config_file, lock_timeout)
    if kind == "containers":
        return FileStore(kind, paths.containers_auth_file(environ), lock_timeout)
    if kind == "helm":
        return FileStore(kind, paths.helm_registry_config(environ), lock_timeout)
    raise ValueError(f"unknown store {kind}")
