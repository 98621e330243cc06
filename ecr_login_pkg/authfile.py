"""The ``auths`` JSON files of docker, podman/buildah/skopeo and helm, edited safely.

All three tools read ``{"auths": {"HOST": {"auth": base64("user:password")}}}``.
We merge our entries into whatever is there (every other key kept, numbers as written),
under a lock, through an atomic rename, mode 0600, and never overwrite a file we cannot
parse, one nested too deeply to read, or one another user owns.

``docker login`` takes no lock: a file it replaced while we wrote ours is seen just before our
rename (its inode, size or modification time differ from what we read), and merged again.
A key given twice (``"auths"`` in two places) is read as docker reads it (see parse_json).
A link to the file or its directory (a dotfiles manager's) is followed and kept when it
and its target are the user's own (fsutil.resolve_own_links).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from functools import partial

from .errors import ConfigError, TemporaryError
from .fsutil import (
    DirLock,
    atomic_write,
    ensure_private_dir,
    path_problem,
    read_text_nofollow,
    refuse_foreign,
    remove_stale_temps,
    resolve_own_links,
)

MERGE_ATTEMPTS = 20  # reads and merges when another writer keeps replacing the file under us


def encode_auth(username: str, password: str) -> str:
    return base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def fingerprint(auth: str) -> str:
    """A short digest identifying a stored login without revealing it."""
    return hashlib.sha256(auth.encode("ascii", "replace")).hexdigest()[:16]


class JsonNumber:
    """A number read from a file we rewrite, kept as written.

    ``json`` would turn ``1e400`` into ``Infinity`` (which docker cannot read back), ``1.0e2``
    into ``100.0`` and ``-0`` into ``0``; nothing of the file but our own entries is ours to change.
    """

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"JsonNumber({self.text!r})"


class NotJsonError(ValueError):
    """``NaN``/``Infinity``: Python's json accepts them, JSON (and docker) does not."""


def _refuse_constant(name: str) -> object:
    raise NotJsonError(f"{name} is not a JSON number")


class _Repeated(dict):
    """An object in which some key came more than once; ``pairs`` keeps them all, in order."""

    pairs: list[tuple[str, object]]


def _object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    data = dict(pairs)
    if len(data) == len(pairs):
        return data
    repeated = _Repeated(data)
    repeated.pairs = pairs
    return repeated


def _merge_repeated(pairs: list[tuple[str, object]]) -> dict[str, object]:
    """The top level as docker (Go's encoding/json) reads it: a key given twice whose values are
    both objects (``auths``, ``credHelpers``, ``HttpHeaders``: maps in docker's ConfigFile) gets
    the entries of both, the later one for an entry in both; any other value, the later one."""
    merged: dict[str, object] = {}
    for key, value in pairs:
        before = merged.get(key)
        merged[key] = {**before, **value} if isinstance(before, dict) and isinstance(value, dict) else value
    return merged


def parse_json(text: str) -> object:
    """``json.loads`` keeping every number's text (JsonNumber) and refusing NaN and Infinity;
    a top-level key given twice is merged as docker reads it (no login in either is lost).

    Raises ValueError (not JSON), NotJsonError, or RecursionError (nested too deeply).
    """
    data = json.loads(text, parse_float=JsonNumber, parse_int=JsonNumber, parse_constant=_refuse_constant,
                      object_pairs_hook=_object)
    return _merge_repeated(data.pairs) if isinstance(data, _Repeated) else data


def dump_json(data: object) -> str:
    """``data`` as docker writes config.json (tab-indented), each JsonNumber as it was read."""
    import re  # only a write needs it

    marker = f"ecr-login-number-{os.urandom(8).hex()}-"  # no string in any file can guess it
    numbers: list[str] = []

    def placeholder(value: object) -> str:
        if not isinstance(value, JsonNumber):
            raise TypeError(f"{type(value).__name__} is not JSON")
        numbers.append(value.text)
        return f"{marker}{len(numbers) - 1}"

    text = json.dumps(data, indent="\t", default=placeholder)
    if not numbers:
        return text
    return re.sub(f'"{marker}([0-9]+)"', lambda match: numbers[int(match.group(1))], text)


class AuthFile:
    """One auths-style JSON file."""

    def __init__(self, path: str, lock_timeout: float = 60.0) -> None:
        self.path = path
        self.lock_timeout = lock_timeout
        self._snapshot: tuple[tuple[int, int, int], dict[str, object]] | None = None

    def real_path(self) -> str:
        """Where the file really is: ``path``, or where the user's own links lead (see module doc)."""
        return resolve_own_links(self.path)

    def _check_target(self) -> os.stat_result | None:
        """The real file's lstat (None when absent), after refusing what we must not read or rewrite."""
        try:
            info = os.lstat(self.real_path())
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
        refuse_foreign(self.path, info, "credential file")  # root too: it would hand them our token
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
        text = read_text_nofollow(self.real_path())
        if text is None or not text.strip():
            return {}
        try:
            data = parse_json(text)
        except NotJsonError as exc:
            raise ConfigError(f"{self.path}: is not valid JSON: {exc}; left untouched: repair or remove it") from None
        except ValueError as exc:
            raise ConfigError(
                f"{self.path}: is not valid JSON (line {getattr(exc, 'lineno', '?')}); "
                "left untouched: repair or remove it"
            ) from None
        except RecursionError:
            raise ConfigError(
                f"{self.path}: is nested too deeply to be read (arrays or objects about 1000 levels deep); "
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
        real = self.real_path()
        directory = os.path.dirname(os.path.abspath(real))
        ensure_private_dir(directory)
        self.snapshot()  # a file we must not rewrite is refused before its directory gets a lock file
        with DirLock(directory, self.lock_timeout, "credential file"):
            remove_stale_temps(directory)
            for _attempt in range(MERGE_ATTEMPTS):
                info = self._check_target()  # under the lock; and looked at again just before the rename
                data = self._parse(info)
                changed, result = _merge(data, logins)
                if result and info is not None and stat.S_IMODE(info.st_mode) & 0o077:
                    changed = True  # our login is in a file others may read: rewrite it 0600
                if not changed:
                    return result
                try:
                    text = dump_json(data)
                except RecursionError:
                    raise ConfigError(
                        f"{self.path}: is nested too deeply to be rewritten; left untouched: repair or remove it"
                    ) from None
                if atomic_write(real, (text + "\n").encode("utf-8"), 0o600,
                                still_as_read=partial(_unchanged, real, _signature(info))):
                    return result
        raise TemporaryError(
            f"{self.path}: another program kept rewriting it while ecr-login merged its logins in "
            f"({MERGE_ATTEMPTS} tries); left as it is (the next run will retry)"
        )


def _merge(data: dict[str, object], logins: dict[str, str | None]) -> tuple[bool, dict[str, str]]:
    """Put ``logins`` into ``data['auths']`` (None: remove); whether anything changed, and the
    fingerprint of each login set."""
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
    data["auths"] = auths
    return changed, result


def _unchanged(path: str, read: tuple[int, int, int, int] | None) -> bool:
    """Whether ``path`` is still the version that was read (see _signature)."""
    try:
        return _signature(os.lstat(path)) == read
    except FileNotFoundError:
        return read is None
    except OSError:
        return False


def _signature(info: os.stat_result | None) -> tuple[int, int, int, int] | None:
    """What tells one version of a file from the next: a writer that renames a new file in
    (docker) changes the inode; one that rewrites in place, the size or the modification time."""
    return None if info is None else (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
