"""Crash-safe file primitives shared by the auth-file store, the state and the metrics.

Every write goes to a fresh temp file in the target's directory (O_EXCL|O_NOFOLLOW,
so a planted symlink is never followed), then is renamed over the target: a reader
(or a kill -9) sees the old file or the new one, never a torn one. Credential files
are also fsynced (file and directory), so a power loss right after leaves the new
file, not an empty one; the state and the metrics are written with ``durable=False``
(no fsync: milliseconds saved on every run), because losing them to a power cut costs
only one unneeded refresh, and an empty or torn state file is rebuilt.

Any OSError on a path (a parent that is a file, no permission, a directory where a
file belongs) becomes a ConfigError naming the path and what to fix.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from _thread import allocate_lock  # a built-in module: `threading` costs import time on every run
from collections.abc import Callable

from .errors import ConfigError, TemporaryError

TEMP_PREFIX = ".ecr-login-"


def path_problem(path: str, exc: OSError, doing: str) -> str:
    """One line naming ``path``, what failed and what to do about it."""
    hints = {
        errno.ENOTDIR: "a component of the path is a file, not a directory: point the setting at a directory",
        errno.EACCES: "permission denied: run as the user who owns it, or fix its permissions",
        errno.EPERM: "operation not permitted: run as the user who owns it, or fix its permissions",
        errno.EISDIR: "it is a directory where a file belongs: remove or rename it",
        errno.ELOOP: "it is a symlink: replace it with a real file or directory",
        errno.EROFS: "the file system is read-only: point the setting at a writable place",
    }
    hint = hints.get(exc.errno or 0, exc.strerror or str(exc))
    return f"{path}: cannot {doing}: {hint}"


def ensure_private_dir(path: str) -> None:
    """Create ``path`` (mode 0700) if missing; refuse a symlink planted in its place."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        parent = os.path.dirname(os.path.abspath(path))
        if parent != path and not os.path.isdir(parent):
            ensure_private_dir(parent)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise ConfigError(path_problem(path, exc, "create the directory")) from None
        return
    except OSError as exc:  # a parent that is a file (ENOTDIR), a parent we may not search (EACCES)
        raise ConfigError(path_problem(path, exc, "use the directory")) from None
    if stat.S_ISLNK(info.st_mode):
        raise ConfigError(f"{path}: is a symlink; refusing to use it (remove it or point the setting at a real directory)")
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{path}: exists and is not a directory (remove it or point the setting elsewhere)")


def read_text_nofollow(path: str) -> str | None:
    """Read a small file without following a symlink; None when it does not exist.

    Every other failure (a symlink, a directory, no permission, a parent that is a file)
    is a ConfigError naming the path and the fix.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(f"{path}: is a symlink; refusing to follow it (replace it with a regular file)") from None
        raise ConfigError(path_problem(path, exc, "read it")) from None
    try:
        with os.fdopen(fd, "rb") as handle:
            data = handle.read()  # a directory opens fine, and fails here with EISDIR
    except OSError as exc:
        raise ConfigError(path_problem(path, exc, "read it")) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: is not UTF-8 text") from None


def atomic_write(
    path: str, data: bytes, mode: int = 0o600, owner: tuple[int, int] | None = None, durable: bool = True
) -> None:
    """Replace ``path`` with ``data`` atomically; the temp file never outlives a failure.

    ``durable``: fsync the data and the directory, so that a crash right after leaves the new
    file, not an empty one. Each fsync costs milliseconds; a file that is rebuilt when lost
    (the state, the metrics) can do without.
    """
    directory = os.path.dirname(os.path.abspath(path))
    temp = os.path.join(directory, f"{TEMP_PREFIX}{os.urandom(6).hex()}.tmp")  # not `secrets`: its import costs ms
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        fd = os.open(temp, flags, mode)
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        try:
            os.fchmod(fd, mode)
            if owner is not None and os.geteuid() == 0:
                os.fchown(fd, *owner)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except OSError as exc:
        _unlink_quietly(temp)
        raise _write_error(path, exc) from None
    except BaseException:
        _unlink_quietly(temp)
        raise
    if durable:
        _fsync_dir(directory)


def _write_error(path: str, exc: OSError) -> Exception:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EAGAIN):
        return TemporaryError(f"{path}: cannot write: {exc.strerror}; the existing file was left unchanged")
    return ConfigError(f"{path}: cannot write: {exc.strerror}; the existing file was left unchanged")


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def remove_stale_temps(directory: str, older_than: float = 300.0) -> None:
    """Delete temp files a killed run left behind (only ours, only old ones)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    cutoff = time.time() - older_than
    for name in names:
        if name.startswith(TEMP_PREFIX) and name.endswith(".tmp"):
            full = os.path.join(directory, name)
            try:
                if os.lstat(full).st_mtime < cutoff:
                    os.unlink(full)
            except OSError:
                pass


# The directory locks this process holds: (st_dev, st_ino) -> [fd holding the flock, depth].
# flock conflicts between two opens of one directory even inside one process, so the run
# lock (the state directory) and the credential-file lock (the store file's directory)
# would deadlock when both are the same directory (DOCKER_CONFIG=$STATE_DIRECTORY).
_HELD: dict[tuple[int, int], list[int]] = {}
_HELD_GUARD = allocate_lock()


class DirLock:
    """An exclusive flock on a directory: serialises runs without leaving lock files around.

    Re-entrant within a process: a second DirLock on the same directory (by any path,
    compared by device and inode) while this process holds it enters at once and only
    counts; the flock is released when the outermost holder exits. Other processes are
    excluded as before. The threads of one process share it (so the engine may store
    from any thread while the run lock is held); they must not rely on it to exclude
    each other.
    """

    def __init__(self, directory: str, timeout: float, what: str, on_wait: Callable[[str], None] | None = None) -> None:
        self.directory = directory
        self.timeout = timeout
        self.what = what
        self.on_wait = on_wait  # told once when we have to wait, so a slow run says why
        self.fd: int | None = None
        self._key: tuple[int, int] | None = None

    def _enter_held(self, key: tuple[int, int]) -> bool:
        """Join this process's hold on ``key``, if there is one (caller has _HELD_GUARD)."""
        held = _HELD.get(key)
        if held is None:
            return False
        held[1] += 1
        self.fd, self._key = held[0], key
        return True

    def __enter__(self) -> DirLock:
        if self._key is not None:
            raise RuntimeError(f"{self.directory}: this DirLock is already entered")
        try:
            fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            info = os.fstat(fd)
        except OSError as exc:
            raise ConfigError(path_problem(self.directory, exc, f"open the directory for the {self.what} lock")) from None
        key = (info.st_dev, info.st_ino)
        deadline = time.monotonic() + self.timeout
        delay = 0.01
        while True:
            with _HELD_GUARD:
                if self._enter_held(key):
                    os.close(fd)
                    return self
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    pass
                else:
                    _HELD[key] = [fd, 1]
                    self.fd, self._key = fd, key
                    return self
            if self.on_wait is not None and delay == 0.01:
                self.on_wait(f"{self.directory}: another ecr-login run holds the {self.what} lock; "
                             f"waiting up to {self.timeout:g}s")
            if time.monotonic() >= deadline:
                os.close(fd)
                raise TemporaryError(
                    f"{self.directory}: another ecr-login run has held the {self.what} lock "
                    f"for {self.timeout:g}s; giving up (the next run will retry)"
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    def __exit__(self, *exc: object) -> None:
        key, self._key, self.fd = self._key, None, None
        if key is None:
            return
        with _HELD_GUARD:
            held = _HELD[key]
            held[1] -= 1
            if held[1] == 0:
                del _HELD[key]
                os.close(held[0])  # releases the flock
