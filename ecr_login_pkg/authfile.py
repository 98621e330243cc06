"""The ``auths`` JSON files of docker, podman/buildah/skopeo and helm, edited safely.

All three tools read ``{"auths": {"HOST": {"auth": base64("user:password")}}}``.
We merge our entries into whatever is there (every other key kept), under a lock,
through an atomic rename, mode 0600, and never overwrite a file we cannot parse.
"""

from __future__ import annotations

import functools
import json
import os
import stat

from .errors import ConfigError
from .fsutil import DirLock, atomic_write, ensure_private_dir, path_problem, read_text_nofollow, remove_stale_temps

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def encode_auth(username: str, password: str) -> str:
    import base64  # only a login being stored needs it

    return base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def fingerprint(auth: str) -> str:
    """A short digest identifying a stored login without revealing it."""
    return sha256_hex(auth.encode("ascii", "replace"))[:16]


def sha256_hex(data: bytes) -> str:
    return str(_sha256()(data).hexdigest())


@functools.cache
def _sha256() -> Callable[[bytes], Any]:
    """SHA-256 from CPython's built-in module (``_sha2``; ``_sha256`` before 3.12), else hashlib.

    ``import hashlib`` first loads OpenSSL's libcrypto: milliseconds of every run with nothing
    due, which hashes nothing but these fingerprints. The digest is the same either way.
    Looked up once: a failed import is not remembered, and would search sys.path every time.
    """
    for name in ("_sha2", "_sha256"):
        try:
            return __import__(name).sha256
        except ImportError:
            continue
    import hashlib

    return hashlib.sha256


class AuthFile:
    """One auths-style JSON file."""

    def __init__(self, path: str, lock_timeout: float = 60.0) -> None:
        self.path = path
        self.lock_timeout = lock_timeout
        self._snapshot: tuple[tuple[int, int, int], dict[str, object]] | None = None

    def _check_target(self) -> os.stat_result | None:
        """The file's lstat (None when absent), after refusing what we must not read or rewrite."""
        try:
            info = os.lstat(self.path)
        except FileNotFoundError:
            return None
        except OSError as exc:  # a parent that is a file, a directory we may not search
            raise ConfigError(path_problem(self.path, exc, "use the credential file")) from None
        if stat.S_ISLNK(info.st_mode):
            raise ConfigError(
                f"{self.path}: is a symlink; ecr-login will not replace it "
                "(point DOCKER_CONFIG/the store path at the real file instead)"
            )
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{self.path}: is not a regular file")
        if info.st_uid != os.geteuid() and os.geteuid() != 0:
            raise ConfigError(
                f"{self.path}: is owned by uid {info.st_uid}, not by this user ({os.geteuid()}); "
                "refusing to rewrite another user's credentials (fix its owner)"
            )
        return info

    def read(self) -> dict[str, object]:
        """The parsed file ({} when absent or empty); ConfigError when it is not a JSON object."""
        return self._parse(self._check_target())

    def snapshot(self) -> dict[str, object]:
        """``read()``, parsed only once while the file keeps its inode, size and mtime: checking
        fifty registries reads it once, not fifty times. Shared between calls: do not modify it."""
        info = self._check_target()
        if info is None:
            return {}
        signature = (info.st_ino, info.st_size, info.st_mtime_ns)
        if self._snapshot is None or self._snapshot[0] != signature:
            self._snapshot = (signature, self._parse(info))
        return self._snapshot[1]

    def _parse(self, info: os.stat_result | None) -> dict[str, object]:
        if info is None:
            return {}
        text = read_text_nofollow(self.path)
        if text is None or not text.strip():
            return {}
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise ConfigError(
                f"{self.path}: is not valid JSON (line {getattr(exc, 'lineno', '?')}); "
                "left untouched: repair or remove it"
            ) from None
        if not isinstance(data, dict):
            raise ConfigError(f"{self.path}: top level is not a JSON object; left untouched: repair or remove it")
        auths = data.get("auths")
        if auths is not None and not isinstance(auths, dict):
            raise ConfigError(f"{self.path}: key 'auths' is not an object; left untouched: repair or remove it")
        return data

    def held(self, address: str) -> str | None:
        """Fingerprint of the login stored for ``address``, or None."""
        auths = self.snapshot().get("auths")
        entry = auths.get(address) if isinstance(auths, dict) else None
        auth = entry.get("auth") if isinstance(entry, dict) else None
        return fingerprint(auth) if isinstance(auth, str) and auth else None

    def update(self, logins: dict[str, str | None]) -> dict[str, str]:
        """Set (auth string) or delete (None) entries in one locked, atomic write.

        Returns the fingerprint of each entry set. Nothing is written when nothing changes.
        """
        directory = os.path.dirname(os.path.abspath(self.path))
        ensure_private_dir(directory)
        with DirLock(directory, self.lock_timeout, "credential file"):
            remove_stale_temps(directory)
            info = self._check_target()  # checked once, under the lock: what we read is what we replace
            data = self._parse(info)
            auths = data.get("auths")
            if not isinstance(auths, dict):
                auths = {}
            changed = False
            result: dict[str, str] = {}
            for address, auth in logins.items():
                if auth is None:
                    changed = auths.pop(address, None) is not None or changed
                    continue
                entry = auths.get(address)
                entry = dict(entry) if isinstance(entry, dict) else {}
                for stale in ("identitytoken", "username", "password", "registrytoken"):
                    entry.pop(stale, None)
                if entry.get("auth") != auth:
                    entry["auth"] = auth
                    changed = True
                auths[address] = entry
                result[address] = fingerprint(auth)
            if result and info is not None and stat.S_IMODE(info.st_mode) & 0o077:
                changed = True  # our login is in a file others may read: rewrite it 0600
            if changed:
                data["auths"] = auths
                owner = (info.st_uid, info.st_gid) if info else None
                atomic_write(self.path, (json.dumps(data, indent="\t") + "\n").encode("utf-8"), 0o600, owner)
            return result
