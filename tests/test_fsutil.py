"""Unit tests of fsutil: private directories, reads without following links, atomic writes,
ownership, stale temp files, and the lock (real processes hold and contend for it)."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO_ROOT

from ecr_login_pkg import fsutil
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

NOBODY = 65534


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
    started = time.monotonic()
    with pytest.raises(ConfigError, match="not a regular file"):
        read_text_nofollow(str(fifo))  # was: blocked until a writer opened the FIFO
    with pytest.raises(ConfigError, match="not a regular file"):
        atomic_write(str(fifo), b"{}")  # was: the FIFO replaced
    assert time.monotonic() - started < 2
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
