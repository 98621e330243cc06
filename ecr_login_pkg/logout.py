"""``ecr-login logout``: remove the logins ecr-login stored, and their state.

Only logins ecr-login wrote are removed: the state must hold an entry for the
(registry, store, location), and the store must still hold that very login. A
login the user made themselves (no state entry, or a different login in its
place) is left alone; a state entry whose login is gone is simply forgotten.
"""

from __future__ import annotations

from collections.abc import Mapping

from .config import Settings
from .errors import EX_OK, EcrLoginError, most_severe
from .logs import Log
from .plan import describe_default, known_pairs
from .state import State, placeholder_address
from .stores import Store


def run_logout(settings: Settings, environ: Mapping[str, str], log: Log) -> int:
    """Decide per login what goes, then remove each store's share in one go: a file holding
    2000 of our logins is rewritten (and synced) once, not 2000 times."""
    state = State(settings.state_dir)
    codes = []
    with state.lock(settings.lock_timeout, log.notice):
        state.load()
        if state.problem:
            log.warning(state.problem)
        batches: dict[int, tuple[Store, list[str]]] = {}
        for pair in known_pairs(settings, environ, state):
            kind, location = pair.store.kind, pair.store.location
            if pair.address is None:
                state.forget(placeholder_address(pair.target.region), kind, location)
                log.info(f"{describe_default(pair.target.region)}: never logged in, nothing to remove")
                continue
            entry = state.find(pair.address, kind, location)
            if entry is None:
                log.info(f"{pair.address} ({kind}, {location}): not stored by ecr-login; left alone")
                continue
            try:
                held = pair.store.held(pair.address)
            except EcrLoginError as exc:
                log.error(f"{pair.address} ({kind}): {exc}")
                codes.append(exc.exit_code)
                continue
            if held is not None and entry.fingerprint and held != entry.fingerprint:
                log.info(f"{pair.address} ({kind}, {location}): holds a login ecr-login did not write; left alone")
            elif held is not None:
                batches.setdefault(id(pair.store), (pair.store, []))[1].append(pair.address)
                continue
            else:
                log.info(f"no login stored for {pair.address} ({kind}, {location})")
            _forget(state, pair.address, kind, location)
        for store, addresses in batches.values():
            try:
                removed = store.remove(addresses)
            except EcrLoginError as exc:
                more = f" and {len(addresses) - 1} more" if len(addresses) > 1 else ""
                log.error(f"{addresses[0]}{more} ({store.kind}, {store.location}): {exc}")
                codes.append(exc.exit_code)
                continue
            for address in addresses:
                _forget(state, address, store.kind, store.location)
                if address in removed:
                    log.info(f"logged out of {address} ({store.kind}, {store.location})")
        state.save()
    return most_severe(codes) if codes else EX_OK


def _forget(state: State, address: str, kind: str, location: str) -> None:
    state.forget(address, kind, location)
    state.default_hosts = {key: host for key, host in state.default_hosts.items() if host != address}
