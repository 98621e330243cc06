"""How a run's token requests are bounded: one call per identity, in parallel, retried, within ``timeout``.

``timeout`` bounds the whole fetch whatever the server does (slow headers, a body
dripping a byte at a time, a connection that never closes): botocore's own timeouts
are per read, so each identity is fetched in a daemon worker thread and the caller
stops waiting at the deadline; an AWS CLI still running then is killed. A daemon
thread left in a socket read cannot hold the process, and a signal (SIGINT, SIGTERM)
reaches the main thread at once, wherever the workers are.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from . import awscli_source
from .aws_clients import BotoFetcher
from .aws_errors import ThrottledError, unexpected
from .errors import EcrLoginError, TemporaryError
from .instance_region import with_instance_region
from .logs import Log
from .tokens import Identity, Token, call_name, check_clock

MAX_WORKERS = 8
BACKOFF_BASE = 0.5
BACKOFF_CAP = 20.0
# Throttled: GetAuthorizationToken's bucket (200 calls per account and region, refilled at 20/s)
# gives 300 calls in 15 s, so a first retry spread over 15 s serves a storm of 500 hosts;
# later retries double the spread, up to 40 s. Full jitter, as the AWS SDKs' standard and
# adaptive retry modes: a fleet's retries spread over the whole window, not its second half.
THROTTLE_BASE = 15.0
THROTTLE_CAP = 40.0
MIN_WINDOW = 1.0  # less than this left to spread a throttled retry over: make it the last try
LAST_CALL_ROOM = 3.0  # a last attempt starts this long before the deadline, when a delay would pass it
LATE_GRACE = 0.5  # after the deadline, how long a worker's own (more telling) error is awaited


def backoff_delay(attempt: int, rng: Callable[[float, float], float] = random.uniform) -> float:
    """Exponential backoff with 'equal jitter': half fixed, half random, capped."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** attempt))
    return ceiling / 2 + rng(0, ceiling / 2)


def throttle_window(attempt: int) -> float:
    """After throttling, the window a retry is spread over: sized by what the account's bucket refills."""
    return min(THROTTLE_CAP, THROTTLE_BASE * (2 ** attempt))


def retry_delay(attempt: int, throttled: bool, left: float, last: bool,
                rng: Callable[[float, float], float] = random.uniform,
                reserve: float = LAST_CALL_ROOM) -> tuple[float, bool] | None:
    """Seconds to wait before the next try, with ``left`` seconds to the deadline, and whether that
    try is the last; None: give up.

    Throttled: 'full jitter' over ``throttle_window``, or over what time is left before the last
    try's room when that is shorter (a retry after the deadline serves no one). Otherwise
    ``backoff_delay``. When the delay would pass the deadline, or less than a second is left to
    spread over, one last try still starts ``reserve`` (LAST_CALL_ROOM, less for a short
    ``timeout``) before it (the time left is the run's to use), unless the try that failed was
    that last one.
    """
    room = left - reserve
    if throttled:
        window = min(throttle_window(attempt), room)
        delay = rng(0, window) if window >= MIN_WINDOW else room
    else:
        delay = backoff_delay(attempt, rng)
    if delay < room:
        return delay, False
    if last or room <= 0:
        return None
    return room, True


def fetch_tokens(
    identities: list[Identity], timeout: float, log: Log, environ: Mapping[str, str]
) -> dict[Identity, Token | EcrLoginError]:
    """Fetch a token for each identity in parallel, retrying transient failures until ``timeout``.

    Returns by the deadline (plus LATE_GRACE) whatever the servers do: an identity whose
    call has not ended by then gets a TemporaryError naming that call.
    """
    run = _Run(timeout, log, environ)
    results = run.make_clients(identities)
    pending = [identity for identity in identities if identity not in results]
    finished: dict[Identity, Token | EcrLoginError] = {}
    try:
        finished = in_daemon_threads(run.with_retries, pending, run.deadline + LATE_GRACE)
    finally:
        run.children.stop()  # at the deadline, or on SIGINT/SIGTERM: no AWS CLI outlives the run, no worker logs on
        run.close(finished)
    for identity in pending:
        waiting_for = getattr(run.clients.get(identity), "waiting_for", None)
        results[identity] = finished.get(identity) or TemporaryError(
            f"{call_name(run.asked.get(identity, identity))}: {waiting_for} gave nothing within {timeout:g}s, "
            "the run's timeout; stopped it" if waiting_for else
            f"{call_name(run.asked.get(identity, identity))}: no answer within {timeout:g}s, the run's timeout; "
            "gave up waiting (a silent or dripping connection?)"
        )
    return results


class _Run:
    """One ``fetch_tokens`` call: its deadline, the botocore clients made before the workers
    start (in the main thread), and the AWS CLIs its workers start."""

    def __init__(self, timeout: float, log: Log, environ: Mapping[str, str]) -> None:
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.log = log
        self.environ = environ
        self.boto: BotoFetcher | None = None
        self.clients: dict[Identity, Any] = {}
        self.asked: dict[Identity, Identity] = {}  # as planned -> with the instance's region filled in
        self.children = awscli_source.Children()

    def close(self, finished: Mapping[Identity, object]) -> None:
        """Close the clients whose workers are done (urllib3 1.x warns of unclosed sockets at exit);
        a worker still in a call keeps its own."""
        for identity, client in self.clients.items():
            if identity in finished:
                try:
                    client.close()
                except Exception:  # closing is tidying up: it must not cost a login
                    pass

    def make_clients(self, identities: list[Identity]) -> dict[Identity, Token | EcrLoginError]:
        """A botocore client for each boto3 identity; the failures, by identity."""
        failed: dict[Identity, Token | EcrLoginError] = {}
        for identity in identities:
            if identity.source != "boto3":
                self.asked[identity] = identity
                continue
            try:
                if self.boto is None:
                    self.boto = BotoFetcher(self.environ, self.children)
                self.asked[identity] = with_instance_region(identity, self.environ)
                self.clients[identity] = self.boto.client(self.asked[identity], self.deadline - time.monotonic())
            except EcrLoginError as exc:
                failed[identity] = exc
            except Exception as exc:  # one identity's surprise must not cost the others their logins
                failed[identity] = unexpected(identity.describe(), exc)
        return failed

    def gave_up(self, exc: Exception, tries: int, spent: float) -> TemporaryError:
        """The last failure, and how long it was really retried (the time before the first try
        and what the last one took are not retrying)."""
        return TemporaryError(f"{exc} (gave up after {tries} attempt{'s' if tries != 1 else ''} over {spent:.1f}s; "
                              f"the run's timeout: {self.timeout:g}s)")

    def attempt(self, identity: Identity) -> Token:
        remaining = self.deadline - time.monotonic()
        if identity.source == "awscli":
            return awscli_source.fetch(identity, remaining, self.environ, self.children)
        assert self.boto is not None
        return self.boto.fetch(self.asked[identity], self.clients[identity])

    def with_retries(self, identity: Identity) -> Token | EcrLoginError:
        """``identity``'s token, or why not: temporary failures retried with backoff until the deadline."""
        tries = 0
        started = time.monotonic()
        last = False
        while True:
            tries += 1
            self.log.debug(f"requesting a token: {identity.describe()} (attempt {tries})")
            try:
                token = self.attempt(identity)
                if not self.children.stopped:  # a worker the run stopped waiting for writes nothing more
                    check_clock(token, self.asked.get(identity, identity), self.log)
                return token
            except TemporaryError as exc:
                now = time.monotonic()
                wait = None if self.children.stopped else retry_delay(
                    tries - 1, isinstance(exc, ThrottledError), self.deadline - now, last,
                    reserve=min(LAST_CALL_ROOM, self.timeout / 4))
                if wait is None:
                    return self.gave_up(exc, tries, now - started)
                delay, last = wait
                self.log.warning(f"{exc}; retrying in {delay:.1f}s" + (" (a last try before the deadline)" if last else ""))
                time.sleep(delay)
                if self.children.stopped:
                    return self.gave_up(exc, tries, time.monotonic() - started)
            except EcrLoginError as exc:
                return exc
            except Exception as exc:  # a worker's surprise is its identity's failure, not the run's
                return unexpected(identity.describe(), exc)


def in_daemon_threads(
    work: Callable[[Identity], Token | EcrLoginError], items: list[Identity], until: float
) -> dict[Identity, Token | EcrLoginError]:
    """``work(item)`` for each item in at most MAX_WORKERS daemon threads; what finished by ``until``
    (a ``time.monotonic`` time).

    Daemon threads, not a ThreadPoolExecutor: Python joins an executor's workers at exit, so
    one stuck in a socket read that no botocore timeout ends would hold the process after the
    run gave up on it. The main thread waits on a condition, which a signal interrupts.
    """
    todo: queue.SimpleQueue[Identity] = queue.SimpleQueue()
    for item in items:
        todo.put(item)
    finished: dict[Identity, Token | EcrLoginError] = {}
    changed = threading.Condition()

    def worker() -> None:
        while time.monotonic() < until:
            try:
                item = todo.get_nowait()
            except queue.Empty:
                return
            outcome = work(item)
            with changed:
                finished[item] = outcome
                changed.notify()

    for _ in range(min(MAX_WORKERS, len(items))):
        threading.Thread(target=worker, name="ecr-login-fetch", daemon=True).start()
    with changed:
        while len(finished) < len(items):
            left = until - time.monotonic()
            if left <= 0:
                break
            changed.wait(left)
        return dict(finished)
