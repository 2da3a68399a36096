"""The policy spec: the contract a model bundle carries inside its ONNX metadata.

It says everything deployment must reproduce from training, so nothing is re-declared by
hand (DESIGN rule 5):

- `cameras`: names in network input order, each with its preprocessing spec (the shared
  library's, `visuomotor.preprocessing`);
- `observation_history`: how many past observations (frames and proprio) each input holds,
  `control_period` apart, newest last;
- `proprio`: the joint names the model reads positions of, with normalisation stats;
- `action`: the kind (absolute joint positions, joint deltas from the observed positions, or
  an end-effector pose), the joints, whether a gripper value follows, the dimension and the
  normalisation stats;
- `chunk_length` actions per inference, `control_rate_hz` between them;
- `family`: one forward pass, or iterative denoising with its scheduler's parameters (the
  runtime runs the sampling loop around the exported network);
- `tolerance`: how closely a backend must reproduce the bundle's golden outputs (float32,
  and looser for float16 engines);
- `architecture`: optionally, the torch network that was exported (for the PyTorch debug
  backend and saliency), by registered name and keyword arguments;
- `execution`: optionally, how the chunks were executed when the bundle was validated
  (receding horizon with its executed steps, or temporal ensembling with its decay); the
  policy node runs the bundle that way unless told otherwise;
- `provenance`: free-form training facts (dataset, epochs, commit), shown on the model card.

The network's tensors have fixed names: `image.<camera>` (float32, [B, T, C, H, W]),
`proprio` ([B, T, P]) and, for denoising models, `noisy_action` ([B, H, A]) and `timestep`
([B], float32). The output is `action` ([B, H, A], normalised) for a single pass and
`prediction` (noise or sample, [B, H, A]) for denoising.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from visuomotor.config_fields import FieldReader
from visuomotor.errors import FieldError
from visuomotor.policy.errors import BundleError
from visuomotor.preprocessing.spec import PreprocessSpec

POLICY_FORMAT = 'visuomotor.policy'
POLICY_VERSION = 1

ACTION_KINDS = ('joint_position', 'joint_delta', 'ee_pose')
#: EE pose actions: position (m) then a rotation vector (rad), in the robot base frame.
EE_POSE_DIM = 6
FAMILIES = ('single_pass', 'denoising')
BETA_SCHEDULES = ('linear', 'squaredcos_cap_v2')
PREDICTIONS = ('epsilon', 'sample')

PROPRIO_INPUT = 'proprio'
NOISY_ACTION_INPUT = 'noisy_action'
TIMESTEP_INPUT = 'timestep'
ACTION_OUTPUT = 'action'
PREDICTION_OUTPUT = 'prediction'


def image_input(camera: str) -> str:
    """The network input name of a camera's frames."""
    return f'image.{camera}'


def feature_points_output(camera: str) -> str:
    """The optional network output of a camera's spatial-softmax feature points.

    (B, T, K, 2) pixel coordinates (x right, y down) in the camera's network input, one row per
    history frame; exported when the encoder has them (visuomotor.explain).
    """
    return f'feature_points.{camera}'


@dataclass(frozen=True)
class CameraInput:
    """One camera the model reads, with the preprocessing its frames get."""

    name: str
    preprocess: PreprocessSpec


@dataclass(frozen=True)
class Normalisation:
    """Per-dimension `(x - mean) / std` (the model sees normalised values)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]


@dataclass(frozen=True)
class ProprioSpec:
    """Joint positions the model reads, in this order.

    With `gripper_joints`, the gripper's opening width (the sum of those joints' positions,
    metres, as the recorder stores it) follows the arm joints.
    """

    joint_names: tuple[str, ...]
    stats: Normalisation
    gripper_joints: tuple[str, ...] = ()

    @property
    def dim(self) -> int:
        """Values per proprio row."""
        return len(self.joint_names) + int(bool(self.gripper_joints))


@dataclass(frozen=True)
class ActionSpec:
    """What each action row means.

    `joint_position`: absolute positions of `joint_names` (rad); `joint_delta`: offsets from
    the positions observed with the newest frame; `ee_pose`: TCP position (m) + rotation
    vector (rad) in the base frame. The gripper's opening width (m) follows if `gripper`.
    """

    kind: str
    joint_names: tuple[str, ...]
    gripper: bool
    stats: Normalisation

    @property
    def arm_dim(self) -> int:
        """Values per action row before the gripper."""
        return EE_POSE_DIM if self.kind == 'ee_pose' else len(self.joint_names)

    @property
    def dim(self) -> int:
        """Values per action row."""
        return self.arm_dim + int(self.gripper)


@dataclass(frozen=True)
class DenoisingScheduler:
    """DDIM sampling parameters (Song et al. 2021; as Diffusion Policy configures it)."""

    train_steps: int
    inference_steps: int
    beta_schedule: str
    beta_start: float
    beta_end: float
    prediction: str
    clip_sample: float | None


@dataclass(frozen=True)
class Tolerance:
    """Allowed |backend - golden| <= atol + rtol * |golden|, per element."""

    atol: float
    rtol: float


@dataclass(frozen=True)
class Architecture:
    """The registered torch network the ONNX was exported from, and its arguments."""

    name: str
    kwargs: Mapping[str, Any]

    def __post_init__(self) -> None:
        # The JSON form (tuples become lists), so a spec equals itself after a round trip.
        try:
            plain = json.loads(json.dumps(dict(self.kwargs), allow_nan=False))
        except (TypeError, ValueError) as exc:
            raise BundleError('architecture.kwargs', f'must be plain JSON values ({exc})'
                              ) from None
        object.__setattr__(self, 'kwargs', plain)


EXECUTION_MODES = ('receding_horizon', 'temporal_ensemble')


@dataclass(frozen=True)
class ChunkExecution:
    """How the bundle's chunks were executed when it was validated.

    Attributes:
        mode: `receding_horizon` or `temporal_ensemble`.
        execute_steps: receding horizon: actions of each chunk executed (0: half the chunk).
        ensemble_decay: temporal ensembling's k in exp(-k i).
    """

    mode: str
    execute_steps: int = 0
    ensemble_decay: float = 0.01

    def __post_init__(self) -> None:
        if self.mode not in EXECUTION_MODES:
            raise BundleError('execution.mode', f'must be one of {list(EXECUTION_MODES)}, got '
                              f'{self.mode!r}')
        if isinstance(self.execute_steps, bool) or not isinstance(self.execute_steps, int) \
                or self.execute_steps < 0:
            raise BundleError('execution.execute_steps', 'must be an integer >= 0, got '
                              f'{self.execute_steps!r}')
        if not math.isfinite(self.ensemble_decay) or self.ensemble_decay < 0:
            raise BundleError('execution.ensemble_decay', 'must be a finite number >= 0, got '
                              f'{self.ensemble_decay!r}')

    def to_dict(self) -> dict[str, Any]:
        """The JSON form."""
        return {'mode': self.mode, 'execute_steps': self.execute_steps,
                'ensemble_decay': self.ensemble_decay}


@dataclass(frozen=True)
class PolicySpec:
    """The whole contract (see the module docstring)."""

    name: str
    cameras: tuple[CameraInput, ...]
    observation_history: int
    proprio: ProprioSpec
    action: ActionSpec
    chunk_length: int
    control_rate_hz: float
    family: str = 'single_pass'
    scheduler: DenoisingScheduler | None = None
    tolerance_float32: Tolerance = Tolerance(1e-4, 1e-3)
    tolerance_float16: Tolerance = Tolerance(2e-2, 2e-2)
    architecture: Architecture | None = None
    provenance: Mapping[str, Any] = field(default_factory=dict)
    execution: ChunkExecution | None = None

    @property
    def control_period_s(self) -> float:
        """Seconds between consecutive actions (and between history frames)."""
        return 1.0 / self.control_rate_hz

    @property
    def camera_names(self) -> tuple[str, ...]:
        """Camera names in network input order."""
        return tuple(c.name for c in self.cameras)

    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """Network input name -> shape for a batch of one."""
        t = self.observation_history
        shapes: dict[str, tuple[int, ...]] = {
            image_input(c.name): (1, t, *c.preprocess.output_shape) for c in self.cameras}
        shapes[PROPRIO_INPUT] = (1, t, self.proprio.dim)
        if self.family == 'denoising':
            shapes[NOISY_ACTION_INPUT] = (1, self.chunk_length, self.action.dim)
            shapes[TIMESTEP_INPUT] = (1,)
        return shapes

    @property
    def output_name(self) -> str:
        """The network output read by the runtime."""
        return PREDICTION_OUTPUT if self.family == 'denoising' else ACTION_OUTPUT

    def output_shape(self) -> tuple[int, int, int]:
        """Shape of the network output for a batch of one."""
        return (1, self.chunk_length, self.action.dim)

    # -- JSON --------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (inverse of `policy_spec_from_dict`)."""
        out: dict[str, Any] = {
            'format': POLICY_FORMAT,
            'version': POLICY_VERSION,
            'name': self.name,
            'cameras': [{'name': c.name, 'preprocess': c.preprocess.to_dict()}
                        for c in self.cameras],
            'observation_history': self.observation_history,
            'proprio': {'joint_names': list(self.proprio.joint_names),
                        'mean': list(self.proprio.stats.mean),
                        'std': list(self.proprio.stats.std)},
            'action': {'kind': self.action.kind, 'joint_names': list(self.action.joint_names),
                       'gripper': self.action.gripper, 'dim': self.action.dim,
                       'mean': list(self.action.stats.mean),
                       'std': list(self.action.stats.std)},
            'chunk_length': self.chunk_length,
            'control_rate_hz': self.control_rate_hz,
            'family': {'kind': self.family},
            'tolerance': {
                'float32': {'atol': self.tolerance_float32.atol,
                            'rtol': self.tolerance_float32.rtol},
                'float16': {'atol': self.tolerance_float16.atol,
                            'rtol': self.tolerance_float16.rtol}},
            'provenance': dict(self.provenance),
        }
        if self.scheduler is not None:
            s = self.scheduler
            out['family'].update({
                'scheduler': 'ddim', 'train_steps': s.train_steps,
                'inference_steps': s.inference_steps, 'beta_schedule': s.beta_schedule,
                'beta_start': s.beta_start, 'beta_end': s.beta_end,
                'prediction': s.prediction, 'clip_sample': s.clip_sample})
        if self.proprio.gripper_joints:
            out['proprio']['gripper_joints'] = list(self.proprio.gripper_joints)
        if self.architecture is not None:
            out['architecture'] = {'name': self.architecture.name,
                                   'kwargs': dict(self.architecture.kwargs)}
        if self.execution is not None:
            out['execution'] = self.execution.to_dict()
        return out

    def to_json(self) -> str:
        """Canonical JSON text."""
        return json.dumps(self.to_dict(), sort_keys=True, allow_nan=False)

    def describe(self) -> str:
        """A few lines for logs and the model card."""
        lines = [f'policy {self.name!r}: {self.family}, chunk {self.chunk_length} actions at '
                 f'{self.control_rate_hz:g} Hz, history {self.observation_history}',
                 f'  action: {self.action.kind} of {list(self.action.joint_names)}'
                 + (' + gripper' if self.action.gripper else '') + f' ({self.action.dim} values)',
                 f'  proprio: positions of {list(self.proprio.joint_names)}'
                 + (' + gripper width' if self.proprio.gripper_joints else '')]
        lines += [f'  camera {i} {c.name!r}: {c.preprocess.describe()}'
                  for i, c in enumerate(self.cameras)]
        if self.execution is not None:
            e = self.execution
            lines.append(f'  execution: {e.mode}' + (
                f', {e.execute_steps or self.chunk_length // 2} actions per chunk'
                if e.mode == 'receding_horizon' else f', decay {e.ensemble_decay:g}'))
        return '\n'.join(lines)


# -- parsing -----------------------------------------------------------------------------------


def _names(reader: FieldReader, key: str) -> tuple[str, ...]:
    value = reader.raw(key)
    if not isinstance(value, list) or not value or not all(
            isinstance(v, str) and v for v in value):
        raise reader.fail(key, f'must be a non-empty list of names, got {value!r}')
    if len(set(value)) != len(value):
        raise reader.fail(key, f'has duplicates: {value}')
    return tuple(value)


def _stats(reader: FieldReader, length: int) -> Normalisation:
    mean = reader.numbers('mean', length)
    std = reader.numbers('std', length)
    for i, value in enumerate(std):
        if value <= 0.0:
            raise reader.fail(f'std[{i}]', f'must be > 0, got {value} (a constant dimension '
                              'in the training data: set its std to 1)')
    return Normalisation(mean, std)


def _tolerance(reader: FieldReader, key: str, default: Tolerance) -> Tolerance:
    if not reader.has(key):
        return default
    r = reader.child(key)
    r.unknown({'atol', 'rtol'})
    return Tolerance(r.number('atol', minimum=0.0), r.number('rtol', minimum=0.0))


def _scheduler(r: FieldReader) -> DenoisingScheduler:
    r.unknown({'kind', 'scheduler', 'train_steps', 'inference_steps', 'beta_schedule',
               'beta_start', 'beta_end', 'prediction', 'clip_sample'})
    r.text('scheduler', choices=('ddim',))
    train = r.integer('train_steps')
    steps = r.integer('inference_steps')
    if steps > train:
        raise r.fail('inference_steps', f'{steps} is more than train_steps {train}')
    start = r.number('beta_start', positive=True, maximum=1.0)
    end = r.number('beta_end', positive=True, maximum=1.0)
    if end < start:
        raise r.fail('beta_end', f'{end} is below beta_start {start}')
    clip = None if r.data.get('clip_sample') is None else r.number('clip_sample',
                                                                   positive=True)
    return DenoisingScheduler(train, steps, r.text('beta_schedule', choices=BETA_SCHEDULES),
                              start, end, r.text('prediction', choices=PREDICTIONS), clip)


def policy_spec_from_dict(data: object) -> PolicySpec:
    """Parse and validate a spec, naming the offending field on any error.

    Raises:
        BundleError: e.g. `action.std[2]: must be > 0, got 0.0 ...`.
    """
    top = FieldReader(data, 'spec', BundleError)
    top.unknown({'format', 'version', 'name', 'cameras', 'observation_history', 'proprio',
                 'action', 'chunk_length', 'control_rate_hz', 'family', 'tolerance',
                 'architecture', 'provenance', 'execution'})
    fmt = top.text('format')
    if fmt != POLICY_FORMAT:
        raise top.fail('format', f'expected {POLICY_FORMAT!r}, got {fmt!r}: this ONNX file is '
                       'not a visuomotor policy bundle')
    version = top.integer('version')
    if version != POLICY_VERSION:
        raise top.fail('version', f'bundle spec version {version} is not supported (this '
                       f'visuomotor reads version {POLICY_VERSION}); re-export the model or '
                       'upgrade visuomotor')
    cameras = []
    for cam in top.children('cameras'):
        cam.unknown({'name', 'preprocess'})
        name = cam.text('name')
        try:
            pre = PreprocessSpec.from_dict(cam.raw('preprocess'))
        except FieldError as exc:
            raise BundleError(f'{cam.field("preprocess")}.{exc.field}',
                              str(exc).split(': ', 1)[-1]) from None
        cameras.append(CameraInput(name, pre))
    if not cameras:
        raise top.fail('cameras', 'is empty: a visuomotor policy reads at least one camera')
    names = [c.name for c in cameras]
    if len(set(names)) != len(names):
        raise top.fail('cameras', f'camera names repeat: {names}')

    proprio = top.child('proprio')
    proprio.unknown({'joint_names', 'mean', 'std', 'gripper_joints'})
    joints = _names(proprio, 'joint_names')
    fingers = _names(proprio, 'gripper_joints') if proprio.has('gripper_joints') else ()
    proprio_spec = ProprioSpec(joints, _stats(proprio, len(joints) + int(bool(fingers))),
                               fingers)

    act = top.child('action')
    act.unknown({'kind', 'joint_names', 'gripper', 'dim', 'mean', 'std'})
    kind = act.text('kind', choices=ACTION_KINDS)
    act_joints = _names(act, 'joint_names')
    gripper = act.boolean('gripper')
    dim = (EE_POSE_DIM if kind == 'ee_pose' else len(act_joints)) + int(gripper)
    declared = act.integer('dim')
    if declared != dim:
        raise act.fail('dim', f'is {declared}, but a {kind} action of {len(act_joints)} joints'
                       + (' + gripper' if gripper else '') + f' has {dim} values')
    action_spec = ActionSpec(kind, act_joints, gripper, _stats(act, dim))

    fam = top.child('family')
    family = fam.text('kind', choices=FAMILIES)
    scheduler = None
    if family == 'denoising':
        scheduler = _scheduler(fam)
    else:
        fam.unknown({'kind'})

    tol = top.child('tolerance') if top.has('tolerance') else FieldReader({}, 'spec.tolerance',
                                                                           BundleError)
    tol.unknown({'float32', 'float16'})
    architecture = None
    if top.has('architecture'):
        arch = top.child('architecture')
        arch.unknown({'name', 'kwargs'})
        kwargs = arch.raw('kwargs')
        if not isinstance(kwargs, Mapping):
            raise arch.fail('kwargs', f'must be an object, got {kwargs!r}')
        architecture = Architecture(arch.text('name'), dict(kwargs))
    execution = None
    if top.has('execution'):
        run = top.child('execution')
        run.unknown({'mode', 'execute_steps', 'ensemble_decay'})
        execution = ChunkExecution(run.text('mode', choices=EXECUTION_MODES),
                                   run.integer('execute_steps', 0, minimum=0),
                                   run.number('ensemble_decay', 0.01, minimum=0.0))
        if execution.execute_steps > top.integer('chunk_length'):
            raise run.fail('execute_steps', f'is {execution.execute_steps}, more than the '
                           f"chunk length {top.integer('chunk_length')}")
    provenance = top.data.get('provenance', {})
    if not isinstance(provenance, Mapping):
        raise top.fail('provenance', f'must be an object, got {provenance!r}')
    rate = top.number('control_rate_hz', positive=True, maximum=1000.0)
    if not math.isfinite(rate):
        raise top.fail('control_rate_hz', 'must be finite')
    return PolicySpec(
        name=top.text('name'), cameras=tuple(cameras),
        observation_history=top.integer('observation_history'),
        proprio=proprio_spec, action=action_spec,
        chunk_length=top.integer('chunk_length'), control_rate_hz=rate,
        family=family, scheduler=scheduler,
        tolerance_float32=_tolerance(tol, 'float32', PolicySpec.tolerance_float32),
        tolerance_float16=_tolerance(tol, 'float16', PolicySpec.tolerance_float16),
        architecture=architecture, provenance=dict(provenance), execution=execution)


def policy_spec_from_json(text: str, source: str = 'spec') -> PolicySpec:
    """Parse the JSON text of a spec (`source` names it in errors)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BundleError(source, f'is not valid JSON ({exc}); re-export the model') from None
    return policy_spec_from_dict(data)
