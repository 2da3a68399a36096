"""Bad input at the edge of every `visuomotor` command: a clear refusal, never a traceback.

What a user checks: a wrong flag, a wrong number, a wrong file or a wrong environment ends the
command at once with exit code 2 (130 for Ctrl-C) and a message that names the input and
says what is expected or what to do; no traceback.

The table runs each command line in-process (`cli.main`) on files made here. The work each
command exists for (training, rollouts, the demo, the graphs, calibration) is replaced by a
tripwire, so a row passes only when the input is refused before any work starts, which is
also when the refusal is useful. Rows that need a real process (Ctrl-C, another Python, an
environment without MUJOCO_GL) run `visuomotor` as a subprocess. The loaders that commands
and nodes share (workspace boxes, image folders, capture folders) have a table of their own;
the node executables' parameters are in test/ros/test_bad_node_params.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pytest

from support import REPO
from visuomotor import cli
from visuomotor.cli import main

BUNDLE = REPO / 'models' / 'pick_place_fr3'
PRESET = REPO / 'config' / 'preprocessing' / 'imagenet_224.json'


def _cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


class ReachedTheWork(BaseException):  # noqa: N818  (not an error: a tripwire)
    """A command got past its checks to the work itself (BaseException: no CLI catches it)."""


# The work of each command: a row must be refused before it is reached.
WORK = ('visuomotor.training.train.train', 'visuomotor.training.demo_policy.evaluate',
        'visuomotor.training.demo_policy.train_demo',
        'visuomotor.explain.offline.explain_dataset',
        'visuomotor.explain.alignment.run_alignment_test', 'visuomotor.ros.demo.run_demo',
        'visuomotor.ros.runner.run_graph', 'visuomotor.sim.calibrate_twin.calibrate_twin',
        'visuomotor.sim.calibration_capture.verify_on_twin')


@pytest.fixture(scope='module')
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The inputs the rows refer to as {name} (paths as text)."""
    from visuomotor.calibration.captures import CaptureWriter
    from visuomotor.preprocessing import PreprocessSpec, save_spec
    from visuomotor.robots.description import load_robot
    from visuomotor.training.demos import record_demos

    tmp = tmp_path_factory.mktemp('bad_input')
    record_demos(tmp / 'dataset', (1000,))
    (tmp / 'a_file').write_text('not a folder\n')
    (tmp / 'a_folder').mkdir()
    (tmp / 'notes.png').write_text('a text file with an image suffix\n')
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp / 'frame.png'), frame)
    cv2.imwrite(str(tmp / 'frame16.png'), frame.astype(np.uint16) * 257)
    cv2.imwrite(str(tmp / 'frame_float.tiff'), frame.astype(np.float32) / 255.0)
    save_spec(PreprocessSpec(input_encoding='mono16', input_height=480, input_width=640,
                             color='gray', scale=1 / 65535), tmp / 'mono16.json')
    shutil.copytree(BUNDLE, tmp / 'existing_bundle')
    fr3 = load_robot('fr3')
    for name in ('captures_not_image', 'captures_16bit'):
        writer = CaptureWriter(tmp / name, 'fr3', fr3.joint_names, ['wrist_camera'])
        writer.add(fr3.home_rad, {'wrist_camera': frame[:, :, ::-1]})
    (tmp / 'captures_not_image' / '0001_wrist_camera.png').write_text('truncated\n')
    cv2.imwrite(str(tmp / 'captures_16bit' / '0001_wrist_camera.png'),
                frame.astype(np.uint16) * 257)
    paths = {p.name.replace('.', '_'): str(p) for p in tmp.iterdir()}
    return {**paths, 'tmp': str(tmp), 'bundle': str(BUNDLE), 'preset': str(PRESET)}


@dataclass(frozen=True)
class Row:
    """One bad input: the command line ({name}: a path from `files`), the exit code, a piece
    of the message naming the input and a piece naming what is expected or the fix."""

    id: str
    argv: str
    names: str
    fix: str
    code: int = 2
    setup: Callable[[pytest.MonkeyPatch], None] | None = field(default=None, compare=False)
    marks: tuple[pytest.MarkDecorator, ...] = ()


def _missing(module: str) -> Callable[[pytest.MonkeyPatch], None]:
    """Setup: `module` cannot be imported (as in a Python without the project's packages)."""
    return lambda monkeypatch: monkeypatch.setitem(sys.modules, module, None)


NO_CUDA = (pytest.mark.skipif('_cuda_available()', reason='this machine has CUDA'),)
CUDA = (pytest.mark.skipif('not _cuda_available()', reason='this machine has no CUDA'),)

ROWS = [
    # argparse prefix matching is off: a prefix is refused, naming the real option
    Row('seed-is-not-seeds', 'evaluate {bundle} --seed 3', '--seed', 'did you mean --seeds'),
    Row('step-is-not-steps', 'train {dataset} {tmp}/new --step 3', '--step',
        'did you mean --steps'),
    Row('prefix-no-sal', 'explain {bundle} {dataset} --no-sal', '--no-sal', '--no-saliency'),
    Row('prefix-train', 'alignment-test --train 5', '--train', '--train-scenes'),
    Row('prefix-episode', 'demo --episode 3', '--episode', '--episodes'),
    Row('prefix-rate', 'dataset check {dataset} --rate 0.1', '--rate', '--rate-tolerance'),
    Row('prefix-cap', 'calibrate verify --rig twin_fr3 --cap {tmp}', '--cap', '--captures'),
    Row('prefix-first', 'evaluate {bundle} --first 5000', '--first', '--first-seed'),
    Row('unknown-command', 'trian {dataset} {tmp}/new', "'trian'", 'choose from'),
    Row('unknown-tool', 'dataset chek {dataset}', "'chek'", 'choose from'),
    # counts and ranges
    Row('seeds-0', 'evaluate {bundle} --seeds 0', '--seeds', 'whole number >= 1'),
    Row('seeds-negative', 'evaluate {bundle} --seeds -3', '--seeds', 'whole number >= 1'),
    Row('seeds-words', 'evaluate {bundle} --seeds many', '--seeds', 'whole number >= 1'),
    Row('seeds-beyond-the-demo-seeds', 'evaluate {bundle} --seeds 21', '--seeds 21',
        '--first-seed'),
    Row('first-seed-negative', 'evaluate {bundle} --first-seed -1', '--first-seed', '>= 0'),
    Row('demo-episodes-0', 'demo --episodes 0', '--episodes', '>= 1'),
    Row('explain-stride-0', 'explain {bundle} {dataset} --stride 0', '--stride 0',
        'stride must be at least 1'),
    Row('explain-scale-negative', 'explain {bundle} {dataset} --scale -1', '--scale', '>= 1'),
    Row('explain-episodes-words', 'explain {bundle} {dataset} --episodes one',
        "--episodes 'one'", 'indices like 0,2,5'),
    Row('alignment-train-scenes-0', 'alignment-test --train-scenes 0', '--train-scenes',
        '>= 1'),
    Row('alignment-test-scenes-1', 'alignment-test --test-scenes 1', '--test-scenes', '>= 2'),
    Row('alignment-steps-0', 'alignment-test --steps 0', '--steps', '>= 1'),
    Row('train-steps-0', 'train {dataset} {tmp}/new --steps 0', 'steps', 'must be >= 1'),
    Row('train-seed-negative', 'train {dataset} {tmp}/new --seed -1', '--seed', '>= 0'),
    Row('train-learning-rate-0', 'train {dataset} {tmp}/new --learning-rate 0',
        'learning_rate', 'must be > 0'),
    Row('train-head', 'train {dataset} {tmp}/new --head lstm', '--head', 'choose from'),
    Row('train-episodes-words', 'train {dataset} {tmp}/new --episodes first', "'first'",
        'indices and ranges like 0,3-5'),
    Row('train-batch-words', 'train {dataset} {tmp}/new --batch-size big', '--batch-size',
        'invalid int value'),
    Row('check-rate-tolerance-0', 'dataset check {dataset} --rate-tolerance 0',
        '--rate-tolerance', 'number > 0'),
    Row('check-skew-negative', 'dataset check {dataset} --max-skew-ms -5', '--max-skew-ms',
        'number > 0'),
    Row('gate-max-age-negative', 'calibrate gate --rig twin_fr3 --max-age-h -1',
        '--max-age-h', '>= 0'),
    Row('verify-move', 'calibrate verify --rig twin_fr3 --move wrist', "--move 'wrist'",
        'CAMERA:dx,dy,dz'),
    Row('intrinsics-board', 'calibrate intrinsics --rig {tmp}/rig --camera wrist_camera '
        '--captures {captures_16bit} --board 5x7', "--board '5x7'", 'SQUARESxSQUARES'),
    # launch arguments
    Row('launch-unknown-argument', 'launch deploy polcy:=x', "'polcy'", 'deploy takes'),
    Row('launch-not-name-value', 'launch deploy robot=fr3', "'robot=fr3'", 'name:=value'),
    Row('launch-unknown-robot', 'launch record robot:=fr4', "'fr4'", 'is not one of'),
    Row('launch-unknown-graph', 'launch teleop', "'teleop'", 'choose from'),
    # --device
    Row('train-cuda-without-cuda', 'train {dataset} {tmp}/new --device cuda', '--device cuda',
        'use --device cpu', marks=NO_CUDA),
    Row('train-device-gpu', 'train {dataset} {tmp}/new --device gpu', "--device 'gpu'",
        'cpu, cuda or cuda:N'),
    Row('train-cuda-index-without-cuda', 'train {dataset} {tmp}/new --device cuda:7',
        '--device cuda:7', 'use --device cpu', marks=NO_CUDA),
    Row('train-cuda-index-beyond-the-gpus', 'train {dataset} {tmp}/new --device cuda:7',
        '--device cuda:7', 'CUDA devices (cuda:0', marks=CUDA),
    Row('evaluate-has-no-device', 'evaluate {bundle} --device cuda', '--device',
        'only `visuomotor train` takes --device'),
    Row('explain-has-no-device', 'explain {bundle} {dataset} --device cuda', '--device',
        'only `visuomotor train` takes --device'),
    Row('alignment-has-no-device', 'alignment-test --device cuda', '--device',
        'only `visuomotor train` takes --device'),
    # an existing bundle, output paths that are folders, files or in no folder
    Row('train-into-a-bundle', 'train {dataset} {existing_bundle}', 'already holds a policy '
        'bundle', '--overwrite'),
    Row('train-into-a-file', 'train {dataset} {a_file}', 'is a file', 'folder'),
    Row('preprocess-out-folder', 'preprocess --spec {preset} {frame_png} --out {a_folder}',
        '--out', 'is a folder; give a file path'),
    Row('preprocess-out-no-folder', 'preprocess --spec {preset} {frame_png} --out '
        '{tmp}/nowhere/seen.png', 'nowhere does not exist', 'mkdir -p'),
    Row('preprocess-out-suffix', 'preprocess --spec {preset} {frame_png} --out {tmp}/seen.txt',
        '.txt', '.png'),
    Row('export-into-a-folder', 'dataset export-hdf5 {dataset} {a_folder}', 'is a folder',
        'give a file path'),
    Row('export-into-no-folder', 'dataset export-hdf5 {dataset} {tmp}/nowhere/d.hdf5',
        'nowhere does not exist', 'mkdir -p'),
    Row('check-sheet-folder', 'dataset check {dataset} --sheet {a_folder}', '--sheet',
        'is a folder'),
    Row('check-sheet-no-folder', 'dataset check {dataset} --sheet {tmp}/nowhere/s.png',
        '--sheet', 'mkdir -p'),
    Row('explain-out-file', 'explain {bundle} {dataset} --out {a_file}', '--out',
        'is a file, not a folder'),
    Row('alignment-out-file', 'alignment-test --out {a_file}', '--out',
        'is a file, not a folder'),
    Row('demo-out-file', 'demo --out {a_file}', '--out', 'is a file, not a folder'),
    Row('calibrate-twin-out-file', 'calibrate twin --out {a_file}', '--out',
        'is a file, not a folder'),
    Row('launch-log-dir-file', 'launch deploy --log-dir {a_file}', '--log-dir',
        'is a file, not a folder'),
    Row('train-demo-work-file', 'train-demo --work {a_file}', '--work',
        'is a file, not a folder'),
    Row('train-demo-models-file', 'train-demo --models {a_file}', '--models',
        'is a file, not a folder'),
    Row('calibrate-rig-file', 'calibrate intrinsics --rig {a_file} --camera wrist_camera '
        '--captures {captures_16bit}', '--rig', 'is a file, not a folder'),
    # images and specs
    Row('preprocess-not-an-image', 'preprocess --spec {preset} {notes_png}', 'notes.png',
        'is not an image'),
    Row('preprocess-folder-as-image', 'preprocess --spec {preset} {a_folder}', 'a_folder',
        'give the path of an image file'),
    Row('preprocess-missing-image', 'preprocess --spec {preset} {tmp}/missing.png',
        'missing.png', 'does not exist'),
    Row('preprocess-16-bit-is-converted', 'preprocess --spec {preset} {frame16_png} --out '
        '{tmp}/seen16.png', 'frame16.png', '16-bit image converted to 8-bit', code=0),
    Row('preprocess-float-image', 'preprocess --spec {preset} {frame_float_tiff}',
        'frame_float.tiff', '32-bit float'),
    Row('preprocess-8-bit-for-mono16', 'preprocess --spec {mono16_json} {frame_png}',
        'frame.png', '16-bit single-channel'),
    Row('preprocess-image-as-spec', 'preprocess --spec {frame_png} {frame_png}', 'frame.png',
        'is not a text file'),
    Row('spec-folder', 'spec {a_folder}', 'a_folder', 'cannot be read'),
    Row('captures-not-an-image', 'calibrate intrinsics --rig {tmp}/rig --camera wrist_camera '
        '--captures {captures_not_image} --board 5x7:0.06:0.045', '0001_wrist_camera.png',
        're-capture this view'),
    # the environment
    Row('python-without-opencv', 'preprocess --spec {preset} {frame_png}', "'cv2'",
        'make setup', setup=_missing('cv2')),
    Row('python-without-torch', 'train {dataset} {tmp}/new --device cuda', "'torch'",
        'scripts/env.sh', setup=_missing('torch')),
    Row('incomplete-install', 'preprocess --spec {preset} {frame_png}',
        'visuomotor.preprocessing.image_files', 'rebuild',
        setup=_missing('visuomotor.preprocessing.image_files')),
]


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out + captured.err


@pytest.mark.parametrize('row', [pytest.param(r, id=r.id, marks=r.marks) for r in ROWS])
def test_a_bad_command_line_is_refused_by_name(row: Row, files: dict[str, str],
                                               monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    def trip(*args: object, **kwargs: object) -> None:
        raise ReachedTheWork(f'{row.id}: not refused before the work started')

    for target in WORK:
        monkeypatch.setattr(target, trip)
    if row.setup is not None:
        row.setup(monkeypatch)
    code, output = _run(row.argv.format(**files).split(), capsys)
    assert 'Traceback' not in output
    assert code == row.code, output
    assert row.names in output and row.fix in output, output


def test_the_table_covers_every_command() -> None:
    commands = {r.argv.split()[0] for r in ROWS}
    parser = cli.build_parser()
    subcommands = next(a for a in parser._actions
                       if isinstance(a, cli.argparse._SubParsersAction))
    assert commands >= set(subcommands.choices)


def test_no_parser_accepts_an_abbreviation() -> None:
    def parsers(parser: cli.argparse.ArgumentParser) -> list[cli.argparse.ArgumentParser]:
        found = [parser]
        for action in parser._actions:
            if isinstance(action, cli.argparse._SubParsersAction):
                for sub in action.choices.values():
                    found += parsers(sub)
        return found

    every = parsers(cli.build_parser())
    assert len(every) > 15 and all(not p.allow_abbrev for p in every)


def test_an_overwrite_flag_lets_train_replace_a_bundle(files: dict[str, str],
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    reached = []

    def train(*args: object, **kwargs: object) -> None:
        reached.append(args)
        raise ReachedTheWork('training')

    monkeypatch.setattr('visuomotor.training.train.train', train)
    with pytest.raises(ReachedTheWork):
        main(['train', files['dataset'], files['existing_bundle'], '--overwrite'])
    assert reached and str(reached[0][1]) == files['existing_bundle']


def test_the_16_bit_frame_is_seen_like_its_8_bit_original(files: dict[str, str],
                                                          capsys: pytest.CaptureFixture[str]
                                                          ) -> None:
    tmp = Path(files['tmp'])
    for name in ('frame_png', 'frame16_png'):
        assert main(['preprocess', '--spec', files['preset'], files[name], '--out',
                     str(tmp / f'seen_{name}.png')]) == 0
    capsys.readouterr()
    seen = [cv2.imread(str(tmp / f'seen_{n}.png')) for n in ('frame_png', 'frame16_png')]
    assert np.array_equal(seen[0], seen[1])


# -- rows that need a process of their own ------------------------------------------------------

def _env(**changes: str | None) -> dict[str, str]:
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([str(REPO / 'src'), env.get('PYTHONPATH', '')])
    for key, value in changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return env


def _interrupt(argv: list[str], started: str) -> tuple[int, str]:
    """Start `visuomotor ARGV`, press Ctrl-C (SIGINT) once it printed `started`; the exit
    code and the output."""
    def default_sigint() -> None:  # a shell's background job would start with SIGINT ignored
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    process = subprocess.Popen([sys.executable, '-m', 'visuomotor.cli', *argv], env=_env(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               preexec_fn=default_sigint)
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while not any(started in line for line in lines) and process.poll() is None and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=60)
    finally:
        process.kill()
    reader.join(10)
    return process.returncode, ''.join(lines)


@pytest.mark.parametrize(('argv', 'started'), [
    pytest.param(['train', '{dataset}', '{tmp}/ctrl_c_bundle', '--steps', '100000'],
                 'reading episodes', id='train'),
    pytest.param(['alignment-test', '--out', '{tmp}/ctrl_c_alignment'], 'recording',
                 id='alignment-test'),
])
def test_ctrl_c_ends_a_command_with_one_line_and_exit_130(argv: list[str], started: str,
                                                          files: dict[str, str]) -> None:
    code, output = _interrupt([a.format(**files) for a in argv], started)
    assert 'Traceback' not in output
    assert code == 130, output
    assert f'visuomotor {argv[0]}: interrupted (Ctrl-C)' in output
    assert len([line for line in output.splitlines() if 'interrupted' in line]) == 1


def test_ctrl_c_during_a_module_import_is_still_an_interrupt(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C while an extension module initialises reaches Python as ImportError (pybind11:
    'initialization failed', the KeyboardInterrupt as its cause)."""
    def spec(args: object) -> int:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as pressed:
            raise ImportError('initialization failed') from pressed

    monkeypatch.setattr(cli, '_spec', spec)
    assert main(['spec', str(PRESET)]) == 130
    assert 'visuomotor spec: interrupted (Ctrl-C)' in capsys.readouterr().err


def test_a_python_without_rclpy_is_told_to_source_ros(files: dict[str, str]) -> None:
    script = ('import sys; sys.modules["rclpy"] = None\n'
              'from visuomotor.cli import main\n'
              f'sys.exit(main(["demo", "--out", "{files["tmp"]}/demo"]))\n')
    done = subprocess.run([sys.executable, '-c', script], env=_env(), capture_output=True,
                          text=True, timeout=60)
    assert 'Traceback' not in done.stderr
    assert done.returncode == 2, done.stderr
    assert "'rclpy'" in done.stderr and 'source /opt/ros/' in done.stderr


SYSTEM_PYTHON = Path('/usr/bin/python3')


def _lacks_opencv(python: Path) -> bool:
    if not python.exists():
        return False
    return subprocess.run([str(python), '-c', 'import cv2'], capture_output=True,
                          env={'PATH': os.environ.get('PATH', '')}).returncode != 0


@pytest.mark.skipif(not _lacks_opencv(SYSTEM_PYTHON), reason='no system Python without OpenCV')
def test_the_system_python_is_told_to_use_the_environment(files: dict[str, str]) -> None:
    env = {'PATH': os.environ.get('PATH', ''), 'PYTHONPATH': str(REPO / 'src')}
    done = subprocess.run([str(SYSTEM_PYTHON), '-m', 'visuomotor.cli', 'preprocess', '--spec',
                           files['preset'], files['frame_png']], env=env, capture_output=True,
                          text=True, timeout=60)
    assert 'Traceback' not in done.stderr
    assert done.returncode == 2, done.stderr
    assert 'make setup' in done.stderr and 'scripts/env.sh' in done.stderr


def test_the_twin_renders_without_mujoco_gl_set() -> None:
    """`source .venv/bin/activate` sets no MUJOCO_GL (scripts/env.sh does): the twin picks a
    working default itself, before mujoco is imported."""
    script = ('import os\n'
              'from visuomotor.sim.config import load_scene\n'
              'from visuomotor.sim.task import PickPlaceTask\n'  # imports mujoco first
              'from visuomotor.sim.twin import Twin\n'
              'images = Twin(load_scene("fr3")).render()\n'
              'print(os.environ["MUJOCO_GL"], {k: v.shape for k, v in images.items()})\n')
    env = _env(MUJOCO_GL=None, PYOPENGL_PLATFORM=None, DISPLAY=None, WAYLAND_DISPLAY=None)
    done = subprocess.run([sys.executable, '-c', script], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "'scene_camera': (" in done.stdout


@pytest.mark.parametrize(('environ', 'libraries', 'chosen'), [
    ({}, {'EGL', 'OSMesa'}, 'egl'),
    ({}, {'OSMesa'}, 'osmesa'),
    ({'DISPLAY': ':0'}, set(), None),
    ({}, set(), 'egl'),
    ({'PYOPENGL_PLATFORM': 'osmesa'}, {'EGL', 'OSMesa'}, 'osmesa'),
    ({'PYOPENGL_PLATFORM': 'glx'}, {'EGL'}, None),
])
def test_the_mujoco_gl_default(environ: dict[str, str], libraries: set[str],
                               chosen: str | None) -> None:
    from visuomotor.sim.mujoco_gl import default_platform

    assert default_platform(environ, lambda name: name if name in libraries else None) == \
        chosen


def test_a_mujoco_gl_the_user_set_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    from visuomotor.sim import mujoco_gl

    monkeypatch.setenv('MUJOCO_GL', 'osmesa')
    assert mujoco_gl.set_default() == 'osmesa'


def test_graphs_started_by_the_cli_get_the_large_image_dds_profile(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv('FASTDDS_DEFAULT_PROFILES_FILE', raising=False)
    cli._default_dds_profile()
    assert Path(os.environ['FASTDDS_DEFAULT_PROFILES_FILE']).name == 'fastdds_large_images.xml'
    monkeypatch.setenv('FASTDDS_DEFAULT_PROFILES_FILE', '/etc/mine.xml')
    cli._default_dds_profile()
    assert os.environ['FASTDDS_DEFAULT_PROFILES_FILE'] == '/etc/mine.xml'


# -- the loaders that commands and nodes share ---------------------------------------------------

def _box(tmp: Path, robot: str = 'fr3', scale: float = 1.0, zone: float = 0.03) -> Path:
    path = tmp / f'box_{robot}_{scale:g}_{zone:g}.yaml'
    lo, hi = [v * scale for v in (0.15, -0.4, 0.005)], [v * scale for v in (0.8, 0.4, 0.75)]
    path.write_text(f'robot: {robot}\nframe: base\nmin_xyz_m: {lo}\nmax_xyz_m: {hi}\n'
                    f'slowdown_zone_m: {zone}\n')
    return path


def _fr3_workspace(source: Callable[[Path], str | Path]) -> Callable[[Path, dict[str, str]],
                                                                  object]:
    from visuomotor.safety.workspace import load_workspace

    return lambda tmp, files: load_workspace(source(tmp), 'fr3')


def _folder_camera(folder: Path) -> object:
    """Start a folder camera on `folder` (what the capture node does) and read one frame."""
    from visuomotor.cameras.fake_camera import FolderCamera

    camera = FolderCamera('scene', folder)
    camera.start()
    try:
        return camera.read(timeout_s=5.0)
    finally:
        camera.stop()


def _folder_with(tmp: Path, name: str, write: Callable[[Path], object]) -> Path:
    folder = tmp / 'camera_folder'
    folder.mkdir(exist_ok=True)
    cv2.imwrite(str(folder / '0000.png'), np.zeros((48, 64, 3), np.uint8))
    write(folder / name)
    return folder


def _read_image(path: str) -> object:
    from visuomotor.preprocessing.image_files import read_image

    return read_image(path)


def _captures(files: dict[str, str], name: str) -> object:
    from visuomotor.calibration.captures import load_captures

    return load_captures(files[name])


Load = Callable[[Path, dict[str, str]], object]
LOADER_ROWS: list[tuple[str, Load, str, str]] = [
    ('workspace-in-millimetres', _fr3_workspace(lambda t: _box(t, scale=1000.0)),
     'looks like millimetres', 'divide by 1000'),
    ('workspace-zone-in-millimetres', _fr3_workspace(lambda t: _box(t, zone=30.0)),
     'slowdown_zone_m', 'looks like millimetres'),
    ('workspace-of-another-robot', _fr3_workspace(lambda t: 'twin_ur5e'),
     "measured for 'ur5e'", 'twin_fr3'),
    ('workspace-of-another-robot-by-path', _fr3_workspace(lambda t: _box(t, robot='panda')),
     "measured for 'panda'", 'workspace of the fr3 cell'),
    ('folder-camera-not-an-image', lambda tmp, f: _folder_camera(
        _folder_with(tmp, '0001.png', lambda p: p.write_text('text'))),
     '0001.png', 'is not an image: OpenCV cannot read it'),
    ('folder-camera-missing-folder', lambda tmp, f: _folder_camera(tmp / 'nowhere'),
     'nowhere does not exist', 'give a folder of images'),
    ('captures-not-an-image', lambda tmp, f: _captures(f, 'captures_not_image'),
     '0001_wrist_camera.png', 're-capture this view'),
    ('read-image-float', lambda tmp, f: _read_image(f['frame_float_tiff']), '32-bit float',
     '8-bit PNG'),
    ('read-image-missing', lambda tmp, f: _read_image(str(tmp / 'nothing.png')),
     'nothing.png', 'does not exist'),
]


@pytest.mark.parametrize('row', [pytest.param(r, id=r[0]) for r in LOADER_ROWS])
def test_a_bad_file_is_refused_by_the_loader_naming_it(row: tuple[str, Load, str, str],
                                                       tmp_path: Path,
                                                       files: dict[str, str]) -> None:
    from visuomotor.errors import VisuomotorError

    _, load, names, fix = row
    with pytest.raises(VisuomotorError) as refused:
        load(tmp_path, files)
    assert names in str(refused.value) and fix in str(refused.value)


def test_16_bit_frames_are_converted_where_frames_are_read_and_it_is_said(
        tmp_path: Path, files: dict[str, str], caplog: pytest.LogCaptureFixture) -> None:
    frame = cv2.imread(files['frame_png'])
    captures = _captures(files, 'captures_16bit')
    assert np.array_equal(captures.views[0].images['wrist_camera'],  # type: ignore[attr-defined]
                          frame[:, :, ::-1])
    folder = tmp_path / 'sixteen'
    folder.mkdir()
    cv2.imwrite(str(folder / '0000.png'), np.full((48, 64, 3), 257 * 200, np.uint16))
    seen = _folder_camera(folder)
    assert int(seen.image.max()) == int(seen.image.min()) == 200  # type: ignore[attr-defined]
    assert sum('16-bit image converted to 8-bit' in r.getMessage()
               for r in caplog.records) == 2
