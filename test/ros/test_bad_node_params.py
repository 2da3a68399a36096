"""Bad parameters given to the node executables: refused by name before rclpy, exit code 2.

What a user checks, starting a node as `ros2 run` does (a process with `--ros-args`): a
misspelt parameter name is refused, naming the closest real one and listing the node's
parameters (rclpy alone ignores it, and the node runs on the default); a value of the wrong
type or outside its range is refused naming the parameter and what is allowed, with how to
set it; an integer where a number is declared is taken as that number
(`-p real_time_factor:=1`); and none of it prints a traceback. Parameters from a params file
are checked the same way.

Each row is one node start (about a second); the rows run a few at a time in one fixture.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
from rcl_interfaces.msg import ParameterType
from rclpy.context import Context
from rclpy.parameter import Parameter

from support import REPO
from visuomotor.params import ParameterError
from visuomotor.ros.bridge_node import BridgeNode

#: The console scripts of setup.py and the modules they run.
EXECUTABLES = {
    'sim_node': 'visuomotor.ros.sim_node', 'safety_bridge': 'visuomotor.ros.bridge_node',
    'policy_node': 'visuomotor.ros.policy_node', 'capture_node': 'visuomotor.ros.capture_node',
    'recorder_node': 'visuomotor.ros.recorder_node',
    'calibration_capture_node': 'visuomotor.ros.calibration_capture_node',
    'teleop_node': 'visuomotor.ros.teleop_node', 'sim_quest_node': 'visuomotor.ros.sim_quest_node',
}


@dataclass(frozen=True)
class Row:
    """A node started with `args` after --ros-args ({tmp}: a folder made here); the message
    must contain `names` (the parameter) and `fix` (what is allowed, or the valid names)."""

    id: str
    executable: str
    args: str
    names: str
    fix: str
    marks: tuple[pytest.MarkDecorator, ...] = ()


ROWS = [
    # a misspelt name: refused, with the closest one and the list
    Row('sim-misspelt', 'sim_node', '-p real_time_facter:=1.0', 'real_time_facter',
        "did you mean 'real_time_factor'"),
    Row('bridge-misspelt', 'safety_bridge', '-p workspce:=twin_fr3', 'workspce',
        "did you mean 'workspace'"),
    Row('policy-misspelt', 'policy_node', '-p modle:=/models/x', 'modle',
        "did you mean 'model'"),
    Row('capture-misspelt', 'capture_node', '-p rigg:=fake_two', 'rigg', "did you mean 'rig'"),
    Row('recorder-misspelt', 'recorder_node', '-p datset:=/tmp/d', 'datset',
        "did you mean 'dataset'"),
    Row('calibration-capture-misspelt', 'calibration_capture_node', '-p moed:=robot', 'moed',
        "did you mean 'mode'"),
    Row('teleop-misspelt', 'teleop_node', '-p timer_rate:=50.0', 'timer_rate',
        "did you mean 'timer_rate_hz'"),
    Row('sim-quest-misspelt', 'sim_quest_node', '-p episode:=3', 'episode',
        "did you mean 'episodes'"),
    Row('unknown-lists-the-parameters', 'capture_node', '-p camera:=x', 'camera',
        'its parameters are frozen_repeats, read_timeout_s, rig'),
    # the wrong type
    Row('sim-type', 'sim_node', '-p seed:=abc', 'seed', 'must be an integer'),
    Row('bridge-type', 'safety_bridge', '-p arm_on_start:=1', 'arm_on_start',
        'must be true or false'),
    Row('policy-type', 'policy_node', '-p fp16:=maybe', 'fp16', 'must be true or false'),
    Row('capture-type', 'capture_node', '-p read_timeout_s:=fast', 'read_timeout_s',
        'must be a number'),
    Row('recorder-type', 'recorder_node', '-p fps:=true', 'fps', 'must be a number'),
    Row('calibration-capture-type', 'calibration_capture_node', '-p settle_s:=[1,2]',
        'settle_s', 'must be a number'),
    Row('teleop-type', 'teleop_node', '-p robot:=5', 'robot',
        "quote it so that ROS reads a string: -p \"robot:='5'\""),
    Row('sim-quest-type', 'sim_quest_node', '-p episodes:=2.5', 'episodes',
        'must be an integer'),
    # out of range, or not one of the choices
    Row('sim-range', 'sim_node', '-p real_time_factor:=200.0', 'real_time_factor',
        'within [0.0, 100.0], got 200.0'),
    Row('bridge-range', 'safety_bridge', '-p control_rate_hz:=0.5', 'control_rate_hz',
        'within [1.0, 500.0]'),
    Row('policy-range', 'policy_node', '-p threads:=100', 'threads', 'within [0, 64]'),
    Row('capture-range', 'capture_node', '-p frozen_repeats:=-1', 'frozen_repeats',
        'within [0, 1000]'),
    Row('recorder-range', 'recorder_node', '-p fps:=0.5', 'fps', 'within [1.0, 120.0]'),
    Row('calibration-capture-choice', 'calibration_capture_node', '-p mode:=auto', 'mode',
        "one of ['robot', 'operator']"),
    Row('teleop-range', 'teleop_node', '-p timer_rate_hz:=1.0', 'timer_rate_hz',
        'within [5.0, 500.0]'),
    Row('sim-quest-range', 'sim_quest_node', '-p episodes:=0', 'episodes', 'within [1, 100]'),
    Row('bridge-choice-close', 'safety_bridge', '-p tier:=nominl', 'tier',
        "did you mean 'nominal'"),
    Row('sim-not-finite', 'sim_node', '-p tick_s:=.nan', 'tick_s', 'finite'),
    # from a params file (the runner's and launch's route)
    Row('params-file-misspelt', 'teleop_node',
        '--params-file {tmp}/teleop_misspelt.yaml', 'timer_rate_hzz',
        "did you mean 'timer_rate_hz'"),
    Row('params-file-range', 'safety_bridge', '--params-file {tmp}/bridge_range.yaml',
        'watchdog_s', 'within [0.005, 1.0]'),
    # a workspace box in millimetres, or made for another robot
    Row('workspace-in-millimetres', 'safety_bridge', '-p workspace:={tmp}/box_mm.yaml',
        'min_xyz_m', 'looks like millimetres'),
    Row('workspace-of-another-robot', 'safety_bridge', '-p robot:=fr3 -p workspace:=twin_ur5e',
        "measured for 'ur5e'", 'twin_fr3'),
    Row('bridge-unknown-robot', 'safety_bridge', '-p robot:=fr4', "'fr4'", 'available: fr3'),
    Row('recorder-dataset-is-a-file', 'recorder_node',
        '-p dataset:={tmp}/a_file -p calibration_override:=test', 'a_file is a file',
        'choose a new dataset path'),
    # refused after the parameters were read (the node is torn down half built), and a
    # command line rclpy itself cannot parse
    Row('sim-unknown-scene', 'sim_node', '-p scene:=nosuch', "'nosuch'", 'available'),
    Row('malformed-override', 'sim_node', '-p seed', 'seed', 'name:=value'),
]


@pytest.fixture(scope='module')
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp('bad_node_params')
    (folder / 'a_file').write_text('not a dataset\n')
    (folder / 'teleop_misspelt.yaml').write_text(
        '/**:\n  ros__parameters:\n    timer_rate_hzz: 50.0\n')
    (folder / 'bridge_range.yaml').write_text(
        'safety_bridge:\n  ros__parameters:\n    watchdog_s: 5.0\n')
    (folder / 'box_mm.yaml').write_text(
        'robot: fr3\nframe: fr3_link0\nmin_xyz_m: [150, -400, 5]\nmax_xyz_m: [800, 400, 750]\n'
        'slowdown_zone_m: 0.03\n')
    return folder


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join([str(REPO / 'src'), env.get('PYTHONPATH', '')])
    env.setdefault('ROS_DOMAIN_ID', '43')
    env.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')
    return env


def _command(executable: str, args: str, tmp: Path) -> list[str]:
    return [sys.executable, '-m', EXECUTABLES[executable], '--ros-args',
            *args.format(tmp=tmp).split()]


def _start(row: Row, tmp: Path) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(_command(row.executable, row.args, tmp), env=_env(),
                              capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired as expired:  # it started: the parameter was accepted
        out = expired.stdout.decode() if isinstance(expired.stdout, bytes) else ''
        return subprocess.CompletedProcess(expired.cmd, -1, out, 'still running after 60 s')


@pytest.fixture(scope='module')
def outcomes(tmp: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """Every row's node start, three at a time."""
    with ThreadPoolExecutor(max_workers=3) as pool:
        return dict(zip([r.id for r in ROWS], pool.map(lambda r: _start(r, tmp), ROWS),
                        strict=True))


@pytest.mark.parametrize('row', [pytest.param(r, id=r.id, marks=r.marks) for r in ROWS])
def test_a_bad_parameter_is_refused_by_name(row: Row,
                                            outcomes: dict[str, subprocess.CompletedProcess[str]]
                                            ) -> None:
    done = outcomes[row.id]
    output = done.stdout + done.stderr
    assert 'Traceback' not in output, output
    assert done.returncode == 2, output
    assert f'{row.executable}: refusing to start' in output
    assert row.names in output and row.fix in output, output


def test_every_executable_has_rows_for_a_name_a_type_and_a_range() -> None:
    kinds = {(r.executable, r.id.rsplit('-', 1)[-1]) for r in ROWS}
    for executable in EXECUTABLES:
        assert {(executable, 'misspelt'), (executable, 'type')} <= kinds, executable
        assert (executable, 'range') in kinds or (executable, 'choice') in kinds, executable


def _wait_for(process: subprocess.Popen[str], text: str, timeout_s: float) -> str:
    """Output of `process` until a line with `text` appears (or it ends, or time is up)."""
    lines: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if text in line:
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout_s)
    return ''.join(lines)


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[str]]]:
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:  # how a node ends on Ctrl-C is not what this file checks
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def test_an_integer_is_taken_where_a_number_is_declared(
        started: list[subprocess.Popen[str]]) -> None:
    process = subprocess.Popen(_command('sim_node', '-p real_time_factor:=1 -p tick_s:=0',
                                        Path()), env=_env(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    started.append(process)
    # tick_s 0 is out of range: the integer real_time_factor was accepted, the next is named
    output = _wait_for(process, 'refusing to start', 60)
    assert 'real_time_factor' not in output and 'tick_s: must be a number within' in output
    process = subprocess.Popen(_command('sim_node', '-p real_time_factor:=1', Path()),
                               env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    started.append(process)
    output = _wait_for(process, 'real_time_factor 1.0', 60)
    assert 'real_time_factor 1.0' in output and 'refusing' not in output, output


def test_the_integer_is_declared_as_the_float(ros_context: Context) -> None:
    node = BridgeNode(context=ros_context, parameter_overrides=[
        Parameter('control_rate_hz', value=100), Parameter('stale_s', value=1)])
    try:
        for name, value in (('control_rate_hz', 100.0), ('stale_s', 1.0)):
            declared = node.get_parameter(name)
            assert declared.type_ == Parameter.Type.DOUBLE and declared.value == value
        descriptor = node.describe_parameter('control_rate_hz')
        assert descriptor.type == ParameterType.PARAMETER_DOUBLE
    finally:
        node.destroy_node()


def test_parameter_overrides_of_an_in_process_node_are_checked_too(
        ros_context: Context) -> None:
    with pytest.raises(ParameterError, match="stale: is not a parameter of node 'safety_bridge' "
                       "\\(did you mean 'stale_s'\\?\\)"):
        BridgeNode(context=ros_context, parameter_overrides=[Parameter('stale', value=0.1)])
