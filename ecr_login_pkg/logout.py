"""``ecr-login logout``: remove the logins ecr-login stored, and their state."""

from __future__ import annotations

from collections.abc import Mapping

from .config import Settings
from .errors import EX_OK, EcrLoginError, most_severe
from .logs import Log
from .refresh import known_pairs
from .state import State


def run_logout(settings: Settings, environ: Mapping[str, str], log: Log) -> int:
    state = State(settings.state_dir)
    codes = []
    with state.lock(settings.lock_timeout, log.notice):
        state.load()
        for pair in known_pairs(settings, environ, state):
            if pair.address is None:
                log.info(f"default registry in {pair.target.region}: never logged in, nothing to remove")
                continue
            try:
                removed = pair.store.remove([pair.address])
            except EcrLoginError as exc:
                log.error(f"{pair.address} ({pair.store.kind}): {exc}")
                codes.append(exc.exit_code)
                continue
            state.forget(pair.address, pair.store.kind, pair.store.location)
            state.default_hosts = {key: host for key, host in state.default_hosts.items() if host != pair.address}
            verb = "logged out of" if removed else "no login stored for"
            log.info(f"{verb} {pair.address} ({pair.store.kind}, {pair.store.location})")
        state.save()
    return most_severe(codes) if codes else EX_OK
