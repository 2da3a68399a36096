"""Datasets in the old snapshot-link layout: read as they are, converted when recorded into.

Until this layout change a dataset path was a relative symlink into a hidden store,

    <parent>/<name> -> .<name>.store/v000012      (the committed snapshot, a LeRobot v3 tree)

with all episodes' metadata in one meta/episodes/chunk-000/file-000.parquet and no
`quality.flags` column. Readers follow the link (reader.py). Opening one for recording
converts it in place into the plain layout (store.py), announced in a log line:

1. beside it, `.<name>.converting/` is built: every video hard-linked (no copy), every data
   file rewritten with the `quality.flags` column (rows whose action is not finite get
   NO_ACTION: the episodes the old recorder kept with NaN actions are then marked), one
   episodes-metadata file per episode, tasks/stats linked, info.json with the new feature;
   everything fsynced;
2. the built directory and the link swap places in one `renameat2(RENAME_EXCHANGE)` (Linux
   3.15+; ext4, xfs, btrfs, tmpfs): readers of the path see the old link or the new directory,
   never nothing. Where the file system cannot exchange, the link is removed and the
   directory renamed in its place; a kill between the two leaves `.<name>.converting`,
   which the next open for recording moves into place (`finish_interrupted`);
3. the old link is removed, and the old store too unless another link still points into it
   (a `cp -a` of the old link made one).

A kill before step 2 leaves the old dataset as it was (the partial build is removed and redone
by the next open).
"""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from visuomotor.recording.episode import NO_ACTION
from visuomotor.recording.errors import DatasetError
from visuomotor.recording.lerobot_v3 import (
    DATA_PATH,
    EPISODES_PATH,
    FLAGS,
    INFO_PATH,
    STATS_PATH,
    TASKS_PATH,
    VIDEO_PATH,
    _episodes_table,
    _files,
    load_info,
    read_parquet,
)
from visuomotor.recording.store import fsync_dir, fsync_file

log = logging.getLogger(__name__)

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def snapshot_root(path: Path) -> Path | None:
    """The snapshot directory a legacy dataset link points at (None: not such a link)."""
    if not path.is_symlink():
        return None
    target = path.resolve()
    store = target.parent
    if not (store.name.startswith('.') and store.name.endswith('.store')):
        return None
    return target


def snapshot_info(path: Path) -> dict[str, Any] | None:
    """info.json of a legacy dataset (None: `path` is not one)."""
    root = snapshot_root(path)
    if root is None:
        return None
    if not root.is_dir():
        raise DatasetError(f'{path}: a link to {os.readlink(path)}, which does not exist (the '
                           'old snapshot layout, copied without its hidden .store directory, '
                           'or the store was removed); copy the dataset again with the store, '
                           'or record into a new dataset path')
    return load_info(root)


def converted_features(info: dict[str, Any]) -> dict[str, Any]:
    """The features a legacy dataset has once converted (`quality.flags` added)."""
    out: dict[str, Any] = {}
    for name, feature in info['features'].items():
        if name == 'timestamp' and FLAGS not in info['features']:
            out[FLAGS] = {'dtype': 'int64', 'shape': [1], 'names': None}
        out[name] = feature
    return out


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(code, f'exchanging {a} and {b}: {os.strerror(code)}')


def _building(path: Path) -> Path:
    return path.parent / f'.{path.name}.converting'


def finish_interrupted(path: Path) -> str | None:
    """Complete or clean up a conversion a kill interrupted; returns what was done."""
    build = _building(path)
    if not (build.exists() or build.is_symlink()):
        return None
    if not path.exists() and not path.is_symlink() and build.is_dir() and \
            (build / INFO_PATH).is_file():
        os.rename(build, path)
        fsync_dir(path.parent)
        return f'{path}: finished an interrupted conversion to the plain directory layout'
    if build.is_symlink() or build.is_file():
        build.unlink()
    else:
        shutil.rmtree(build)
    return f'{path}: removed {build.name} (left by an interrupted conversion)'


def convert(path: Path) -> str:
    """Convert a legacy dataset in place (see the module docstring); returns a log line."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    snapshot = snapshot_root(path)
    info = snapshot_info(path)
    if snapshot is None or info is None:
        raise DatasetError(f'{path}: not a dataset in the snapshot-link layout')
    build = _building(path)
    if build.exists() or build.is_symlink():
        finish_interrupted(path)
    build.mkdir()
    total = int(info['total_episodes'])
    rows = _legacy_episode_rows(snapshot, total)
    features = converted_features(info)
    columns = [k for k, v in features.items() if v.get('dtype') != 'video']
    videos = [k for k, v in features.items() if v.get('dtype') == 'video']
    directories = {build}
    flagged = 0
    for index, row in enumerate(rows):
        chunk, file = _files(index)
        source = snapshot / DATA_PATH.format(chunk_index=row['data/chunk_index'],
                                             file_index=row['data/file_index'])
        table = read_parquet(source, f'episode {index} data')
        mask = np.asarray(table.column('episode_index').to_numpy()) == index
        table = table.filter(pa.array(mask))
        if FLAGS not in table.column_names:
            action = table.column('action').combine_chunks()
            values = action.flatten().to_numpy(zero_copy_only=False).reshape(len(table), -1)
            bad = ~np.isfinite(values).all(axis=1)
            flagged += int(bad.sum())
            table = table.append_column(FLAGS, pa.array(np.where(bad, NO_ACTION, 0),
                                                        type=pa.int64()))
        table = table.select(columns)
        target = build / DATA_PATH.format(chunk_index=chunk, file_index=file)
        target.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, target)
        fsync_file(target)
        directories.add(target.parent)
        for key in videos:
            old = snapshot / VIDEO_PATH.format(video_key=key,
                                               chunk_index=row[f'videos/{key}/chunk_index'],
                                               file_index=row[f'videos/{key}/file_index'])
            new = build / VIDEO_PATH.format(video_key=key, chunk_index=chunk, file_index=file)
            new.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(old, new)
            directories.add(new.parent)
            row[f'videos/{key}/chunk_index'], row[f'videos/{key}/file_index'] = chunk, file
        row['data/chunk_index'], row['data/file_index'] = chunk, file
        row['meta/episodes/chunk_index'], row['meta/episodes/file_index'] = chunk, file
        meta = build / EPISODES_PATH.format(chunk_index=chunk, file_index=file)
        meta.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(_episodes_table([row]), meta)
        fsync_file(meta)
        directories.add(meta.parent)
    for relative in (TASKS_PATH, STATS_PATH):
        if (snapshot / relative).is_file():
            (build / relative).parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(snapshot / relative, build / relative)
            directories.add((build / relative).parent)
    info = dict(info, features=features)
    (build / INFO_PATH).parent.mkdir(parents=True, exist_ok=True)
    (build / INFO_PATH).write_text(json.dumps(info, indent=2) + '\n')
    fsync_file(build / INFO_PATH)
    directories.add((build / INFO_PATH).parent)
    for directory in sorted(directories, key=lambda p: len(p.parts), reverse=True):
        fsync_dir(directory)
        while directory != build:  # new parents too (meta/, data/, videos/<key>/)
            directory = directory.parent
            fsync_dir(directory)
    link = os.readlink(path)
    if _exchange(build, path):  # the path is now the directory; `build` the old link
        build.unlink()
    else:
        path.unlink()
        os.rename(build, path)
    fsync_dir(path.parent)
    kept = _remove_store(path, snapshot)
    return (f'{path}: converted from the old snapshot-link layout (a link to {link}) to a '
            f'plain LeRobot v3 directory: {total} episodes, per-episode metadata files, a '
            f'{FLAGS} column added ({flagged} rows without a finite action flagged); {kept}')


def _legacy_episode_rows(snapshot: Path, total: int) -> list[dict[str, Any]]:
    rows: dict[int, dict[str, Any]] = {}
    for file in sorted(snapshot.glob('meta/episodes/*/*.parquet')):
        for row in read_parquet(file, 'episodes metadata').to_pylist():
            rows.setdefault(int(row['episode_index']), row)
    missing = [i for i in range(total) if i not in rows]
    if missing:
        raise DatasetError(f'{snapshot}: meta/episodes has no row for episodes {missing[:5]} '
                           f'(info.json says {total}); restore the dataset from a copy')
    return [rows[i] for i in range(total)]


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or no hard links: a copy
        shutil.copy2(source, target)
        fsync_file(target)


def _remove_store(path: Path, snapshot: Path) -> str:
    """Remove the old store unless another link in the folder still points into it."""
    store = snapshot.parent
    others = [p.name for p in path.parent.iterdir() if p.is_symlink() and p != path
              and store in p.resolve().parents]
    if others:
        return (f'kept {store} (still linked from {others}: convert those by recording into '
                'them, or remove them)')
    shutil.rmtree(store, ignore_errors=True)
    fsync_dir(path.parent)
    return f'removed the old store {store.name}'
