"""Bad input, table-driven: each case is one error line naming the file (and key), its exit code, nothing written.

Every case runs the real command as a subprocess. Three families:

- the configuration file and the command line (refused before anything is
  touched: the whole test directory is byte-for-byte the same afterwards);
- the credential file ecr-login writes into (docker ``config.json``, containers
  ``auth.json``): corrupt, the wrong JSON shape, a symlink, a directory, or owned
  by another user. The file (and whatever a symlink points at) is never changed;
  the run's outcome *is* recorded in the state (that is what ``status`` shows),
  and nothing else is written;
- a corrupt state file: not fatal, a warning, and it is rebuilt.

Root bypasses file permissions, so the unreadable-file and another-user cases
run the command as ``nobody`` (setpriv) from a world-readable copy of the package.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import REPO_ROOT, CliResult, require_tool, run_ecr_login

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
NOBODY = 65534
FOREIGN = {
    "auths": {
        "ghcr.io": {"auth": "Zm9yZWlnbjpnaGNy"},
        HOST: {"auth": "QVdTOm9sZC1wYXNzd29yZA=="},
    },
    "credHelpers": {"gcr.io": "gcloud"},
    "psFormat": "table {{.ID}}",
}


# --- helpers ------------------------------------------------------------------


def snapshot(root: Path, skip: tuple[Path, ...] = ()) -> dict[str, tuple[str, bytes | str, int]]:
    """Every path under ``root``: kind, content (or link target) and mode, without following links."""
    seen: dict[str, tuple[str, bytes | str, int]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath, name)
            if any(full == s or s in full.parents for s in skip):
                continue
            info = full.lstat()
            if stat.S_ISLNK(info.st_mode):
                seen[str(full)] = ("link", os.readlink(full), 0)
            elif stat.S_ISDIR(info.st_mode):
                seen[str(full)] = ("dir", "", stat.S_IMODE(info.st_mode))
            else:
                seen[str(full)] = ("file", full.read_bytes(), stat.S_IMODE(info.st_mode))
    return seen


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ": error: " in line or line.startswith(("<3>", "ecr-login: error:"))]


def warning_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if ": warning: " in line]


@dataclass
class Sandbox:
    """One test's world: config path, docker dir, state dir, environment."""

    root: Path
    env: dict[str, str]
    config: Path
    docker_dir: Path
    state_dir: Path
    outside: Path  # somewhere a planted symlink points to
    endpoint: str = "http://127.0.0.1:9"

    @property
    def config_json(self) -> Path:
        return self.docker_dir / "config.json"


@dataclass
class Case:
    id: str
    config: str | bytes | None  # None: no file at --config; "{endpoint}" is filled in
    expect_code: int
    expect: tuple[str, ...]  # substrings of the one error line ({config}, {config_json} filled in)
    args: tuple[str, ...] = ()
    prepare: Callable[[Sandbox], None] | None = None
    as_nobody: bool = False
    needs_ecr: bool = False  # a credential-file case: the run gets as far as storing
    extra: dict[str, str] = field(default_factory=dict)  # environment


def cfg(body: str) -> str:
    return "[defaults]\nendpoint_url = {endpoint}\nstores = file\n" + body


# --- running as another user ----------------------------------------------------


@pytest.fixture(scope="module")
def nobody_python() -> Iterator[tuple[str, str]]:
    """(interpreter, PYTHONPATH) that user nobody can run: a world-readable copy of the package."""
    require_tool("setpriv")
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to user nobody")
    shared = Path(tempfile.mkdtemp(prefix="ecr-login-nobody-", dir="/tmp"))
    try:
        shared.chmod(0o755)
        shutil.copytree(REPO_ROOT / "ecr_login_pkg", shared / "ecr_login_pkg", ignore=shutil.ignore_patterns("__pycache__"))
        for dirpath, dirnames, filenames in os.walk(shared):
            for name in dirnames:
                os.chmod(os.path.join(dirpath, name), 0o755)
            for name in filenames:
                os.chmod(os.path.join(dirpath, name), 0o644)
        for candidate in (sys.executable, "/usr/bin/python3"):
            probe = subprocess.run(
                ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", candidate, "-c", "import boto3"],
                capture_output=True, check=False, cwd="/", env={"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent"},
            )
            if probe.returncode == 0:
                yield candidate, str(shared)
                return
        pytest.fail("no python3 with boto3 that user nobody can run (install python3-boto3)")
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def run_as_nobody(python: tuple[str, str], args: list[str], env: dict[str, str]) -> CliResult:
    environment = dict(env, PYTHONPATH=python[1])
    environment.pop("JOURNAL_STREAM", None)
    environment.pop("INVOCATION_ID", None)
    done = subprocess.run(
        ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", python[0], "-m", "ecr_login_pkg", *args],
        capture_output=True, text=True, env=environment, timeout=120, stdin=subprocess.DEVNULL, check=False, cwd="/",
    )
    return CliResult(done.returncode, done.stdout, done.stderr)


# --- case preparations -------------------------------------------------------------


def seed_config_json(text: str | bytes) -> Callable[[Sandbox], None]:
    def prepare(box: Sandbox) -> None:
        box.docker_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        data = text.encode() if isinstance(text, str) else text
        box.config_json.write_bytes(data)
        box.config_json.chmod(0o600)

    return prepare


def symlinked_config_json(box: Sandbox) -> None:
    box.docker_dir.mkdir(mode=0o700, parents=True)
    target = box.outside / "elsewhere.json"
    target.write_text(json.dumps(FOREIGN))
    box.config_json.symlink_to(target)
    os.lchown(box.config_json, 65534, 65534)  # planted by another user (the user's own link is followed: #18.2)


def directory_config_json(box: Sandbox) -> None:
    box.config_json.mkdir(parents=True)


def foreign_owned_config_json(box: Sandbox) -> None:
    """A docker dir of user nobody holding a config.json that belongs to root."""
    seed_config_json(json.dumps(FOREIGN, indent=2))(box)
    os.chown(box.docker_dir, NOBODY, NOBODY)
    box.config_json.chmod(0o644)  # readable, so only the owner check can refuse it


def unreadable_config(box: Sandbox) -> None:
    box.config.chmod(0o600)  # owned by root, user nobody may not read it


def corrupt_containers_auth(box: Sandbox) -> None:
    path = Path(box.env["XDG_CONFIG_HOME"], "containers", "auth.json")
    path.parent.mkdir(parents=True)
    path.write_text('{"auths": {"quay.io": ')


def config_is_directory(box: Sandbox) -> None:
    box.config.unlink()
    box.config.mkdir()


CONFIG_CASES = [
    Case("key-before-section", "region = us-east-1\n", 78, ("{config}:1", "before any [section]")),
    Case("not-ini-syntax", "[defaults]\nthis is not ini\n", 78, ("{config}:2", "syntax")),
    Case("unknown-key-defaults-hint", "[defaults]\nregoin = us-east-1\n", 78, ("{config}: [", "regoin", "did you mean 'region'")),
    Case("unknown-key-registry-hint", f"[{HOST}]\nstroes = file\n", 78, ("{config}: [", "stroes", "did you mean 'stores'")),
    Case("registry-key-in-defaults", "[defaults]\nhost = x\n", 78, ("{config}: [", "host", "registry section")),
    Case("defaults-key-in-registry", f"[{HOST}]\ntimeout = 5s\n", 78, ("{config}: [", "timeout", "belongs in [defaults]")),
    Case("duplicate-section", f"[{HOST}]\n[{HOST}]\n", 78, ("{config}:2", "appears twice")),
    Case("duplicate-key", "[defaults]\nstores = file\nstores = docker\n", 78, ("{config}:3", "stores", "set twice")),
    Case("duplicate-registry", f"[a]\nhost = {HOST}\n[b]\nhost = {HOST}\n", 78, ("{config}: [", "[b]", "already does")),
    Case("hostname-unknown-domain", "[123456789012.dkr.ecr.us-east-1.example.com]\n", 78, ("{config}: [", "unknown domain")),
    Case("hostname-not-ecr", "[app]\nhost = not-a-registry\n", 78, ("{config}: [", "host", "not an ECR registry hostname")),
    Case("hostname-partition-mismatch", "[123456789012.dkr.ecr.cn-north-1.amazonaws.com]\n", 78,
         ("{config}: [", "does not belong")),
    Case("hostname-short-account", "[12345678901.dkr.ecr.us-east-1.amazonaws.com]\n", 78, ("{config}: [", "12 digits")),
    Case("account-11-digits", "[app]\naccount = 12345678901\nregion = us-east-1\n", 78, ("{config}: [", "account", "12 digits")),
    Case("account-13-digits", "[app]\naccount = 1234567890123\nregion = us-east-1\n", 78, ("{config}: [", "account", "12 digits")),
    Case("account-not-digits", "[app]\naccount = 12345678901x\nregion = us-east-1\n", 78, ("{config}: [", "account", "12 digits")),
    Case("region-bad-defaults", "[defaults]\nregion = useast1\n", 78, ("{config}: [", "region", "not an AWS region")),
    Case("region-bad-registry", "[app]\naccount = 123456789012\nregion = US-EAST-1\n", 78,
         ("{config}: [", "region", "not an AWS region")),
    Case("region-conflicts-host", f"[{HOST}]\nregion = eu-west-1\n", 78, ("{config}: [", "region", "conflicts")),
    Case("host-and-account", f"[app]\nhost = {HOST}\naccount = 123456789012\n", 78,
         ("{config}: [", "account", "conflicts with 'host'")),
    Case("account-without-region", "[app]\naccount = 123456789012\n", 78, ("{config}: [", "region", "is needed")),
    Case("unknown-store-hint", "[defaults]\nstores = dokcer\n", 78, ("{config}: [", "stores", "did you mean 'docker'")),
    Case("store-twice", "[defaults]\nstores = file, file\n", 78, ("{config}: [", "stores", "twice")),
    Case("empty-stores", "[defaults]\nstores =\n", 78, ("{config}: [", "stores", "empty")),
    Case("timeout-not-duration", "[defaults]\ntimeout = soon\n", 78, ("{config}: [", "timeout", "not a duration")),
    Case("timeout-out-of-range", "[defaults]\ntimeout = 0\n", 78, ("{config}: [", "timeout", "between")),
    Case("margin-over-lifetime", "[defaults]\nrefresh_margin = 13h\n", 78, ("{config}: [", "refresh_margin", "between")),
    Case("token-source-unknown", "[defaults]\ntoken_source = curl\n", 78, ("{config}: [", "token_source", "boto3")),
    Case("endpoint-not-url", "[defaults]\nendpoint_url = ftp:/x\n", 78, ("{config}: [", "endpoint_url", "not a URL")),
    Case("role-arn-malformed", "[defaults]\nrole_arn = admin\n", 78, ("{config}: [", "role_arn", "not an IAM role ARN")),
    Case("docker-config-relative", "[defaults]\ndocker_config = rel/dir\n", 78, ("{config}: [", "docker_config", "absolute")),
    Case("store-as-bad", f"[{HOST}]\nstore_as = bad host!\n", 78, ("{config}: [", "store_as", "HOST[:PORT]")),
    Case("config-not-utf8", b"[defaults]\nregion = \xff\xfe\n", 78, ("{config}", "not UTF-8")),
    Case("config-missing", None, 78, ("{config}", "not found")),
    Case("config-is-directory", "", 78, ("{config}", "directory"), prepare=config_is_directory),
    Case("config-unreadable", "[defaults]\n", 78, ("{config}", "permission denied"), prepare=unreadable_config, as_nobody=True),
]

USAGE_CASES = [
    Case("bad-store-option", "[defaults]\n", 64, ("--store", "invalid choice")),
    Case("verbose-and-quiet", "[defaults]\n", 64, ("-q/--quiet", "not allowed with")),
    Case("unknown-option", "[defaults]\n", 64, ("--frobnicate",)),
    Case("status-has-no-dry-run", "[defaults]\n", 64, ("--dry-run",)),
    Case("bad-registry-argument", "[defaults]\n", 64, ("registry argument", "not-a-registry")),
    Case("bad-region-option", "[defaults]\n", 64, ("--region", "nowhere", "not an AWS region")),
    Case("bad-endpoint-option", "[defaults]\n", 64, ("--endpoint-url", "notaurl", "not a URL")),
]
USAGE_ARGS = {
    "bad-store-option": ("--store", "bogus"),
    "verbose-and-quiet": ("-v", "-q"),
    "unknown-option": ("--frobnicate",),
    "status-has-no-dry-run": ("status", "--dry-run"),
    "bad-registry-argument": ("not-a-registry",),
    "bad-region-option": ("--region", "nowhere"),
    "bad-endpoint-option": ("--endpoint-url", "notaurl"),
}
for _case in USAGE_CASES:
    _case.args = USAGE_ARGS[_case.id]

STORE_BODY = f"[{HOST}]\n"
STORE_CASES = [
    Case("config-json-corrupt", cfg(STORE_BODY), 78, ("{config_json}", "not valid JSON", "untouched"),
         prepare=seed_config_json('{"auths": {"ghcr.io": {"auth": "Zm9y'), needs_ecr=True),
    Case("config-json-binary", cfg(STORE_BODY), 78, ("{config_json}", "UTF-8"),
         prepare=seed_config_json(b"\x00\xff\xfe garbage"), needs_ecr=True),
    Case("config-json-array", cfg(STORE_BODY), 78, ("{config_json}", "not a JSON object"),
         prepare=seed_config_json('[{"auths": {}}]\n'), needs_ecr=True),
    Case("config-json-auths-not-object", cfg(STORE_BODY), 78, ("{config_json}", "'auths' is not an object"),
         prepare=seed_config_json('{"auths": "ghcr.io"}\n'), needs_ecr=True),
    Case("config-json-symlink", cfg(STORE_BODY), 78, ("{config_json}", "symlink"), prepare=symlinked_config_json, needs_ecr=True),
    Case("config-json-directory", cfg(STORE_BODY), 78, ("{config_json}", "not a regular file"),
         prepare=directory_config_json, needs_ecr=True),
    Case("config-json-other-owner", cfg(STORE_BODY), 78, ("{config_json}", "owned by uid 0"),
         prepare=foreign_owned_config_json, needs_ecr=True, as_nobody=True),
    Case("containers-auth-corrupt", cfg(STORE_BODY).replace("stores = file", "stores = containers"), 78,
         ("auth.json", "not valid JSON"), prepare=corrupt_containers_auth, needs_ecr=True),
]

ALL_CASES = CONFIG_CASES + USAGE_CASES + STORE_CASES


@pytest.fixture
def sandbox(aws_env: dict[str, str]) -> Iterator[Sandbox]:
    """A world-traversable directory in /tmp (pytest's own are 0700, out of user nobody's reach)."""
    top = Path(tempfile.mkdtemp(prefix="ecr-login-bad-input-", dir="/tmp"))
    top.chmod(0o755)
    root, outside = top / "box", top / "outside"
    for directory in (root, outside, root / "home"):
        directory.mkdir()
    env = dict(os.environ)
    env.update(
        HOME=str(root / "home"),
        DOCKER_CONFIG=str(root / "home" / ".docker"),
        XDG_CONFIG_HOME=str(root / "home" / ".config"),
        XDG_STATE_HOME=str(root / "home" / ".local" / "state"),
        PATH="/usr/local/bin:/usr/bin:/bin",  # the docker CLI may be found: every case names its store
    )
    try:
        yield Sandbox(
            root=root, env=env, config=root / "ecr-login.conf", docker_dir=root / "home" / ".docker",
            state_dir=root / "home" / ".local" / "state" / "ecr-login", outside=outside,
        )
    finally:
        shutil.rmtree(top, ignore_errors=True)


@pytest.mark.parametrize("case", ALL_CASES, ids=[case.id for case in ALL_CASES])
@pytest.mark.slow
def test_bad_input_is_one_line_the_documented_code_and_nothing_written(  # type: ignore[no-untyped-def]
    case: Case, sandbox: Sandbox, request, nobody_python_lazy
) -> None:
    box = sandbox
    ecr = request.getfixturevalue("ecr") if case.needs_ecr else None
    if ecr is not None:
        box.endpoint = ecr.url
    if case.config is not None:
        text = case.config.replace("{endpoint}", box.endpoint) if isinstance(case.config, str) else case.config
        box.config.write_bytes(text.encode() if isinstance(text, str) else text)
        box.config.chmod(0o644)
    if case.prepare is not None:
        case.prepare(box)
    if case.as_nobody:
        for path in (box.root, box.root / "home"):
            os.chown(path, NOBODY, NOBODY)
    before = snapshot(box.root)
    outside_before = snapshot(box.outside)
    args = [*case.args, "--config", str(box.config)]
    env = dict(box.env, **case.extra)
    result = run_as_nobody(nobody_python_lazy(), args, env) if case.as_nobody else run_ecr_login(*args, env=env)

    assert result.code == case.expect_code, result
    errors = error_lines(result.stderr)
    assert len(errors) == 1, result.stderr
    for fragment in case.expect:
        fragment = fragment.format(config=box.config, config_json=box.config_json)
        assert fragment in errors[0], (fragment, errors[0])
    assert result.stdout == ""
    request.node.user_properties.append(("observed", f"exit {result.code}: {errors[0].split(': error: ', 1)[1]}"))
    assert snapshot(box.outside) == outside_before, "a file outside the sandbox (a symlink's target) was changed"
    if case.needs_ecr:
        # the credential file is untouched; the state records the failed run (for `status`), nothing else changes
        assert snapshot(box.root, skip=(box.state_dir.parent.parent,)) == before  # .local/state/ecr-login
        recorded = json.loads((box.state_dir / "state.json").read_text())
        assert [entry["last_exit"] for entry in recorded["entries"].values()] == [case.expect_code]
        assert ecr is not None and ecr.call_count <= 1
    else:
        assert snapshot(box.root) == before, "a refused configuration must leave everything as it was"
        assert not box.state_dir.exists() and not box.config_json.exists()
        assert ecr is None


@pytest.fixture
def nobody_python_lazy(request):  # type: ignore[no-untyped-def]
    """The ``nobody_python`` fixture, set up only by the cases that run as nobody."""
    return lambda: request.getfixturevalue("nobody_python")


def test_there_are_at_least_25_bad_input_cases() -> None:
    assert len(ALL_CASES) >= 25
    assert len({case.id for case in ALL_CASES}) == len(ALL_CASES)


# --- not errors: documented tolerant behaviour ----------------------------------------------


def test_empty_config_json_is_treated_as_no_logins(ecr, sandbox: Sandbox) -> None:  # type: ignore[no-untyped-def]
    """An empty file (as `touch` or an interrupted installer leaves it) is what docker also reads as {}."""
    sandbox.config.write_text(cfg(STORE_BODY).replace("{endpoint}", ecr.url))
    seed_config_json("")(sandbox)
    result = run_ecr_login("--config", str(sandbox.config), env=sandbox.env)
    assert result.code == 0, result
    assert error_lines(result.stderr) == []
    assert HOST in json.loads(sandbox.config_json.read_text())["auths"]
    assert stat.S_IMODE(sandbox.config_json.stat().st_mode) == 0o600


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"version": 1, "entries": "x"}', "\x00\x01"])
def test_corrupt_state_is_rebuilt_not_fatal(ecr, sandbox: Sandbox, content: str) -> None:  # type: ignore[no-untyped-def]
    sandbox.config.write_text(cfg(STORE_BODY).replace("{endpoint}", ecr.url))
    sandbox.state_dir.mkdir(parents=True, mode=0o700)
    (sandbox.state_dir / "state.json").write_text(content)
    result = run_ecr_login("--config", str(sandbox.config), env=sandbox.env)
    assert result.code == 0, result
    assert error_lines(result.stderr) == []
    warnings = [line for line in warning_lines(result.stderr) if "state" in line]
    assert len(warnings) == 1 and str(sandbox.state_dir / "state.json") in warnings[0] and "corrupt" in warnings[0]
    rebuilt = json.loads((sandbox.state_dir / "state.json").read_text())
    assert any(entry["address"] == HOST and entry["fingerprint"] for entry in rebuilt["entries"].values())
    assert ecr.call_count == 1
    # and the next run is a quiet no-op again
    again = run_ecr_login("--config", str(sandbox.config), env=sandbox.env)
    assert again.code == 0 and warning_lines(again.stderr) == [] and ecr.call_count == 1


def test_invalid_region_in_the_environment_names_the_environment(sandbox: Sandbox) -> None:
    sandbox.config.write_text("[defaults]\nstores = file\n")
    env = dict(sandbox.env, AWS_REGION="moon-base")
    env.pop("AWS_DEFAULT_REGION", None)
    result = run_ecr_login("--config", str(sandbox.config), env=env)
    assert result.code == 78, result
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and "environment" in errors[0] and "moon-base" in errors[0]
    assert not sandbox.state_dir.exists() and not sandbox.config_json.exists()
