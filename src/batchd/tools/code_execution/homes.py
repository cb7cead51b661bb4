"""Containers' homes on the host: `root/<id>/{work,outputs,tmp}`, and reading what programs left.

The sandbox user owns what is inside a home and can put symlinks, fifos or unreadable
directories there; batchd reads and removes it through directory file descriptors and
`O_NOFOLLOW`, so none of that can make batchd (maybe root) read, write or remove a host file.
A home's own directory belongs to batchd: the sandbox never sees it, only its three children.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path

from batchd.tools.code_execution.bwrap import ETC_FILES

SUBDIRS = ("work", "outputs", "tmp")
ETC = ".etc"  # the sandbox's passwd, group, hosts; never a container id (ids start with a letter or digit)
CONTAINER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Homes:
    """The directory of every container's home.

    `owner` is the sandbox's (uid, gid) when it differs from batchd's own (batchd runs as root):
    its homes' contents are then given to it, and `root` and each home are made traversable by
    its group only (0o710), as bubblewrap, running as that user, resolves the paths it binds.
    """

    def __init__(self, root: Path, owner: tuple[int, int] | None) -> None:
        self.root = root
        self.owner = owner

    def prepare(self) -> Path:
        """Create `root` (if missing) and the sandbox's /etc files; the directory holding those."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._share(self.root)
        etc = self.root / ETC
        etc.mkdir(mode=0o755, exist_ok=True)
        os.chmod(etc, 0o755)
        for name, text in ETC_FILES.items():
            path = etc / name
            if not path.is_file() or path.read_text() != text:
                tmp = etc / f".{name}.tmp"
                tmp.write_text(text)
                os.chmod(tmp, 0o644)
                os.replace(tmp, path)
        return etc

    def _share(self, path: Path) -> None:
        if self.owner is None:
            os.chmod(path, 0o700)
        else:
            os.chown(path, -1, self.owner[1])
            os.chmod(path, 0o710)

    def unreachable(self) -> Path | None:
        """The first directory above `root` the sandbox user may not search, or None.

        bubblewrap runs as that user and resolves the paths it binds as that user (even those
        given as file descriptors): every directory above the homes must let it through. Search
        permission is enough (0o711), no listing.
        """
        if self.owner is None:
            return None
        uid, gid = self.owner
        for directory in reversed(self.root.absolute().parents):
            try:
                st = directory.stat()
            except FileNotFoundError:
                return None  # made by `prepare`; the probe's program tells
            except OSError:
                return directory
            bit = stat.S_IXUSR if st.st_uid == uid else stat.S_IXGRP if st.st_gid == gid else stat.S_IXOTH
            if not st.st_mode & bit:
                return directory
        return None

    def path(self, container_id: str, *, check: bool = True) -> Path:
        """The home of `container_id`; `check=False` for batchd's own names (the probe's)."""
        if check and not CONTAINER_ID.fullmatch(container_id):
            raise ValueError(f"not a container id: {container_id!r}")
        return self.root / container_id

    def create(self, container_id: str, *, check: bool = True) -> Path:
        home = self.path(container_id, check=check)
        home.mkdir(mode=0o700, exist_ok=True)
        self._share(home)
        for name in SUBDIRS:
            sub = home / name
            sub.mkdir(mode=0o700, exist_ok=True)
            if self.owner is not None:
                os.chown(sub, *self.owner, follow_symlinks=False)
        return home

    def remove(self, container_id: str, *, check: bool = True) -> None:
        home = self.path(container_id, check=check)
        try:
            fd = os.open(self.root, _DIR)
        except FileNotFoundError:
            return
        try:
            _remove_entry(fd, home.name)
        finally:
            os.close(fd)

    def ids(self) -> list[str]:
        try:
            entries = list(os.scandir(self.root))
        except FileNotFoundError:
            return []
        return sorted(
            e.name for e in entries if CONTAINER_ID.fullmatch(e.name) and e.is_dir(follow_symlinks=False)
        )


def outputs(home: Path, cap: int) -> list[tuple[str, bytes]]:
    """(name, bytes) of each regular file at the top level of `home/outputs`, by name.

    A symlink, fifo, device or directory there is skipped; a file is read up to `cap` bytes.
    """
    found: list[tuple[str, bytes]] = []
    with _opened(home / "outputs") as dir_fd:
        for name in sorted(os.listdir(dir_fd)):
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
            except OSError:  # ELOOP: a symlink; or it went away
                continue
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    continue
                data = _read(fd, cap)
            finally:
                os.close(fd)
            found.append((_display(name), data))
    return found


def clear_outputs(home: Path) -> None:
    """Empty `home/outputs`, never following a link the sandbox made."""
    with _opened(home / "outputs") as dir_fd:
        for name in os.listdir(dir_fd):
            _remove_entry(dir_fd, name)


@contextlib.contextmanager
def _opened(directory: Path) -> Iterator[int]:
    fd = os.open(directory, _DIR)
    try:
        yield fd
    finally:
        os.close(fd)


def _read(fd: int, cap: int) -> bytes:
    chunks: list[bytes] = []
    left = cap
    while left > 0 and (data := os.read(fd, min(left, 1 << 20))):
        chunks.append(data)
        left -= len(data)
    return b"".join(chunks)


def _display(name: str) -> str:
    """A file name as text: bytes that are not UTF-8 become U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _remove_entry(dir_fd: int, name: str) -> None:
    """Remove `name` in `dir_fd`, a whole tree if it is a directory; symlinks are removed, not followed."""
    try:
        os.unlink(name, dir_fd=dir_fd)
        return
    except FileNotFoundError:
        return
    except IsADirectoryError:
        pass
    except PermissionError:
        # EPERM from unlink(2) on a directory on some file systems; a real EPERM reappears below.
        if not stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            raise
    # A directory the program made unreadable or unwritable (batchd is then not root, so it is
    # batchd's own uid) is given back its owner's rights through an O_PATH descriptor, which is
    # never a symlink's target.
    path_fd = os.open(name, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        st = os.fstat(path_fd)
        if os.geteuid() != 0 and st.st_uid == os.geteuid() and st.st_mode & 0o700 != 0o700:
            os.chmod(f"/proc/self/fd/{path_fd}", 0o700)
        fd = os.open(f"/proc/self/fd/{path_fd}", _DIR & ~os.O_NOFOLLOW)
    finally:
        os.close(path_fd)
    try:
        for child in os.listdir(fd):
            _remove_entry(fd, child)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dir_fd)
