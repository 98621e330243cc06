"""``ecr-login deliver``: put the host's fresh logins into the named users' own files.

The ``+``-prefixed ``ExecStartPost=`` step of ecr-login.service, run as root after the
sandboxed login step (``ecr-login login`` as the ``ecr-login`` user) has stored the
logins and handed them on (handoff.py). It opens no connection and imports no AWS
code: for each user of ``users =`` it forks, drops to that user (asuser.py), and
writes the logins into the user's stores (docker ``config.json`` by default, the
configured stores under the user's ``$HOME``) with the same lock, atomic write, merge
and foreign-file guarantees as every store write, recording them in the user's own
state (so ``ecr-login status`` run as the user shows them) and running the deploy
hooks as the user, with ``ECR_LOGIN_USER`` set. A user who cannot be served is one
error line naming the configuration line and the fix; the others are still served.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import asdict
from functools import partial
from typing import Any

from .asuser import ChildError, run_as, user_environment
from .config import Settings
from .consumers import Consumer, resolve, service_account, user_settings
from .errors import EX_CONFIG, EX_OK, EX_TEMPFAIL, ConfigError, EcrLoginError, UsageError, most_severe
from .handoff import HandedLogin, load
from .logs import Log
from .plan import default_key, format_time
from .state import Entry, State
from .stores import Store, open_store


def run_deliver(settings: Settings, environ: Mapping[str, str], log: Log) -> int:
    """Serve every named user; the exit code is the most severe of their outcomes."""
    if not settings.users:
        log.debug("no users named: nothing to deliver")
        return EX_OK
    if os.geteuid() != 0:
        raise UsageError("deliver writes into other users' files, as each of them: it runs as root "
                         "(the ExecStartPost= step of ecr-login.service: systemctl start ecr-login.service)")
    service, state_dir = service_account(environ)
    handed = {address: login for address, login in load(state_dir, owner=service.uid).items()
              if login.expires_at > time.time()}
    consumers, problems = resolve(settings.users, settings.users_line)
    codes = []
    for problem in problems:
        log.error(problem.message)
        codes.append(EX_CONFIG)
    if not handed:
        log.warning("no fresh login to hand to the named users yet (the login step stored none); "
                    "see 'journalctl -u ecr-login'")
    reported: dict[str, list[dict[str, Any]]] = {}
    for consumer in consumers:
        try:
            rows = run_as(consumer, partial(serve, consumer, settings, handed, environ.get("PATH", os.defpath)))
        except ChildError as exc:
            log.error(f"{consumer.name}: {exc}")
            codes.append(exc.exit_code)
            continue
        reported[consumer.name] = rows["entries"]
        for row in rows["pairs"]:
            where = f"{row['registry']} for {consumer.name} ({row['store']}, {row['location']})"
            if row["error"]:
                log.error(f"{where}: {row['error']}")
                codes.append(int(row["code"]))
            elif row["stored"]:
                log.info(f"handed the login to {where}, until {format_time(float(row['expires_at']))}")
            if row["hook_error"]:
                codes.append(EX_TEMPFAIL)
    _record(service, state_dir, settings, reported, log)
    return most_severe(codes) if codes else EX_OK


def serve(consumer: Consumer, settings: Settings, handed: dict[str, HandedLogin], path: str) -> dict[str, Any]:
    """As the user (in the child): store each handed login the user's stores lack, record it in
    the user's state, run the hooks for what was stored. Returns what happened, for the parent."""
    environ = user_environment(consumer, path)
    mine = user_settings(settings, environ)
    state = State(mine.state_dir)
    now = time.time()
    pairs: list[dict[str, Any]] = []
    with state.lock(mine.lock_timeout):
        state.load()
        stores: dict[str, Store] = {}
        due: dict[str, dict[str, HandedLogin]] = {}
        for target in mine.targets:
            for login in (login for login in handed.values() if login.target == target.name):
                if target.registry is None:  # so the user's status knows where the default registry is
                    state.default_hosts[default_key(target)] = login.address
                for kind in target.stores:
                    store = stores.setdefault(kind, open_store(kind, mine.docker_config_file, environ, mine.lock_timeout))
                    row = {"registry": login.address, "store": kind, "location": store.location, "stored": False,
                           "error": None, "code": EX_OK, "expires_at": login.expires_at, "hook_error": None}
                    pairs.append(row)
                    try:
                        if _holds(store, state, login):
                            continue
                    except EcrLoginError as exc:
                        _failed(state.entry(login.address, kind, store.location), row, exc, now)
                        continue
                    due.setdefault(kind, {})[login.address] = login
        stored = _store(stores, due, state, pairs, now)
        if mine.hooks_dir is not None and stored:
            _hooks(mine, environ, stored, state, pairs)
        state.save()
    return {"pairs": pairs, "entries": [asdict(entry) for entry in state.entries.values()]}


def _holds(store: Store, state: State, login: HandedLogin) -> bool:
    """The user's store already holds this login (or a later one we gave it)."""
    entry = state.find(login.address, store.kind, store.location)
    held = store.held(login.address)
    return bool(entry and entry.fingerprint and held == entry.fingerprint and entry.expires_at >= login.expires_at)


def _store(stores: dict[str, Store], due: dict[str, dict[str, HandedLogin]], state: State,
           pairs: list[dict[str, Any]], now: float) -> list[tuple[Store, HandedLogin]]:
    """One write per store for all its due logins; record each outcome."""
    stored = []
    for kind, logins in due.items():
        store = stores[kind]
        rows = {row["registry"]: row for row in pairs if row["store"] == kind}
        try:
            outcomes: dict[str, str | EcrLoginError] = store.save(
                {address: (login.username, login.password) for address, login in logins.items()})
        except EcrLoginError as exc:
            outcomes = {address: exc for address in logins}
        for address, login in logins.items():
            entry = state.entry(address, kind, store.location)
            outcome = outcomes.get(address) or ConfigError(f"{store.location}: {address} was not stored")
            if isinstance(outcome, EcrLoginError):
                _failed(entry, rows[address], outcome, now)
                continue
            entry.fingerprint, entry.expires_at, entry.last_success, entry.last_attempt = outcome, login.expires_at, now, now
            entry.last_error, entry.last_exit, entry.failures = None, EX_OK, 0
            rows[address]["stored"] = True
            stored.append((store, login))
    return stored


def _failed(entry: Entry, row: dict[str, Any], error: EcrLoginError, now: float) -> None:
    entry.last_attempt, entry.last_error, entry.last_exit = now, str(error), error.exit_code
    entry.failures += 1
    row["error"], row["code"] = str(error), error.exit_code


def _hooks(settings: Settings, environ: dict[str, str], stored: list[tuple[Store, HandedLogin]], state: State,
           pairs: list[dict[str, Any]]) -> None:
    from .hooks import Login, run_hooks

    assert settings.hooks_dir is not None
    logins = [Login(login.address, store.kind, store.location, login.username, login.password, login.expires_at)
              for store, login in stored]
    failures = run_hooks(settings.hooks_dir, settings.hook_timeout, logins, {**environ, "ECR_LOGIN_USER":
                         environ["USER"]}, Log())
    for login in logins:
        state.entry(login.registry, login.store, login.location).hook_error = failures.get(login.key)
        for row in pairs:
            if (row["registry"], row["store"]) == (login.registry, login.store):
                row["hook_error"] = failures.get(login.key)


def _record(service: Consumer, state_dir: str, settings: Settings, reported: dict[str, list[dict[str, Any]]],
            log: Log) -> None:
    """As the service user: keep the users' entries beside its state (``consumers.json``, no secret)
    and rewrite the metrics with a series per user, so both steps' writes show every user."""
    from .metrics import record_users

    try:
        run_as(service, partial(record_users, state_dir, reported, settings.metrics_file))
    except ChildError as exc:
        log.warning(f"the named users' metrics not written: {exc}")
