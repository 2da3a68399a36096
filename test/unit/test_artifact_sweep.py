"""Every file under config/, calibration/ and models/ loads and passes its checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from support import REPO
from visuomotor.calibration.captures import load_captures
from visuomotor.calibration.rig_files import load_rig_calibration
from visuomotor.calibration.verify import load_settings
from visuomotor.cameras.intrinsics import load_camera_info
from visuomotor.cameras.rig import load_rig
from visuomotor.policy.backends import BackendOptions, open_backend
from visuomotor.policy.bundle import load_bundle
from visuomotor.preprocessing import Preprocessor, input_dtype, load_spec
from visuomotor.robots.description import load_robot
from visuomotor.robots.kinematics import tcp_pose
from visuomotor.safety.profile import TIERS, load_safety_profile
from visuomotor.safety.workspace import load_workspace
from visuomotor.sim.config import load_scene
from visuomotor.teleop.config import load_teleop_config

DOCS = {'.md', '.txt'}
FILES = sorted(p for folder in ('config', 'calibration', 'models')
               for p in (REPO / folder).rglob('*') if p.is_file() and p.suffix not in DOCS)


def _check(path: Path) -> None:
    relative = path.relative_to(REPO)
    if relative.parts[:2] == ('config', 'preprocessing') and path.suffix == '.json':
        spec = load_spec(path)
        frame = np.full(spec.input_shape, 128, dtype=input_dtype(spec))
        model_input = Preprocessor(spec)(frame)  # the preset works on a frame of its size
        assert model_input.shape == spec.output_shape
        assert np.isfinite(model_input).all()
    elif relative.parts[:2] == ('config', 'robots') and path.suffix == '.yaml':
        robot = load_robot(path)
        assert robot.name == path.stem, 'a robot file is named after its robot'
        assert np.isfinite(tcp_pose(robot, robot.home_rad)).all()
        for tier in TIERS:  # every tier passes the startup validation against the vendor table
            limits = load_safety_profile(path, tier).limits
            home = np.array(robot.home_rad)
            assert np.all(home > limits.lower_rad) and np.all(home < limits.upper_rad), \
                f'{tier}: home_rad must be inside the envelope so the arm can be armed there'
    elif relative.parts[:2] == ('config', 'workspaces') and path.suffix == '.yaml':
        box = load_workspace(path)
        robot = load_robot(box.robot)
        home_tcp = tcp_pose(robot, robot.home_rad)[:3, 3]
        assert box.contains(home_tcp), 'the home pose must be armable inside the box'
    elif relative.parts[:2] == ('config', 'sim') and path.suffix == '.yaml':
        scene = load_scene(path)
        assert scene.cameras, 'a twin scene without cameras cannot feed a policy'
    elif relative.parts[:2] == ('config', 'cameras') and path.suffix == '.yaml':
        rig = load_rig(path)
        assert rig.name == path.stem, 'a rig file is named after its rig'
    elif relative.parts[:2] == ('config', 'teleop') and path.suffix == '.yaml':
        config = load_teleop_config(path)
        r = config.headset_to_base
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-9)
        assert np.linalg.det(r) > 0.0, 'headset_to_base must be a proper rotation'
        assert config.topics.pose != config.topics.inputs
    elif relative.parts[:2] == ('config', 'dds') and path.suffix == '.xml':
        # A Fast DDS profile: well-formed, and its shared-memory segment holds a 6 MB frame.
        import xml.etree.ElementTree as ET
        ns = {'p': 'http://www.eprosima.com/XMLSchemas/fastRTPS_Profiles'}
        sizes = [int(e.text or 0) for e in ET.parse(path).getroot().iterfind(
            './/p:transport_descriptor/p:segment_size', ns)]
        assert sizes and max(sizes) >= 6 * 1024 * 1024
    elif relative.parts[0] == 'calibration' and relative.parts[2:3] == ('verification',):
        # Verification records are per machine and session (git-ignored); when present,
        # a record names its verdict and overlays/reports sit beside it.
        if path.suffix == '.json':
            assert isinstance(json.loads(path.read_text())['passed'], bool)
        else:
            assert path.suffix in ('.png', '.html'), 'only records, overlays and reports'
    elif relative.parts[0] == 'calibration' and relative.parts[2:3] == ('captures',):
        # Capture folders (git-ignored): every complete view reads back.
        assert load_captures(REPO.joinpath(*relative.parts[:4])).cameras
    elif relative.parts[0] == 'calibration' and path.name == 'verification.yaml':
        settings = load_settings(path.parent)
        assert settings.poses_rad, 'the verification views need their robot poses'
    elif relative.parts[0] == 'calibration' and path.suffix == '.yaml':
        rig = load_rig_calibration(path.parent)  # the whole folder, cross-checked
        if path.stem in rig.cameras:
            assert load_camera_info(path).width == rig.cameras[path.stem].intrinsics.width
    elif relative.parts[0] == 'models' and path.name == 'policy.onnx':
        bundle = load_bundle(path)
        assert bundle.card_path is not None, 'every bundle ships its model card'
        # The golden outputs reproduce on ONNX Runtime (CPU) and, with weights, on PyTorch.
        open_backend(bundle, ['onnxruntime'], BackendOptions(warmup_runs=0))
        if bundle.weights_path is not None:
            open_backend(bundle, ['torch'], BackendOptions(warmup_runs=0))
    elif relative.parts[0] == 'models' and path.name == 'torch_weights.npz':
        assert (path.parent / 'policy.onnx').is_file(), 'weights belong to a bundle'
    else:
        pytest.fail(f'{relative}: no check knows this file; add one to this sweep')


def test_sweep_found_the_presets() -> None:
    assert any(p.parts[-2] == 'preprocessing' for p in FILES)


@pytest.mark.parametrize('path', FILES, ids=[str(p.relative_to(REPO)) for p in FILES])
def test_artifact_loads(path: Path) -> None:
    _check(path)
