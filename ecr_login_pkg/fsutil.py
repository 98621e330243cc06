"""Crash-safe file primitives shared by the auth-file store, the state and the metrics.

Every write goes to a fresh temp file in the target's directory (O_EXCL|O_NOFOLLOW,
so a planted symlink is never followed), is fsynced, then renamed over the target:
a reader (or a kill -9) sees the old file or the new one, never a torn one.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import time
from collections.abc import Callable

from .errors import ConfigError, TemporaryError

TEMP_PREFIX = ".ecr-login-"


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
            raise ConfigError(f"{path}: cannot create directory: {exc.strerror}") from None
        return
    if stat.S_ISLNK(info.st_mode):
        raise ConfigError(f"{path}: is a symlink; refusing to use it (remove it or point the setting at a real directory)")
    if not stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{path}: exists and is not a directory")


def read_text_nofollow(path: str) -> str | None:
    """Read a small file without following a symlink; None when it does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(f"{path}: is a symlink; refusing to follow it (replace it with a regular file)") from None
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        data = handle.read()
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


class DirLock:
    """An exclusive flock on a directory: serialises runs without leaving lock files around."""

    def __init__(self, directory: str, timeout: float, what: str, on_wait: Callable[[str], None] | None = None) -> None:
        self.directory = directory
        self.timeout = timeout
        self.what = what
        self.on_wait = on_wait  # told once when we have to wait, so a slow run says why
        self.fd: int | None = None

    def __enter__(self) -> DirLock:
        fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        deadline = time.monotonic() + self.timeout
        delay = 0.01
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
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
        self.fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
