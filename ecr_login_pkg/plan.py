"""What is due: the (registry, store) pairs of a run, why each needs a login, and how each stands.

``login`` asks which pairs are due, ``status`` how each pair stands, ``logout``
which pairs ecr-login wrote; all three read the settings and the state through
this module, so they agree on what a pair is and when its login is good.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from .config import Settings, Target
from .errors import EcrLoginError
from .state import State
from .stores import Store, open_store


@dataclass(frozen=True)
class Pair:
    """A target in one of its stores; ``address`` is None until the default registry is known."""

    target: Target
    store: Store
    address: str | None


@dataclass(frozen=True)
class Due:
    """A pair that needs a login now: why, or the error that stops it before any AWS call
    (its store cannot even be read)."""

    pair: Pair
    reason: str = ""
    error: EcrLoginError | None = None

    @property
    def target(self) -> Target:
        return self.pair.target

    @property
    def store(self) -> Store:
        return self.pair.store

    @property
    def address(self) -> str | None:
        return self.pair.address


def default_key(target: Target) -> str:
    """Who the default registry belongs to: the same key means the same AWS identity and place."""
    return f"{target.region}|{target.profile or ''}|{target.role_arn or ''}|{target.endpoint_url or ''}"


def address_of(target: Target, default_host: str | None) -> str | None:
    """Where a target's login is stored: ``store_as``, the registry, or the caller's default
    registry once known (from the state, or from a token's answer)."""
    if target.store_as:
        return target.store_as
    if target.registry is not None:
        return target.registry.host
    return default_host


def pairs_for(settings: Settings, environ: Mapping[str, str], state: State) -> list[Pair]:
    """Every configured target in each of its stores, one store object per kind."""
    stores: dict[str, Store] = {}
    pairs = []
    for target in settings.targets:
        for kind in target.stores:
            if kind not in stores:
                stores[kind] = open_store(kind, settings.docker_config_file, environ, settings.lock_timeout)
            pairs.append(Pair(target, stores[kind], address_of(target, state.default_hosts.get(default_key(target)))))
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


def due_reason(pair: Pair, state: State, margin: float, now: float, hooks: bool = False) -> str | None:
    """Why this pair needs a fresh login now, or None when the stored one is good.

    The store is asked first, whatever the answer: a store that cannot be used (a corrupt
    file, a credential helper named but not installed) raises here, before any AWS call.
    """
    held = pair.store.held(pair.address or "")
    if pair.address is None:
        return "first login to the default registry"
    entry = state.find(pair.address, pair.store.kind, pair.store.location)
    if entry is None or not entry.fingerprint:
        return "no login recorded"
    if held is None:
        return f"{pair.store.location} no longer holds it (logged out?)"
    if held != entry.fingerprint:
        return f"{pair.store.location} holds a different login"
    left = entry.expires_at - now
    if left < margin:
        return "expired" if left <= 0 else f"expires in {format_duration(left)}"
    if hooks and entry.hook_error:
        # A hook needs the password, which only a fresh login gives: log in again, rerun the hooks.
        return f"a deploy hook failed after the last login ({entry.hook_error}): rerun"
    return None


def due_pairs(pairs: list[Pair], state: State, margin: float, force: bool, now: float, hooks: bool = False) -> list[Due]:
    """The pairs that need a login, each with its reason; a pair whose store cannot even be
    read is due too, carrying that error, so the run reports it with the others. ``hooks``:
    deploy hooks run, so a login whose hook failed is due again."""
    due = []
    for pair in pairs:
        try:
            reason = due_reason(pair, state, margin, now, hooks)  # asks the store even when forced
        except EcrLoginError as exc:
            due.append(Due(pair, error=exc))
            continue
        if force:
            reason = "forced"
        if reason is not None:
            due.append(Due(pair, reason))
    return due


def standing(pair: Pair, state: State, margin: float, now: float) -> tuple[str, str | None]:
    """How a pair's login stands for ``status``: (condition, the store's problem if any).

    Conditions, worst first: store-error, missing, replaced, expired (critical);
    failing, due (warning); ok.
    """
    entry = state.find(pair.address, pair.store.kind, pair.store.location) if pair.address else None
    try:
        held = pair.store.held(pair.address) if pair.address else None
    except EcrLoginError as exc:
        return "store-error", str(exc)
    expires_at = entry.expires_at if entry and entry.fingerprint else None
    if entry is None or held is None or expires_at is None:
        return "missing", None
    if held != entry.fingerprint:
        return "replaced", None
    if expires_at <= now:
        return "expired", None
    if entry.last_error or entry.hook_error:
        return "failing", None
    if expires_at - now < margin:
        return "due", None
    return "ok", None


def describe_default(region: str) -> str:
    """The default registry before its address is known, for messages: never an empty placeholder."""
    return f"the default registry in {region}" if region else "the default registry (no region known yet)"


def format_duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"


def format_time(epoch: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(epoch))
