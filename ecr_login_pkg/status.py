"""``ecr-login status``: how long each login is still good for, as text or JSON.

Reads only the state and the stores; exits with the monitoring-plugin
convention (0 ok, 1 warning, 2 critical) so a monitor can run it as it is.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

from . import paths
from .config import Settings
from .errors import STATUS_CRITICAL, STATUS_OK, STATUS_WARNING, UsageError
from .hints import SEE_DOCTOR, serving, user_timer_problems
from .plan import format_duration, format_time, known_pairs, standing
from .readiness import missing
from .state import State, placeholder_address

if TYPE_CHECKING:
    from .consumers import Consumer


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


def rows_of_every_user(settings: Settings, environ: Mapping[str, str]) -> tuple[list[dict[str, object]], list[str]]:
    """As root: the rows of the service user and of each named user, each read as that user
    (asuser.py: root never opens a user's files), and the lines about users who cannot be served."""
    import os

    from .asuser import user_environment
    from .consumers import resolve, service_account

    if os.geteuid() != 0:
        raise UsageError("status --all reads every user's files, as each of them: run it as root "
                         "(sudo ecr-login status --all)")
    path = environ.get("PATH", os.defpath)
    service, state_dir = service_account(environ)
    consumers, problems = resolve(settings.users, settings.users_line)
    lines = [problem.message for problem in problems] + user_timer_problems()
    env = user_environment(service, path)
    mine = replace(settings, state_dir=state_dir, docker_config_file=paths.docker_config_file(env, settings.docker_config_dir))
    rows, unread = _read_as_each([(service, mine, env)])
    others, unread_others = rows_of_users([c for c in consumers if c.name != service.name], settings, environ)
    return rows + others, lines + [f"{name}: {why}" for name, why in {**unread, **unread_others}.items()]


def rows_of_users(consumers: list[Consumer], settings: Settings,
                  environ: Mapping[str, str]) -> tuple[list[dict[str, object]], dict[str, str]]:
    """As root: the rows of each named user, read as that user, and why a user's could not be read."""
    import os

    from .asuser import user_environment
    from .consumers import user_settings

    path = environ.get("PATH", os.defpath)
    readers = []
    for consumer in consumers:
        env = user_environment(consumer, path)
        readers.append((consumer, user_settings(settings, env), env))
    return _read_as_each(readers)


def _read_as_each(readers: list[tuple[Consumer, Settings, dict[str, str]]]) -> tuple[list[dict[str, object]], dict[str, str]]:
    """Each reader's rows, collected in a child running as that user (asuser.py)."""
    from .asuser import ChildError, run_as

    rows: list[dict[str, object]] = []
    unread: dict[str, str] = {}
    for consumer, mine, env in readers:
        try:
            rows += [{"user": consumer.name, **row} for row in run_as(consumer, partial(collect, mine, env))]
        except ChildError as exc:
            unread[consumer.name] = str(exc)
    return rows, unread


def show(settings: Settings, environ: Mapping[str, str], as_json: bool, every_user: bool = False) -> tuple[int, str]:
    """The exit code and the report; the caller writes it (and answers for a full disk)."""
    import os

    served = serving(settings.users)
    if every_user:
        rows, problems = rows_of_every_user(settings, environ)
    else:
        rows = collect(settings, environ)
        problems = user_timer_problems() if os.geteuid() == 0 else []
        if served.named_consumer and served.user not in ("root", paths.SERVICE_USER):
            problems += _own_problem(settings, served.user)
    code = STATUS_CRITICAL if problems else exit_code(rows)
    never = any(row["status"] == "missing" and row["last_success"] is None for row in rows)
    lacking = missing(settings, environ) if never else []  # a host that logged in once lacks nothing to say
    if as_json:
        return code, json.dumps({"registries": rows, "exit_code": code, "missing": lacking, "problems": problems,
                                 "served_by": served.describe()}, indent=2) + "\n"
    header: tuple[str, ...] = ("REGISTRY", "STORE", "STATUS", "EXPIRES", "LEFT", "LAST SUCCESS", "LAST ERROR")
    if every_user:
        header = ("USER", *header)
    table = [header]
    for row in rows:
        table.append((
            *((str(row["user"]),) if every_user else ()),
            str(row["registry"]), str(row["store"]), str(row["status"]),
            _when(row["expires_at"]), format_duration(float(str(row["seconds_left"]))) if row["expires_at"] else "-",
            _when(row["last_success"]),
            str(row["last_error"] or (f"deploy hook: {row['hook_error']}" if row["hook_error"] else "-")),
        ))
    widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths)) + "  " + line[-1] for line in table]
    lines += [f"missing: {what}" for what in lacking]
    lines += [f"problem: {what}" for what in problems]
    if not every_user:
        lines.append(f"served by: {served.describe()}")
    if never:
        lines.append(f"next: {'fix what is missing, then ' if lacking else ''}run '{served.first_run()}' "
                     f"({served.every()}); {SEE_DOCTOR}")
    return code, "".join(line + "\n" for line in lines)


def _own_problem(settings: Settings, user: str) -> list[str]:
    """A named user whose own record cannot be served (no home, say): say it to them too."""
    from .consumers import resolve

    return [problem.message for problem in resolve(settings.users, settings.users_line)[1] if problem.user == user]
