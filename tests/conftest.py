"""Shared pytest fixtures for the ecr-login tests.

Add fixtures of other areas in their own clearly named section below.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# The helper modules live next to this file; make them importable whatever
# pytest import mode or rootdir is in use.
_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

from local_registry import DOCKER_REGISTRY, LocalRegistry  # noqa: E402
from standin_ecr import (  # noqa: E402
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_SECRET_ACCESS_KEY,
    StandinECR,
)


def require_tool(name_or_path: str) -> str:
    """Return the tool's path, or skip the test naming what is missing.

    Under CI (env CI=true) a missing tool is a failure instead: a CI image
    that silently skips the real-client tests would prove nothing.
    """
    _check_marked_for(name_or_path)
    found = shutil.which(name_or_path)  # also takes a path, checking it is executable
    if found is None:
        reason = f"required tool not available: {name_or_path}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


# --- What a test needs: markers ----------------------------------------------
# root, guest, docker, netns and slow (pyproject.toml) say what a test needs beyond
# Python and this checkout; `make test-fast` runs the tests marked with none of them
# (tests/README.md). A test says it with a marker; a fixture that needs something
# marks every test that uses it (NEEDS_OF_FIXTURE). A test in that fast set that asks
# for the docker CLI fails, naming the marker to add, so the set cannot quietly grow
# slow or start needing a daemon.

NEEDS = ("root", "guest", "docker", "netns", "slow")
NEEDS_OF_FIXTURE: dict[str, tuple[str, ...]] = {
    "full_disk": ("root",),  # mounts a tmpfs
    "nobody_python": ("root",),  # runs ecr-login as user nobody
    "public_dir": ("root",),  # hands files to user nobody
    "snapshot": ("slow",),  # test_packages: a copy of the tree, for dpkg-buildpackage
    "deb": ("slow",),  # builds the .deb
    "stdeb_deb": ("slow",),  # builds the .deb the stdeb way
    "debs": ("slow",),  # builds two .debs (test_lifecycle)
    "rpm_build": ("slow", "root"),  # builds the RPM (in a Debian chroot when the target's python is missing)
    "rpm_build_el9": ("slow", "root"),
    "debian_tree": ("slow", "root"),  # debootstraps a Debian tree
    "work_dir": ("slow", "root"),  # test_bench: a whole Debian tree, chrooted into
}
DOCKER_TOOLS = {"docker", "dockerd"}
_running: list[pytest.Item] = []  # the test being set up or run


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        for fixture in getattr(item, "fixturenames", ()):
            for need in NEEDS_OF_FIXTURE.get(fixture, ()):
                item.add_marker(need)


def pytest_runtest_setup(item: pytest.Item) -> None:
    _running[:] = [item]


def _check_marked_for(tool: str) -> None:
    """A test marked with no need that asks for the docker CLI: fail, saying which marker it lacks."""
    if os.path.basename(tool) in DOCKER_TOOLS and _running:
        item = _running[0]
        if not any(item.get_closest_marker(need) for need in NEEDS):
            pytest.fail(f"{item.nodeid} uses {tool}: mark it @pytest.mark.docker (tests/README.md)")


# --- Leftovers ---------------------------------------------------------------
# Scratch folders under /var/tmp (guests, piuparts) are made by the tests that need
# them; the empty ones this run created are removed at its end, so a test run leaves
# /var/tmp as it found it. Never a folder with content, nor one that was there before.

_VAR_TMP = Path("/var/tmp")
_var_tmp_before: set[str] = set()


def _our_scratch_folders() -> set[str]:
    try:
        return {name for name in os.listdir(_VAR_TMP) if name.startswith("ecr-login")}
    except OSError:
        return set()


def pytest_sessionstart(session: pytest.Session) -> None:
    _var_tmp_before.update(_our_scratch_folders())


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    for name in sorted(_our_scratch_folders() - _var_tmp_before):
        try:
            (_VAR_TMP / name).rmdir()  # only when empty
        except OSError:
            pass


# --- Stand-in AWS, local registry and isolated environment -----------------
# (tests/standin_ecr.py, tests/local_registry.py; see test_standin.py)


@pytest.fixture
def token_password() -> str:
    """One random password shared by ``ecr`` tokens and ``registry`` logins."""
    return secrets.token_urlsafe(24)


@pytest.fixture
def ecr(token_password: str) -> Iterator[StandinECR]:
    """A running stand-in ECR API whose tokens carry ``token_password``."""
    with StandinECR(password=token_password) as standin:
        yield standin


@pytest.fixture
def registry(token_password: str, tmp_path: Path) -> Iterator[LocalRegistry]:
    """A running docker-registry accepting user AWS with ``token_password``."""
    require_tool(DOCKER_REGISTRY)
    require_tool("htpasswd")
    with LocalRegistry(token_password, workdir=tmp_path / "registry") as local:
        yield local


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, str]:
    """Environment for the stand-in's credentials, isolated from the host.

    Every inherited AWS_* variable is dropped so a developer's profile,
    region or endpoint override cannot leak in, and the home, docker and
    state directories live in ``tmp_path`` (not created beyond HOME, so a
    test sees a fresh user). Returns the variables it set.
    """
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    # pybuild sets http_proxy=127.0.0.1:9 to keep package builds offline; the stand-ins are on loopback.
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    aws_dir = tmp_path / "aws"
    runtime_dir = tmp_path / "run"
    for directory in (home, aws_dir, runtime_dir):
        directory.mkdir(mode=0o700)
    (aws_dir / "config").touch()
    (aws_dir / "credentials").touch()
    values = {
        "AWS_ACCESS_KEY_ID": DEFAULT_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": DEFAULT_SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(aws_dir / "config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(aws_dir / "credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "HOME": str(home),
        "DOCKER_CONFIG": str(home / ".docker"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "XDG_RUNTIME_DIR": str(runtime_dir),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    return values


# --- Running the ecr-login command ------------------------------------------

REPO_ROOT = Path(__file__).resolve().parent.parent


class CliResult:
    """What one ``ecr-login`` process did."""

    def __init__(self, code: int, stdout: str, stderr: str) -> None:
        self.code = code
        self.stdout = stdout
        self.stderr = stderr

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, stdout={self.stdout!r}, stderr={self.stderr!r})"


def run_ecr_login(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> CliResult:
    """Run ``python3 -m ecr_login_pkg ARGS`` as a real process, in the current (test) environment."""
    import subprocess

    environment = dict(os.environ if env is None else env)
    environment["PYTHONPATH"] = str(REPO_ROOT)
    environment.pop("JOURNAL_STREAM", None)
    environment.pop("INVOCATION_ID", None)
    done = subprocess.run(
        [sys.executable, "-m", "ecr_login_pkg", *args],
        capture_output=True, text=True, env=environment, timeout=timeout, stdin=subprocess.DEVNULL, check=False,
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


def errors_of(result: CliResult) -> list[str]:
    """The run's error lines."""
    return [line for line in result.stderr.splitlines() if ": error: " in line]


def child_env(**changes: str) -> dict[str, str]:
    """The test's environment for an ecr-login child process, with ``changes``, outside systemd."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), **changes)
    env.pop("JOURNAL_STREAM", None)
    env.pop("INVOCATION_ID", None)
    return env


def file_store_config(write_config, ecr, extra: str = "", stores: str = "file",  # type: ignore[no-untyped-def]
                      host: str = "123456789012.dkr.ecr.us-east-1.amazonaws.com") -> str:
    """A configuration for ``host`` through the stand-in ``ecr``, written with the ``write_config`` fixture."""
    return write_config(f"[defaults]\nendpoint_url = {ecr.url}\nstores = {stores}\ntimeout = 5s\n{extra}[{host}]\n")


def file_snapshot(path: Path) -> tuple[bytes, int, int, int]:
    """A file's bytes, owner, mode and inode: equal before and after means left untouched."""
    info = path.stat()
    return path.read_bytes(), info.st_uid, info.st_mode, info.st_ino


def no_traceback(result: CliResult) -> None:
    """No internal error (exit 70) and no traceback: what every bad path must avoid."""
    assert result.code != 70 and "Traceback" not in result.stderr, result


def stored_auths(docker_dir: Path) -> dict:  # type: ignore[type-arg]
    """The ``auths`` of ``docker_dir``/config.json."""
    import json

    return json.loads((docker_dir / "config.json").read_text())["auths"]  # type: ignore[no-any-return]


@pytest.fixture
def write_config(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Write an ecr-login.conf into tmp_path and return its path."""

    def write(text: str, name: str = "ecr-login.conf") -> str:
        path = tmp_path / name
        path.write_text(text)
        return str(path)

    return write


CREDENTIAL_HELPER = """
# A docker credential helper (the protocol of docker-credential-pass and friends), keeping its
# entries in $TEST_HELPER_STORE; written by the test so the docker CLI's credsStore path runs for real.
import json, os, sys
path = os.environ["TEST_HELPER_STORE"]
entries = json.load(open(path)) if os.path.exists(path) else {}
action, data = sys.argv[1], sys.stdin.read()
if action == "store":
    item = json.loads(data)
    entries[item["ServerURL"]] = {"Username": item["Username"], "Secret": item["Secret"]}
elif action == "get":
    item = entries.get(data.strip())
    if item is None:
        print("credentials not found in native keychain")
        sys.exit(1)
    print(json.dumps({"ServerURL": data.strip(), **item}))
elif action == "erase":
    entries.pop(data.strip(), None)
elif action == "list":
    print(json.dumps({url: item["Username"] for url, item in entries.items()}))
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
os.write(fd, json.dumps(entries).encode())
"""


@pytest.fixture
def credential_helper(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``docker-credential-teststore`` on PATH, keeping its entries in the returned JSON file.

    Naming it in a docker config.json (``use_helper``) sends the docker store through
    ``docker login``: without a helper, ecr-login writes config.json itself.
    """
    bin_dir = tmp_path / "helper-bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-teststore"
    helper.write_text(f"#!{sys.executable}" + CREDENTIAL_HELPER)
    helper.chmod(0o755)
    store = tmp_path / "helper-store.json"
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("TEST_HELPER_STORE", str(store))
    return store


def use_helper(docker_dir: Path, *addresses: str) -> None:
    """Name the test helper in ``docker_dir``/config.json: for ``addresses`` only, or as credsStore."""
    import json

    docker_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = docker_dir / "config.json"
    data = json.loads(path.read_text()) if path.exists() else {}
    if addresses:
        data.setdefault("credHelpers", {}).update({address: "teststore" for address in addresses})
    else:
        data["credsStore"] = "teststore"
    path.write_text(json.dumps(data, indent=2))
    path.chmod(0o600)
