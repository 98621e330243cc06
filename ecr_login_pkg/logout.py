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


def run_logout(settings: Settings, environ: Mapping[str, str], log: Log) -> int:
    state = State(settings.state_dir)
    codes = []
    with state.lock(settings.lock_timeout, log.notice):
        state.load()
        if state.problem:
            log.warning(state.problem)
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
                if held is not None and entry.fingerprint and held != entry.fingerprint:
                    removed = []
                    log.info(f"{pair.address} ({kind}, {location}): holds a login ecr-login did not write; left alone")
                else:
                    removed = pair.store.remove([pair.address]) if held is not None else []
            except EcrLoginError as exc:
                log.error(f"{pair.address} ({kind}): {exc}")
                codes.append(exc.exit_code)
                continue
            state.forget(pair.address, kind, location)
            state.default_hosts = {key: host for key, host in state.default_hosts.items() if host != pair.address}
            if removed:
                log.info(f"logged out of {pair.address} ({kind}, {location})")
            elif held is None:
                log.info(f"no login stored for {pair.address} ({kind}, {location})")
        state.save()
    return most_severe(codes) if codes else EX_OK
