"""Crash-safe writes into a plain dataset directory that holds the LeRobot v3 layout directly.

    <dataset>/meta/info.json, meta/stats.json, meta/tasks.parquet     (LeRobot reads these,
    <dataset>/meta/episodes/chunk-CCC/file-FFF.parquet                 and only these)
    <dataset>/data/chunk-CCC/file-FFF.parquet
    <dataset>/videos/<key>/chunk-CCC/file-FFF.mp4
    <dataset>/.staging/                                                files being written

No file is ever modified in place. Every file is written under `.staging/` (a name LeRobot
never reads: it opens meta/info.json, meta/stats.json, meta/tasks.parquet, globs
meta/episodes/*/*.parquet and data/*/*.parquet, and formats video paths from the episodes
metadata), fsynced, and renamed over its final name; the directory is fsynced after the rename.
`rename(2)` is atomic and replaces only a directory entry, so a reader sees the old file or
the new one, never a mix, and a copy that shares the inodes (`cp -al`, a hard-link backup)
keeps its own version. Nothing in the dataset points outside it (no links, no absolute
paths), so `cp -r`, `cp -a`, `rsync -a` and `tar` copy a complete dataset.

What is published in what order, and what a kill at each moment leaves, is the writer's
business (lerobot_v3.py); this module only provides the durable steps.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

#: The staging directory inside a dataset (removed when empty; emptied on open).
STAGING = '.staging'


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a rename, a new file) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """Make a file's contents durable."""
    with open(path, 'rb') as handle:
        os.fsync(handle.fileno())


class DatasetDir:
    """One dataset directory and its staging area (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.staging = self.root / STAGING

    def make_dirs(self, directory: Path) -> None:
        """Create `directory` (absolute, inside the dataset) and its missing parents, durably."""
        missing = []
        current = directory
        while not current.is_dir():
            missing.append(current)
            current = current.parent
        for path in reversed(missing):
            path.mkdir(exist_ok=True)
            fsync_dir(path.parent)

    def _ensure_staging(self) -> Path:
        if not self.staging.is_dir():
            self.make_dirs(self.staging)
        return self.staging

    def stage_bytes(self, data: bytes, suffix: str = '') -> Path:
        """A new file (a fresh inode, never an existing one) under staging holding `data`."""
        fd, name = tempfile.mkstemp(dir=self._ensure_staging(), prefix='write-', suffix=suffix)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        return Path(name)

    def publish(self, relative: str, source: Path) -> None:
        """Move a finished file from staging to `relative`, durably.

        Any file there is replaced atomically; its inode (and other links to it) is untouched.
        """
        target = self.root / relative
        self.make_dirs(target.parent)
        fsync_file(source)
        os.replace(source, target)
        fsync_dir(target.parent)

    def write(self, relative: str, data: bytes) -> None:
        """Write `relative` with `data` by staging and renaming (never in place)."""
        self.publish(relative, self.stage_bytes(data, suffix=Path(relative).suffix))
        self._drop_empty_staging()  # outside a commit nothing else is staged

    def remove(self, relative: str) -> None:
        """Unlink a file (durably; other hard links to it are unaffected)."""
        target = self.root / relative
        target.unlink()
        fsync_dir(target.parent)

    def episode_staging(self, name: str) -> Path:
        """A fresh, empty staging directory for one episode."""
        path = self._ensure_staging() / name
        if path.exists():
            shutil.rmtree(path)
        path.mkdir()
        return path

    def remove_staged(self, path: Path) -> None:
        """Remove a staged file or directory, and the staging directory once it is empty."""
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists():
            path.unlink()
        self._drop_empty_staging()

    def _drop_empty_staging(self) -> None:
        try:
            self.staging.rmdir()  # only when empty
        except OSError:
            return
        fsync_dir(self.root)

    def clear_staging(self) -> list[str]:
        """Remove everything an interrupted run left in staging; returns what was removed."""
        removed: list[str] = []
        if not self.staging.is_dir():
            return removed
        for item in sorted(self.staging.iterdir()):
            if item.is_dir() and not item.is_symlink():
                empty = not any(item.iterdir())
                shutil.rmtree(item)
                what = 'empty: a commit had moved its files into place' if empty else \
                    'an episode that was being recorded or committed' \
                    if item.name.startswith('episode_') else 'unfinished files'
            else:
                item.unlink()
                what = 'a file that was being written'
            removed.append(f'{STAGING}/{item.name} ({what})')
        self._drop_empty_staging()
        return removed
