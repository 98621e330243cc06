"""The refresh engine: plan what is due, fetch tokens, store them, record the outcome.

Data flows one way: settings (config) -> plan -> tokens -> stores -> state.
When nothing is due the run reads the state and the stores and returns: no
boto3 import, no network.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from .config import Settings, Target
from .errors import EX_OK, EcrLoginError, TemporaryError, most_severe
from .logs import Log
from .records import record
from .registry import is_login_address
from .state import State, placeholder_address
from .stores import Store, open_store

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (milliseconds on the no-op path)
if TYPE_CHECKING:
    from .tokens import Identity, Token

Batch = tuple[Store, dict[str, tuple[str, str]], list["Pair"]]


@record
class Pair:
    """A target in one of its stores; ``address`` is None until the default registry is known."""

    target: Target
    store: Store
    address: str | None
    reason: str = ""
    error: EcrLoginError | None = None


def default_key(target: Target) -> str:
    """Who the default registry belongs to: the same key means the same AWS identity and place."""
    return f"{target.region}|{target.profile or ''}|{target.role_arn or ''}|{target.endpoint_url or ''}"


def address_of(target: Target, state: State) -> str | None:
    if target.store_as:
        return target.store_as
    if target.registry is not None:
        return target.registry.host
    return state.default_hosts.get(default_key(target))


def pairs_for(settings: Settings, environ: Mapping[str, str], state: State) -> list[Pair]:
    stores: dict[str, Store] = {}
    pairs = []
    for target in settings.targets:
        for kind in target.stores:
            if kind not in stores:
                stores[kind] = open_store(kind, settings.docker_config_file, environ, settings.lock_timeout)
            pairs.append(Pair(target, stores[kind], address_of(target, state)))
    return pairs


def known_pairs(settings: Settings, environ: Mapping[str, str], state: State) -> list[Pair]:
    """The configured pairs, an unknown default registry replaced by the ones the state remembers.

    For ``status`` and ``logout``: an admin running them by hand as the service user
    lacks the unit's environment (region and endpoint from /etc/default/ecr-login),
    so the default registry's key differs, but the state still knows where this user
    logged in.
    """
    pairs: dict[tuple[str | None, str], Pair] = {}
    remembered = sorted(set(state.default_hosts.values()))
    for pair in pairs_for(settings, environ, state):
        if pair.address is None and remembered:
            for host in remembered:
                pairs.setdefault((host, pair.store.kind), Pair(pair.target, pair.store, host))
        else:
            pairs.setdefault((pair.address, pair.store.kind), pair)
    return list(pairs.values())


def due_reason(pair: Pair, state: State, margin: float, now: float) -> str | None:
    """Why this pair needs a fresh login now, or None when the stored one is good."""
    if pair.address is None:
        return "first login to the default registry"
    entry = state.find(pair.address, pair.store.kind, pair.store.location)
    if entry is None or not entry.fingerprint:
        return "no login recorded"
    held = pair.store.held(pair.address)
    if held is None:
        return f"{pair.store.location} no longer holds it (logged out?)"
    if held != entry.fingerprint:
        return f"{pair.store.location} holds a different login"
    left = entry.expires_at - now
    if left < margin:
        return "expired" if left <= 0 else f"expires in {format_duration(left)}"
    return None


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def format_time(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch))


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


def _plan(pairs: list[Pair], state: State, settings: Settings, force: bool, log: Log) -> list[Pair]:
    now = time.time()
    due = []
    for pair in pairs:
        try:
            reason = "forced" if force else due_reason(pair, state, settings.refresh_margin, now)
        except EcrLoginError as exc:
            pair.error = exc
            due.append(pair)
            continue
        if reason is None:
            entry = state.find(pair.address or "", pair.store.kind, pair.store.location)
            left = (entry.expires_at - now) if entry else 0
            log.debug(f"{pair.address} ({pair.store.kind}): fresh, {format_duration(left)} left")
        else:
            pair.reason = reason
            due.append(pair)
    return due


def _plan_only(settings: Settings, environ: Mapping[str, str], log: Log, state: State, force: bool) -> int:
    due = _plan(pairs_for(settings, environ, state), state, settings, force, log)
    codes = []
    for pair in due:
        region = pair.target.region
        if pair.address is None and not region and pair.error is None:
            from .tokens import identity_of, with_instance_region

            try:  # a dry run should catch the missing region the real run would hit
                region = with_instance_region(identity_of(pair.target)).region + " from instance metadata"
            except EcrLoginError as exc:
                pair.error = exc
        if pair.error is None:
            try:  # and a store file the real run could not write
                pair.store.held(pair.address or "")
            except EcrLoginError as exc:
                pair.error = exc
        name = pair.address or f"default registry ({region})"
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
    due = _plan(pairs, state, settings, force, log)
    if not due:
        log.info(f"all {len(pairs)} login(s) fresh; nothing to do")
        return EX_OK
    fetchable = [pair for pair in due if pair.error is None]
    if fetchable:
        from .tokens import fetch_tokens, identity_of

        identities = list(dict.fromkeys(identity_of(pair.target) for pair in fetchable))
        log.debug(f"{len(fetchable)} login(s) due; {len(identities)} token request(s)")
        tokens = fetch_tokens(identities, settings.timeout, log)
        batches: dict[int, Batch] = {}
        for pair in fetchable:
            outcome = tokens[identity_of(pair.target)]
            if isinstance(outcome, EcrLoginError):
                pair.error = outcome
                continue
            if pair.address is None:
                pair.address = outcome.proxy_host
                if pair.address is None or not is_login_address(pair.address):
                    from .errors import MalformedAnswerError

                    pair.address = None
                    pair.error = MalformedAnswerError("the token answer names no usable proxyEndpoint for the default registry")
                    continue
                state.default_hosts[default_key(pair.target)] = pair.address
            _store, logins, members = batches.setdefault(id(pair.store), (pair.store, {}, []))
            logins[pair.address] = (outcome.username, outcome.password)
            members.append(pair)
        _store_batches(batches, tokens, state, log)
    codes = _record(due, state, log)
    state.forget_default_placeholders()  # a default registry now known needs no "default:REGION" entry
    state.save()
    failed = len(codes)
    summary = f"{len(due) - failed} login(s) refreshed, {len(pairs) - len(due)} fresh, {failed} failed"
    if failed:
        log.warning(summary)
    else:
        log.info(summary)
    return most_severe(codes)


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
