"""Writing a file so that no reader ever sees half of it, and tidying up after killed writers.

A file is written under a hidden temporary name in the folder of its destination, then renamed
over it with :func:`os.replace`, which is atomic on one file system: a reader sees the old file
or the new one, never a mixture. Every writer gets a name of its own, so two processes saving
the same path at once cannot write into each other's bytes; the last rename wins, whole.

A process killed between creating its temporary file and renaming it cannot remove the file. So
the name records the host and process that made it (``.NAME.HOST-PID.RANDOM.partial``), and the
next writer to the same folder removes those whose process is gone. A temporary file of a
process that still runs is left alone, so concurrent writers never delete each other's work.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

#: Every temporary name ends with this.
PARTIAL_SUFFIX = ".partial"


def _host() -> str:
    # A dot or a dash in the host name would blur the fields of the temporary name.
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname()) or "host"


def owner_tag() -> str:
    """``HOST-PID`` of this process, as it appears in its temporary names."""
    return f"{_host()}-{os.getpid()}"


def _process_is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # it exists, under another user
        return False
    return False


#: A temporary name without ``HOST-PID`` (written by an earlier release of the book) is judged
#: stale once it is this old: no write of these files takes anywhere near an hour.
UNOWNED_STALE_SECONDS = 3600.0


def is_stale(name: str, prefix: str, age_seconds: float = 0.0) -> bool:
    """Is ``name`` a temporary file or folder left by a process of this host that has died?

    ``prefix`` is what the name starts with before ``HOST-PID.``. Names from another host are
    never judged stale: their process cannot be looked up from here. A name that carries no
    owner at all is stale when it is older than :data:`UNOWNED_STALE_SECONDS`.
    """
    if not name.startswith(prefix):
        return False
    match = re.match(r"(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)\.", name[len(prefix) :])
    if match is None:
        return name.endswith(PARTIAL_SUFFIX) and age_seconds > UNOWNED_STALE_SECONDS
    if match["host"] != _host():
        return False
    pid = int(match["pid"])
    return pid != os.getpid() and _process_is_gone(pid)


def remove_stale(folder: Path, prefix: str) -> list[Path]:
    """Remove the temporary files and folders in ``folder`` left by dead processes; return them.

    Anything that cannot be removed (a read-only folder, say) is left where it is.
    """
    removed = []
    try:
        entries = [entry for entry in folder.iterdir() if entry.name.startswith(prefix)]
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        try:
            age = now - entry.lstat().st_mtime
        except OSError:
            continue
        if not is_stale(entry.name, prefix, age):
            continue
        try:
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
        except OSError:
            continue
        removed.append(entry)
    return removed


def temporary_prefix(destination: Path) -> str:
    """The hidden prefix of every temporary name for ``destination`` (before ``HOST-PID.``)."""
    return f".{destination.name}."


@contextmanager
def atomic_writer(destination: Path, mode: int = 0o644) -> Iterator[tuple[IO[bytes], Path]]:
    """Open a fresh temporary file beside ``destination`` for writing; yield ``(file, path)``.

    When the body finishes, the file is flushed to disk, given ``mode`` and renamed over
    ``destination``. When the body raises (or the rename fails), the temporary file is removed
    and ``destination`` is left as it was. Temporary files of dead writers for the same
    destination are removed first.
    """
    folder = destination.parent
    prefix = temporary_prefix(destination)
    remove_stale(folder, prefix)
    handle, name = tempfile.mkstemp(
        dir=folder, prefix=f"{prefix}{owner_tag()}.", suffix=PARTIAL_SUFFIX
    )
    temporary = Path(name)
    try:
        with os.fdopen(handle, "wb") as out:
            yield out, temporary
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)  # mkstemp makes the file private
        os.replace(temporary, destination)
    finally:
        temporary.unlink(missing_ok=True)


def write_atomically(destination: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write ``destination`` through ``write(file_object)`` with :func:`atomic_writer`."""
    with atomic_writer(destination) as (out, _):
        write(out)
