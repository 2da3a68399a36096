"""Teleop config files (config/teleop/*.yaml): what ships loads, and bad files name the field.

What an engineer setting up a Quest checks: the shipped configs subscribe to the topics the
sources really publish, the headset-to-base rotation of the twin moves the arm along the axes
the operator expects, and a typo or an inconsistent value is refused with the field (and, when
loading a file, the file) named, instead of a silently wrong set-up.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from visuomotor.paths import share_dir
from visuomotor.teleop.config import (
    TeleopConfigError,
    default_topics,
    load_teleop_config,
    teleop_config_from_dict,
)

CONFIG_DIR = share_dir() / 'config' / 'teleop'


def sim_quest_dict() -> dict[str, Any]:
    """The shipped sim_quest file, parsed (a valid base to break one field of)."""
    data = yaml.safe_load((CONFIG_DIR / 'sim_quest.yaml').read_text())
    assert isinstance(data, dict)
    return data


def assert_rotation(matrix: np.ndarray) -> None:
    """A proper rotation: orthonormal with determinant +1."""
    assert matrix.shape == (3, 3)
    np.testing.assert_allclose(matrix @ matrix.T, np.eye(3), atol=1e-12)
    assert np.linalg.det(matrix) == pytest.approx(1.0, abs=1e-12)


# -- the shipped configs -----------------------------------------------------------------------


def test_shipped_configs_are_the_two_sources() -> None:
    names = sorted(p.stem for p in CONFIG_DIR.glob('*.yaml'))
    assert 'sim_quest' in names and 'quest2ros' in names
    for name in names:
        config = load_teleop_config(name)
        assert config.name == name
        assert Path(config.source_file).resolve() == (CONFIG_DIR / f'{name}.yaml').resolve()
        assert_rotation(config.headset_to_base)
        assert config.clutch_release < config.clutch_engage
        assert config.gripper_open < config.gripper_close


def test_quest2ros_subscribes_to_the_app_topics() -> None:
    config = load_teleop_config('quest2ros')
    assert config.source == 'quest2ros'
    assert config.hand == 'right'
    assert config.topics.pose == '/ovr2ros_right_hand_pose'
    assert config.topics.inputs == '/ovr2ros_right_hand_inputs'
    assert config.topics.haptic == '/ovr2ros_right_hand_haptic_feedback'


def test_sim_quest_uses_the_simulated_quest() -> None:
    config = load_teleop_config('sim_quest')
    assert config.source == 'joy'
    assert config.frame_id == 'quest_world'
    assert config.topics == default_topics('joy', 'right')
    assert (config.joy.grip_axis, config.joy.trigger_axis) == (0, 1)
    assert (config.joy.lower_button, config.joy.upper_button) == (0, 1)


def test_sim_quest_headset_axes_map_to_the_robot_axes() -> None:
    """Operator behind the robot, OpenXR headset: forward (-z) is base +x, up (+y) is +z."""
    r_hb = load_teleop_config('sim_quest').headset_to_base
    np.testing.assert_allclose(r_hb @ [0.0, 0.0, -1.0], [1.0, 0.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(r_hb @ [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], atol=1e-12)
    np.testing.assert_allclose(r_hb @ [1.0, 0.0, 0.0], [0.0, -1.0, 0.0], atol=1e-12)


def test_file_path_loads_like_the_name(tmp_path: Path) -> None:
    path = tmp_path / 'my_rig.yaml'
    path.write_text((CONFIG_DIR / 'sim_quest.yaml').read_text())
    by_path = load_teleop_config(path)
    by_name = load_teleop_config('sim_quest')
    assert by_path.name == 'my_rig'
    assert by_path.source_file == str(path)
    np.testing.assert_array_equal(by_path.headset_to_base, by_name.headset_to_base)
    assert by_path.topics == by_name.topics


def test_topics_follow_the_hand_and_can_be_overridden() -> None:
    data = sim_quest_dict()
    data['source'] = 'quest2ros'
    del data['joy']
    data['hand'] = 'left'
    left = teleop_config_from_dict(data)
    assert left.topics.pose == '/ovr2ros_left_hand_pose'
    assert left.topics.haptic == '/ovr2ros_left_hand_haptic_feedback'
    data['topics'] = {'pose': '/relay/pose'}
    relayed = teleop_config_from_dict(data)
    assert relayed.topics.pose == '/relay/pose'
    assert relayed.topics.inputs == '/ovr2ros_left_hand_inputs'


def test_defaults_fill_in_optional_blocks() -> None:
    data = {'source': 'joy', 'frame_id': '', 'headset_to_base_rpy_deg': [0, 0, 0]}
    config = teleop_config_from_dict(data)
    np.testing.assert_allclose(config.headset_to_base, np.eye(3), atol=1e-12)
    assert config.clutch_release < config.clutch_engage
    assert config.ik_limit_gain > 0.0
    assert config.filter_min_cutoff_hz > 0.0


def test_values_are_read_not_defaulted() -> None:
    data = sim_quest_dict()
    data.update(translation_scale=0.5, rotation_scale=0.0, input_timeout_s=0.3,
                clutch={'engage': 0.8, 'release': 0.2}, filter={'beta': 7.0},
                ik={'limit_gain': 1.5, 'iterations': 12})
    config = teleop_config_from_dict(data)
    assert (config.translation_scale, config.rotation_scale) == (0.5, 0.0)
    assert config.input_timeout_s == 0.3
    assert (config.clutch_engage, config.clutch_release) == (0.8, 0.2)
    assert config.filter_beta == 7.0
    assert (config.ik_limit_gain, config.ik_iterations) == (1.5, 12)


# -- refused files name the field --------------------------------------------------------------


def broken(**changes: Any) -> dict[str, Any]:
    """sim_quest with `changes` applied (None: the key removed)."""
    data = copy.deepcopy(sim_quest_dict())
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    return data


@pytest.mark.parametrize(('data', 'field', 'words'), [
    (broken(translaton_scale=1.0), 'file', ['translaton_scale']),
    (broken(filter={'min_cutof_hz': 2.0}), 'filter', ['min_cutof_hz']),
    (broken(clutch={'engage': 0.5, 'release': 0.5}), 'clutch.release', ['engage']),
    (broken(clutch={'engage': 0.5, 'release': 0.7}), 'clutch.release', ['0.7']),
    (broken(gripper={'close': 0.3, 'open': 0.4}), 'gripper.open', ['close']),
    (broken(source='openvr'), 'source', ['openvr', 'quest2ros', 'joy']),
    (broken(source='quest2ros'), 'joy', ['quest2ros']),
    (broken(frame_id=3), 'frame_id', ['string', '3']),
    (broken(frame_id=None), 'frame_id', ['missing']),
    ({**broken(), 'frame_id': None}, 'frame_id', ['string', 'None']),
    (broken(lead_s=0), 'lead_s', ['0']),
    (broken(headset_to_base_rpy_deg=[90, 0]), 'headset_to_base_rpy_deg', ['3']),
    (broken(headset_to_base_rpy_deg=[90, 'x', 0]), 'headset_to_base_rpy_deg[1]', ["'x'"]),
    (broken(hand='middle'), 'hand', ['middle']),
    (broken(translation_scale=-1.0), 'translation_scale', ['-1.0']),
    (broken(ik={'limit_gain': -0.1}), 'ik.limit_gain', ['-0.1']),
    (broken(joy={'grip_axis': -1}), 'joy.grip_axis', ['-1']),
    (broken(source=None), 'source', ['missing']),
])
def test_invalid_values_name_the_field(data: dict[str, Any], field: str,
                                       words: list[str]) -> None:
    with pytest.raises(TeleopConfigError) as caught:
        teleop_config_from_dict(data)
    assert caught.value.field == field
    message = str(caught.value)
    for word in words:
        assert word in message


def test_load_names_the_file_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / 'typo.yaml'
    path.write_text(yaml.safe_dump(broken(clutch={'engage': 0.4, 'release': 0.6})))
    with pytest.raises(TeleopConfigError) as caught:
        load_teleop_config(path)
    assert str(path) in caught.value.field
    assert caught.value.field.endswith('clutch.release')
    assert str(path) in str(caught.value) and 'hysteresis' in str(caught.value)


def test_load_of_a_missing_path_names_it(tmp_path: Path) -> None:
    path = tmp_path / 'absent.yaml'
    with pytest.raises(TeleopConfigError, match='absent.yaml'):
        load_teleop_config(path)


def test_load_of_an_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(TeleopConfigError) as caught:
        load_teleop_config('sim_quets')
    message = str(caught.value)
    assert "'sim_quets'" in message
    assert 'sim_quest' in message.split('available', 1)[1]
    assert 'quest2ros' in message


def test_load_of_invalid_yaml_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / 'bad.yaml'
    path.write_text('source: [joy\n')
    with pytest.raises(TeleopConfigError, match='bad.yaml'):
        load_teleop_config(path)


def test_load_of_a_non_mapping_is_refused(tmp_path: Path) -> None:
    path = tmp_path / 'list.yaml'
    path.write_text('- source\n- joy\n')
    with pytest.raises(TeleopConfigError) as caught:
        load_teleop_config(path)
    assert str(path) in str(caught.value)
