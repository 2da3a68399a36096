"""The demo's ROS stage: a frame over DDS, converted and preprocessed with every preset."""

from __future__ import annotations

from pathlib import Path

import cv2

from visuomotor.ros.demo import load_presets, run_demo, run_preprocessing_stage


def test_stage_writes_the_images_and_measures(tmp_path: Path) -> None:
    presets = load_presets()
    assert set(presets) >= {'imagenet_224', 'spatial_softmax_84'}
    result = run_preprocessing_stage(tmp_path, presets)
    assert set(result.preprocess_ms) == set(presets)
    assert result.transport_ms > 0 and result.conversion_ms > 0
    sheet = cv2.imread(str(tmp_path / 'preprocessing.png'))
    assert sheet.shape[0] == 480 and sheet.shape[1] == 640 + 480 * len(presets)
    for path in result.files:
        assert path.is_file() and path.stat().st_size > 1000


def test_demo_reports_what_exists(tmp_path: Path) -> None:
    lines: list[str] = []
    failed = run_demo(tmp_path, lines.append, episodes=2)
    text = '\n'.join(lines)
    # Every stage's checks are reported; all but stage 6's success rates (2 episodes decide
    # nothing) must pass, and `make demo` exits non-zero on any failure (cli._demo).
    assert text.count('  check: ') >= 16
    assert [f for f in failed if not f.startswith('stage 6')] == [], failed
    assert ('demo: every check passed' in text) == (not failed)
    assert '[x] shared preprocessing library' in text
    assert 'imagenet_224 [b923da0daf8a0652]' in text
    assert '[x] policy runtime' in text
    # Stage 4: the contract refusals name both values; the backends agree on twin frames.
    assert 'control_rate_hz: the model was trained at 10 Hz, but the node runs at 15 Hz' in text
    assert 'expects rgb8 frames, but /wrist/image_raw sends bgr8' in text
    assert 'backend chosen: onnxruntime[CPUExecutionProvider]' in text
    parity = float(text.split('ONNX Runtime vs PyTorch on twin frames: ')[1].split(' ')[0])
    assert parity < 1e-4
    assert (tmp_path / 'policy_bundle' / 'policy.onnx').is_file()
    assert (tmp_path / 'policy_bundle' / 'model_card.md').is_file()
    # Stage 5: no record, then a knocked camera, block the gate; the check in place opens it.
    assert '[x] calibration and the pre-session verification gate' in text
    stage = text.split('stage 5:')[1].split('stage 6:')[0]
    gates = [line for line in stage.splitlines() if line.startswith('  gate ')]
    assert [('BLOCKED' in g, 'ALLOWED' in g) for g in gates] == [(True, False), (True, False),
                                                                 (False, True)]
    assert 'no verification record' in gates[0]
    assert 'wrist_camera: FAIL' in stage and 'the camera seems to have moved' in stage
    reports = list((tmp_path / 'calibration' / 'twin_fr3' / 'verification').glob('*.html'))
    assert len(reports) == 2
    # Stage 6: the bundled policy through the whole graph, 2 episodes, and the in-process
    # reference on the same seeds; the video and the latency plot are written.
    assert 'success through ROS: ' in text and 'in-process: ' in text
    assert (tmp_path / 'deploy_rollouts.mp4').stat().st_size > 10_000
    assert cv2.imread(str(tmp_path / 'deploy_latency.png')) is not None
    assert 'inference' in text.split('policy node latency per chunk')[1]
    # Stage 7: a scripted Quest session through the record graph: 2 kept episodes (one more
    # discarded), every haptic pulse felt, the dataset check passes.
    teleop = text.split('stage 7:')[1]
    assert '[x] Quest VR teleoperation' in text
    assert 'haptic pulses felt by the operator: 8' in teleop, teleop
    assert 'recorder: episode 2 discarded' in teleop, teleop
    assert 'dataset check: OK' in teleop and 'episode 1: ' in teleop, teleop
    assert (tmp_path / 'teleop_dataset_sheet.png').stat().st_size > 10_000


def test_make_demo_exits_non_zero_when_a_check_fails(tmp_path: Path, monkeypatch) -> None:
    """`visuomotor demo` (what `make demo` runs) returns 1 when any stage's check failed."""
    import visuomotor.ros.demo as demo
    from visuomotor.cli import main

    monkeypatch.setattr(demo, 'run_demo', lambda out, report, episodes: ['stage 6: x'])
    assert main(['demo', '--out', str(tmp_path)]) == 1
    monkeypatch.setattr(demo, 'run_demo', lambda out, report, episodes: [])
    assert main(['demo', '--out', str(tmp_path)]) == 0
