"""What ecr-login remembers between runs: per registry and store, when the login expires.

This is what makes a run with nothing due cost milliseconds and no AWS call.
A corrupt or unreadable state file is not fatal: it is rebuilt from scratch
(the worst case is one unneeded refresh).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

from .errors import ConfigError
from .fsutil import DirLock, atomic_write, ensure_private_dir, read_text_nofollow, remove_stale_temps
from .records import asdict, field_names, record

STATE_FILE = "state.json"
VERSION = 1


@record
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
        try:
            text = read_text_nofollow(self.path)
        except ConfigError as exc:
            self.problem = str(exc)
            return self
        if not text:
            return self
        try:
            data = json.loads(text)
            names = set(field_names(Entry))
            for raw in data["entries"].values():
                entry = Entry(**{key: value for key, value in raw.items() if key in names})
                self.entries[entry.key] = entry
            self.default_hosts = {str(k): str(v) for k, v in data.get("default_hosts", {}).items()}
        except (ValueError, KeyError, TypeError, AttributeError):
            self.entries, self.default_hosts = {}, {}
            self.problem = f"{self.path}: state file is corrupt; starting afresh (logins will be refreshed)"
        return self

    def entry(self, address: str, store: str, location: str) -> Entry:
        key = Entry.key_for(address, store, location)
        if key not in self.entries:
            self.entries[key] = Entry(address=address, store=store, location=location)
        return self.entries[key]

    def find(self, address: str, store: str, location: str) -> Entry | None:
        return self.entries.get(Entry.key_for(address, store, location))

    def forget(self, address: str, store: str, location: str) -> None:
        self.entries.pop(Entry.key_for(address, store, location), None)

    def lock(self, timeout: float, on_wait: Callable[[str], None] | None = None) -> DirLock:
        """The run lock: the timer's run and a manual run take turns."""
        ensure_private_dir(self.directory)
        return DirLock(self.directory, timeout, "run", on_wait)

    def save(self) -> None:
        ensure_private_dir(self.directory)
        remove_stale_temps(self.directory)
        data = {
            "version": VERSION,
            "entries": {key: asdict(entry) for key, entry in sorted(self.entries.items())},
            "default_hosts": self.default_hosts,
        }
        # Not durable: a state lost in a crash costs one unneeded refresh, a fsync costs every run.
        atomic_write(self.path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode("utf-8"), 0o600, durable=False)
