"""Prometheus textfile output for node_exporter's textfile collector, written atomically."""

from __future__ import annotations

import time

from .errors import EcrLoginError
from .fsutil import atomic_write
from .logs import Log
from .state import State


def _labels(address: str, store: str) -> str:
    def quote(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return f'{{registry="{quote(address)}",store="{quote(store)}"}}'


def render(state: State, now: float) -> str:
    families = [
        ("ecr_login_expiry_timestamp_seconds", "gauge", "When the stored login expires (Unix time).", "expires_at"),
        ("ecr_login_last_success_timestamp_seconds", "gauge", "Last successful refresh (Unix time).", "last_success"),
        ("ecr_login_consecutive_failures", "gauge", "Refresh failures since the last success.", "failures"),
        ("ecr_login_last_exit_code", "gauge", "Exit code of the last refresh attempt (0 = ok).", "last_exit"),
    ]
    lines = []
    entries = sorted(state.entries.values(), key=lambda entry: (entry.address, entry.store))
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
    """Mode 0644: node_exporter runs as another user, and nothing here is secret."""
    try:
        atomic_write(path, render(state, time.time()).encode("utf-8"), 0o644)
    except EcrLoginError as exc:
        log.warning(f"metrics not written: {exc}")
