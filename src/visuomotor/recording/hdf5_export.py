"""Export a recorded dataset to a robomimic-style HDF5 file.

    data/                      attrs: total (frames), env_args (JSON: source, fps, robot, tasks)
      demo_<i>/                attrs: num_samples, task, provenance (JSON), marks (JSON)
        obs/<camera>_image     (T, H, W, 3) uint8, decoded from the episode's video
        obs/joint_positions    (T, N) float32 (observation.state)
        obs/capture_time_ns/<camera>   (T,) int64
        actions                (T, N) float32 (what the safety bridge sent)
        command_raw            (T, N) float32 (the policy/teleop target; NaN where none)
        quality_flags          (T,) int64 (0: a usable row; see recording/episode.py)
        rewards, dones         (T,) float32 / uint8 (dones[-1] = 1)
    mask/train                 the demo names

The file is written to a temporary name and renamed when complete.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from visuomotor.recording.errors import DatasetError
from visuomotor.recording.reader import DatasetReader


def export_hdf5(dataset: str | Path, out: str | Path) -> Path:
    """Write `out` (robomimic layout, see the module docstring); returns its path."""
    target = Path(out)
    if target.is_dir():
        raise DatasetError(f'{target}: is a directory; give the HDF5 file to write, e.g. '
                           f'{target / (Path(dataset).name + ".hdf5")}')
    if not target.parent.is_dir():
        raise DatasetError(f'{target}: its folder {target.parent} does not exist; create it '
                           'first or give another output path')
    reader = DatasetReader(dataset)
    partial = target.with_name(target.name + '.partial')
    try:
        _write(reader, dataset, partial)
    except BaseException:
        partial.unlink(missing_ok=True)  # a failed export leaves nothing behind
        raise
    os.replace(partial, target)
    return target


def _write(reader: DatasetReader, dataset: str | Path, partial: Path) -> None:
    import h5py

    total = 0
    names = []
    with h5py.File(partial, 'w') as f:
        data = f.create_group('data')
        for index in range(len(reader)):
            episode = reader.episode(index)
            name = f'demo_{index}'
            names.append(name)
            demo = data.create_group(name)
            obs = demo.create_group('obs')
            for camera in reader.cameras:
                shape = tuple(reader.features[f'observation.images.{camera}']['shape'])
                images = obs.create_dataset(f'{camera}_image', (episode.length, *shape),
                                            dtype=np.uint8, compression='gzip',
                                            compression_opts=4, chunks=(1, *shape))
                for k, frame in enumerate(episode.iter_frames(camera)):  # frame by frame
                    images[k] = frame
                obs.create_dataset(f'capture_time_ns/{camera}',
                                   data=episode.columns[f'timing.capture_ns.{camera}'])
            cols = episode.columns
            obs.create_dataset('joint_positions', data=cols['observation.state'].astype(
                np.float32))
            demo.create_dataset('actions', data=cols['action'].astype(np.float32))
            demo.create_dataset('command_raw', data=cols['command.raw'].astype(np.float32))
            demo.create_dataset('quality_flags', data=episode.flags)
            length = episode.length
            demo.create_dataset('rewards', data=np.zeros(length, np.float32))
            dones = np.zeros(length, np.uint8)
            dones[-1] = 1
            demo.create_dataset('dones', data=dones)
            demo.attrs['num_samples'] = length
            demo.attrs['task'] = episode.task
            demo.attrs['provenance'] = json.dumps(episode.provenance, default=str)
            demo.attrs['marks'] = json.dumps(episode.marks)
            total += length
        data.attrs['total'] = total
        data.attrs['env_args'] = json.dumps({
            'source': str(Path(dataset).resolve()), 'format': 'visuomotor LeRobot v3.0 export',
            'fps': reader.fps, 'robot_type': reader.info.get('robot_type'),
            'tasks': reader.tasks,
            'state_names': reader.features['observation.state']['names']})
        f.create_group('mask').create_dataset('train', data=np.array(names, dtype='S'))
