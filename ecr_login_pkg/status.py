"""``ecr-login status``: how long each login is still good for, as text or JSON.

Reads only the state and the stores; exits with the monitoring-plugin
convention (0 ok, 1 warning, 2 critical) so a monitor can run it as it is.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping

from .config import Settings
from .errors import STATUS_CRITICAL, STATUS_OK, STATUS_WARNING
from .plan import format_duration, format_time, known_pairs, standing
from .readiness import SET_UP_HINT, missing
from .state import State, placeholder_address


def collect(settings: Settings, environ: Mapping[str, str]) -> list[dict[str, object]]:
    state = State(settings.state_dir).load()
    now = time.time()
    rows: list[dict[str, object]] = []
    for pair in known_pairs(settings, environ, state):
        address = pair.address or placeholder_address(pair.target.region)
        entry = state.find(address, pair.store.kind, pair.store.location)
        condition, store_problem = standing(pair, state, settings.refresh_margin, now)
        expires_at = entry.expires_at if entry and entry.fingerprint else None
        rows.append({
            "registry": address,
            "store": pair.store.kind,
            "location": pair.store.location,
            "status": condition,
            "expires_at": expires_at,
            "seconds_left": max(0, int(expires_at - now)) if expires_at else 0,
            "last_success": entry.last_success if entry else None,
            "last_attempt": entry.last_attempt if entry else None,
            "last_error": store_problem or (entry.last_error if entry else None),
            "consecutive_failures": entry.failures if entry else 0,
            "hook_error": entry.hook_error if entry else None,
        })
    return rows


def exit_code(rows: list[dict[str, object]]) -> int:
    conditions = {row["status"] for row in rows}
    if conditions & {"missing", "expired", "replaced", "store-error"}:
        return STATUS_CRITICAL
    if conditions & {"failing", "due"}:
        return STATUS_WARNING
    return STATUS_OK


def _when(epoch: object) -> str:
    return format_time(float(epoch)) if isinstance(epoch, (int, float)) else "never"


def show(settings: Settings, environ: Mapping[str, str], as_json: bool) -> tuple[int, str]:
    """The exit code and the report; the caller writes it (and answers for a full disk)."""
    rows = collect(settings, environ)
    code = exit_code(rows)
    never = any(row["status"] == "missing" and row["last_success"] is None for row in rows)
    lacking = missing(settings, environ) if never else []  # a host that logged in once lacks nothing to say
    if as_json:
        return code, json.dumps({"registries": rows, "exit_code": code, "missing": lacking}, indent=2) + "\n"
    header = ("REGISTRY", "STORE", "STATUS", "EXPIRES", "LEFT", "LAST SUCCESS", "LAST ERROR")
    table = [header]
    for row in rows:
        table.append((
            str(row["registry"]), str(row["store"]), str(row["status"]),
            _when(row["expires_at"]), format_duration(float(str(row["seconds_left"]))) if row["expires_at"] else "-",
            _when(row["last_success"]),
            str(row["last_error"] or (f"deploy hook: {row['hook_error']}" if row["hook_error"] else "-")),
        ))
    widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)) + "  " + line[-1] for line in table]
    lines += [f"missing: {what}" for what in lacking]
    if never:
        lines.append(f"next: {'fix what is missing, then ' if lacking else ''}run 'ecr-login' "
                     f"(the timer runs it every 15 minutes); {SET_UP_HINT}")
    return code, "".join(line + "\n" for line in lines)
