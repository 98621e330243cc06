"""The refresh engine: plan what is due, fetch tokens, store them, record the outcome.

Data flows one way: settings (config) -> plan -> tokens -> stores -> state.
When nothing is due the run reads the state and the stores and returns: no
boto3 import, no network.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from .config import Settings
from .errors import EX_OK, EX_TEMPFAIL, EcrLoginError, MalformedAnswerError, TemporaryError, most_severe
from .handoff import HandedLogin
from .logs import Log
from .plan import Due, Pair, default_key, describe_default, due_pairs, format_duration, format_time, pairs_for
from .registry import is_login_address
from .state import State, placeholder_address
from .stores import Store

if TYPE_CHECKING:
    from .tokens import Identity, Token


@dataclass(frozen=True)
class Outcome:
    """What became of one due pair: where its login was stored, or why it failed. ``token`` is
    the fresh login (for the hooks and the named users), set only when it was stored."""

    due: Due
    address: str | None
    error: EcrLoginError | None = None
    token: Token | None = None

    @property
    def store(self) -> Store:
        return self.due.store


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
          handed: dict[str, HandedLogin] | None = None) -> list[Due]:
    now = time.time()
    due = due_pairs(pairs, state, settings.refresh_margin, force, now, hooks=settings.hooks_dir is not None)
    planned = {due_item.pair for due_item in due}
    for pair in pairs:
        if pair in planned:
            continue
        login = handed.get(pair.address or "") if handed is not None else None
        if handed is not None and (login is None or login.expires_at - now < settings.refresh_margin):
            due.append(Due(pair, "no login handed to the named users yet"))  # users are named: they need it too
            continue
        entry = state.find(pair.address or "", pair.store.kind, pair.store.location)
        left = (entry.expires_at - now) if entry else 0
        log.debug(f"{pair.address} ({pair.store.kind}): fresh, {format_duration(left)} left")
    return due


def _plan_only(settings: Settings, environ: Mapping[str, str], log: Log, state: State, force: bool) -> int:
    codes = []
    due = _plan(pairs_for(settings, environ, state), state, settings, force, log)
    for item in due:
        region, error = item.target.region, item.error
        if item.address is None and not region and error is None:
            from .instance_region import with_instance_region
            from .tokens import identity_of

            try:  # a dry run should catch the missing region the real run would hit
                region = with_instance_region(identity_of(item.target), environ).region + " from instance metadata"
            except EcrLoginError as exc:
                error = exc
        name = item.address or describe_default(region)
        if error:
            codes.append(error.exit_code)
            log.error(f"would fail for {name} ({item.store.kind}, {item.store.location}): {error}")
        else:
            log.notice(f"would log in to {name} ({item.store.kind}, {item.store.location}): {item.reason}")
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
    outcomes = _store(_fetch(due, settings, environ, state, log), state, log)
    if handed is not None:
        _hand_on(handed, settings, outcomes, state)
    if _served_by_user_instances(outcomes, settings):
        from .hints import enabled_user_timers

        timers = ", ".join(f"ecr-login@{user}.timer" for user in enabled_user_timers())
        log.notice(f"no AWS credentials for this service, and no 'users' named: this host's logins are kept by "
                   f"{timers} (each user's own AWS identity); nothing to do here")
        return EX_OK
    if _never_set_up(outcomes, settings, environ, state):
        from .hints import SEE_DOCTOR
        from .readiness import missing

        lacking = "; ".join(missing(settings, environ)) or str(outcomes[0].error)
        log.notice(f"ecr-login is not set up on this host, nothing to log in with: {lacking} ({SEE_DOCTOR})")
        return EX_OK
    codes = _record(outcomes, state, log)
    if settings.hooks_dir is not None and _run_hooks(settings, environ, outcomes, state, log):
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


def _fetch(due: list[Due], settings: Settings, environ: Mapping[str, str], state: State, log: Log) -> list[Outcome]:
    """One token per AWS identity for the due pairs, and where each login goes: the pair's
    address, or the default registry the token names (remembered in the state)."""
    fetchable = [item for item in due if item.error is None]
    if not fetchable:
        return [Outcome(item, item.address, item.error) for item in due]
    from .deadline import fetch_tokens
    from .tokens import identity_of

    identities = list(dict.fromkeys(identity_of(item.target) for item in fetchable))
    log.debug(f"{len(fetchable)} login(s) due; {len(identities)} token request(s)")
    tokens: dict[Identity, Token | EcrLoginError] = fetch_tokens(identities, settings.timeout, log, environ)
    outcomes = []
    for item in due:
        token = tokens[identity_of(item.target)] if item.error is None else item.error
        if isinstance(token, EcrLoginError):
            outcomes.append(Outcome(item, item.address, token))
            continue
        address = item.address or token.proxy_host
        if address is None or not is_login_address(address):
            error = MalformedAnswerError("the token answer names no usable proxyEndpoint for the default registry")
            outcomes.append(Outcome(item, None, error))
            continue
        if item.address is None:
            state.default_hosts[default_key(item.target)] = address
        outcomes.append(Outcome(item, address, token=token))
    return outcomes


def _store(outcomes: list[Outcome], state: State, log: Log) -> list[Outcome]:
    """Each store's fresh logins in one write; the outcomes with what each write gave."""
    batches: dict[Store, list[Outcome]] = {}
    for outcome in outcomes:
        if outcome.token is not None:
            batches.setdefault(outcome.store, []).append(outcome)
    written: dict[tuple[Store, str], Outcome] = {}
    for store, members in batches.items():
        logins = {outcome.address or "": (outcome.token.username, outcome.token.password)
                  for outcome in members if outcome.token is not None}
        try:
            stored: dict[str, str | EcrLoginError] = store.save(logins)
        except EcrLoginError as exc:
            stored = dict.fromkeys(logins, exc)
        now = time.time()
        for outcome in members:
            address, token = outcome.address or "", outcome.token
            assert token is not None
            result = stored.get(address) or TemporaryError(f"{store.location}: {address} was not stored")
            if isinstance(result, EcrLoginError):
                written[(store, address)] = replace(outcome, error=result, token=None)
                continue
            entry = state.entry(address, store.kind, store.location)
            entry.fingerprint, entry.expires_at, entry.last_success = result, token.expires_at, now
            log.info(f"logged in to {address} ({store.kind}, {store.location}) until {format_time(token.expires_at)}"
                     f" [{outcome.due.reason}]")
            written[(store, address)] = outcome
    return [written.get((outcome.store, outcome.address or ""), outcome) if outcome.token else outcome
            for outcome in outcomes]


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


def _hand_on(handed: dict[str, HandedLogin], settings: Settings, outcomes: list[Outcome], state: State) -> None:
    """Put each fresh login where ``ecr-login deliver`` finds it; forget registries no longer configured."""
    from . import handoff

    for outcome in outcomes:
        if outcome.token is not None and outcome.address:
            handed[outcome.address] = HandedLogin(outcome.address, outcome.due.target.name, outcome.token.username,
                                                  outcome.token.password, outcome.token.expires_at)
    names = {target.name for target in settings.targets}
    kept = {address: login for address, login in handed.items() if login.target in names}
    handoff.save(state.directory, kept)


def _served_by_user_instances(outcomes: list[Outcome], settings: Settings) -> bool:
    """The system service has no credentials, names no users, and the admin enabled per-user
    instances: those keep this host's logins, so this run has nothing to do (#17.5)."""
    from .errors import NotSetUpError
    from .hints import enabled_user_timers
    from .paths import service_account_home

    return (
        not settings.users
        and all(isinstance(outcome.error, NotSetUpError) for outcome in outcomes)
        and service_account_home() is not None
        and bool(enabled_user_timers())
    )


def _never_set_up(outcomes: list[Outcome], settings: Settings, environ: Mapping[str, str], state: State) -> bool:
    """Every due login failed for want of credentials or a region, on a host with no registry
    configured, no credentials anywhere and no login ever made (a laptop, a host off EC2): not a
    failure to report every 15 minutes, but a notice (#13.3). A registry or credentials make it
    one again, and so does a past login (an instance profile's credentials show nowhere locally)."""
    from .errors import NotSetUpError
    from .readiness import nothing_set_up

    return (
        all(isinstance(outcome.error, NotSetUpError) for outcome in outcomes)
        and not any(entry.last_success for entry in state.entries.values())
        and nothing_set_up(settings, environ)
    )


def _run_hooks(settings: Settings, environ: Mapping[str, str], outcomes: list[Outcome], state: State, log: Log) -> bool:
    """The deploy hooks for each login this run stored; record their outcome; True when one failed."""
    from .hooks import Login, run_hooks

    logins = [Login(outcome.address, outcome.store.kind, outcome.store.location, outcome.token.username,
                    outcome.token.password, outcome.token.expires_at)
              for outcome in outcomes if outcome.token is not None and outcome.address is not None]
    assert settings.hooks_dir is not None
    failures = run_hooks(settings.hooks_dir, settings.hook_timeout, logins, environ, log)
    for login in logins:
        state.entry(login.registry, login.store, login.location).hook_error = failures.get(login.key)
    return bool(failures)


def _record(outcomes: list[Outcome], state: State, log: Log) -> list[int]:
    """Each attempt in the state (a failed first login to the default registry under
    ``default:REGION``); the exit codes of the failures."""
    now = time.time()
    codes = []
    for outcome in outcomes:
        address = outcome.address or placeholder_address(outcome.due.target.region)
        entry = state.entry(address, outcome.store.kind, outcome.store.location)
        entry.last_attempt = now
        if outcome.error is None:
            entry.last_error, entry.last_exit, entry.failures = None, EX_OK, 0
            continue
        codes.append(outcome.error.exit_code)
        entry.last_error, entry.last_exit = str(outcome.error), outcome.error.exit_code
        entry.failures += 1
        log.error(f"{address} ({outcome.store.kind}): {outcome.error}")
    return codes
