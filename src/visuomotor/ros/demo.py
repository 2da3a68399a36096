"""`visuomotor demo`: what the stack can do so far, run for real on this machine.

Stage 1 (shared preprocessing + ROS image conversion): a camera node publishes a synthetic
640x480 rgb8 frame as sensor_msgs/Image over DDS; a second node receives it, converts it with
`image_to_numpy` (a zero-copy view) and runs every preprocessing preset in
config/preprocessing on it; the before/after images are written to the output directory.

Stage 2 (the twin): see visuomotor.ros.demo_twin.

Stage 3 (the safety bridge between a misbehaving policy and the twin): see
visuomotor.ros.demo_safety.

Stage 4 (the policy runtime): see visuomotor.ros.demo_policy.

Stage 5 (the pre-session calibration check and its gate): see visuomotor.ros.demo_calibration.

Stage 6 (the bundled policy deployed through the whole graph, behind that gate): see
visuomotor.ros.demo_deploy.

Stage 7 (a teleoperated recording session through the whole record graph): see
visuomotor.ros.demo_teleop.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import rclpy
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from visuomotor.cameras.synthetic import synthetic_scene
from visuomotor.paths import share_dir
from visuomotor.preprocessing import Preprocessor, PreprocessSpec, load_spec, to_display_image
from visuomotor.ros.demo_checks import Check
from visuomotor.ros.image_conversion import image_to_numpy, numpy_to_image
from visuomotor.ros.runner import graph_domain
from visuomotor.ros.stamps import stamp_to_ns

logger = logging.getLogger(__name__)

STATUS = (
    ('x', 'shared preprocessing library (numpy/OpenCV + torch twin) and ROS image conversion'),
    ('x', 'MuJoCo twin of the FR3/UR5e with wrist and scene cameras, task and scripted expert'),
    ('x', 'safety-limited controller bridge (limiter, watchdogs, latching faults)'),
    ('x', 'policy runtime (TensorRT / ONNX Runtime / PyTorch) with action chunking'),
    ('x', 'synchronized capture and crash-safe recording'),
    ('x', 'train, export and deploy the bundled demo policy (deploy graph, launch files)'),
    ('x', 'calibration and the pre-session verification gate'),
    ('x', 'Quest VR teleoperation through the safety bridge, feeding the recorder'),
)


@dataclass(frozen=True)
class StageResult:
    """Figures of the preprocessing stage."""

    transport_ms: float
    conversion_ms: float
    preprocess_ms: dict[str, float]
    files: list[Path]


def _spin_until(executor: SingleThreadedExecutor, done: Callable[[], bool],
                timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f'demo: timed out after {timeout_s:.0f} s waiting for {what}; '
                               'check that DDS works on this machine (ROS_DOMAIN_ID, firewall)')
        executor.spin_once(timeout_sec=0.05)


def _median_ms(function: Callable[[], object], repeats: int = 50) -> float:
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append(time.perf_counter() - start)
    return float(np.median(samples) * 1e3)


def _bgr(image: npt.NDArray[np.uint8], encoding: str) -> npt.NDArray[np.uint8]:
    if encoding == 'mono8':
        return np.asarray(cv2.cvtColor(image, cv2.COLOR_GRAY2BGR))
    if encoding == 'rgb8':
        return np.ascontiguousarray(image[:, :, ::-1])
    return image


def _label(image: npt.NDArray[np.uint8], text: str) -> npt.NDArray[np.uint8]:
    out = np.ascontiguousarray(image)
    (width, height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 1)
    cv2.rectangle(out, (4, 4), (12 + width, 12 + height + baseline), (0, 0, 0), -1)
    cv2.putText(out, text, (8, 8 + height), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1,
                cv2.LINE_AA)
    return out


def run_preprocessing_stage(out_dir: Path, presets: dict[str, PreprocessSpec]
                            ) -> StageResult:
    """Publish a frame over DDS, receive, convert, preprocess with each preset, save images."""
    out_dir.mkdir(parents=True, exist_ok=True)
    context = Context()
    rclpy.init(context=context)
    nodes: list[Node] = []
    try:
        camera = Node('demo_camera', context=context)
        receiver = Node('demo_policy_input', context=context)
        nodes += [camera, receiver]
        qos = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE)
        publisher = camera.create_publisher(Image, 'demo_camera/image_raw', qos)
        received: list[tuple[Image, int]] = []
        receiver.create_subscription(
            Image, 'demo_camera/image_raw',
            lambda msg: received.append((msg, receiver.get_clock().now().nanoseconds)), qos)
        executor = SingleThreadedExecutor(context=context)
        for node in nodes:
            executor.add_node(node)
        _spin_until(executor, lambda: publisher.get_subscription_count() > 0, 10.0,
                    'the subscriber to match the publisher')
        frame = synthetic_scene(640, 480, t_s=0.0)
        msg = numpy_to_image(frame, 'rgb8', stamp=camera.get_clock().now().to_msg(),
                             frame_id='demo_camera_optical_frame')
        publisher.publish(msg)
        _spin_until(executor, lambda: bool(received), 10.0, 'the published frame')
        incoming, received_ns = received[0]
        transport_ms = (received_ns - stamp_to_ns(incoming.header.stamp)) / 1e6
        view = image_to_numpy(incoming)
        if not np.array_equal(view, frame):
            raise RuntimeError('demo: the received frame differs from the published one')
        conversion_ms = _median_ms(lambda: image_to_numpy(incoming))
        annotated = _bgr(frame, 'rgb8').copy()
        tiles: list[npt.NDArray[np.uint8]] = []
        timings: dict[str, float] = {}
        files: list[Path] = []
        for name, spec in presets.items():
            preprocessor = Preprocessor(spec)
            model_input = preprocessor(view, encoding=incoming.encoding, camera='demo_camera')
            timings[name] = _median_ms(lambda p=preprocessor: p(view))  # type: ignore[misc]
            top, left, height, width = spec.crop.window(spec.input_size)
            cv2.rectangle(annotated, (left, top), (left + width - 1, top + height - 1),
                          (0, 255, 255), 2)
            shown, encoding = to_display_image(model_input, spec)
            zoom = frame.shape[0] / shown.shape[0]
            tile = cv2.resize(_bgr(shown, encoding), None, fx=zoom, fy=zoom,
                              interpolation=cv2.INTER_NEAREST)
            tile = _label(np.asarray(tile), f'{name} {spec.output_shape}')
            path = out_dir / f'{name}_model_input.png'
            cv2.imwrite(str(path), tile)
            files.append(path)
            tiles.append(tile)
        frame_path = out_dir / 'camera_frame.png'
        annotated = _label(annotated, 'camera 640x480 rgb8, crop windows in yellow')
        cv2.imwrite(str(frame_path), annotated)
        sheet_path = out_dir / 'preprocessing.png'
        cv2.imwrite(str(sheet_path), np.concatenate([annotated, *tiles], axis=1))
        files = [frame_path, *files, sheet_path]
        return StageResult(transport_ms, conversion_ms, timings, files)
    finally:
        for node in nodes:
            node.destroy_node()
        rclpy.shutdown(context=context)


def load_presets() -> dict[str, PreprocessSpec]:
    """The preprocessing presets shipped in config/preprocessing, by file stem."""
    folder = share_dir() / 'config' / 'preprocessing'
    return {path.stem: load_spec(path) for path in sorted(folder.glob('*.json'))}


def run_demo(out_dir: Path, report: Callable[[str], None], episodes: int = 20) -> list[str]:
    """Run every demo stage, reporting through `report` (`episodes`: seeds of stage 6).

    Returns the checks that failed (empty: the demo showed everything it should).
    """
    failed: list[str] = []
    # Every stage, in this process and in the graphs it starts, on one domain of its own
    # (ROS_DOMAIN_ID when set): the twin's bridge speaks a real arm's controller topics.
    domain = graph_domain()
    os.environ.update(domain.env)
    report(f'visuomotor demo on {domain.describe()}')

    def check(stage: str, results: list[Check]) -> None:
        for result in results:
            report(result.line())
            if not result.passed:
                failed.append(f'{stage}: {result.what}')
    report('visuomotor demo: what exists so far')
    for mark, text in STATUS:
        report(f'  [{mark}] {text}')
    report('')
    report('stage 1: camera frame -> sensor_msgs/Image over DDS -> numpy -> preprocessing')
    presets = load_presets()
    result = run_preprocessing_stage(out_dir, presets)
    report(f'  transport (publish to callback, same process): {result.transport_ms:.2f} ms')
    report(f'  Image -> numpy (zero-copy view), median: {result.conversion_ms * 1e3:.1f} us')
    for name, spec in presets.items():
        report(f'  {name} [{spec.spec_hash()}]: {result.preprocess_ms[name]:.2f} ms median')
        report(f'    {spec.describe()}')
    report('  wrote:')
    for path in result.files:
        report(f'    {path}')
    report('')
    report('stage 2: the MuJoCo twin over ROS 2 (simulated time), scripted expert via '
           'JointTrajectory')
    from visuomotor.ros.demo_twin import run_twin_stage
    twin_episodes = [('fr3', 0), ('fr3', 1), ('ur5e', 0)]
    figures, files = run_twin_stage(out_dir, twin_episodes)
    for f in figures:
        report(f'  {f.scene} seed {f.seed}: {"success" if f.success else "FAILED"} after '
               f'{f.sim_s:.1f} s simulated in {f.wall_s:.1f} s wall '
               f'({f.sim_s / f.wall_s:.1f}x real time), {f.frames} camera frames over DDS')
    successes = sum(f.success for f in figures)
    report(f'  success rate: {successes}/{len(figures)}')
    report('  wrote:')
    for path in files:
        report(f'    {path}')
    check('stage 2', [Check('the scripted expert succeeds on every twin episode',
                            successes == len(figures))])
    report('')
    report('stage 3: the safety bridge (commissioning tier) between a misbehaving policy and '
           'the FR3 twin, over DDS')
    from visuomotor.ros.demo_safety import checks as safety_checks
    from visuomotor.ros.demo_safety import run_safety_stage, summary_lines
    safety = run_safety_stage(out_dir)
    for line in summary_lines(safety):
        report(line)
    check('stage 3', safety_checks(safety))
    report('')
    report('stage 4: the policy runtime: a bundle that carries its contract, backends with a '
           "golden check, chunk scheduling, on the FR3 twin's cameras")
    from visuomotor.ros.demo_policy import checks as policy_checks
    from visuomotor.ros.demo_policy import run_policy_stage
    from visuomotor.ros.demo_policy import summary_lines as policy_lines
    policy = run_policy_stage(out_dir)
    for line in policy_lines(policy):
        report(line)
    check('stage 4', policy_checks(policy))
    report('')
    report('stage 5: the calibration check before a session, and the gate that enforces it '
           "(the twin's wrist and scene cameras, ChArUco board on a fixture)")
    from visuomotor.ros.demo_calibration import checks as calibration_checks
    from visuomotor.ros.demo_calibration import run_calibration_stage
    from visuomotor.ros.demo_calibration import summary_lines as calibration_lines
    from visuomotor.training.demos import DEMO_SCENE
    calibration = run_calibration_stage(out_dir, DEMO_SCENE)
    for line in calibration_lines(calibration):
        report(line)
    check('stage 5', calibration_checks(calibration))
    report('')
    report('stage 6: the bundled policy (models/pick_place_fr3) deployed on the twin through '
           f'the whole ROS graph, {episodes} seeded episodes never seen in training')
    from visuomotor.ros.demo_deploy import checks as deploy_checks
    from visuomotor.ros.demo_deploy import run_deploy_stage
    from visuomotor.ros.demo_deploy import summary_lines as deploy_lines
    from visuomotor.training.demo_policy import EVAL_SEEDS
    deploy = run_deploy_stage(out_dir, EVAL_SEEDS[:episodes], report=report,
                              calibration=str(calibration.folder))
    for line in deploy_lines(deploy):
        report(line)
    check('stage 6', deploy_checks(deploy))
    report('')
    report('stage 7: teleoperated recording: a scripted Quest (grip = clutch, trigger = '
           'gripper, A = start/stop, B = discard / hold to go home) -> teleop node -> safety '
           'bridge -> twin, recorder behind the same gate')
    from visuomotor.ros.demo_teleop import checks as teleop_checks
    from visuomotor.ros.demo_teleop import run_teleop_stage
    from visuomotor.ros.demo_teleop import summary_lines as teleop_lines
    teleop = run_teleop_stage(out_dir, str(calibration.folder), report=report)
    for line in teleop_lines(teleop):
        report(line)
    check('stage 7', teleop_checks(teleop))
    report('')
    if failed:
        report(f'demo: {len(failed)} check(s) FAILED:')
        for line in failed:
            report(f'  {line}')
    else:
        report('demo: every check passed')
    return failed
