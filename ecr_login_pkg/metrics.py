"""Prometheus textfile output for node_exporter's textfile collector, written atomically.

One series per (registry, store). The state is keyed also by location (the file a store
writes), and keeps an entry for a location no longer used (DOCKER_CONFIG changed): of the
entries of one (registry, store), the newest is rendered, so there is never a duplicate series
(node_exporter rejects the whole file then) nor a stale one alerting forever.

Cheap enough for every run, including those with nothing due: the state is already loaded,
rendering is string formatting, and the write is one atomic rename without fsync (the file
is rewritten on the next run anyway).
"""

from __future__ import annotations

import time

from .errors import EcrLoginError
from .fsutil import ForeignFileError, atomic_write
from .logs import Log
from .state import Entry, State


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(address: str, store: str) -> str:
    return f'{{registry="{_quote(address)}",store="{_quote(store)}"}}'


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


def render(state: State, now: float) -> str:
    families = [
        ("ecr_login_expiry_timestamp_seconds", "gauge", "When the stored login expires (Unix time).", "expires_at"),
        ("ecr_login_last_success_timestamp_seconds", "gauge", "Last successful refresh (Unix time).", "last_success"),
        ("ecr_login_consecutive_failures", "gauge", "Refresh failures since the last success.", "failures"),
        ("ecr_login_last_exit_code", "gauge", "Exit code of the last refresh attempt (0 = ok).", "last_exit"),
        ("ecr_login_hook_failed", "gauge", "1 when a deploy hook failed after the last login (rerun by the next run).",
         "hook_failed"),
    ]
    lines = []
    entries = shown_entries(state)
    for name, kind, help_text, attribute in families:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]
        for entry in entries:
            value = getattr(entry, attribute)
            if value is not None:
                lines.append(f"{name}{_labels(entry.address, entry.store)} {float(value):.0f}")
    lines += [
        "# HELP ecr_login_last_run_timestamp_seconds When ecr-login last ran (Unix time).",
        "# TYPE ecr_login_last_run_timestamp_seconds gauge",
        f"ecr_login_last_run_timestamp_seconds {now:.0f}",
    ]
    return "\n".join(lines) + "\n"


def write_metrics(path: str, state: State, log: Log) -> None:
    """Write the metrics of ``state`` (loaded, on any run: a no-op one too) to ``path``. A failure
    is a warning (a full disk must not fail the refresh), except a file another user owns: that is
    a configuration error (ForeignFileError, exit 78), and the file is left as it is. Mode 0644:
    node_exporter runs as another user, and nothing here is secret; its textfile directory may
    belong to another user too, as long as it lets this one write."""
    try:
        atomic_write(path, render(state, time.time()).encode("utf-8"), 0o644, durable=False)
    except ForeignFileError:
        raise
    except EcrLoginError as exc:
        log.warning(f"metrics not written: {exc}")
