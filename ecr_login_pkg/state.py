"""What ecr-login remembers between runs: per registry and store, when the login expires.

This is what makes a run with nothing due cost milliseconds and no AWS call.
A corrupt or unreadable state file is not fatal: it is rebuilt from scratch
(the worst case is one unneeded refresh). "Corrupt" includes valid JSON of the
wrong shape or types (``"expires_at": "soon"``, ``"failures": null``): every
field is checked on load, so nothing later trips over a bad value.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields

from .errors import ConfigError
from .fsutil import (
    DirLock,
    atomic_write,
    ensure_private_dir,
    read_text_nofollow,
    refuse_foreign,
    refuse_special,
    remove_stale_temps,
)
from .registry import is_login_address

STATE_FILE = "state.json"
VERSION = 1
DEFAULT_PREFIX = "default:"  # the address recorded for a default registry not yet known (see refresh._record)


def placeholder_address(region: str) -> str:
    """How the default registry is shown and recorded before its address is known."""
    return f"{DEFAULT_PREFIX}{region or 'instance-region'}"
_LIMIT = 1e15  # any timestamp or count beyond this (or NaN, or infinity) is corruption, not data


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and -_LIMIT <= value <= _LIMIT


def _optional_number(value: object) -> bool:
    return value is None or _number(value)


def _integer(value: object) -> bool:
    return isinstance(value, int) and _number(value)


def _text(value: object) -> bool:
    return isinstance(value, str) and value != ""


def _optional_text(value: object) -> bool:
    return value is None or isinstance(value, str)


# The type each field of a stored Entry must have; a field missing takes the Entry's default.
FIELD_CHECKS: dict[str, Callable[[object], bool]] = {
    "address": _text,
    "store": _text,
    "location": _text,
    "expires_at": _number,
    "fingerprint": _optional_text,
    "last_success": _optional_number,
    "last_attempt": _optional_number,
    "last_error": _optional_text,
    "last_exit": _integer,
    "failures": _integer,
    "hook_error": _optional_text,
}


class _Corrupt(Exception):
    pass


@dataclass
class Entry:
    """One (registry address, store) pair."""

    address: str
    store: str
    location: str
    expires_at: float = 0.0
    fingerprint: str | None = None
    last_success: float | None = None
    last_attempt: float | None = None
    last_error: str | None = None
    last_exit: int = 0
    failures: int = 0
    hook_error: str | None = None  # the deploy hooks that failed after the last login (hooks.py)

    @property
    def hook_failed(self) -> int:
        """1 while a deploy hook of this login has not succeeded since it failed (for the metrics)."""
        return 1 if self.hook_error else 0

    @staticmethod
    def key_for(address: str, store: str, location: str) -> str:
        return f"{store} {location} {address}"

    @property
    def key(self) -> str:
        return self.key_for(self.address, self.store, self.location)


class State:
    """The state file of one user (``$STATE_DIRECTORY`` or the XDG state home)."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.path = os.path.join(directory, STATE_FILE)
        self.entries: dict[str, Entry] = {}
        self.default_hosts: dict[str, str] = {}
        self.problem: str | None = None

    def load(self) -> State:
        """Read the state; ForeignFileError (78) when another user owns the file: it is theirs,
        not to be read as ours nor replaced (root's run included); ConfigError (78) when it is
        a FIFO, socket or device, at once, untouched."""
        try:
            info = os.lstat(self.path)
        except OSError:
            pass  # absent, or unusable: read_text_nofollow says which
        else:
            refuse_foreign(self.path, info, "state file")
            refuse_special(self.path, info, "state file")  # a FIFO would hang the run (and the lock) for ever
        try:
            text = read_text_nofollow(self.path)
        except ConfigError as exc:  # a directory, a symlink, unreadable: rebuilt like a corrupt one
            self.problem = f"{exc}; starting afresh (logins will be refreshed)"
            return self
        if not text:
            return self
        try:
            self.entries = self._parse_entries(json.loads(text))
        except (ValueError, RecursionError, _Corrupt):  # RecursionError: nested a thousand deep
            self.entries, self.default_hosts = {}, {}
            self.problem = f"{self.path}: state file is corrupt; starting afresh (logins will be refreshed)"
        return self

    def _parse_entries(self, data: object) -> dict[str, Entry]:
        """The entries of a parsed state file; _Corrupt on any value of the wrong type or shape.

        An invalid ``default_hosts`` value (not a login address: a ``null`` once got a password
        stored under auths["None"]) is dropped alone, and reported as corruption.
        """
        if not isinstance(data, dict) or not isinstance(data.get("entries"), dict):
            raise _Corrupt()
        names = [field.name for field in fields(Entry)]
        entries: dict[str, Entry] = {}
        for raw in data["entries"].values():
            if not isinstance(raw, dict) or not all(name in raw for name in ("address", "store", "location")):
                raise _Corrupt()
            values = {name: raw[name] for name in names if name in raw}
            if not all(FIELD_CHECKS[name](value) for name, value in values.items()):
                raise _Corrupt()
            entry = Entry(**values)
            entries[entry.key] = entry
        hosts = data.get("default_hosts", {})
        if not isinstance(hosts, dict):
            raise _Corrupt()
        self.default_hosts = {
            key: host for key, host in hosts.items() if isinstance(host, str) and is_login_address(host)
        }
        if len(self.default_hosts) != len(hosts):
            dropped = len(hosts) - len(self.default_hosts)
            self.problem = (f"{self.path}: state file is corrupt: {dropped} default registry address(es) invalid; "
                            "dropped (the default registry will be logged in to afresh)")
        return entries

    def entry(self, address: str, store: str, location: str) -> Entry:
        key = Entry.key_for(address, store, location)
        if key not in self.entries:
            self.entries[key] = Entry(address=address, store=store, location=location)
        return self.entries[key]

    def find(self, address: str, store: str, location: str) -> Entry | None:
        return self.entries.get(Entry.key_for(address, store, location))

    def forget(self, address: str, store: str, location: str) -> None:
        self.entries.pop(Entry.key_for(address, store, location), None)

    def superseded_placeholders(self) -> list[str]:
        """Keys of ``default:REGION`` entries (a failed first login to the default registry)
        that a later successful login to the default registry, now known, made stale."""
        stale = []
        for key, host in self.default_hosts.items():
            placeholder = placeholder_address(key.split("|", 1)[0])
            for entry in self.entries.values():
                if entry.address != placeholder:
                    continue
                real = self.find(host, entry.store, entry.location)
                if real is not None and real.last_success is not None and real.last_success >= (entry.last_attempt or 0):
                    stale.append(entry.key)
        return stale

    def forget_default_placeholders(self) -> None:
        """Drop the stale ``default:REGION`` entries (call after a successful default login)."""
        for key in self.superseded_placeholders():
            self.entries.pop(key, None)

    def lock(self, timeout: float, on_wait: Callable[[str], None] | None = None) -> DirLock:
        """The run lock: the timer's run and a manual run take turns."""
        ensure_private_dir(self.directory)
        return DirLock(self.directory, timeout, "run", on_wait)

    def save(self) -> None:
        ensure_private_dir(self.directory)
        remove_stale_temps(self.directory)
        self._move_aside_non_file()
        data = {
            "version": VERSION,
            "entries": {key: asdict(entry) for key, entry in sorted(self.entries.items())},
            "default_hosts": self.default_hosts,
        }
        # Not durable: a state lost in a crash costs one unneeded refresh, a fsync costs every run.
        atomic_write(self.path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode("utf-8"), 0o600, durable=False)

    def _move_aside_non_file(self) -> None:
        """A directory where state.json belongs (load() reported it) cannot be replaced by a
        rename: remove it when empty, else rename it to ``state.json.broken-*`` (our own
        private directory: nothing else lives there)."""
        try:
            if not stat.S_ISDIR(os.lstat(self.path).st_mode):
                return
        except OSError:
            return
        try:
            os.rmdir(self.path)
        except OSError:
            try:
                os.rename(self.path, f"{self.path}.broken-{os.urandom(4).hex()}")
            except OSError:
                pass  # atomic_write then fails with a ConfigError naming the path
