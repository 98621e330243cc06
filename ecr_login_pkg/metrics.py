"""Prometheus textfile output for node_exporter's textfile collector, written atomically.

One series per (registry, store, user): the user whose store it is (the service user, a
user of a per-user instance, or each user named in ``users =``, whose entries the delivery
step keeps in ``users-metrics.json`` beside the service's state, so the login step's write and
the delivery step's both show every user). The state is keyed also by location (the file a store
writes), and keeps an entry for a location no longer used (DOCKER_CONFIG changed): of the
entries of one (registry, store), the newest is rendered, so there is never a duplicate series
(node_exporter rejects the whole file then) nor a stale one alerting forever.

Cheap enough for every run, including those with nothing due: the state is already loaded,
rendering is string formatting, and the write is one atomic rename without fsync (the file
is rewritten on the next run anyway).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import fields

from .errors import EcrLoginError
from .fsutil import ForeignFileError, atomic_write, read_text_nofollow
from .hints import running_user
from .logs import Log
from .state import FIELD_CHECKS, Entry, State

USERS_FILE = "users-metrics.json"  # the named users' entries, beside the service's state (no secret in it)


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(address: str, store: str, user: str) -> str:
    return f'{{registry="{_quote(address)}",store="{_quote(store)}",user="{_quote(user)}"}}'


def _newest(entry: Entry) -> float:
    return max(entry.last_attempt or 0.0, entry.last_success or 0.0)


def shown_entries(state: State) -> list[Entry]:
    """The entries to render: the newest per (registry, store), without superseded placeholders."""
    stale = set(state.superseded_placeholders())  # default:REGION after the default registry got known
    chosen: dict[tuple[str, str], Entry] = {}
    for key, entry in state.entries.items():
        if key in stale:
            continue
        pair = (entry.address, entry.store)
        if pair not in chosen or _newest(entry) > _newest(chosen[pair]):
            chosen[pair] = entry
    return [chosen[pair] for pair in sorted(chosen)]


def render(state: State, now: float, user: str | None = None, others: dict[str, list[Entry]] | None = None) -> str:
    """The textfile: ``state``'s series labelled ``user`` (default: the running user), and each
    named user's (``others``)."""
    user = user or running_user()
    families = [
        ("ecr_login_expiry_timestamp_seconds", "gauge", "When the stored login expires (Unix time).", "expires_at"),
        ("ecr_login_last_success_timestamp_seconds", "gauge", "Last successful refresh (Unix time).", "last_success"),
        ("ecr_login_consecutive_failures", "gauge", "Refresh failures since the last success.", "failures"),
        ("ecr_login_last_exit_code", "gauge", "Exit code of the last refresh attempt (0 = ok).", "last_exit"),
        ("ecr_login_hook_failed", "gauge", "1 when a deploy hook failed after the last login (rerun by the next run).",
         "hook_failed"),
    ]
    lines = []
    series = [(user, entry) for entry in shown_entries(state)]
    for name_of_user, entries in sorted((others or {}).items()):
        if name_of_user != user:
            series += [(name_of_user, entry) for entry in entries]
    for name, kind, help_text, attribute in families:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for owner, entry in series:
            value = getattr(entry, attribute)
            if value is not None:
                lines.append(f"{name}{_labels(entry.address, entry.store, owner)} {float(value):.0f}")
    lines += [
        "# HELP ecr_login_last_run_timestamp_seconds When ecr-login last ran (Unix time).",
        "# TYPE ecr_login_last_run_timestamp_seconds gauge",
        f"ecr_login_last_run_timestamp_seconds {now:.0f}",
    ]
    return "\n".join(lines) + "\n"


def write_metrics(path: str, state: State, log: Log, others: dict[str, list[Entry]] | None = None) -> None:
    """Write the metrics of ``state`` (loaded, on any run: a no-op one too) to ``path``. A failure
    is a warning (a full disk must not fail the refresh), except a file another user owns: that is
    a configuration error (ForeignFileError, exit 78), and the file is left as it is. Mode 0644:
    node_exporter runs as another user, and nothing here is secret; its textfile directory may
    belong to another user too, as long as it lets this one write."""
    try:
        if others is None:
            others = load_users(state.directory)
        atomic_write(path, render(state, time.time(), others=others).encode("utf-8"), 0o644, durable=False)
    except ForeignFileError:
        raise
    except EcrLoginError as exc:
        log.warning(f"metrics not written: {exc}")


def load_users(state_dir: str) -> dict[str, list[Entry]]:
    """The named users' entries the last delivery recorded; {} when none (or unusable: only metrics)."""
    try:
        text = read_text_nofollow(os.path.join(state_dir, USERS_FILE))
        data = json.loads(text) if text else {}
        names = {field.name for field in fields(Entry)}
        return {
            str(user): [Entry(**{key: value for key, value in raw.items() if key in names})
                        for raw in entries
                        if all(key in raw for key in ("address", "store", "location"))
                        and all(FIELD_CHECKS[key](value) for key, value in raw.items() if key in names)]
            for user, entries in data.items()
        }
    except (EcrLoginError, ValueError, TypeError, AttributeError):
        return {}


def record_users(state_dir: str, reported: dict[str, list[dict[str, object]]], metrics_file: str | None) -> None:
    """As the service user, after a delivery: keep the users' entries, and rewrite the metrics with them."""
    atomic_write(os.path.join(state_dir, USERS_FILE), json.dumps(reported, sort_keys=True).encode("utf-8"), 0o600,
                 durable=False)
    if metrics_file:
        write_metrics(metrics_file, State(state_dir).load(), Log(), load_users(state_dir))
