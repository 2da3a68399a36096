"""Parameters of the policy node (declared once; the ROS node and the graph read this)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from visuomotor.calibration.gate import GATE_PARAMS
from visuomotor.cameras.sync import SyncConfig
from visuomotor.explain.live import OverlaySettings
from visuomotor.params import LOCKSTEP_PARAM, Param, ParameterError, ParamValue
from visuomotor.policy.backends import BACKENDS, BackendOptions
from visuomotor.policy.chunking import MODES, SchedulerConfig
from visuomotor.policy.spec import ChunkExecution

POLICY_NODE_PARAMS = (
    Param('model', '', 'policy bundle: a directory with policy.onnx (or the ONNX file), or a '
          'name under models/'),
    Param('robot', 'fr3', "robot: a name in config/robots or a robot YAML path; the model's "
          "joints must be this robot's"),
    Param('camera_topics', '', 'model camera -> image topic, "name=/topic,name2=/topic2"; a '
          'camera not listed reads /<name>/image_raw'),
    Param('control_rate_hz', 0.0, "action rate; 0 takes the model's. Any other value must "
          'equal it (the model was trained at one rate)', 0.0, 1000.0),
    Param('backend', ','.join(BACKENDS), 'inference backends in order of preference, comma '
          'separated (tensorrt, onnxruntime, torch); the first that loads is used'),
    Param('fp16', True, 'build TensorRT engines in FP16 (golden outputs checked with the '
          'looser float16 tolerance of the spec)'),
    Param('threads', 0, 'CPU threads for ONNX Runtime / PyTorch (0: library default)', 0, 64),
    Param('torch_device', 'cpu', 'device of the PyTorch backend (cpu, cuda, cuda:1, ...)'),
    Param('scheduler', '', "chunk execution: empty runs the bundle as it was validated (its "
          "spec's execution block, with its steps or decay; receding_horizon when it names "
          'none); receding_horizon or temporal_ensemble override it with the parameters '
          'below', choices=('', *MODES)),
    Param('execute_steps', 0, 'receding horizon: actions of each chunk executed before the '
          'next inference is due (0: half the chunk)', 0, 1000),
    Param('ensemble_decay', 0.01, 'temporal ensembling weight decay k in exp(-k i)', 0.0,
          10.0),
    Param('blend_s', 0.0, 'receding horizon: cross-fade from the previous plan to a new '
          'chunk over this time (s)', 0.0, 5.0),
    Param('exec_latency_s', 0.0, 'actions due sooner than this are dropped (command transport '
          'and controller pick-up, s)', 0.0, 1.0),
    Param('max_plan_age_s', 0.0, 'stop sending a plan whose observation is older than this '
          '(0: the chunk duration, s)', 0.0, 60.0),
    Param('max_skew_s', SyncConfig.max_skew_s, 'a frame may be this far from its target time '
          '(s)', 0.001, 1.0),
    Param('max_observation_age_s', SyncConfig.max_age_s, 'refuse observations older than this '
          'at the tick (s)', 0.001, 5.0),
    Param('frozen_repeats', SyncConfig.frozen_repeats, 'this many identical frames (or '
          'repeated stamps) in a row mark a camera frozen; 0 disables the content check', 0,
          1000),
    Param('command_topic', '/safety_bridge/command', 'where chunks go (the safety bridge)'),
    Param('gripper_topic', '/safety_bridge/gripper', 'where gripper widths go (the bridge)'),
    Param('seed', 0, 'seed of the denoising noise (reproducible rollouts)', 0, 2**31 - 1),
    Param('debug_rate_hz', 0.0, 'live overlays: at most this many images per second per camera '
          "on ~/debug/<camera> (rgb8) with the encoder's feature points, drawn on a "
          'low-priority thread off the control path; 0 turns them off', 0.0, 30.0),
    Param('debug_saliency', False, 'live overlays: also show a FullGrad saliency map computed '
          "by the bundle's PyTorch twin (needs torch_weights.npz in the bundle)"),
    Param('debug_saliency_rate_hz', 1.0, 'live overlays: at most this many saliency maps per '
          'second (each is a backward pass of the twin on the CPU)', 0.01, 30.0),
    Param('debug_scale', 4, 'live overlays: the network input is enlarged this many times',
          1, 16),
    *GATE_PARAMS,
    LOCKSTEP_PARAM,
)


def camera_topics(spec_text: str, camera_names: Sequence[str]) -> dict[str, str]:
    """Camera name -> image topic from the `camera_topics` parameter."""
    topics = {name: f'/{name}/image_raw' for name in camera_names}
    for item in filter(None, (part.strip() for part in spec_text.split(','))):
        name, sep, topic = item.partition('=')
        if not sep or not name.strip() or not topic.strip():
            raise ParameterError('camera_topics', f'{item!r} is not "name=/topic"')
        if name.strip() not in topics:
            raise ParameterError('camera_topics', f'{name.strip()!r} is not a camera of the '
                                 f'model (it reads {list(camera_names)})')
        topics[name.strip()] = topic.strip()
    return topics


def backend_order(params: Mapping[str, ParamValue]) -> list[str]:
    """The `backend` parameter as a list, each name checked."""
    order = [b.strip() for b in str(params['backend']).split(',') if b.strip()]
    for name in order:
        if name not in BACKENDS:
            raise ParameterError('backend', f'{name!r} is not one of {list(BACKENDS)}')
    if not order:
        raise ParameterError('backend', 'is empty; give e.g. "onnxruntime,torch"')
    return order


def backend_options(params: Mapping[str, ParamValue]) -> BackendOptions:
    """Backend settings from the parameters."""
    return BackendOptions(fp16=bool(params['fp16']), threads=int(params['threads']),
                          torch_device=str(params['torch_device']))


def scheduler_config(params: Mapping[str, ParamValue], chunk_length: int,
                     period_s: float, execution: ChunkExecution | None = None
                     ) -> SchedulerConfig:
    """Scheduler settings, with the defaults that depend on the model filled in.

    With `scheduler` empty, the bundle's `execution` (how it was validated) decides the mode,
    the executed steps and the decay; an explicit `scheduler` takes them from the parameters.
    """
    mode = str(params['scheduler'])
    steps = int(params['execute_steps'])
    decay = float(params['ensemble_decay'])
    if not mode:
        mode = 'receding_horizon'
        if execution is not None:
            mode, steps, decay = execution.mode, execution.execute_steps, \
                execution.ensemble_decay
    steps = steps or max(1, chunk_length // 2)
    if steps > chunk_length:
        raise ParameterError('execute_steps', f"{steps} is more than the model's chunk length "
                             f'{chunk_length}')
    age = float(params['max_plan_age_s']) or chunk_length * period_s
    return SchedulerConfig(mode=mode, execute_steps=steps, ensemble_decay=decay,
                           blend_s=float(params['blend_s']),
                           exec_latency_s=float(params['exec_latency_s']), max_age_s=age)


def sync_config(params: Mapping[str, ParamValue]) -> SyncConfig:
    """Synchroniser settings from the parameters."""
    return SyncConfig(max_skew_s=float(params['max_skew_s']),
                      max_age_s=float(params['max_observation_age_s']),
                      frozen_repeats=int(params['frozen_repeats']))


def overlay_settings(params: Mapping[str, ParamValue]) -> OverlaySettings | None:
    """The live overlays' settings, or None when `debug_rate_hz` is 0 (off)."""
    rate = float(params['debug_rate_hz'])
    if rate <= 0.0:
        if bool(params['debug_saliency']):
            raise ParameterError('debug_saliency', 'is true but debug_rate_hz is 0 (overlays '
                                 'off); set debug_rate_hz:=2 (for example) to see them')
        return None
    return OverlaySettings(rate, bool(params['debug_saliency']),
                           float(params['debug_saliency_rate_hz']), int(params['debug_scale']))
