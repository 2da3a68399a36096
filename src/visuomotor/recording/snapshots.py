"""Crash-safe dataset directories: every committed state is a complete snapshot.

A snapshot is swapped in with one atomic rename.

    <parent>/<name>                  a symlink: the dataset root readers open
    <parent>/.<name>.store/
        v000012/                     the current snapshot (hard links to the files' inodes)
        staging/                     episodes being recorded (never seen by readers)

A commit builds the next snapshot beside the current one: hard links to every unchanged file
(no copy), the new files moved in, the metadata written; each file and directory is fsynced;
then a new symlink is renamed over the dataset path (`rename(2)` is atomic) and the previous
snapshot's directory (links only) is removed. A crash or kill -9 at any moment leaves the
symlink pointing at a complete snapshot; leftovers (a half-built snapshot, staging files) are
removed by `recover()` when the dataset is next opened.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

log = logging.getLogger(__name__)

_PREFIX = 'v'


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durably(path: Path, data: bytes) -> None:
    """Write a file and fsync it (it is only renamed into view afterwards)."""
    with open(path, 'wb') as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


class SnapshotStore:
    """The versioned store behind one dataset path (see the module docstring)."""

    def __init__(self, dataset: Path) -> None:
        self.dataset = Path(dataset)
        self.store = self.dataset.parent / f'.{self.dataset.name}.store'
        self.staging = self.store / 'staging'

    @property
    def exists(self) -> bool:
        """Whether a dataset has been committed here."""
        return self.dataset.is_symlink() and self.dataset.exists()

    def current(self) -> Path | None:
        """The current snapshot directory (None before the first commit)."""
        if not self.exists:
            return None
        return self.dataset.resolve()

    def _version(self) -> int:
        current = self.current()
        return int(current.name[len(_PREFIX):]) if current is not None else 0

    def create(self) -> None:
        """Prepare an empty store (refuses a plain directory at the dataset path)."""
        if self.dataset.exists() and not self.dataset.is_symlink():
            raise FileExistsError(
                f'{self.dataset} exists and is not a visuomotor dataset (a snapshot link); '
                'choose a new dataset path, or convert it with `visuomotor dataset import`')
        self.store.mkdir(parents=True, exist_ok=True)
        self.staging.mkdir(exist_ok=True)

    def recover(self) -> list[str]:
        """Remove what an interrupted run left behind; returns what was removed."""
        removed: list[str] = []
        if not self.store.is_dir():
            return removed
        current = self.current()
        for entry in sorted(self.store.iterdir()):
            if entry.name == 'staging':
                for item in sorted(entry.iterdir()):
                    shutil.rmtree(item) if item.is_dir() else item.unlink()
                    removed.append(f'staging/{item.name} (an episode that was being recorded)')
            elif entry.is_dir() and (current is None or entry.resolve() != current):
                shutil.rmtree(entry)
                removed.append(f'{entry.name} (a snapshot that was not committed, or '
                               'superseded)')
            elif entry.is_symlink() or entry.is_file():
                entry.unlink()
                removed.append(entry.name)
        for name in removed:
            log.warning('dataset %s: removed %s', self.dataset, name)
        return removed

    def commit(self, new_files: Mapping[str, Path], metadata: Mapping[str, bytes]) -> Path:
        """Publish the current snapshot plus `new_files` (moved in) and `metadata` (written).

        Args:
            new_files: dataset-relative path -> a finished file (in staging) to move there.
            metadata: dataset-relative path -> contents (replaces any file of that name).

        Returns:
            The new snapshot directory.
        """
        self.create()
        current = self.current()
        version = self._version() + 1
        target = self.store / f'{_PREFIX}{version:06d}'
        if target.exists():  # left by an interrupted commit
            shutil.rmtree(target)
        target.mkdir()
        replaced = set(new_files) | set(metadata)
        directories: set[Path] = {target}
        if current is not None:
            for source in current.rglob('*'):
                relative = source.relative_to(current).as_posix()
                if source.is_dir() or relative in replaced:
                    continue
                destination = target / relative
                destination.parent.mkdir(parents=True, exist_ok=True)
                os.link(source, destination)
                directories.add(destination.parent)
        for relative, source in new_files.items():
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            with open(source, 'rb') as handle:
                os.fsync(handle.fileno())
            os.replace(source, destination)
            directories.add(destination.parent)
        for relative, data in metadata.items():
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            write_durably(destination, data)
            directories.add(destination.parent)
        for directory in sorted(directories, key=lambda p: len(p.parts), reverse=True):
            _fsync_dir(directory)
        link = self.store / f'.link-{version:06d}'
        if link.is_symlink() or link.exists():
            link.unlink()
        os.symlink(os.path.relpath(target, self.dataset.parent), link)
        os.replace(link, self.dataset)  # the commit point
        _fsync_dir(self.dataset.parent)
        if current is not None:
            shutil.rmtree(current, ignore_errors=True)
        return target

    def episode_staging(self, name: str) -> Path:
        """A fresh staging directory for one episode."""
        self.create()
        path = self.staging / name
        if path.exists():
            shutil.rmtree(path)
        path.mkdir()
        return path
