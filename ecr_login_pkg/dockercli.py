"""The docker store: a login where ``docker login`` would keep it.

When a credential helper applies (config.json's ``credHelpers``/``credsStore``, or the
one docker itself picks from PATH), ``docker login --password-stdin`` stores it, so the
helper gets it; the password only ever travels on the CLI's stdin. Otherwise
``docker login`` would only write ``{"auth": base64("AWS:<password>")}`` into
config.json, so that entry is written directly, as the file store does: no docker
process (40-60 ms each), and no test login against the registry, which a token just
issued by ECR passes anyway. Whether a login is still held is read from config.json
(or asked of the helper's ``list``, which prints no secrets, once per run and helper, and
bounded by LIST_TIMEOUT: a run with nothing due must not wait on a slow keyring). A helper
named in config.json but not installed is a configuration error, found when the plan asks
``held``, before any AWS call.
"""

from __future__ import annotations

import json
import os

from . import paths
from .errors import ConfigError, DeniedError, EcrLoginError, MissingHelperError, TemporaryError
from .filestore import FileStore
from .fsutil import DirLock, ensure_private_dir
from .logs import redact

DOCKER_TIMEOUT = 60.0
LIST_TIMEOUT = 10.0  # a helper's `list` (no secret, no network): longer means a locked keyring or a hang
# The helpers docker picks by itself when config.json names none (cli/config/credentials on
# Linux: "pass" or "secretservice", by whether `pass` is installed or set up, depending on the
# version), if the helper is on PATH. Either one present: docker login decides.
DEFAULT_HELPERS = ("pass", "secretservice")
REFUSED_MARKERS = ("unauthorized", "status: 401", "denied", "incorrect username or password", "authentication required")
# `subprocess` is imported only where a process is started: a run with nothing due starts none,
# and the import alone costs milliseconds.


def _final_message(stderr: str) -> str:
    """docker's own error: its last line that is not a logrus 'time=... level=...' progress line."""
    lines = [" ".join(line.split()) for line in stderr.splitlines() if line.strip()]
    final = [line for line in lines if not line.startswith("time=")]
    return (final or lines or ["no message"])[-1]


class DockerCliStore:
    kind = "docker"

    def __init__(self, config_file: str, environ: dict[str, str], lock_timeout: float) -> None:
        self.location = config_file
        self.plain = FileStore(self.kind, config_file, lock_timeout)  # for what docker would write itself
        self.file = self.plain.file
        self.lock_timeout = lock_timeout
        # The docker CLI needs no AWS credentials: keep them out of its environment.
        self.environ = {name: value for name, value in environ.items() if not name.startswith("AWS_")}
        self.environ["DOCKER_CONFIG"] = os.path.dirname(config_file)
        self._listed: dict[str, set[str] | TemporaryError] = {}  # helper -> what its `list` named, this run

    def helper_for(self, address: str) -> str | None:
        """The credential helper config.json names for ``address``; MissingHelperError when it is not installed."""
        data = self.file.snapshot()
        helpers = data.get("credHelpers")
        if isinstance(helpers, dict) and isinstance(helpers.get(address), str) and helpers[address]:
            helper, key = str(helpers[address]), f'"credHelpers" entry for {address}'
        else:
            store = data.get("credsStore")
            if not isinstance(store, str) or not store:
                return None
            helper, key = store, '"credsStore"'
        if paths.which(f"docker-credential-{helper}", self.environ) is None:
            raise MissingHelperError(
                f"{self.location}: {key} names the credential helper '{helper}', but docker-credential-{helper} "
                f"is not on PATH: install it, or remove {key} from {self.location} (logins are then kept in the file itself)",
                helper,
            )
        return helper

    def helpers(self, addresses: list[str]) -> list[str]:
        """The credential helpers config.json names for these addresses (each once, sorted)."""
        return sorted({helper for address in addresses for helper in [self.helper_for(address)] if helper})

    def _listed_by(self, helper: str) -> set[str]:
        """The addresses ``docker-credential-HELPER list`` names: asked once per run, bounded in time."""
        if helper not in self._listed:
            self._listed[helper] = self._ask_list(helper)
        known = self._listed[helper]
        if isinstance(known, TemporaryError):
            raise known
        return known

    def _ask_list(self, helper: str) -> set[str] | TemporaryError:
        import subprocess

        try:
            done = subprocess.run(
                [f"docker-credential-{helper}", "list"], stdin=subprocess.DEVNULL, capture_output=True,
                env=self.environ, timeout=LIST_TIMEOUT, check=False,
            )
            listed = json.loads(done.stdout or b"{}") if done.returncode == 0 else {}
        except subprocess.TimeoutExpired:
            return TemporaryError(
                f"docker-credential-{helper} list: no answer within {LIST_TIMEOUT:g}s "
                "(a locked keyring? the next run will ask again)"
            )
        except (OSError, ValueError):
            listed = {}
        return {key.split("://", 1)[-1].rstrip("/") for key in listed} if isinstance(listed, dict) else set()

    def _direct(self, addresses: list[str]) -> list[str]:
        """The addresses whose login ``docker login`` would write into config.json itself: no
        helper named for them, and none docker could pick from PATH (it would then record it
        in config.json as credsStore)."""
        if any(paths.which(f"docker-credential-{name}", self.environ) for name in DEFAULT_HELPERS):
            return []
        direct = []
        for address in addresses:
            try:
                if self.helper_for(address) is None:
                    direct.append(address)
            except ConfigError:
                pass  # a helper named but not installed: reported for this address alone, by save
        return direct

    def held(self, address: str) -> str | None:
        helper = self.helper_for(address)
        if helper is None:
            return self.file.held(address)
        return f"helper:{helper}" if address in self._listed_by(helper) else None

    def save(self, logins: dict[str, tuple[str, str]]) -> dict[str, str | EcrLoginError]:
        """Write the helper-less logins in one go, then run ``docker login`` once per other
        address, one at a time; one refusal does not stop the others."""
        result: dict[str, str | EcrLoginError] = {}
        self._listed.clear()  # what the helpers hold is about to change
        with self._locked():
            direct = self._direct(list(logins))
            if direct:
                try:
                    result.update(self.plain.save({address: logins[address] for address in direct}))
                except EcrLoginError as exc:  # the helper-backed logins below are still tried
                    result.update(dict.fromkeys(direct, exc))
            for address, (username, password) in logins.items():
                if address in result:
                    continue
                try:
                    through = self.helper_for(address)  # a helper named but not installed: no docker process
                    try:
                        self._login(address, username, password)
                    except TemporaryError as exc:
                        if through is None:
                            raise
                        raise TemporaryError(f"{exc} (through the credential helper docker-credential-{through}, "
                                             "which may need a login session of the user)") from None
                    helper = self.helper_for(address)
                    held = f"helper:{helper}" if helper else self.file.held(address)
                    if held is None:
                        raise TemporaryError(f"docker login {address}: succeeded but {self.location} holds no entry for it")
                    result[address] = held
                except EcrLoginError as exc:
                    result[address] = exc
        return result

    def _locked(self) -> DirLock:
        """The same lock the file store takes: docker rewrites config.json without one."""
        directory = os.path.dirname(self.file.real_path())  # the lock AuthFile takes: beside the real file
        ensure_private_dir(directory)
        self.file.snapshot()  # a file we must not rewrite is refused before its directory gets a lock file
        return DirLock(directory, self.lock_timeout, "credential file")

    def _login(self, address: str, username: str, password: str) -> None:
        import subprocess

        command = ["docker", "login", "--username", username, "--password-stdin", address]
        try:
            done = subprocess.run(
                command, input=password.encode(), capture_output=True,
                env=self.environ, timeout=DOCKER_TIMEOUT, check=False,
            )
        except FileNotFoundError:
            raise ConfigError("docker login: the docker CLI is not on PATH (install it or use --store file)") from None
        except subprocess.TimeoutExpired:
            raise TemporaryError(f"docker login {address}: no answer within {DOCKER_TIMEOUT:g}s") from None
        if done.returncode == 0:
            return
        output = done.stderr.decode("utf-8", "replace")
        message = redact(_final_message(output))[-300:]
        if any(marker in message.lower() for marker in REFUSED_MARKERS):
            raise DeniedError(f"docker login {address}: the registry refused the login: {message}")
        raise TemporaryError(f"docker login {address}: exit {done.returncode}: {message}")

    def remove(self, addresses: list[str]) -> list[str]:
        import subprocess

        self._listed.clear()
        with self._locked():
            direct = self._direct(addresses)
            removed = self.plain.remove(direct)  # what docker logout would do: drop the entries
            for address in addresses:
                if address in direct:
                    continue
                if self.held(address) is None:
                    continue
                try:
                    done = subprocess.run(
                        ["docker", "logout", address], stdin=subprocess.DEVNULL, capture_output=True,
                        env=self.environ, timeout=DOCKER_TIMEOUT, check=False,
                    )
                except FileNotFoundError:
                    raise ConfigError("docker logout: the docker CLI is not on PATH (install it or use --store file)") from None
                except subprocess.TimeoutExpired:
                    raise TemporaryError(f"docker logout {address}: no answer within {DOCKER_TIMEOUT:g}s") from None
                if done.returncode != 0:
                    message = redact(_final_message(done.stderr.decode("utf-8", "replace")))[-300:]
                    raise TemporaryError(f"docker logout {address}: exit {done.returncode}: {message}")
                removed.append(address)
        return removed

