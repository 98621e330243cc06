"""Unit tests of fsutil: private directories, reads without following links, atomic writes,
ownership, stale temp files, and the lock (real processes hold and contend for it)."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import REPO_ROOT, run_ecr_login, stored_auths

from ecr_login_pkg import fsutil
from ecr_login_pkg.authfile import AuthFile, encode_auth
from ecr_login_pkg.errors import EX_CONFIG, ConfigError, TemporaryError
from ecr_login_pkg.fsutil import (
    TEMP_PREFIX,
    DirLock,
    ForeignFileError,
    atomic_write,
    ensure_private_dir,
    lock_file_path,
    path_problem,
    read_text_nofollow,
    remove_stale_temps,
)
from ecr_login_pkg.state import State

NOBODY = 65534


HOST = "123456789012.dkr.ecr.us-east-1.amazonaws.com"


def file_config(ecr_url: str, extra: str = "") -> str:
    return f"[defaults]\nendpoint_url = {ecr_url}\nstores = file\nlock_timeout = 3\n{extra}[{HOST}]\n"


def as_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to hand a file to another user (chown)")


def leftovers(directory: Path) -> list[str]:
    return sorted(name for name in os.listdir(directory) if name.startswith(TEMP_PREFIX))


# --- path_problem, ensure_private_dir, read_text_nofollow -----------------------------------


@pytest.mark.parametrize(("code", "words"), [
    (errno.ENOTDIR, "a component of the path is a file"),
    (errno.EACCES, "permission denied"),
    (errno.EISDIR, "it is a directory where a file belongs"),
    (errno.ELOOP, "it is a symlink"),
    (errno.EROFS, "read-only"),
    (errno.EIO, os.strerror(errno.EIO)),
])
def test_path_problem_names_the_path_what_failed_and_the_fix(code: int, words: str) -> None:
    line = path_problem("/some/where", OSError(code, os.strerror(code)), "read it")
    assert line.startswith("/some/where: cannot read it: ") and words in line


def test_ensure_private_dir_creates_every_missing_level_0700(tmp_path: Path) -> None:
    os.umask(0o022)
    target = tmp_path / "a" / "b" / "c"
    ensure_private_dir(str(target))
    for level in (tmp_path / "a", tmp_path / "a" / "b", target):
        assert stat.S_IMODE(level.stat().st_mode) == 0o700
    ensure_private_dir(str(target))  # existing: fine, unchanged


def test_ensure_private_dir_keeps_an_existing_directory_as_it_is(tmp_path: Path) -> None:
    shared = tmp_path / "textfile"
    shared.mkdir(mode=0o1777)
    shared.chmod(0o1777)
    ensure_private_dir(str(shared))
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777  # another user's directory keeps its mode


def test_ensure_private_dir_refuses_a_symlink_and_a_file(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="is a symlink"):
        ensure_private_dir(str(tmp_path / "link"))
    with pytest.raises(ConfigError, match="exists and is not a directory"):
        ensure_private_dir(str(tmp_path / "file"))


def test_read_text_nofollow(tmp_path: Path) -> None:
    assert read_text_nofollow(str(tmp_path / "absent")) is None
    (tmp_path / "text").write_text("hé\n")
    assert read_text_nofollow(str(tmp_path / "text")) == "hé\n"
    (tmp_path / "link").symlink_to(tmp_path / "text")
    with pytest.raises(ConfigError, match="is a symlink; refusing to follow it"):
        read_text_nofollow(str(tmp_path / "link"))
    (tmp_path / "binary").write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_text_nofollow(str(tmp_path / "binary"))
    with pytest.raises(ConfigError, match="directory where a file belongs"):
        read_text_nofollow(str(tmp_path))


# --- atomic_write ---------------------------------------------------------------------------


def test_atomic_write_replaces_whole_with_the_mode_asked_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "config.json"
    target.write_text("old")
    target.chmod(0o644)
    old_inode = target.stat().st_ino
    atomic_write(str(target), b"new", 0o600)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.stat().st_ino != old_inode  # a new file renamed into place, not rewritten in place
    atomic_write(str(target), b"metrics", 0o644, durable=False)
    assert stat.S_IMODE(target.stat().st_mode) == 0o644 and target.read_bytes() == b"metrics"
    assert leftovers(tmp_path) == []


def test_atomic_write_failure_keeps_the_old_file_and_no_temp(tmp_path: Path) -> None:
    (tmp_path / "in-the-way").mkdir()
    (tmp_path / "in-the-way" / "x").write_text("")
    with pytest.raises(ConfigError, match="cannot write"):
        atomic_write(str(tmp_path / "in-the-way"), b"data")  # a non-empty directory cannot be replaced
    assert leftovers(tmp_path) == []
    assert (tmp_path / "in-the-way" / "x").exists()


@pytest.mark.root
def test_atomic_write_refuses_a_file_another_user_owns_even_as_root(tmp_path: Path) -> None:
    as_root()
    theirs = tmp_path / "auth.json"
    theirs.write_text('{"auths": {}}')
    os.chown(theirs, NOBODY, NOBODY)
    with pytest.raises(ForeignFileError, match=f"owned by uid {NOBODY}") as caught:
        atomic_write(str(theirs), b"root's token")
    assert caught.value.exit_code == EX_CONFIG
    assert theirs.read_text() == '{"auths": {}}' and theirs.stat().st_uid == NOBODY
    assert leftovers(tmp_path) == []


@pytest.mark.root
def test_atomic_write_in_a_directory_another_user_owns_creates_our_own_file(tmp_path: Path) -> None:
    as_root()
    textfile = tmp_path / "textfile"
    textfile.mkdir()
    os.chown(textfile, NOBODY, NOBODY)
    atomic_write(str(textfile / "ecr-login.prom"), b"x 1\n", 0o644, durable=False)
    assert (textfile / "ecr-login.prom").stat().st_uid == os.geteuid()


def test_remove_stale_temps_removes_only_old_temp_files(tmp_path: Path) -> None:
    old, young = tmp_path / f"{TEMP_PREFIX}aaaa.tmp", tmp_path / f"{TEMP_PREFIX}bbbb.tmp"
    other = tmp_path / "config.json.tmp"
    for path in (old, young, other):
        path.write_text("")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    os.utime(other, (an_hour_ago, an_hour_ago))
    remove_stale_temps(str(tmp_path))
    assert not old.exists() and young.exists() and other.exists()


# --- DirLock --------------------------------------------------------------------------------

HOLD = """
import sys, time
sys.path.insert(0, sys.argv[1])
from ecr_login_pkg.fsutil import DirLock
with DirLock(sys.argv[2], 30, "run"):
    print("held", flush=True)
    time.sleep(float(sys.argv[3]))
"""


def hold_in_another_process(directory: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(REPO_ROOT), str(directory), str(seconds)],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


@pytest.mark.root
def test_lock_file_is_private_and_a_second_lock_changes_nothing_on_disk(tmp_path: Path) -> None:
    os.umask(0o000)
    try:
        with DirLock(str(tmp_path), 1, "run"):
            info = os.lstat(lock_file_path(str(tmp_path)))
            assert stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
            assert info.st_uid == os.geteuid() and info.st_size == 0
    finally:
        os.umask(0o022)
    assert fsutil._HELD == {}
    before = (tmp_path.stat().st_mtime_ns, os.lstat(lock_file_path(str(tmp_path))).st_mtime_ns)
    with DirLock(str(tmp_path), 1, "run"):  # what a run with nothing due does: no create, write or remove
        pass
    assert (tmp_path.stat().st_mtime_ns, os.lstat(lock_file_path(str(tmp_path))).st_mtime_ns) == before


def test_a_waiting_run_names_the_holder_and_gives_up_at_its_timeout(tmp_path: Path) -> None:
    holder = hold_in_another_process(tmp_path, 30)
    try:
        waits: list[str] = []
        started = time.monotonic()
        with pytest.raises(TemporaryError) as caught, DirLock(str(tmp_path), 0.5, "run", waits.append):
            pass
        assert time.monotonic() - started < 5
        user = fsutil.login_name(os.geteuid())
        assert f"(PID {holder.pid}, user {user})" in str(caught.value)
        assert "has held the run lock for 0.5s" in str(caught.value)
        assert len(waits) == 1 and f"PID {holder.pid}" in waits[0]
    finally:
        holder.kill()
        holder.wait()


def test_a_waiter_gets_the_lock_when_the_holder_lets_go(tmp_path: Path) -> None:
    holder = hold_in_another_process(tmp_path, 0.5)
    try:
        started = time.monotonic()
        with DirLock(str(tmp_path), 10, "run"):
            assert time.monotonic() - started >= 0.2
    finally:
        holder.wait()


COUNT = """
import sys
sys.path.insert(0, sys.argv[1])
from ecr_login_pkg.fsutil import DirLock
path = sys.argv[2] + "/counter"
for _ in range(int(sys.argv[3])):
    with DirLock(sys.argv[2], 60, "credential file"):
        value = int(open(path).read())
        with open(path, "w") as handle:
            handle.write(str(value + 1))
"""


def test_the_lock_excludes_other_processes(tmp_path: Path) -> None:
    """Four processes each add 60 to a counter under the lock: no increment may be lost."""
    (tmp_path / "counter").write_text("0")
    workers = [subprocess.Popen([sys.executable, "-c", COUNT, str(REPO_ROOT), str(tmp_path), "60"]) for _ in range(4)]
    assert [worker.wait(timeout=120) for worker in workers] == [0, 0, 0, 0]
    assert (tmp_path / "counter").read_text() == "240"


@pytest.mark.root
def test_a_lock_file_another_user_planted_is_refused(tmp_path: Path) -> None:
    as_root()
    planted = Path(lock_file_path(str(tmp_path)))
    planted.write_text("")
    planted.chmod(0o666)
    os.chown(planted, NOBODY, NOBODY)
    with pytest.raises(ConfigError, match=rf"owned by uid {NOBODY} .*lock file") as caught, DirLock(str(tmp_path), 1, "run"):
        pass
    assert caught.value.exit_code == EX_CONFIG
    assert planted.stat().st_uid == NOBODY  # left as it is
    assert fsutil._HELD == {}


def test_a_lock_file_that_is_a_symlink_or_a_fifo_is_refused(tmp_path: Path) -> None:
    planted = Path(lock_file_path(str(tmp_path)))
    planted.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ConfigError, match="not a regular file"), DirLock(str(tmp_path), 1, "run"):
        pass
    assert not (tmp_path / "elsewhere").exists()
    planted.unlink()
    os.mkfifo(planted)
    with pytest.raises(ConfigError, match="not a regular file"), DirLock(str(tmp_path), 1, "run"):
        pass


def test_our_lock_file_left_readable_to_others_is_made_private(tmp_path: Path) -> None:
    existing = Path(lock_file_path(str(tmp_path)))
    existing.write_text("")
    existing.chmod(0o644)  # others could open it, hence flock it
    with DirLock(str(tmp_path), 1, "run"):
        assert stat.S_IMODE(existing.stat().st_mode) == 0o600


@pytest.mark.root
def test_lock_files_are_per_user_and_not_taken_for_temp_files(tmp_path: Path) -> None:
    assert lock_file_path(str(tmp_path)) == str(tmp_path / f".ecr-login.{os.geteuid()}.lock")
    assert not os.path.basename(lock_file_path(str(tmp_path))).startswith(TEMP_PREFIX)


# --- #18.10 FIFOs, #18.9 a read-only file system ---------------------------------------------


def test_a_fifo_is_refused_at_once_by_reads_and_writes(tmp_path: Path) -> None:
    fifo = tmp_path / "state.json"
    os.mkfifo(fifo, 0o600)
    import signal

    def hung(signum: int, frame: object) -> None:
        raise TimeoutError("the read hung on the FIFO")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.setitimer(signal.ITIMER_REAL, 3)
    try:
        with pytest.raises(ConfigError, match="not a regular file"):
            read_text_nofollow(str(fifo))  # was: blocked until a writer opened the FIFO
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    with pytest.raises(ConfigError, match="not a regular file"):
        atomic_write(str(fifo), b"{}")  # was: the FIFO replaced
    assert fifo.is_fifo() and leftovers(tmp_path) == []


TRY_LOCK = """
import sys
sys.path.insert(0, sys.argv[1])
from ecr_login_pkg.errors import TemporaryError
from ecr_login_pkg.fsutil import DirLock
try:
    with DirLock(sys.argv[2], 0.3, "run"):
        pass
except TemporaryError as exc:
    sys.exit(str(exc) and print(exc, file=sys.stderr) or 75)
"""


@pytest.mark.root
def test_the_lock_is_taken_on_a_read_only_file_system(tmp_path: Path) -> None:
    as_root()
    point = tmp_path / "mnt"
    point.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(point)], check=True)
    try:
        with DirLock(str(point), 1, "run"):
            pass  # the lock file is made while the file system is writable, and stays
        subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True)
        with DirLock(str(point), 1, "run"):  # was: "cannot open the run lock file; remove it"
            other = subprocess.run(  # another process cannot take it meanwhile
                [sys.executable, "-c", TRY_LOCK, str(REPO_ROOT), str(point)], capture_output=True, text=True, timeout=30,
            )
            assert other.returncode == 75 and "another ecr-login run has held the run lock" in other.stderr, other
        with pytest.raises(ConfigError, match="read-only") as caught:
            atomic_write(str(point / "config.json"), b"{}")
        assert "errors=remount-ro" in str(caught.value) and "remove it" not in str(caught.value)
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


# --- the run lock and the credential-file lock on one directory (from test_robustness) ---------------


def test_store_file_in_the_state_directory_does_not_deadlock(ecr, aws_env, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    shared = tmp_path / "var-lib-ecr-login"
    env = dict(os.environ, STATE_DIRECTORY=str(shared), DOCKER_CONFIG=str(shared))
    config = write_config(file_config(ecr.url))
    started = time.monotonic()
    result = run_ecr_login("--config", config, env=env)
    assert result.code == 0, result
    assert time.monotonic() - started < 3, "waited for its own lock"
    assert HOST in stored_auths(shared) and (shared / "state.json").exists()
    assert "waiting" not in result.stderr


def test_docker_config_setting_pointing_at_the_state_directory_does_not_deadlock(ecr, aws_env, write_config, tmp_path) -> None:  # type: ignore[no-untyped-def]
    shared = tmp_path / "state"
    env = dict(os.environ, STATE_DIRECTORY=str(shared))
    config = write_config(file_config(ecr.url, f"docker_config = {shared}\n"))
    result = run_ecr_login("--config", config, "--force", env=env)
    assert result.code == 0, result
    assert HOST in stored_auths(shared)
    logout = run_ecr_login("logout", "--config", config, env=env)
    assert logout.code == 0, logout
    assert HOST not in stored_auths(shared)


def other_process_can_lock(directory: Path) -> bool:
    """Another process of this user tries the directory's lock (this user's lock file in it)."""
    probe = (
        "import fcntl, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\n"
        "try:\n    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept BlockingIOError:\n    sys.exit(1)\n"
    )
    return subprocess.run([sys.executable, "-c", probe, fsutil.lock_file_path(str(directory))], check=False).returncode == 0


def test_dir_lock_is_reentrant_in_the_process_and_exclusive_across_processes(tmp_path: Path) -> None:
    directory = tmp_path / "d"
    directory.mkdir()
    alias = tmp_path / "alias"
    alias.symlink_to(directory)  # another path to the same directory: the same lock
    outer = DirLock(str(directory), 1, "run")
    with outer:
        assert not other_process_can_lock(directory)
        started = time.monotonic()
        with DirLock(str(alias), 1, "credential file"), DirLock(str(directory) + "/", 1, "credential file"):
            assert not other_process_can_lock(directory)
        assert time.monotonic() - started < 0.5
        assert not other_process_can_lock(directory), "an inner exit released the outer hold"
    assert other_process_can_lock(directory)
    assert fsutil._HELD == {}


def test_dir_lock_still_waits_for_another_process(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys, time\nfd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)\nfcntl.flock(fd, fcntl.LOCK_EX)\n"
         "print('held', flush=True)\ntime.sleep(30)\n", fsutil.lock_file_path(str(tmp_path))],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        waits: list[str] = []
        with pytest.raises(TemporaryError, match="another ecr-login run has held the run lock"), \
                DirLock(str(tmp_path), 0.3, "run", waits.append):
            pass
        assert len(waits) == 1
        assert fsutil._HELD == {}
    finally:
        holder.kill()
        holder.wait()
    with DirLock(str(tmp_path), 1, "run"):
        pass


def test_dir_lock_is_shared_by_the_threads_of_one_process(tmp_path: Path) -> None:
    import threading

    entered = threading.Event()
    with DirLock(str(tmp_path), 1, "run"):
        def worker() -> None:
            with DirLock(str(tmp_path), 1, "credential file"):
                entered.set()

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join(5)
        assert entered.is_set()
        assert not other_process_can_lock(tmp_path)
    assert other_process_can_lock(tmp_path)


# --- unusable paths: a ConfigError naming the path, never a traceback --------------------------------


@contextmanager
def as_nobody() -> Iterator[None]:
    """Run the block with user nobody's effective uid (root bypasses file permissions)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to become user nobody")
    os.setegid(NOBODY)
    os.seteuid(NOBODY)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


@pytest.mark.root
def test_permission_denied_paths_are_config_errors(tmp_path: Path) -> None:
    private = tmp_path / "root-only"
    (private / "docker").mkdir(parents=True)
    (private / "docker" / "config.json").write_text("{}")
    (private / "state.json").write_text("{}")
    private.chmod(0o700)
    tmp_path.chmod(0o755)
    with as_nobody():
        with pytest.raises(ConfigError, match="permission denied"):
            ensure_private_dir(str(private / "docker"))
        with pytest.raises(ConfigError, match="permission denied"):
            ensure_private_dir(str(private / "new" / "deeper"))
        with pytest.raises(ConfigError, match="permission denied"):
            AuthFile(str(private / "docker" / "config.json")).held(HOST)
        with pytest.raises(ConfigError, match="permission denied"):
            read_text_nofollow(str(private / "state.json"))
        denied = f"{private}: cannot open the directory for the run lock: permission denied"
        with pytest.raises(ConfigError, match=denied), DirLock(str(private), 1, "run"):
            pass
        state = State(str(private)).load()  # unreadable state: rebuilt, not fatal
        assert state.problem and "starting afresh" in state.problem
    assert fsutil._HELD == {}


def test_paths_under_a_file_are_config_errors(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="a component of the path is a file"):
        ensure_private_dir(str(blocker / "sub"))
    with pytest.raises(ConfigError, match=f"{blocker}: exists and is not a directory"):
        AuthFile(str(blocker / "config.json")).update({HOST: encode_auth("AWS", "pw")})
    with pytest.raises(ConfigError, match="a component of the path is a file"):
        read_text_nofollow(str(blocker / "state.json"))
    with pytest.raises(ConfigError, match="a component of the path is a file"):
        AuthFile(str(blocker / "config.json")).held(HOST)
    with pytest.raises(ConfigError, match="it is a directory where a file belongs"):
        read_text_nofollow(str(tmp_path))
    with pytest.raises(ConfigError, match="cannot open the directory"), DirLock(str(blocker), 1, "run"):
        pass


# --- what the fsutil docstring promises is what happens ----------------------------------------------


def test_only_credential_files_are_fsynced_as_documented(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert "durable=False" in (fsutil.__doc__ or "") and "Every write goes to" in (fsutil.__doc__ or "")
    assert "is fsynced, then renamed" not in (fsutil.__doc__ or "")
    fsyncs: list[int] = []
    real_fsync = os.fsync

    def counted_fsync(fd: int) -> None:
        fsyncs.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counted_fsync)
    state = State(str(tmp_path / "state"))
    state.entry(HOST, "file", "/c.json")
    state.save()
    assert fsyncs == []
    AuthFile(str(tmp_path / "docker" / "config.json")).update({HOST: encode_auth("AWS", "pw")})
    assert len(fsyncs) == 2  # the file and its directory
