"""Read a source file only if the file actually opened lies inside its source folder.

Listing checks each path (a symbolic link out of the folder is reported and skipped), but a writer of
the folder could swap a checked file for a link to ``/etc/…`` before it is read. So the check that
counts is made on the open descriptor: the kernel's name for what was opened (``/proc/self/fd``) must
be inside the folder, and it must be a regular file (a FIFO would block the job; O_NONBLOCK makes the
open itself return). Off Linux, where no descriptor path exists, the resolved path is checked instead
(narrower guarantee, said here rather than hidden).
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from core.errors import InputError

_FD_PATHS = Path("/proc/self/fd")


class OutsideSourceError(InputError):
    """The opened file is not inside the source folder (a link, possibly swapped in after listing)."""


@dataclass(frozen=True)
class ConfinedFile:
    raw: bytes
    mtime: float


def read_confined(path: Path, root: Path, *, max_bytes: int | None) -> ConfinedFile:
    """The bytes and mtime of ``path`` if what opens is a regular file inside ``root`` (resolved);
    ``max_bytes=None``: no size limit.

    Raises OutsideSourceError for a file outside the folder, InputError for a non-regular or too
    large file, OSError when it cannot be opened.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    try:
        if not _opened_path(fd, path).is_relative_to(root):
            raise OutsideSourceError("symbolic link to a file outside the source folder: not read")
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputError("not a regular file: not read")
        if max_bytes is not None and info.st_size > max_bytes:
            raise InputError(f"file too large ({info.st_size:,} bytes > max_file_bytes {max_bytes:,})")
        with os.fdopen(os.dup(fd), "rb") as handle:
            raw = handle.read() if max_bytes is None else handle.read(max_bytes + 1)
        if max_bytes is not None and len(raw) > max_bytes:  # it grew after fstat
            raise InputError(f"file too large (> max_file_bytes {max_bytes:,} bytes)")
        return ConfinedFile(raw, info.st_mtime)
    finally:
        os.close(fd)


def _opened_path(fd: int, path: Path) -> Path:
    link = _FD_PATHS / str(fd)
    if _FD_PATHS.is_dir():
        return Path(os.readlink(link))
    return path.resolve()
