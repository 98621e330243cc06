"""The logins the service hands to the named users: one private file in its state directory.

The login step (``ecr-login login`` as the ``ecr-login`` user, sandboxed, the only part
that talks to AWS) writes each fresh login here, 0600 in its 0700 state directory,
beside its own docker login. The delivery step (``ecr-login deliver``, root, no
network) reads it and writes each login into the users' files as those users. So the
users get tokens, never the host's AWS keys, and the root step needs no AWS at all.
Root reads it without following a link, only when the service user owns it: whatever
that user could plant there is a file of its own, of bounded size, checked field by field.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import asdict, dataclass

from .errors import ConfigError
from .fsutil import atomic_write, ensure_private_dir, path_problem

HANDOFF_FILE = "handoff.json"
_LIMIT = 4 << 20  # bytes: a thousand registries' logins fit many times over


@dataclass(frozen=True)
class HandedLogin:
    """One registry's current login, as the users get it. ``repr`` never shows the password."""

    address: str
    target: str  # the configuration section (or "default") it was fetched for
    username: str
    password: str
    expires_at: float

    def __repr__(self) -> str:
        return f"HandedLogin(address={self.address!r}, target={self.target!r}, expires_at={self.expires_at!r})"


def handoff_path(state_dir: str) -> str:
    return os.path.join(state_dir, HANDOFF_FILE)


def save(state_dir: str, logins: dict[str, HandedLogin]) -> None:
    """Write the logins (address -> login), replacing the file atomically, 0600."""
    ensure_private_dir(state_dir)
    data = {"version": 1, "logins": {address: asdict(login) for address, login in sorted(logins.items())}}
    atomic_write(handoff_path(state_dir), json.dumps(data, indent=1).encode("utf-8"), 0o600, durable=False)


def load(state_dir: str, owner: int | None = None) -> dict[str, HandedLogin]:
    """The handed logins; {} when there are none. ``owner``: the uid that must own the file
    (root reading the service user's file); a file of anyone else is refused (78)."""
    path = handoff_path(state_dir)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(path_problem(path, exc, "read the logins handed to the users")) from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{path}: is not a regular file; remove it (the next login writes it anew)")
        if owner is not None and info.st_uid != owner:
            raise ConfigError(f"{path}: is owned by uid {info.st_uid}, not by the service user; refusing it "
                              "(remove it: the next login writes it anew)")
        data = handle.read(_LIMIT + 1)
    if len(data) > _LIMIT:
        raise ConfigError(f"{path}: is larger than {_LIMIT} bytes; remove it (the next login writes it anew)")
    try:
        parsed = json.loads(data.decode("utf-8"))
        return {address: _login(address, raw) for address, raw in parsed["logins"].items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ConfigError(f"{path}: is corrupt; remove it (the next login writes it anew)") from None


def _login(address: str, raw: dict[str, object]) -> HandedLogin:
    login = HandedLogin(address, str(raw["target"]), str(raw["username"]), str(raw["password"]),
                        float(raw["expires_at"]))  # type: ignore[arg-type]
    if not (login.username and login.password and isinstance(raw["expires_at"], (int, float))):
        raise ValueError(address)
    return login


def discard(state_dir: str) -> None:
    """Remove the file (no users are named any more): no copy of a login lingers for nobody."""
    if not os.path.lexists(handoff_path(state_dir)):
        return  # nothing to remove: a read-only file system refuses even the unlink of nothing (EROFS)
    try:
        os.unlink(handoff_path(state_dir))
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise ConfigError(path_problem(handoff_path(state_dir), exc, "remove it")) from None
