"""The ``file``, ``containers`` and ``helm`` stores: an auths JSON file written directly.

Also what the docker store writes through when no credential helper applies.
"""

from __future__ import annotations

from .authfile import AuthFile, encode_auth
from .errors import EcrLoginError


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

    def helpers(self, addresses: list[str]) -> list[str]:
        """None: the file itself keeps every login."""
        return []
