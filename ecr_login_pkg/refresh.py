"""The refresh engine: plan what is due, fetch tokens, store them, record the outcome.

Data flows one way: settings (config) -> plan -> tokens -> stores -> state.
When nothing is due the run reads the state and the stores and returns: no
boto3 import, no network.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .config import Settings
from .errors import EX_OK, EX_TEMPFAIL, EcrLoginError, MalformedAnswerError, TemporaryError, most_severe
from .handoff import HandedLogin
from .logs import Log
from .plan import Pair, default_key, describe_default, due_pairs, format_duration, format_time, pairs_for
from .registry import is_login_address
from .state import State, placeholder_address
from .stores import Store

if TYPE_CHECKING:
    from .tokens import Identity, Token

Batch = tuple[Store, dict[str, tuple[str, str]], list[Pair]]


def run_login(settings: Settings, environ: Mapping[str, str], log: Log, force: bool, dry_run: bool) -> int:
    state = State(settings.state_dir)
    if dry_run:
        return _plan_only(settings, environ, log, state.load(), force)
    with state.lock(settings.lock_timeout, log.notice):
        state.load()
        if state.problem:
            log.warning(state.problem)
        code = _refresh(settings, environ, log, state, force)
        if settings.metrics_file:  # every run, so "last run" in the metrics is true on quiet days too
            from .metrics import write_metrics

            write_metrics(settings.metrics_file, state, log)
    return code


def _plan(pairs: list[Pair], state: State, settings: Settings, force: bool, log: Log,
          handed: dict[str, HandedLogin] | None = None) -> list[Pair]:
    now = time.time()
    due = due_pairs(pairs, state, settings.refresh_margin, force, now, hooks=settings.hooks_dir is not None)
    due_ids = {id(pair) for pair in due}
    if handed is not None:  # users are named: each needs a login handed on, good for the margin
        for pair in pairs:
            login = handed.get(pair.address or "")
            if id(pair) not in due_ids and (login is None or login.expires_at - now < settings.refresh_margin):
                pair.reason = "no login handed to the named users yet"
                due.append(pair)
                due_ids.add(id(pair))
    for pair in pairs:
        if id(pair) not in due_ids:
            entry = state.find(pair.address or "", pair.store.kind, pair.store.location)
            left = (entry.expires_at - now) if entry else 0
            log.debug(f"{pair.address} ({pair.store.kind}): fresh, {format_duration(left)} left")
    return due


def _plan_only(settings: Settings, environ: Mapping[str, str], log: Log, state: State, force: bool) -> int:
    due = _plan(pairs_for(settings, environ, state), state, settings, force, log)
    codes = []
    for pair in due:
        region = pair.target.region
        if pair.address is None and not region and pair.error is None:
            from .instance_region import with_instance_region
            from .tokens import identity_of

            try:  # a dry run should catch the missing region the real run would hit
                region = with_instance_region(identity_of(pair.target), environ).region + " from instance metadata"
            except EcrLoginError as exc:
                pair.error = exc
        name = pair.address or describe_default(region)
        if pair.error:
            codes.append(pair.error.exit_code)
            log.error(f"would fail for {name} ({pair.store.kind}, {pair.store.location}): {pair.error}")
        else:
            log.notice(f"would log in to {name} ({pair.store.kind}, {pair.store.location}): {pair.reason}")
    if not due:
        log.notice("nothing is due")
    return most_severe(codes) if codes else EX_OK


def _refresh(settings: Settings, environ: Mapping[str, str], log: Log, state: State, force: bool) -> int:
    pairs = pairs_for(settings, environ, state)
    handed = _handed(settings, state, log)
    due = _plan(pairs, state, settings, force, log, handed)
    if not due:
        log.info(f"all {len(pairs)} login(s) fresh; nothing to do")
        return EX_OK
    fetchable = [pair for pair in due if pair.error is None]
    tokens: dict[Identity, Token | EcrLoginError] = {}
    if fetchable:
        from .deadline import fetch_tokens
        from .tokens import identity_of

        identities = list(dict.fromkeys(identity_of(pair.target) for pair in fetchable))
        log.debug(f"{len(fetchable)} login(s) due; {len(identities)} token request(s)")
        tokens = fetch_tokens(identities, settings.timeout, log, environ)
        batches: dict[int, Batch] = {}
        for pair in fetchable:
            outcome = tokens[identity_of(pair.target)]
            if isinstance(outcome, EcrLoginError):
                pair.error = outcome
                continue
            if pair.address is None:
                pair.address = outcome.proxy_host
                if pair.address is None or not is_login_address(pair.address):
                    pair.address = None
                    pair.error = MalformedAnswerError("the token answer names no usable proxyEndpoint for the default registry")
                    continue
                state.default_hosts[default_key(pair.target)] = pair.address
            _store, logins, members = batches.setdefault(id(pair.store), (pair.store, {}, []))
            logins[pair.address] = (outcome.username, outcome.password)
            members.append(pair)
        _store_batches(batches, tokens, state, log)
    if handed is not None:
        _hand_on(handed, settings, due, tokens, state)
    if _served_by_user_instances(due, settings):
        from .hints import enabled_user_timers

        timers = ", ".join(f"ecr-login@{user}.timer" for user in enabled_user_timers())
        log.notice(f"no AWS credentials for this service, and no 'users' named: this host's logins are kept by "
                   f"{timers} (each user's own AWS identity); nothing to do here")
        return EX_OK
    if _never_set_up(due, settings, environ, state):
        from .hints import SEE_DOCTOR
        from .readiness import missing

        lacking = "; ".join(missing(settings, environ)) or str(due[0].error)
        log.notice(f"ecr-login is not set up on this host, nothing to log in with: {lacking} ({SEE_DOCTOR})")
        return EX_OK
    codes = _record(due, state, log)
    if settings.hooks_dir is not None and _run_hooks(settings, environ, due, tokens, state, log):
        codes.append(EX_TEMPFAIL)
    state.forget_default_placeholders()  # a default registry now known needs no "default:REGION" entry
    state.save()
    failed = len(codes)
    summary = f"{len(due) - failed} login(s) refreshed, {len(pairs) - len(due)} fresh, {failed} failed"
    if failed:
        log.warning(summary)
    else:
        log.info(summary)
    return most_severe(codes)


def _handed(settings: Settings, state: State, log: Log) -> dict[str, HandedLogin] | None:
    """The logins handed to the named users (None when no users are named: then the file goes)."""
    from . import handoff

    if not settings.users:
        handoff.discard(state.directory)
        return None
    try:
        return handoff.load(state.directory)
    except EcrLoginError as exc:  # our own file: rebuilt from the fresh logins
        log.warning(f"{exc}; starting afresh")
        return {}


def _hand_on(handed: dict[str, HandedLogin], settings: Settings, due: list[Pair],
             tokens: dict[Identity, Token | EcrLoginError], state: State) -> None:
    """Put each fresh login where ``ecr-login deliver`` finds it; forget registries no longer configured."""
    from . import handoff
    from .tokens import identity_of

    for pair in due:
        token = tokens.get(identity_of(pair.target)) if pair.error is None and pair.address else None
        if pair.address and token is not None and not isinstance(token, EcrLoginError):
            handed[pair.address] = HandedLogin(pair.address, pair.target.name, token.username, token.password,
                                               token.expires_at)
    names = {target.name for target in settings.targets}
    kept = {address: login for address, login in handed.items() if login.target in names}
    handoff.save(state.directory, kept)


def _served_by_user_instances(due: list[Pair], settings: Settings) -> bool:
    """The system service has no credentials, names no users, and the admin enabled per-user
    instances: those keep this host's logins, so this run has nothing to do (#17.5)."""
    from .errors import NotSetUpError
    from .hints import enabled_user_timers
    from .paths import service_account_home

    return (
        not settings.users
        and all(isinstance(pair.error, NotSetUpError) for pair in due)
        and service_account_home() is not None
        and bool(enabled_user_timers())
    )


def _never_set_up(due: list[Pair], settings: Settings, environ: Mapping[str, str], state: State) -> bool:
    """Every due login failed for want of credentials or a region, on a host with no registry
    configured, no credentials anywhere and no login ever made (a laptop, a host off EC2): not a
    failure to report every 15 minutes, but a notice (#13.3). A registry or credentials make it
    one again, and so does a past login (an instance profile's credentials show nowhere locally)."""
    from .errors import NotSetUpError
    from .readiness import nothing_set_up

    return (
        all(isinstance(pair.error, NotSetUpError) for pair in due)
        and not any(entry.last_success for entry in state.entries.values())
        and nothing_set_up(settings, environ)
    )


def _store_batches(batches: dict[int, Batch], tokens: dict[Identity, Token | EcrLoginError], state: State, log: Log) -> None:
    from .tokens import identity_of

    for store, logins, members in batches.values():
        try:
            stored = store.save(logins)
        except EcrLoginError as exc:
            for pair in members:
                pair.error = exc
            continue
        now = time.time()
        for pair in members:
            token = tokens[identity_of(pair.target)]
            assert pair.address is not None and not isinstance(token, EcrLoginError)
            outcome = stored.get(pair.address)
            if isinstance(outcome, EcrLoginError) or outcome is None:
                pair.error = outcome or TemporaryError(f"{store.location}: {pair.address} was not stored")
                continue
            entry = state.entry(pair.address, store.kind, store.location)
            entry.fingerprint = outcome
            entry.expires_at = token.expires_at
            entry.last_success = now
            log.info(
                f"logged in to {pair.address} ({store.kind}, {store.location}) until {format_time(token.expires_at)}"
                f" [{pair.reason}]"
            )


def _run_hooks(
    settings: Settings,
    environ: Mapping[str, str],
    due: list[Pair],
    tokens: dict[Identity, Token | EcrLoginError],
    state: State,
    log: Log,
) -> bool:
    """The deploy hooks for each login this run refreshed; record their outcome; True when one failed."""
    from .hooks import Login, run_hooks
    from .tokens import identity_of

    logins = []
    for pair in due:
        token = tokens.get(identity_of(pair.target)) if pair.error is None else None
        if pair.address is not None and token is not None and not isinstance(token, EcrLoginError):
            logins.append(Login(pair.address, pair.store.kind, pair.store.location, token.username, token.password,
                                token.expires_at))
    assert settings.hooks_dir is not None
    failures = run_hooks(settings.hooks_dir, settings.hook_timeout, logins, environ, log)
    for login in logins:
        state.entry(login.registry, login.store, login.location).hook_error = failures.get(login.key)
    return bool(failures)


def _record(due: list[Pair], state: State, log: Log) -> list[int]:
    now = time.time()
    codes = []
    for pair in due:
        address = pair.address or placeholder_address(pair.target.region)
        entry = state.entry(address, pair.store.kind, pair.store.location)
        entry.last_attempt = now
        if pair.error is None:
            entry.last_error, entry.last_exit, entry.failures = None, EX_OK, 0
            continue
        codes.append(pair.error.exit_code)
        entry.last_error, entry.last_exit = str(pair.error), pair.error.exit_code
        entry.failures += 1
        log.error(f"{address} ({pair.store.kind}): {pair.error}")
    return codes
