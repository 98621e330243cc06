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

Files belong to the user who runs ecr-login: an existing file another user owns is never
replaced, root's runs included (root writing its token into a file ``nobody`` planted in a
shared directory would hand ``nobody`` the token). A directory another user owns stays usable
when it lets this user write (node_exporter's textfile directory).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import threading
import time
from collections.abc import Callable

from .errors import ConfigError, TemporaryError

TEMP_PREFIX = ".ecr-login-"


READ_ONLY_HINT = ("the file system is read-only (mounted ro, or remounted ro after disk errors, as ext4's "
                  "errors=remount-ro does: see dmesg): make it writable, or point the setting at a writable place")


def path_problem(path: str, exc: OSError, doing: str) -> str:
    """One line naming ``path``, what failed and what to do about it."""
    hints = {
        errno.ENOTDIR: "a component of the path is a file, not a directory: point the setting at a directory",
        errno.EACCES: "permission denied: run as the user who owns it, or fix its permissions",
        errno.EPERM: "operation not permitted: run as the user who owns it, or fix its permissions",
        errno.EISDIR: "it is a directory where a file belongs: remove or rename it",
        errno.ELOOP: "it is a symlink: replace it with a real file or directory",
        errno.EROFS: READ_ONLY_HINT,
        errno.ENXIO: "it is a socket or a device, not a regular file: remove it",
    }
    hint = hints.get(exc.errno or 0, exc.strerror or str(exc))
    return f"{path}: cannot {doing}: {hint}"


class ForeignFileError(ConfigError):
    """A file that exists and belongs to another user: refused, left untouched (exit 78)."""


def login_name(uid: int) -> str | None:
    import pwd  # only a message about another user needs it

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return None


def user_name(uid: int) -> str:
    """``uid 65534 (nobody)``, for messages."""
    name = login_name(uid)
    return f"uid {uid} ({name})" if name else f"uid {uid}"


def refuse_foreign(path: str, info: os.stat_result, what: str = "file") -> None:
    """ForeignFileError unless ``info`` (of ``path``) belongs to the running user; root included."""
    if info.st_uid != os.geteuid():
        raise ForeignFileError(
            f"{path}: is owned by {user_name(info.st_uid)}, not by this user ({os.geteuid()}); "
            f"refusing to use another user's {what}: left untouched (remove it, or point the setting elsewhere)"
        )


def refuse_special(path: str, info: os.stat_result, what: str = "file") -> None:
    """ConfigError when ``info`` is a FIFO, socket or device: opening one could hang, replacing
    one would destroy what someone put there on purpose. Refused at once, left untouched."""
    if stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode) or stat.S_ISLNK(info.st_mode):
        return
    raise ConfigError(f"{path}: the {what} is not a regular file (a FIFO, socket or device?); "
                      "left untouched: remove it, or point the setting elsewhere")


MAX_LINKS = 40  # as the kernel's ELOOP limit


def resolve_own_links(path: str) -> str:
    """``path`` with its symlinks resolved, when each may be followed; ConfigError naming the one that may not.

    A dotfiles manager (stow, chezmoi) links ``~/.docker``, ``~/.config/containers`` or
    ``config.json`` into a repository of the user's; docker and skopeo write through such a link
    and keep it, and so do we, by working on the real path. A link is followed when it belongs to
    this user (or root), the file it leads to (or, while that is absent, its directory) belongs to
    this user, and every directory on the real path belongs to this user or root and is not
    writable by others, a sticky one (/tmp) excepted: anyone else could change where it leads.
    A path without a link is returned as it is, for the checks that were always made.
    """
    absolute = os.path.abspath(path)
    pending = [part for part in absolute.split(os.sep) if part]
    real, links = os.sep, 0
    while pending:
        part = pending.pop(0)
        if part in (".", ".."):
            real = real if part == "." else os.path.dirname(real)
            continue
        candidate = os.path.join(real, part)
        try:
            info = os.lstat(candidate)
        except OSError:  # absent (created later, in the real directory), or unusable: the caller says which
            real = os.path.join(candidate, *pending)
            break
        if not stat.S_ISLNK(info.st_mode):
            real = candidate
            continue
        links += 1
        if links > MAX_LINKS:
            raise ConfigError(f"{path}: too many levels of symlinks; replace them with the real path")
        if info.st_uid not in (0, os.geteuid()):
            raise ForeignFileError(
                f"{path}: {candidate} is a symlink owned by {user_name(info.st_uid)}, not by this user "
                f"({os.geteuid()}); refusing to follow it: left untouched (remove it, or point the setting at the real path)"
            )
        target = os.readlink(candidate)
        real = os.sep if os.path.isabs(target) else real
        pending = [part for part in target.split(os.sep) if part] + pending
    if links == 0:
        return path
    _refuse_unsafe_target(path, real)
    return real


def _refuse_unsafe_target(path: str, real: str) -> None:
    """The checks of resolve_own_links on the real path a link leads to."""
    try:
        info = os.lstat(real)
    except FileNotFoundError:
        info = None
    except OSError as exc:
        raise ConfigError(path_problem(path, exc, f"follow its symlink to {real}")) from None
    directory = os.path.dirname(real)
    try:
        owner = info if info is not None else os.lstat(directory)
    except OSError:
        raise ConfigError(f"{path}: is a symlink to {real}, whose directory does not exist: "
                          "create it, or remove the link") from None
    if owner.st_uid != os.geteuid():
        raise ForeignFileError(
            f"{path}: links to {real if info is not None else directory}, owned by {user_name(owner.st_uid)}, "
            f"not by this user ({os.geteuid()}); refusing to follow it: left untouched (remove the link)"
        )
    while True:
        try:
            step = os.lstat(directory)
        except OSError as exc:
            raise ConfigError(path_problem(path, exc, f"follow its symlink to {real}")) from None
        others_write = step.st_mode & 0o022 and not step.st_mode & stat.S_ISVTX
        if step.st_uid not in (0, os.geteuid()) or others_write:
            who = f"owned by {user_name(step.st_uid)}" if step.st_uid not in (0, os.geteuid()) else "writable by others"
            raise ConfigError(
                f"{path}: links to {real}, through {directory}, {who}: someone else could change where it leads; "
                "refusing to follow it: left untouched (move the target to a directory only you can write)"
            )
        if directory == os.sep:
            return
        directory = os.path.dirname(directory)


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
    try:  # O_NONBLOCK: a FIFO opens at once (and is refused below) instead of waiting for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(f"{path}: is a symlink; refusing to follow it (replace it with a regular file)") from None
        raise ConfigError(path_problem(path, exc, "read it")) from None
    try:
        refuse_special(path, os.fstat(fd))
    except BaseException:
        os.close(fd)
        raise
    try:
        with os.fdopen(fd, "rb") as handle:
            data = handle.read()  # a directory opens fine, and fails here with EISDIR
    except OSError as exc:
        raise ConfigError(path_problem(path, exc, "read it")) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: is not UTF-8 text") from None


def atomic_write(path: str, data: bytes, mode: int = 0o600, durable: bool = True,
                 still_as_read: Callable[[], bool] | None = None) -> bool:
    """Replace ``path`` with ``data`` atomically; the temp file never outlives a failure.

    The new file belongs to the running user; an existing ``path`` another user owns is refused
    (ForeignFileError) and left as it is, as is a FIFO, socket or device.
    ``durable``: fsync the data and the directory, so that a crash right after leaves the new
    file, not an empty one. Each fsync costs milliseconds; a file that is rebuilt when lost
    (the state, the metrics) can do without.
    ``still_as_read``: asked last, just before the rename; when it answers False (a writer that
    takes no lock, as ``docker login``, replaced the file since the caller read it), the temp
    file is removed, ``path`` is left as it is, and False is returned: merge again and retry.
    """
    try:
        info = os.lstat(path)
        refuse_special(path, info)
        refuse_foreign(path, info)
    except FileNotFoundError:
        pass
    except OSError:
        pass  # the write below fails with its own message (a parent that is a file, no permission)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        import tempfile  # only a run that writes needs it (with shutil and random)

        fd, temp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=".tmp", dir=directory)  # 0600, O_EXCL
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        try:
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        if still_as_read is not None and not still_as_read():
            _unlink_quietly(temp)
            return False
        os.replace(temp, path)
    except OSError as exc:
        _unlink_quietly(temp)
        raise _write_error(path, exc) from None
    except BaseException:
        _unlink_quietly(temp)
        raise
    if durable:
        _fsync_dir(directory)
    return True


def _write_error(path: str, exc: OSError) -> Exception:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EAGAIN):
        return TemporaryError(f"{path}: cannot write: {exc.strerror}; the existing file was left unchanged")
    if exc.errno == errno.EROFS:
        return ConfigError(f"{path}: cannot write: {READ_ONLY_HINT}; the existing file was left unchanged")
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


LOCK_PREFIX = ".ecr-login."  # not TEMP_PREFIX: a lock file is no leftover of a killed run
LOCK_SUFFIX = ".lock"

# The locks this process holds: (st_dev, st_ino) of the lock file -> (fd holding the flock, depth, path).
# flock conflicts between two opens of one file even inside one process, so the run lock (the
# state directory) and the credential-file lock (the store file's directory) would deadlock
# when both are the same directory (DOCKER_CONFIG=$STATE_DIRECTORY).
_HELD: dict[tuple[int, int], tuple[int, int, str]] = {}
_HELD_GUARD = threading.Lock()


def lock_file_path(directory: str) -> str:
    """The lock file of ``directory`` for the running user.

    One per user: only the owner of a file may rewrite it (see ``refuse_foreign``), so runs of
    different users never need to exclude each other, and one user's lock file in a shared
    directory (a sticky /tmp) cannot get in another's way.
    """
    return os.path.join(directory, f"{LOCK_PREFIX}{os.geteuid()}{LOCK_SUFFIX}")


def lock_holder(fd: int) -> str:
    """"PID n, user u" of the process holding the flock on ``fd``'s file, as /proc/locks says."""
    info = os.fstat(fd)
    ours = f"{os.major(info.st_dev):02x}:{os.minor(info.st_dev):02x}:{info.st_ino}"
    pid = ""
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as handle:
            for line in handle:
                fields = line.split()  # "3: FLOCK  ADVISORY  WRITE 5290 fe:00:2146737 0 EOF"; waiters: "3: -> FLOCK ..."
                if len(fields) >= 6 and fields[1] == "FLOCK" and fields[5] == ours:
                    pid = fields[4]
                    break
    except OSError:
        pass
    if not pid.isdigit():  # not found (another PID namespace), or an OFD lock (-1)
        return "holder unknown"
    try:
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return f"PID {pid}"
    return f"PID {pid}, user {login_name(uid) or uid}"


class DirLock:
    """An exclusive lock on a directory: a flock on this user's lock file in it.

    The lock file is created 0600 by the running user, so only this user (and root) can open
    it, hence hold it: another user able to read the directory cannot stop the refresh, as an
    flock on the directory itself would let them. A lock file that is not ours (planted by
    another user in a shared directory) or not a regular file is refused (exit 78): it could be
    held by someone else for ever. A run that has to wait names the holder (PID and user, from
    /proc/locks). The file stays between runs, empty: a run with nothing due then creates,
    writes and removes nothing. A waiter that gets the flock on a file someone removed in the
    meantime opens the one that is there now.

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
        _HELD[key] = (held[0], held[1] + 1, held[2])
        self.fd, self._key = held[0], key
        return True

    def _open(self) -> int:
        """Open (creating it 0600) this user's lock file; refuse one that is not ours."""
        path = lock_file_path(self.directory)
        flags = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        writable = True
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | flags, 0o600)
        except OSError as exc:
            try:
                info = os.lstat(path)  # planted: another user's file (EACCES), a symlink (ELOOP)
            except OSError:
                raise ConfigError(path_problem(self.directory, exc, f"open the directory for the {self.what} lock")) from None
            fd = -1
            if exc.errno == errno.EROFS and stat.S_ISREG(info.st_mode) and info.st_uid == os.geteuid():
                # A read-only file system: flock works on a descriptor opened read-only, and a run
                # with nothing due writes nothing; a run that must write says what is wrong then.
                try:
                    fd, writable = os.open(path, os.O_RDONLY | flags), False
                    info = os.fstat(fd)
                except OSError:
                    fd = -1
        else:
            info = os.fstat(fd)
        try:
            if not stat.S_ISREG(info.st_mode):
                raise ConfigError(f"{path}: the {self.what} lock file is not a regular file; remove it")
            refuse_foreign(path, info, f"{self.what} lock file (it could hold the lock for ever)")
            if fd < 0:
                raise ConfigError(f"{path}: cannot open the {self.what} lock file; remove it")
            if writable and stat.S_IMODE(info.st_mode) & 0o077:
                os.fchmod(fd, 0o600)  # nobody else may open it, hence hold it
        except BaseException:
            if fd >= 0:
                os.close(fd)
            raise
        return fd

    def __enter__(self) -> DirLock:
        if self._key is not None:
            raise RuntimeError(f"{self.directory}: this DirLock is already entered")
        path = lock_file_path(self.directory)
        deadline = time.monotonic() + self.timeout
        delay = 0.01
        while True:
            fd = self._open()
            info = os.fstat(fd)
            key = (info.st_dev, info.st_ino)
            with _HELD_GUARD:
                if self._enter_held(key):
                    os.close(fd)
                    return self
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    pass
                else:
                    if _identity(path) == key:
                        _HELD[key] = (fd, 1, path)
                        self.fd, self._key = fd, key
                        return self
                    os.close(fd)  # removed (by hand) while we waited: take the lock file that is there now
                    continue
            if self.on_wait is not None and delay == 0.01:
                self.on_wait(f"{self.directory}: another ecr-login run holds the {self.what} lock; "
                             f"waiting up to {self.timeout:g}s ({lock_holder(fd)})")
            if time.monotonic() >= deadline:
                holder = lock_holder(fd)
                os.close(fd)
                raise TemporaryError(
                    f"{self.directory}: another ecr-login run has held the {self.what} lock "
                    f"for {self.timeout:g}s ({holder}); giving up (the next run will retry)"
                ) from None
            os.close(fd)
            time.sleep(delay)
            delay = min(delay * 2, 0.2)

    def __exit__(self, *exc: object) -> None:
        key, self._key, self.fd = self._key, None, None
        if key is None:
            return
        with _HELD_GUARD:
            fd, depth, path = _HELD[key]
            if depth > 1:
                _HELD[key] = (fd, depth - 1, path)
                return
            del _HELD[key]
            os.close(fd)  # releases the flock


def _identity(path: str) -> tuple[int, int] | None:
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return (info.st_dev, info.st_ino)
