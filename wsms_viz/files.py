"""Opening one file from a folder whose contents are not trusted.

The app reads images from the dataset folders the operator shares and checkpoints from
the checkpoint folder; whoever can put files there is not necessarily the operator. So a
file is opened only when it is a regular file (not a FIFO, whose open or read would block
the session, nor a device such as ``/dev/zero``, which never ends), whose real location
(symlinks resolved, checked again on the opened descriptor where the OS tells it) lies
inside the folders it may come from, and whose size is checked on the descriptor before
a byte is read; the read itself is capped too, in case the file grows meanwhile.

Messages name the file by its own name only, never by its path. No streamlit here.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

__all__ = ["FileRefused", "inside_any", "open_regular", "read_regular"]

# O_NONBLOCK: opening a FIFO for reading waits for a writer; with it the open returns at
# once and the fstat below refuses the FIFO.
_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0) \
    | getattr(os, "O_BINARY", 0)
_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


class FileRefused(ValueError):
    """A file that is not read; the message names it by its name only.

    Attributes:
        size: its size in bytes when it was refused for being too big, else None.
    """

    def __init__(self, message: str, size: int | None = None):
        super().__init__(message)
        self.size = size


def inside_any(path: str | Path, folders: Iterable[str | Path]) -> bool:
    """Whether ``path``'s real location (every symlink resolved) lies in one of ``folders``
    (theirs resolved too)."""
    real = Path(os.path.realpath(path))
    return any(real.is_relative_to(os.path.realpath(f)) for f in folders)


def open_regular(path: str | Path, within: Iterable[str | Path] = (), max_bytes: int | None = None,
                 where: str = "the shared folder") -> BinaryIO:
    """``path`` opened for reading, after the checks of the module docstring.

    Args:
        path: the file; a symlink is followed only when it ends inside ``within``.
        within: the folders it may lie in; empty: anywhere (the other checks still apply).
        max_bytes: refuse a bigger file (its size read from the opened descriptor).
        where: what the messages call ``within``.

    Raises:
        FileRefused: naming the file and why (a link out of the folder, not a regular
            file, too big, missing, unreadable).
    """
    path = Path(path)
    name = path.name or str(path)
    folders = [os.path.realpath(f) for f in within]
    real = os.path.realpath(path)
    if folders and not any(Path(real).is_relative_to(f) for f in folders):
        raise FileRefused(f"{name} is a link to a file outside {where}; not read")
    try:
        # The path has no symlink left; O_NOFOLLOW refuses one put there since.
        fd = os.open(real, _FLAGS)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise FileRefused(f"{name} is a symbolic link that changed while it was opened; not read") from None
        if e.errno == errno.ENOENT:
            raise FileRefused(f"{name} does not exist") from None
        raise FileRefused(f"{name} cannot be read ({e.strerror or e})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            kind = next((k for test, k in _KINDS if test(st.st_mode)), "not a regular file")
            raise FileRefused(f"{name} is {kind}, not an image or data file; not read")
        if folders:
            # A folder on the way could have been swapped for a link after realpath:
            # where the descriptor really points settles it (Linux says so in /proc).
            try:
                opened = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                opened = None
            if opened is not None and not any(Path(opened).is_relative_to(f) for f in folders):
                raise FileRefused(f"{name} is a link to a file outside {where}; not read")
        if max_bytes is not None and st.st_size > max_bytes:
            raise FileRefused(f"{name} is {st.st_size:,} bytes, more than the {max_bytes:,} allowed; not read",
                              size=st.st_size)
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | Path, within: Iterable[str | Path] = (), max_bytes: int = 2**31,
                 where: str = "the shared folder") -> bytes:
    """The bytes of ``path`` (see :func:`open_regular`), at most ``max_bytes`` of them: a
    file that grew past the cap after its size was checked is refused, not read on."""
    with open_regular(path, within, max_bytes, where) as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        name = Path(path).name
        raise FileRefused(f"{name} grew past {max_bytes:,} bytes while it was read; not read", size=len(data))
    return data
