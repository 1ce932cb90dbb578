"""Folders a batch job keeps in memory while it runs and on disk when it ends.

The replay and `unified-assets build` write Dagster's event log many thousand times (a year's
build: one materialization per asset and day, ~4,700), one small SQLite transaction per event,
and on a virtual disk each commit waits for the disk. Kept in memory (tmpfs), the same writes
cost about half; the folder is moved to its place on disk when the job ends, also when it
fails. While the job runs, the folder's path is a symbolic link to the memory copy, so the
UI can read it live.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

MEMORY = Path("/dev/shm")  # tmpfs on Linux
ROOM = 2 * 2**30  # free memory-backed space needed: a replayed year's instance is ~0.2 GiB


@contextmanager
def in_memory(folder: Path, memory: Path = MEMORY, room: int = ROOM,
              existing: bool = False) -> Iterator[bool]:
    """Keep `folder` in memory until the block ends, then move it to disk.

    Without `existing`, the folder must not exist yet; with it, a folder already there is
    moved into memory for the block and back (a memory copy that a killed job left behind is
    first put back on disk). Yields whether memory is used: not when there is no tmpfs or less
    than `room` bytes free on it (a container's default /dev/shm is 64 MiB), in which case
    `folder` is on disk throughout.
    """
    if folder.is_symlink() and existing:
        restore(folder)
    if folder.is_symlink() or (folder.exists() and not existing):
        raise FileExistsError(folder)
    if not memory.is_dir() or shutil.disk_usage(memory).free < room:
        folder.mkdir(parents=True, exist_ok=True)
        yield False
        return
    kept = Path(tempfile.mkdtemp(prefix=f"{folder.name}-", dir=memory))
    kept.chmod(0o755)  # as a folder made on disk would be
    if folder.exists():
        shutil.copytree(folder, kept, symlinks=True, dirs_exist_ok=True)
        shutil.rmtree(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    folder.symlink_to(kept, target_is_directory=True)
    try:
        yield True
    finally:
        restore(folder)


def restore(folder: Path) -> None:
    """Put the memory copy `folder` links to back in its place on disk."""
    kept = folder.resolve()
    folder.unlink()
    if kept.is_dir():
        shutil.copytree(kept, folder, symlinks=True)
        shutil.rmtree(kept)
    else:  # the memory copy is gone (a reboot): an empty folder, as a new one
        folder.mkdir()


def remove(folder: Path, memory: Path = MEMORY) -> None:
    """Delete `folder`, and the memory copy of a folder in it that a killed job left behind."""
    for link in folder.iterdir():
        if link.is_symlink() and link.resolve().parent == memory.resolve():
            shutil.rmtree(link.resolve(), ignore_errors=True)
    shutil.rmtree(folder)
