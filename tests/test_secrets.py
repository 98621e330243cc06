"""Secrets: never on a command line, in output, in a log line, in an exception message, or a file others can read.

- While the command runs (file store, docker store, AWS CLI token source, error
  paths; and, through ``watch_processes``, throughout test_faults.py and
  test_concurrency.py, whose 50 concurrent docker logins it watches too), a sampler reads every process's ``/proc/PID/cmdline`` and
  ``/proc/PID/environ`` every few milliseconds: the registry password (and its
  base64 form) never appears in either, and no AWS secret key ever appears on a
  command line. (The AWS secret key *is* in the environment by design: that is
  how the credential chain gets it.) The sampler must actually see the children
  (ecr-login, docker, aws), or the test proves nothing and fails.
- Every stand-in fault at every verbosity (and in journal format): neither the
  password nor the AWS secret key reaches stdout, stderr, the state or the
  metrics, even when AWS's own error message carries them (the stand-in is made
  hostile, echoing the secrets back).
- Files written 0600, directories 0700, whatever the umask.
- A symlink planted where a temp file or the state goes is not followed.
"""

from __future__ import annotations

import base64
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import standin_ecr
from conftest import REPO_ROOT, require_tool, run_ecr_login, use_helper
from standin_ecr import BEHAVIOURS, DEFAULT_SECRET_ACCESS_KEY

from ecr_login_pkg import fsutil

HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
EU_HOST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"


class ProcSampler:
    """Samples every process's command line and environment while a test runs."""

    def __init__(self, interval: float = 0.001) -> None:
        self.interval = interval
        self.forbidden_anywhere: list[str] = []  # never in a cmdline nor an environment
        self.forbidden_in_cmdline: list[str] = []  # never in a cmdline
        self.seen: dict[str, int] = {"ecr-login": 0, "docker": 0, "aws": 0}
        self.samples = 0
        self.leaks: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self, *, secrets: list[str], cmdline_secrets: list[str]) -> ProcSampler:
        self.forbidden_anywhere = [s for s in secrets if s]
        self.forbidden_in_cmdline = [s for s in cmdline_secrets if s]
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    @staticmethod
    def _read(path: str) -> bytes:
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except OSError:  # the process ended meanwhile
            return b""

    def _classify(self, argv: list[str]) -> str | None:
        joined = " ".join(argv)
        if "ecr_login_pkg" in joined or (argv and argv[0].endswith("ecr-login")):
            return "ecr-login"
        if argv and os.path.basename(argv[0]) == "docker":
            return "docker"
        if "get-login-password" in joined:
            return "aws"
        return None

    def _parents(self) -> dict[str, str]:
        parents = {}
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                stat_line = self._read(f"/proc/{pid}/stat").decode("utf-8", "replace")
                fields = stat_line.rsplit(")", 1)[-1].split()
                if len(fields) > 1:
                    parents[pid] = fields[1]
        return parents

    def _ours(self, pid: str, parents: dict[str, str]) -> bool:
        """A descendant of this test process (other sessions' docker or aws must not count as seen)."""
        me = str(os.getpid())
        for _ in range(64):
            pid = parents.get(pid, "0")
            if pid == me:
                return True
            if pid in ("0", "1"):
                return False
        return False

    def _run(self) -> None:
        seen_pids: set[tuple[str, str]] = set()
        while not self._stop.is_set():
            self.samples += 1
            parents = self._parents()
            for pid in parents:
                cmdline = self._read(f"/proc/{pid}/cmdline")
                environ = self._read(f"/proc/{pid}/environ")
                argv = cmdline.decode("utf-8", "replace").split("\0")
                kind = self._classify(argv)
                if kind and (pid, kind) not in seen_pids and self._ours(pid, parents):
                    seen_pids.add((pid, kind))
                    self.seen[kind] += 1
                for secret in self.forbidden_anywhere:
                    token = secret.encode()
                    if token in cmdline:
                        self.leaks.append(f"pid {pid} {argv[:3]}: a secret in its command line")
                    if token in environ:
                        self.leaks.append(f"pid {pid} {argv[:3]}: a secret in its environment")
                for secret in self.forbidden_in_cmdline:
                    if secret.encode() in cmdline:
                        self.leaks.append(f"pid {pid} {argv[:3]}: an AWS secret key in its command line")
            time.sleep(self.interval)


def watch_processes(password: str, interval: float = 0.001) -> ProcSampler:
    """Start sampling for ``password`` (and its token form); the AWS secret key must stay off command lines."""
    token = base64.b64encode(f"AWS:{password}".encode()).decode()
    return ProcSampler(interval).start(secrets=[password, token], cmdline_secrets=[DEFAULT_SECRET_ACCESS_KEY])


@pytest.fixture
def sampler(ecr, request):  # type: ignore[no-untyped-def]
    assert ecr.token() == base64.b64encode(f"AWS:{ecr.password}".encode()).decode()
    sampling = watch_processes(ecr.password)
    yield sampling
    sampling.stop()
    assert sampling.leaks == [], sampling.leaks[:5]
    seen = ", ".join(f"{count} {kind}" for kind, count in sampling.seen.items())
    request.node.user_properties.append(("observed", f"{sampling.samples} /proc sweeps; processes seen: {seen}; 0 leaks"))


def config_for(  # type: ignore[no-untyped-def]
    write_config, url: str, stores: str = "file", extra: str = "", body: str = f"[{HOST}]\n", timeout: str = "3s"
) -> str:
    return write_config(f"[defaults]\nendpoint_url = {url}\nstores = {stores}\ntimeout = {timeout}\n{extra}{body}")


# --- /proc sampling while the command and its children run --------------------------------------------


@pytest.mark.slow
def test_no_secret_in_any_process_while_logging_in_with_the_file_store(ecr, sampler, aws_env, write_config) -> None:  # type: ignore[no-untyped-def]
    config = config_for(write_config, ecr.url)
    ecr.default_delay = 0.3  # keep each run alive across many sweeps
    for args in (["--force", "-v"], ["--force", "-q"]):
        result = run_ecr_login("--config", config, *args)
        assert result.code == 0, result
    sampler.stop()
    assert sampler.seen["ecr-login"] >= 2 and sampler.samples > 50


@pytest.mark.docker
def test_no_secret_in_any_process_while_docker_logs_in(  # type: ignore[no-untyped-def]
    ecr, registry, sampler, aws_env, write_config, credential_helper
) -> None:
    require_tool("docker")
    use_helper(Path(aws_env["DOCKER_CONFIG"]))  # `docker login` runs (and hands the password to the helper)
    config = config_for(write_config, ecr.url, stores="docker", body=f"[{HOST}]\nstore_as = {registry.address}\n")
    attempts = 0
    while sampler.seen["docker"] == 0 and attempts < 8:  # docker login is quick: try until a sample caught one
        attempts += 1
        result = run_ecr_login("--config", config, "--force", "-v")
        assert result.code == 0, result
        assert ecr.password not in result.output
    sampler.stop()
    assert sampler.seen["docker"] >= 1, "the sampler never caught the docker CLI: nothing was proved"


@pytest.mark.slow
def test_no_secret_in_any_process_with_the_aws_cli_token_source(ecr, sampler, aws_env, write_config) -> None:  # type: ignore[no-untyped-def]
    require_tool("aws")
    config = config_for(write_config, ecr.url, stores="containers", extra="token_source = awscli\n")
    result = run_ecr_login("--config", config, "-v")
    assert result.code == 0, result
    ecr.script(["denied"])
    denied = run_ecr_login("--config", config, "--force", "-v")
    assert denied.code == 77, denied
    for text in (result.output, denied.output):
        assert ecr.password not in text and DEFAULT_SECRET_ACCESS_KEY not in text
    sampler.stop()
    assert sampler.seen["aws"] >= 1, "the sampler never caught the AWS CLI: nothing was proved"


@pytest.mark.docker
def test_no_secret_in_any_process_on_error_paths(  # type: ignore[no-untyped-def]
    ecr, registry, sampler, aws_env, write_config, credential_helper
) -> None:
    require_tool("docker")
    use_helper(Path(aws_env["DOCKER_CONFIG"]))  # through `docker login`, which the registry refuses
    # the registry refuses (docker CLI error path), then AWS refuses, then a retry path;
    # server latency keeps each run alive across many sweeps of the sampler
    ecr.default_delay = 0.3
    with standin_ecr.StandinECR(password=ecr.password + "-wrong", default_delay=0.3) as wrong:
        config = config_for(write_config, wrong.url, stores="docker", body=f"[{HOST}]\nstore_as = {registry.address}\n")
        refused = run_ecr_login("--config", config, "-v")
        assert refused.code == 77, refused
    config = config_for(write_config, ecr.url)
    ecr.script(["503", "delay:0.3", "denied"])
    assert run_ecr_login("--config", config, "-v").code == 0
    assert run_ecr_login("--config", config, "--force", "-v").code == 77
    sampler.stop()
    assert sampler.seen["ecr-login"] >= 3


# --- output at every verbosity, in every error path --------------------------------------------------


HOSTILE = "the request carried aws_secret_access_key {secret} and key {secret} (echoed by a broken proxy)"
VERBOSITY = {"quiet": ["-q"], "default": [], "verbose": ["-v"], "journal": ["-v"]}
ERROR_PATHS = sorted(BEHAVIOURS - {"ok"})


@pytest.mark.parametrize("verbosity", sorted(VERBOSITY))
@pytest.mark.parametrize("behaviour", ERROR_PATHS)
@pytest.mark.slow
def test_no_secret_in_output_state_or_metrics(ecr, aws_env, write_config, tmp_path, monkeypatch, behaviour, verbosity) -> None:  # type: ignore[no-untyped-def]
    """One region succeeds (so a password is known), the other meets the fault; AWS errors echo the secret key."""
    for name, (status, error_type, _message) in list(standin_ecr._ERRORS.items()):
        monkeypatch.setitem(standin_ecr._ERRORS, name, (status, error_type, HOSTILE.format(secret=DEFAULT_SECRET_ACCESS_KEY)))
    ecr.script(["delay:0.2"], region="us-east-1")  # the good region answers first: its password is in memory
    ecr.script([behaviour] * 3, region="eu-west-1")
    metrics = tmp_path / "metrics.prom"
    config = config_for(write_config, ecr.url, extra=f"metrics_file = {metrics}\n", body=f"[{HOST}]\n[{EU_HOST}]\n", timeout="1s")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    if verbosity == "journal":
        env["INVOCATION_ID"] = "0123456789abcdef0123456789abcdef"
    done = subprocess.run(
        [sys.executable, "-m", "ecr_login_pkg", "--config", config, "--force", *VERBOSITY[verbosity]],
        capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, timeout=120, check=False,
    )
    status = run_ecr_login("status", "--config", config, "--json")
    state = Path(aws_env["XDG_STATE_HOME"], "ecr-login", "state.json").read_text()
    texts = {"stdout": done.stdout, "stderr": done.stderr, "status": status.output, "state": state,
             "metrics": metrics.read_text() if metrics.exists() else ""}
    for where, text in texts.items():
        for secret in (ecr.password, ecr.token(), DEFAULT_SECRET_ACCESS_KEY):
            assert secret not in text, f"a secret in {where} ({behaviour}, {verbosity}): {text[-600:]}"
    if behaviour in ("denied", "expired_creds", "500", "503", "throttle") and verbosity != "quiet":
        assert "***" in done.stderr  # the echoed key was masked, not dropped with the whole message


def test_a_secret_in_a_botocore_exception_is_scrubbed(aws_env, write_config, token_password) -> None:  # type: ignore[no-untyped-def]
    """Credentials in the endpoint URL end up in botocore's connection error text: they must be masked."""
    endpoint = f"http://AKIDSTANDIN:{DEFAULT_SECRET_ACCESS_KEY}@127.0.0.1:9"
    config = write_config(f"[defaults]\nendpoint_url = {endpoint}\nstores = file\ntimeout = 1s\n[{HOST}]\n")
    result = run_ecr_login("--config", config, "-v")
    assert result.code in (75, 78), result
    assert DEFAULT_SECRET_ACCESS_KEY not in result.output


# --- file modes ------------------------------------------------------------------------------


def test_files_are_0600_and_directories_0700_whatever_the_umask(ecr, aws_env, write_config, tmp_path, request) -> None:  # type: ignore[no-untyped-def]
    metrics = tmp_path / "metrics" / "ecr-login.prom"
    metrics.parent.mkdir()
    config = config_for(write_config, ecr.url, stores="file, containers, helm", extra=f"metrics_file = {metrics}\n")
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    done = subprocess.run(
        ["sh", "-c", 'umask 000; exec "$0" -m ecr_login_pkg --config "$1"', sys.executable, config],
        capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL, check=False,
    )
    assert done.returncode == 0, done.stderr
    home = Path(aws_env["HOME"])
    written = {
        Path(aws_env["DOCKER_CONFIG"], "config.json"): 0o600,
        Path(aws_env["DOCKER_CONFIG"]): 0o700,
        Path(aws_env["XDG_CONFIG_HOME"], "containers", "auth.json"): 0o600,
        Path(aws_env["XDG_CONFIG_HOME"], "containers"): 0o700,
        Path(aws_env["XDG_CONFIG_HOME"], "helm", "registry", "config.json"): 0o600,
        Path(aws_env["XDG_CONFIG_HOME"], "helm", "registry"): 0o700,
        Path(aws_env["XDG_STATE_HOME"], "ecr-login", "state.json"): 0o600,
        Path(aws_env["XDG_STATE_HOME"], "ecr-login"): 0o700,
        metrics: 0o644,  # by design: node_exporter runs as another user, and it holds no secret
    }
    modes = {str(path.relative_to(home) if home in path.parents else path): oct(stat.S_IMODE(path.stat().st_mode))
             for path in written}
    assert modes == {str(path.relative_to(home) if home in path.parents else path): oct(mode) for path, mode in written.items()}
    request.node.user_properties.append(("observed", ", ".join(f"{Path(name).name} {mode[2:]}" for name, mode in modes.items())))
    assert ecr.password not in metrics.read_text()
    # a config.json someone made world-readable is tightened by the next write
    docker_json = Path(aws_env["DOCKER_CONFIG"], "config.json")
    docker_json.chmod(0o644)
    assert run_ecr_login("--config", config, "--force").code == 0
    assert stat.S_IMODE(docker_json.stat().st_mode) == 0o600


# --- planted symlinks -------------------------------------------------------------------------------


def test_a_symlink_planted_at_the_temp_file_name_is_not_followed(tmp_path, monkeypatch) -> None:
    """An attacker who wins the race to the temp name (a link planted there just before it is
    opened) gets nothing: the temp file is made with O_EXCL, so another name is taken."""
    target = tmp_path / "config.json"
    target.write_text('{"auths": {}}')
    victim = tmp_path / "victim"
    victim.write_text("precious")
    real_open = os.open
    planted: list[str] = []

    def open_after_planting(path, flags, *args, **kwargs):  # type: ignore[no-untyped-def]
        name = os.path.basename(os.fsdecode(path))
        if name.startswith(fsutil.TEMP_PREFIX) and name.endswith(".tmp") and not planted:
            os.symlink(victim, path)
            planted.append(os.fsdecode(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_after_planting)
    fsutil.atomic_write(str(target), b'{"auths": {"x": {}}}', 0o600)
    monkeypatch.undo()
    assert planted, "the temp file was not made through os.open: this test proves nothing"
    assert victim.read_text() == "precious"
    assert os.path.islink(planted[0]) and os.readlink(planted[0]) == str(victim)
    assert target.read_text() == '{"auths": {"x": {}}}' and not target.is_symlink()


def test_a_symlink_planted_as_the_state_file_is_not_followed(ecr, aws_env, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    state_dir = Path(aws_env["XDG_STATE_HOME"], "ecr-login")
    state_dir.mkdir(parents=True, mode=0o700)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (state_dir / "state.json").symlink_to(victim)
    config = config_for(write_config, ecr.url)
    result = run_ecr_login("--config", config)
    assert result.code == 0, result
    assert "symlink" in result.stderr
    assert victim.read_text() == "precious\n", "the state write followed the planted symlink"
    assert not (state_dir / "state.json").is_symlink()  # replaced by a regular file of ours, 0600
    assert stat.S_IMODE((state_dir / "state.json").stat().st_mode) == 0o600


def test_a_symlink_planted_as_the_state_directory_is_refused(ecr, aws_env, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    Path(aws_env["XDG_STATE_HOME"]).mkdir(parents=True)
    Path(aws_env["XDG_STATE_HOME"], "ecr-login").symlink_to(elsewhere)
    config = config_for(write_config, ecr.url)
    result = run_ecr_login("--config", config)
    assert result.code == 78, result
    assert "symlink" in result.stderr
    assert list(elsewhere.iterdir()) == []
    assert ecr.call_count == 0


def test_a_symlink_planted_as_the_metrics_file_is_not_followed(ecr, aws_env, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    metrics = tmp_path / "ecr-login.prom"
    metrics.symlink_to(victim)
    config = config_for(write_config, ecr.url, extra=f"metrics_file = {metrics}\n")
    result = run_ecr_login("--config", config)
    assert result.code == 0, result
    assert victim.read_text() == "precious\n"
    assert "ecr_login_expiry_timestamp_seconds" in metrics.read_text()


def test_passwords_never_reach_a_command_line_in_the_code() -> None:
    """Belt and braces for the sampler: where the code starts a process, the password goes on stdin."""
    sources = "".join(path.read_text() for path in (REPO_ROOT / "ecr_login_pkg").glob("*.py"))
    assert "--password-stdin" in sources
    assert "--password " not in sources and '"-p"' not in sources and "'-p'" not in sources


@pytest.fixture
def no_password_in_any_process(token_password: str) -> Iterator[None]:
    """Throughout a test, no process's command line or environment ever holds the password.

    Used by the fault and concurrency suites (``pytestmark = usefixtures(...)``).
    """
    sampler = watch_processes(token_password, interval=0.005)
    yield
    sampler.stop()
    assert sampler.leaks == [], sampler.leaks[:5]
    assert sampler.samples > 0
