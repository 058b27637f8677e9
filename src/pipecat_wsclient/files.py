#
# Copyright (c) 2026, pipecat-wsclient contributors
#
# SPDX-License-Identifier: BSD 2-Clause License
#

"""Writing results safely: new regular files only, in folders we made, never through a link.

A command that keeps results in a folder the user named (``phone --save``)
must not be turned into a tool for someone else: a symbolic link planted
there (``1/recording.wav -> ~/.bashrc``) must not make us write over another
file, an earlier run's files must not be overwritten, and what we serve back
must be what we wrote. So:

- each run gets a fresh folder (:func:`create_run_folder`): created with an
  exclusive ``mkdir``, mode 0700, then checked with ``lstat`` (a folder, not a
  link, ours, closed to others);
- files are created with ``O_CREAT | O_EXCL | O_NOFOLLOW``, mode 0600
  (:func:`write_new`, :func:`copy_new`): a name that exists, or is a link
  (dangling or not), is refused with :class:`UnsafePathError`, never followed;
- :class:`RunFolder` holds the run's folder open and creates and opens
  everything relative to it (``dir_fd``), so a run folder renamed and
  replaced by a link in a shared parent does not redirect what comes next;
- a file is read back only if it is the one written, as written
  (:class:`FileId`, checked on the file opened with ``O_NOFOLLOW``).

Nothing here knows about calls; POSIX only where the OS offers it
(``O_NOFOLLOW``, ``dir_fd``), falling back to plain paths elsewhere.

Example::

    with RunFolder.create(Path("calls")) as run:   # calls/run-20260101-120000-1a2b3c4d/
        run.make_folder("1")
        written = run.write_new("1/summary.json", data)
        with run.open_written("1/summary.json", written) as file:
            ...
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

FOLDER_MODE = 0o700
"""A run's folders: the owner only."""

FILE_MODE = 0o600
"""A run's files: the owner only."""

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # a FIFO in the way must not hang an open
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC
_DIR_FD = {os.open, os.mkdir, os.unlink} <= os.supports_dir_fd
_LINK_ERRNOS = {getattr(errno, name, -1) for name in ("ELOOP", "EMLINK", "EFTYPE")}
"""What ``O_NOFOLLOW`` on a link gives: Linux ELOOP, FreeBSD EMLINK, NetBSD EFTYPE."""


class UnsafePathError(OSError):
    """A path we were to create or read is not safe: it exists, is a link, or is not ours.

    The message names the path and why, in one line.
    """


@dataclass(frozen=True)
class FileId:
    """Which file was written, to recognise it when it is read back.

    Its device and inode, and its size and modification time as written (an
    inode number is reused once a file is deleted).
    """

    device: int
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, status: os.stat_result) -> FileId:
        """The id of a file from its ``stat``."""
        return cls(status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns)


def create_run_folder(parent: Path, prefix: str = "run") -> Path:
    """Create a fresh folder for one run: ``parent/PREFIX-YYYYMMDD-HHMMSS-<random>``.

    ``parent`` is created if missing (the user's folder, the user's umask); the
    run folder is created exclusively, mode 0700, and checked with ``lstat``.
    An earlier run's folder is never reused.

    Args:
        parent: Where the run's folder goes (``--save``).
        prefix: The folder name's start.

    Returns:
        The new folder.

    Raises:
        UnsafePathError: If the new folder is not what we created.
        OSError: If ``parent`` cannot be created or written to.
    """
    parent.mkdir(parents=True, exist_ok=True)
    for _ in range(16):
        path = parent / f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(4)}"
        try:
            os.mkdir(path, FOLDER_MODE)
        except FileExistsError:
            continue  # taken (or planted): another name
        check_own_folder(path)
        return path
    raise UnsafePathError(f"{parent}: no fresh name for a run folder after 16 tries")


def check_own_folder(path: Path) -> os.stat_result:
    """Check that ``path`` is a folder (not a link) of ours that others cannot open.

    Returns:
        Its ``lstat``.

    Raises:
        UnsafePathError: Naming the path and what is wrong.
    """
    status = os.lstat(path)
    if stat.S_ISLNK(status.st_mode):
        raise UnsafePathError(f"{path}: is a symbolic link, not a folder we created")
    if not stat.S_ISDIR(status.st_mode):
        raise UnsafePathError(f"{path}: is not a folder")
    if hasattr(os, "getuid") and status.st_uid != os.getuid():
        raise UnsafePathError(f"{path}: belongs to another user")
    if status.st_mode & 0o077:
        raise UnsafePathError(f"{path}: others may use it (mode {status.st_mode & 0o777:o})")
    return status


def _refused(path: object, error: OSError) -> UnsafePathError:
    if isinstance(error, FileExistsError):
        why = "exists already (a file, a folder or a link); refusing to write over it"
    elif error.errno is not None and error.errno in _LINK_ERRNOS:
        why = "is a symbolic link; refusing to follow it"
    else:
        why = str(error.strerror or error)
    return UnsafePathError(f"{path}: {why}")


def open_new(path: Path | str, *, dir_fd: int | None = None) -> BinaryIO:
    """Create ``path`` as a new regular file (mode 0600) and open it for writing.

    Args:
        path: The file; relative to ``dir_fd`` when given.
        dir_fd: An open folder to create it in.

    Raises:
        UnsafePathError: If ``path`` exists in any form, a link included.
    """
    try:
        fd = os.open(path, _NEW_FILE, FILE_MODE, dir_fd=dir_fd)
    except OSError as e:
        raise _refused(path, e) from None
    return os.fdopen(fd, "wb")


def write_new(path: Path | str, data: bytes, *, dir_fd: int | None = None) -> FileId:
    """Write ``data`` to a new file; never over an existing one, never through a link.

    Args:
        path: The file to create; relative to ``dir_fd`` when given.
        data: Its content.
        dir_fd: An open folder to create it in.

    Returns:
        The file's id, to recognise it when it is read back.

    Raises:
        UnsafePathError: If ``path`` exists in any form (the message names it).
    """
    with open_new(path, dir_fd=dir_fd) as file:
        file.write(data)
        file.flush()
        return FileId.of(os.fstat(file.fileno()))


def copy_new(source: Path, path: Path | str, *, dir_fd: int | None = None) -> FileId:
    """Copy ``source`` into a new file, as :func:`write_new` does (streamed)."""
    with open(source, "rb") as src, open_new(path, dir_fd=dir_fd) as file:
        shutil.copyfileobj(src, file)
        file.flush()
        return FileId.of(os.fstat(file.fileno()))


def open_written(path: Path | str, written: FileId, *, dir_fd: int | None = None) -> BinaryIO:
    """Open for reading the very file that was written as ``written``.

    Args:
        path: The file; relative to ``dir_fd`` when given.
        written: What :func:`write_new` returned for it.
        dir_fd: An open folder it is in.

    Raises:
        UnsafePathError: If ``path`` is now a link, not a regular file, or another file.
        OSError: If it is gone.
    """
    try:
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC | _NONBLOCK, dir_fd=dir_fd)
    except FileNotFoundError:
        raise
    except OSError as e:
        raise _refused(path, e) from None
    status = os.fstat(fd)
    if not stat.S_ISREG(status.st_mode) or FileId.of(status) != written:
        os.close(fd)
        raise UnsafePathError(f"{path}: is not the file we wrote")
    return os.fdopen(fd, "rb")


class RunFolder:
    """A run's own folder, held open: files and folders are made relative to it.

    Where the OS allows (``dir_fd``), every name is resolved from the open
    folder, so renaming the run folder and putting a link in its place
    (possible in a shared parent without the sticky bit) changes nothing.
    Names are relative paths of folders made with :meth:`make_folder`.
    """

    def __init__(self, path: Path):
        """Open (and check) a folder made by :func:`create_run_folder`.

        Raises:
            UnsafePathError: If it is not a folder of ours (see :func:`check_own_folder`).
        """
        status = check_own_folder(path)
        self.path = path
        self._fd: int | None = None
        if _DIR_FD:
            fd = os.open(path, os.O_RDONLY | _DIRECTORY | _NOFOLLOW | _CLOEXEC)
            if not os.path.samestat(os.fstat(fd), status):
                os.close(fd)
                raise UnsafePathError(f"{path}: changed while it was opened")
            self._fd = fd

    @classmethod
    def create(cls, parent: Path, prefix: str = "run") -> RunFolder:
        """Create a fresh run folder in ``parent`` (:func:`create_run_folder`) and open it."""
        return cls(create_run_folder(parent, prefix))

    def _at(self, name: str) -> tuple[Path | str, int | None]:
        if Path(name).is_absolute() or ".." in Path(name).parts:
            raise UnsafePathError(f"{name}: not a name inside the run folder")
        return (name, self._fd) if self._fd is not None else (self.path / name, None)

    def make_folder(self, name: str) -> Path:
        """Create a new sub-folder (exclusive, mode 0700); return its path.

        Raises:
            UnsafePathError: If ``name`` exists (in any form).
        """
        target, dir_fd = self._at(name)
        try:
            os.mkdir(target, FOLDER_MODE, dir_fd=dir_fd)
        except OSError as e:
            raise _refused(self.path / name, e) from None
        return self.path / name

    def write_new(self, name: str, data: bytes) -> FileId:
        """Write a new file in the run folder (see :func:`write_new`)."""
        target, dir_fd = self._at(name)
        return write_new(target, data, dir_fd=dir_fd)

    def copy_new(self, name: str, source: Path) -> FileId:
        """Copy ``source`` into a new file in the run folder (see :func:`copy_new`)."""
        target, dir_fd = self._at(name)
        return copy_new(source, target, dir_fd=dir_fd)

    def open_written(self, name: str, written: FileId) -> BinaryIO:
        """Open a file of the run folder, only if it is the one written (:func:`open_written`)."""
        target, dir_fd = self._at(name)
        return open_written(target, written, dir_fd=dir_fd)

    def remove(self, name: str) -> None:
        """Remove a file of the run folder (not following a link); gone already is fine."""
        target, dir_fd = self._at(name)
        try:
            os.unlink(target, dir_fd=dir_fd)
        except FileNotFoundError:
            pass

    def close(self) -> None:
        """Close the folder (its files stay)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> RunFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
