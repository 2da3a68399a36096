"""Demo stage: a teleoperated recording session on the twin, through the whole record graph.

record_graph(robot:=sim, operator:=script) runs as processes (the launch-free runner, as
`ros2 launch visuomotor record.launch.py` would): the sim node, the safety bridge
(commissioning tier), the teleop node (config sim_quest), the simulated Quest and the
recorder, behind the calibration gate the stage before opened. The simulated operator
presses A, clutches with the grip, reaches, closes the gripper with the trigger, lifts,
re-clutches, moves aside, opens, presses A and holds B to go home; one more episode is
started and discarded with B. The dataset is then checked and a contact sheet written.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visuomotor.errors import VisuomotorError
from visuomotor.recording.check import DatasetCheck, check_dataset
from visuomotor.recording.reader import DatasetReader
from visuomotor.robots.description import load_robot
from visuomotor.robots.kinematics import tcp_pose
from visuomotor.ros.demo_checks import Check
from visuomotor.ros.graph import record_graph
from visuomotor.ros.runner import MonitoredGraph


@dataclass(frozen=True)
class TeleopFigures:
    """What the stage measured."""

    dataset: Path
    check: DatasetCheck
    episodes: list[dict[str, float]]
    pulses: int
    recorder_lines: list[str]
    bridge_stops: int
    sheet: Path
    wall_s: float
    bridge_faults: int = 0
    pulses_expected: int = 0


def expected_pulses(episodes: int) -> int:
    """Haptic pulses the scripted session's operator must feel.

    Start (1) and stop (2) per kept episode, and the discarded episode's start (1) and
    discard (1) (visuomotor.teleop.haptics).
    """
    return 3 * episodes + 2


def run_teleop_stage(out_dir: Path, calibration: str, episodes: int = 2,
                     report: Callable[[str], None] | None = None) -> TeleopFigures:
    """Run the session; returns the figures (raises if the session did not finish).

    A monitor follows the graph meanwhile and reports the bridge's state changes, errors on
    /diagnostics and faults through `report`.
    """
    say = report or (lambda line: None)
    dataset = out_dir / 'teleop_dataset'
    shutil.rmtree(dataset, ignore_errors=True)
    nodes = record_graph({'robot': 'sim', 'dataset': str(dataset), 'operator': 'script',
                          'episodes': str(episodes), 'arm_on_start': 'true',
                          'task': 'teleoperated reach', 'calibration': calibration})
    start = time.monotonic()
    with MonitoredGraph(nodes, out_dir / 'teleop_logs', lambda line: say(f'    {line}')
                        ) as running:
        graph = running.graph
        running.start()
        while graph.alive('sim_quest'):
            running.poll()
            if time.monotonic() - start > 600.0:
                raise VisuomotorError('the scripted teleop session did not finish: '
                                      + graph.log_tail('teleop', 20))
        if graph.exited() != {'sim_quest': 0}:
            raise VisuomotorError(f'the teleop session failed ({graph.exited()}): '
                                  + graph.log_tail('teleop', 20))
        graph.stop('recorder')
        faults = running.monitor.faults
        quest = graph.log_tail('sim_quest', 3)
        teleop = graph.log_tail('teleop', 200)
        bridge = graph.log_tail('safety_bridge', 400)
    wall = time.monotonic() - start
    pulses = re.search(r'\((\d+) haptic pulses felt\)', quest)
    sheet = out_dir / 'teleop_dataset_sheet.png'
    check = check_dataset(dataset, sheet=sheet)
    robot = load_robot('fr3')
    reader = DatasetReader(dataset)
    figures = []
    for index in range(len(reader)):
        episode = reader.episode(index)
        state = episode.columns['observation.state']
        tcp = np.array([tcp_pose(robot, q[:robot.dof])[:3, 3] for q in state])
        figures.append({'rows': float(episode.length),
                        'path_cm': float(np.sum(np.linalg.norm(np.diff(tcp, axis=0), axis=1))
                                         * 100),
                        'gripper_min_mm': max(0.0, float(state[:, robot.dof].min() * 1000))})
    lines = [line[line.index('recorder:'):] for line in teleop.splitlines()
             if 'recorder:' in line]
    return TeleopFigures(dataset, check, figures, int(pulses.group(1)) if pulses else 0, lines,
                         bridge.count('watchdog: no valid command'), sheet, wall, faults,
                         expected_pulses(episodes))


def checks(figures: TeleopFigures, episodes: int = 2) -> list[Check]:
    """What the stage must show."""
    return [Check(f'{episodes} episodes recorded and the dataset check passes',
                  len(figures.episodes) == episodes and figures.check.ok),
            Check('the safety bridge never faulted', figures.bridge_faults == 0),
            Check('every haptic pulse was felt', figures.pulses == figures.pulses_expected)]


def summary_lines(figures: TeleopFigures) -> list[str]:
    """What the demo prints."""
    lines = [f'  session: {figures.wall_s:.0f} s wall; haptic pulses felt by the operator: '
             f'{figures.pulses}']
    lines += [f'  {line}' for line in figures.recorder_lines]
    lines.append(f'  clutch releases stopped by the bridge watchdog: {figures.bridge_stops}')
    for index, episode in enumerate(figures.episodes):
        lines.append(f'  episode {index}: {episode["rows"]:.0f} rows, TCP path '
                     f'{episode["path_cm"]:.1f} cm, gripper closed to '
                     f'{episode["gripper_min_mm"]:.1f} mm')
    lines.append(f'  dataset check: {"OK" if figures.check.ok else "FAILED"} '
                 f'({figures.dataset})')
    lines += [f'    {line.strip()}' for line in figures.check.lines()[1:]]
    return lines
