"""Policy specs, bundles, golden-array encoding and the rig contract.

What a user shipping a model checks: a spec survives its dict and JSON forms unchanged; a
bundle written and loaded back carries the same spec, bit-identical golden I/O, the hash of its
ONNX file and a model card; every invalid spec, file or golden entry is refused with an error
naming the field; torch weights are never unpickled; and a rig whose cameras, frames, joints
or control rate differ from the model's is refused naming both values.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from policy_helpers import (
    CAMERAS,
    FR3_JOINTS,
    HISTORY,
    SIZE,
    UR5E_JOINTS,
    export,
    make_spec,
)

from visuomotor.policy.bundle import (
    CARD_FILE,
    GOLDEN_KEY,
    ONNX_FILE,
    SPEC_KEY,
    WEIGHTS_FILE,
    PolicyBundle,
    load_bundle,
    load_weights,
    set_execution,
    write_bundle,
)
from visuomotor.policy.contract import CameraStream, LiveRig, check_rig
from visuomotor.policy.errors import BundleError, BundleMismatchError
from visuomotor.policy.node_schema import POLICY_NODE_PARAMS, scheduler_config
from visuomotor.policy.spec import (
    CameraInput,
    ChunkExecution,
    DenoisingScheduler,
    Normalisation,
    PolicySpec,
    Tolerance,
    policy_spec_from_dict,
    policy_spec_from_json,
)
from visuomotor.policy.tensors import DTYPES, decode_array, encode_array
from visuomotor.preprocessing import Crop, PreprocessSpec, Resize
from visuomotor.training.export import golden_inputs
from visuomotor.training.nets import build_architecture

pytestmark = [
    pytest.mark.filterwarnings('ignore:You are using the legacy TorchScript:DeprecationWarning'),
    pytest.mark.filterwarnings('ignore:The feature will be removed:DeprecationWarning'),
]

PROVENANCE = {'dataset': 'pick_cube_v3', 'epochs': 40, 'commit': 'abc1234'}


@pytest.fixture(scope='module')
def bundle(tmp_path_factory: pytest.TempPathFactory) -> PolicyBundle:
    """A single-pass Levine bundle with provenance."""
    spec = make_spec(provenance=PROVENANCE)
    return export(spec, tmp_path_factory.mktemp('single_pass'))


@pytest.fixture(scope='module')
def denoising_bundle(tmp_path_factory: pytest.TempPathFactory) -> PolicyBundle:
    return export(make_spec(family='denoising'), tmp_path_factory.mktemp('denoising'))


def copy_with_metadata(source: PolicyBundle, directory: Path,
                       edit: Callable[[dict[str, str]], None]) -> Path:
    """Copy the bundle's ONNX into `directory` with its metadata entries edited in place."""
    model = onnx.load_model(str(source.onnx_path))
    meta = {p.key: p.value for p in model.metadata_props}
    edit(meta)
    del model.metadata_props[:]
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    directory.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(directory / ONNX_FILE))
    return directory


def edit_golden(source: PolicyBundle, directory: Path,
                change: Callable[[dict[str, Any]], None]) -> Path:
    def edit(meta: dict[str, str]) -> None:
        golden = json.loads(meta[GOLDEN_KEY])
        change(golden)
        meta[GOLDEN_KEY] = json.dumps(golden)
    return copy_with_metadata(source, directory, edit)


def refused_bundle(path: Path) -> BundleError:
    with pytest.raises(BundleError) as error:
        load_bundle(path)
    return error.value


# -- spec round trips --------------------------------------------------------------------------


def rich_spec(family: str, clip: float | None = 1.0) -> PolicySpec:
    """A spec using every optional part: custom preprocessing, stats, tolerances, scheduler."""
    pre = PreprocessSpec(input_encoding='bgr8', input_height=48, input_width=64,
                         crop=Crop('center', 40, 40), resize=Resize(32, 32, 'area'),
                         mean=(0.5, 0.4, 0.3), std=(0.25, 0.2, 0.15))
    base = make_spec(family=family, provenance=PROVENANCE,
                     scheduler=DenoisingScheduler(100, 10, 'linear', 1e-4, 2e-2, 'sample', clip)
                     if family == 'denoising' else None,
                     proprio_stats=Normalisation(tuple(0.1 * i for i in range(7)),
                                                 tuple(0.5 + 0.1 * i for i in range(7))),
                     action_stats=Normalisation(tuple(-0.2 * i for i in range(8)),
                                                tuple(0.3 + 0.05 * i for i in range(8))))
    return PolicySpec(
        name='rich', cameras=(base.cameras[0], CameraInput('side', pre)),
        observation_history=base.observation_history, proprio=base.proprio,
        action=base.action, chunk_length=base.chunk_length,
        control_rate_hz=base.control_rate_hz, family=base.family, scheduler=base.scheduler,
        tolerance_float32=Tolerance(2e-4, 5e-3), tolerance_float16=Tolerance(3e-2, 1e-2),
        architecture=base.architecture, provenance=base.provenance)


@pytest.mark.parametrize(('family', 'clip'), [('single_pass', 1.0), ('denoising', 1.0),
                                              ('denoising', None)])
def test_spec_survives_its_dict_and_json_forms(family: str, clip: float | None) -> None:
    spec = rich_spec(family, clip)
    assert policy_spec_from_dict(spec.to_dict()) == spec
    assert policy_spec_from_json(spec.to_json()) == spec
    assert policy_spec_from_json(spec.to_json()).to_json() == spec.to_json()
    if family == 'denoising':
        assert policy_spec_from_json(spec.to_json()).scheduler == spec.scheduler


def test_defaults_of_tolerance_and_architecture_are_optional_in_json() -> None:
    data = make_spec(with_architecture=False).to_dict()
    del data['tolerance'], data['provenance']
    spec = policy_spec_from_dict(data)
    assert spec.architecture is None
    assert spec.tolerance_float32 == Tolerance(1e-4, 1e-3)
    assert spec.tolerance_float16 == Tolerance(2e-2, 2e-2)
    assert spec.provenance == {}


def test_bundle_loads_back_with_the_spec_golden_io_hash_weights_and_card(
        bundle: PolicyBundle) -> None:
    spec = make_spec(provenance=PROVENANCE)
    assert bundle.spec == spec
    again = load_bundle(bundle.directory)
    assert load_bundle(bundle.onnx_path).spec == again.spec == spec
    expected_inputs = golden_inputs(spec, seed=0)
    assert set(again.golden_inputs) == set(spec.input_shapes())
    for name, array in expected_inputs.items():
        assert again.golden_inputs[name].dtype == array.dtype
        assert again.golden_inputs[name].tobytes() == array.tobytes()
    assert set(again.golden_outputs) == {'action'}
    assert again.golden_outputs['action'].shape == (1, 4, 8)
    assert again.onnx_sha256 == hashlib.sha256(
        (bundle.directory / ONNX_FILE).read_bytes()).hexdigest()
    assert again.onnx_bytes == (bundle.directory / ONNX_FILE).read_bytes()
    # the weights are the exported module's state dict
    torch.manual_seed(0)
    assert spec.architecture is not None
    module = build_architecture(spec.architecture.name, spec.architecture.kwargs)
    weights = load_weights(again)
    assert again.weights_path == bundle.directory / WEIGHTS_FILE
    assert set(weights) == set(module.state_dict())
    for key, value in module.state_dict().items():
        np.testing.assert_array_equal(weights[key], value.numpy())
    assert again.card_path == bundle.directory / CARD_FILE
    card = again.card_path.read_text()
    for camera in CAMERAS:
        assert repr(camera) in card
    assert 'pick_cube_v3' in card and 'epochs: 40' in card


def test_golden_arrays_are_bit_identical_through_the_onnx_metadata(
        bundle: PolicyBundle, tmp_path: Path) -> None:
    inputs = {k: v.copy() for k, v in bundle.golden_inputs.items()}
    special = np.array([-0.0, 1e-45, np.finfo(np.float32).max, -np.finfo(np.float32).tiny,
                        1.0 / 3.0, 0.0, -1.5], dtype=np.float32)
    inputs['proprio'][0, 0] = special
    outputs = {'action': bundle.golden_outputs['action'].astype(np.float64) / 3.0}
    written = write_bundle(tmp_path, onnx.load_model(str(bundle.onnx_path)), bundle.spec,
                           inputs, outputs)
    for name, array in inputs.items():
        assert written.golden_inputs[name].tobytes() == array.tobytes()
    assert written.golden_outputs['action'].dtype == np.float64
    assert written.golden_outputs['action'].tobytes() == outputs['action'].tobytes()
    assert written.weights_path is None
    assert written.onnx_sha256 != bundle.onnx_sha256  # different metadata, different file


# -- spec errors name their field --------------------------------------------------------------


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    """A mutation setting `a.b[0].c` (list indices in brackets) to `value`."""
    def mutate(data: dict[str, Any]) -> None:
        keys: list[Any] = []
        for part in path.split('.'):
            name, *indices = part.replace(']', '').split('[')
            keys += [name, *(int(i) for i in indices)]
        target: Any = data
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
    return mutate


def _duplicate_cameras(data: dict[str, Any]) -> None:
    data['cameras'][1]['name'] = data['cameras'][0]['name']


SPEC_ERRORS = [
    ('format', _set('format', 'visuomotor.preprocessing'), 'spec.format',
     'not a visuomotor policy bundle'),
    ('version', _set('version', 2), 'spec.version', 'version 2 is not supported'),
    ('typo', _set('chunk_lenght', 4), 'spec', "unknown keys ['chunk_lenght']"),
    ('no cameras', _set('cameras', []), 'spec.cameras', 'is empty'),
    ('duplicate cameras', _duplicate_cameras, 'spec.cameras', 'camera names repeat'),
    ('preprocess', _set('cameras[0].preprocess.input.height', 0),
     'spec.cameras[0].preprocess.input.height', 'must be a positive integer'),
    ('preprocess typo', _set('cameras[1].preprocess.input.heigth', 32),
     'spec.cameras[1].preprocess.input.heigth', 'typo'),
    ('action dim', _set('action.dim', 7), 'spec.action.dim',
     'joint_position action of 7 joints + gripper has 8 values'),
    ('action std', _set('action.std[2]', 0.0), 'spec.action.std[2]', 'must be > 0, got 0.0'),
    ('proprio std', _set('proprio.std[0]', -1.0), 'spec.proprio.std[0]', 'must be > 0'),
    ('proprio mean length', _set('proprio.mean', [0.0] * 6), 'spec.proprio.mean',
     'must be a list of 7 numbers'),
    ('duplicate joints', _set('proprio.joint_names', ['a', 'a']), 'spec.proprio.joint_names',
     'has duplicates'),
    ('action kind', _set('action.kind', 'joint_velocity'), 'spec.action.kind',
     "must be one of ['joint_position', 'joint_delta', 'ee_pose']"),
    ('family', _set('family.kind', 'diffusion'), 'spec.family.kind', 'must be one of'),
    ('control rate', _set('control_rate_hz', 0), 'spec.control_rate_hz', 'must be > 0'),
    ('architecture kwargs', _set('architecture.kwargs', [1]), 'spec.architecture.kwargs',
     'must be an object'),
    ('tolerance', _set('tolerance.float32.atol', -1e-4), 'spec.tolerance.float32.atol',
     'must be >= 0'),
    ('execution mode', _set('execution', {'mode': 'ensemble'}), 'spec.execution.mode',
     "must be one of ['receding_horizon', 'temporal_ensemble']"),
    ('execution steps', _set('execution', {'mode': 'receding_horizon', 'execute_steps': 9}),
     'spec.execution.execute_steps', 'more than the chunk length'),
    ('execution decay', _set('execution', {'mode': 'temporal_ensemble',
                                           'ensemble_decay': -0.1}),
     'spec.execution.ensemble_decay', 'must be >= 0.0'),
    ('execution typo', _set('execution', {'mode': 'temporal_ensemble', 'decay': 0.1}),
     'spec.execution', 'unknown keys'),
]

DENOISING_ERRORS = [
    ('inference steps', _set('family.inference_steps', 60), 'spec.family.inference_steps',
     '60 is more than train_steps 50'),
    ('beta order', _set('family.beta_end', 1e-5), 'spec.family.beta_end',
     'is below beta_start 0.0001'),
    ('beta schedule', _set('family.beta_schedule', 'cosine'), 'spec.family.beta_schedule',
     'must be one of'),
    ('prediction', _set('family.prediction', 'v'), 'spec.family.prediction', 'must be one of'),
    ('scheduler typo', _set('family.train_step', 50), 'spec.family', 'unknown keys'),
]


@pytest.mark.parametrize(('mutate', 'field', 'phrase'), [e[1:] for e in SPEC_ERRORS],
                         ids=[e[0] for e in SPEC_ERRORS])
def test_single_pass_spec_errors_name_their_field(
        mutate: Callable[[dict[str, Any]], None], field: str, phrase: str) -> None:
    data = make_spec().to_dict()
    policy_spec_from_dict(copy.deepcopy(data))  # the unmodified spec is valid
    mutate(data)
    with pytest.raises(BundleError) as error:
        policy_spec_from_dict(data)
    assert error.value.field == field
    assert str(error.value).startswith(f'{field}: ')
    assert phrase in str(error.value)


@pytest.mark.parametrize(('mutate', 'field', 'phrase'), [e[1:] for e in DENOISING_ERRORS],
                         ids=[e[0] for e in DENOISING_ERRORS])
def test_denoising_spec_errors_name_their_field(
        mutate: Callable[[dict[str, Any]], None], field: str, phrase: str) -> None:
    data = make_spec(family='denoising').to_dict()
    policy_spec_from_dict(copy.deepcopy(data))
    mutate(data)
    with pytest.raises(BundleError) as error:
        policy_spec_from_dict(data)
    assert error.value.field == field
    assert phrase in str(error.value)


def test_spec_that_is_not_json_or_not_an_object_is_refused() -> None:
    with pytest.raises(BundleError) as error:
        policy_spec_from_json('{"format": ', source='policy.onnx visuomotor.spec')
    assert error.value.field == 'policy.onnx visuomotor.spec'
    assert 'not valid JSON' in str(error.value)
    with pytest.raises(BundleError) as error:
        policy_spec_from_dict(['not', 'a', 'mapping'])
    assert error.value.field == 'spec'


# -- bundle loading errors ---------------------------------------------------------------------


def test_missing_bundle_is_refused(tmp_path: Path) -> None:
    for path in (tmp_path / 'nowhere', tmp_path):  # no file, and a directory without the ONNX
        error = refused_bundle(path)
        assert error.field == 'bundle'
        assert 'does not exist' in str(error) and ONNX_FILE in str(error)


def test_a_file_that_is_not_onnx_is_refused(tmp_path: Path) -> None:
    path = tmp_path / 'policy.onnx'
    path.write_bytes(b'not an onnx model at all\n')
    error = refused_bundle(path)
    assert error.field == 'bundle'
    assert 'is not an ONNX model' in str(error)


def test_plain_onnx_without_the_spec_is_not_a_visuomotor_bundle(
        bundle: PolicyBundle, tmp_path: Path) -> None:
    copy_with_metadata(bundle, tmp_path, lambda meta: meta.clear())
    error = refused_bundle(tmp_path)
    assert error.field == 'policy.onnx metadata'
    assert 'not a visuomotor bundle' in str(error)
    assert SPEC_KEY in str(error)


def test_bundle_without_golden_io_is_refused(bundle: PolicyBundle, tmp_path: Path) -> None:
    copy_with_metadata(bundle, tmp_path, lambda meta: meta.pop(GOLDEN_KEY))
    error = refused_bundle(tmp_path)
    assert GOLDEN_KEY in str(error)


def test_invalid_embedded_spec_names_the_metadata_entry(
        bundle: PolicyBundle, tmp_path: Path) -> None:
    copy_with_metadata(bundle, tmp_path, lambda meta: meta.update({SPEC_KEY: '{oops'}))
    error = refused_bundle(tmp_path)
    assert error.field == f'policy.onnx {SPEC_KEY}'
    assert 'not valid JSON' in str(error)


def test_graph_inputs_that_differ_from_the_spec_are_refused(
        bundle: PolicyBundle, tmp_path: Path) -> None:
    def rename_camera(meta: dict[str, str]) -> None:
        spec = json.loads(meta[SPEC_KEY])
        spec['cameras'][1]['name'] = 'gripper_cam'
        meta[SPEC_KEY] = json.dumps(spec)
    copy_with_metadata(bundle, tmp_path / 'renamed', rename_camera)
    error = refused_bundle(tmp_path / 'renamed')
    assert error.field == 'policy.onnx inputs'
    assert "'image.wrist'" in str(error) and "'image.gripper_cam'" in str(error)

    def resize_camera(meta: dict[str, str]) -> None:
        spec = json.loads(meta[SPEC_KEY])
        spec['cameras'][0]['preprocess']['input'].update(height=48, width=48)
        meta[SPEC_KEY] = json.dumps(spec)
    copy_with_metadata(bundle, tmp_path / 'resized', resize_camera)
    error = refused_bundle(tmp_path / 'resized')
    assert error.field == "policy.onnx input 'image.scene'"
    assert f'[1, {HISTORY}, 3, 48, 48]' in str(error)


def test_denoising_spec_on_a_single_pass_graph_is_refused(
        bundle: PolicyBundle, denoising_bundle: PolicyBundle, tmp_path: Path) -> None:
    copy_with_metadata(bundle, tmp_path, lambda meta: meta.update(
        {SPEC_KEY: denoising_bundle.spec.to_json()}))
    error = refused_bundle(tmp_path)
    assert 'noisy_action' in str(error) and 'timestep' in str(error)


@pytest.mark.parametrize(('change', 'field', 'phrase'), [
    (lambda g: g['outputs']['action'].update(zlib_b64='!!not base64!!'),
     'policy.onnx golden.outputs.action.zlib_b64', 'is corrupt'),
    (lambda g: g['inputs']['proprio'].update(shape=[1, HISTORY, 6]),
     'policy.onnx golden.inputs.proprio',
     'holds more than 48 bytes, but float32 [1, 2, 6] needs 48'),
    (lambda g: g['inputs']['proprio'].update(dtype='object'),
     'policy.onnx golden.inputs.proprio.dtype', 'is not one of'),
    (lambda g: g['inputs'].pop('image.wrist'), 'policy.onnx golden.inputs', 'expected'),
    (lambda g: g['outputs'].clear(), 'policy.onnx golden.outputs', "lacks 'action'"),
    (lambda g: g.update(extra=1), 'policy.onnx golden', 'must be an object with'),
], ids=['bad base64', 'byte count', 'dtype', 'missing input', 'missing output', 'extra key'])
def test_corrupt_golden_io_is_refused_naming_golden(
        bundle: PolicyBundle, tmp_path: Path, change: Callable[[dict[str, Any]], None],
        field: str, phrase: str) -> None:
    edit_golden(bundle, tmp_path, change)
    error = refused_bundle(tmp_path)
    assert error.field == field
    assert 'golden' in error.field
    assert phrase in str(error)


@pytest.mark.parametrize('value', [5, ['a', 'b']])
def test_golden_inputs_that_are_not_an_object_are_refused(
        bundle: PolicyBundle, tmp_path: Path, value: object) -> None:
    edit_golden(bundle, tmp_path, lambda g: g.update(inputs=value))
    error = refused_bundle(tmp_path)
    assert 'golden' in error.field


def test_non_finite_golden_values_are_refused(bundle: PolicyBundle, tmp_path: Path) -> None:
    outputs = {'action': bundle.golden_outputs['action'].copy()}
    outputs['action'][0, 1, 2] = np.nan
    with pytest.raises(BundleError) as error:
        write_bundle(tmp_path, onnx.load_model(str(bundle.onnx_path)), bundle.spec,
                     bundle.golden_inputs, outputs)
    assert 'golden' in error.value.field
    assert 'non-finite' in str(error.value)


def test_network_output_that_differs_from_chunk_length_is_refused(tmp_path: Path) -> None:
    spec = make_spec()
    assert spec.architecture is not None
    torch.manual_seed(0)
    module = build_architecture(spec.architecture.name, spec.architecture.kwargs)  # 4 actions
    from visuomotor.training.export import export_bundle
    with pytest.raises(BundleError) as error:
        export_bundle(module, make_spec(chunk_length=5, with_architecture=False), tmp_path)
    assert 'chunk_length' in str(error.value)


# -- weights are never unpickled ---------------------------------------------------------------

UNPICKLED: list[str] = []


def _record_unpickle() -> str:
    UNPICKLED.append('unpickled')
    return 'payload'


class _PickleTrap:
    """An object whose unpickling is recorded (stands in for a malicious payload)."""

    def __reduce__(self) -> tuple[Callable[[], str], tuple[()]]:
        return (_record_unpickle, ())


def test_weights_with_an_object_array_are_refused_not_unpickled(
        bundle: PolicyBundle, tmp_path: Path) -> None:
    write_bundle(tmp_path, onnx.load_model(str(bundle.onnx_path)), bundle.spec,
                 bundle.golden_inputs, bundle.golden_outputs)
    weights = tmp_path / WEIGHTS_FILE
    np.savez(weights, trap=np.array([_PickleTrap()], dtype=object), allow_pickle=True)
    loaded = load_bundle(tmp_path)
    assert loaded.weights_path == weights
    UNPICKLED.clear()
    with pytest.raises(BundleError) as error:
        load_weights(loaded)
    assert error.value.field == WEIGHTS_FILE
    assert 'unpickling' in str(error.value)
    assert UNPICKLED == []
    # the trap is real: numpy with pickling allowed does run it
    with np.load(weights, allow_pickle=True) as data:
        data['trap']
    assert UNPICKLED == ['unpickled']


def test_bundle_without_weights_says_the_torch_backend_needs_them(
        bundle: PolicyBundle, tmp_path: Path) -> None:
    written = write_bundle(tmp_path, onnx.load_model(str(bundle.onnx_path)), bundle.spec,
                           bundle.golden_inputs, bundle.golden_outputs)
    with pytest.raises(BundleError) as error:
        load_weights(written)
    assert WEIGHTS_FILE in str(error.value) and 'PyTorch backend' in str(error.value)


def test_truncated_weights_file_is_a_bundle_error(bundle: PolicyBundle, tmp_path: Path) -> None:
    written = write_bundle(tmp_path, onnx.load_model(str(bundle.onnx_path)), bundle.spec,
                           bundle.golden_inputs, bundle.golden_outputs,
                           weights={'w': np.ones((64, 64), np.float32)})
    assert written.weights_path is not None
    written.weights_path.write_bytes(written.weights_path.read_bytes()[:200])
    with pytest.raises(BundleError):
        load_weights(written)


# -- tensors -----------------------------------------------------------------------------------


def sample_array(dtype: str, shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if dtype.startswith('float'):
        return rng.standard_normal(shape).astype(dtype) * 1e3
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)


@pytest.mark.parametrize('dtype', DTYPES)
@pytest.mark.parametrize('shape', [(2, 3, 4), (5,), (0,), (3, 0), ()],
                         ids=['3d', '1d', 'empty', 'empty 2d', '0-d'])
def test_arrays_round_trip_through_json(dtype: str, shape: tuple[int, ...]) -> None:
    array = sample_array(dtype, shape)
    encoded = json.loads(json.dumps(encode_array(array)))
    assert encoded['dtype'] == dtype and encoded['shape'] == list(shape)
    decoded = decode_array(encoded, 'golden.x')
    assert decoded.dtype == np.dtype(dtype)
    assert decoded.shape == shape
    assert decoded.tobytes() == array.tobytes()


def test_big_endian_and_strided_arrays_round_trip_by_value() -> None:
    array = sample_array('float64', (4, 6))
    big = array.astype('>f8')
    strided = array.T[::2]
    assert not strided.flags.c_contiguous
    for value in (big, strided, sample_array('int32', (3, 3)).astype('>i4')):
        decoded = decode_array(encode_array(value), 'x')
        assert decoded.dtype.isnative
        np.testing.assert_array_equal(decoded, value)


@pytest.mark.parametrize('value', [np.array([{'a': 1}], dtype=object), np.array([True]),
                                   np.array([1 + 2j]), np.array(['text'])],
                         ids=['object', 'bool', 'complex', 'str'])
def test_non_numeric_arrays_cannot_be_encoded(value: np.ndarray) -> None:
    with pytest.raises(BundleError) as error:
        encode_array(value)
    assert 'cannot be stored' in str(error.value)


@pytest.mark.parametrize(('change', 'field'), [
    ({'dtype': 'object'}, 'golden.x.dtype'),
    ({'dtype': 'complex64'}, 'golden.x.dtype'),
    ({'shape': [2, -3]}, 'golden.x.shape'),
    ({'shape': [True, 6]}, 'golden.x.shape'),
    ({'shape': '2x3'}, 'golden.x.shape'),
    ({'shape': [2, 4]}, 'golden.x'),
    ({'zlib_b64': 'AAAA'}, 'golden.x.zlib_b64'),
], ids=['object', 'complex', 'negative', 'bool size', 'not a list', 'byte count', 'not zlib'])
def test_decoding_refuses_bad_entries(change: dict[str, Any], field: str) -> None:
    data = {**encode_array(np.arange(6, dtype=np.float32).reshape(2, 3)), **change}
    with pytest.raises(BundleError) as error:
        decode_array(data, 'golden.x')
    assert error.value.field == field


def test_decoding_refuses_missing_or_extra_keys() -> None:
    data = encode_array(np.zeros(3, np.float32))
    for bad in ({k: v for k, v in data.items() if k != 'shape'}, {**data, 'pickle': True},
                [data]):
        with pytest.raises(BundleError) as error:
            decode_array(bad, 'golden.x')
        assert error.value.field == 'golden.x'


# -- the rig contract --------------------------------------------------------------------------


def rig(**changes: Any) -> LiveRig:
    cameras = {c: CameraStream(f'/{c}/image_raw', SIZE, SIZE, 'rgb8') for c in CAMERAS}
    values: dict[str, Any] = {'cameras': cameras, 'joint_names': list(FR3_JOINTS),
                              'control_rate_hz': 10.0, 'robot': 'fr3'}
    values.update(changes)
    return LiveRig(**values)


def mismatch(live: LiveRig) -> BundleMismatchError:
    with pytest.raises(BundleMismatchError) as error:
        check_rig(make_spec(), live)
    return error.value


def test_matching_rig_passes() -> None:
    check_rig(make_spec(), rig())
    # unknown frame formats are not held against the rig (checked per frame later)
    check_rig(make_spec(), rig(cameras={c: CameraStream(f'/{c}') for c in (*CAMERAS, 'top')}))


def test_missing_camera_names_the_model_camera_and_the_rig_cameras() -> None:
    error = mismatch(rig(cameras={'scene': CameraStream('/scene', SIZE, SIZE, 'rgb8'),
                                  'top': CameraStream('/top', SIZE, SIZE, 'rgb8')}))
    assert error.field == 'cameras.wrist'
    assert "camera 'wrist'" in str(error)
    assert "['scene', 'top']" in str(error)


def test_wrong_resolution_names_both_sizes() -> None:
    cameras = {'scene': CameraStream('/scene', SIZE, SIZE, 'rgb8'),
               'wrist': CameraStream('/wrist/image_raw', 640, 480, 'rgb8')}
    error = mismatch(rig(cameras=cameras))
    assert error.field == 'cameras.wrist'
    assert f'{SIZE}x{SIZE}' in str(error) and '640x480' in str(error)
    assert '/wrist/image_raw' in str(error)


def test_wrong_encoding_names_both_encodings() -> None:
    cameras = {'scene': CameraStream('/scene', SIZE, SIZE, 'bgr8'),
               'wrist': CameraStream('/wrist', SIZE, SIZE, 'rgb8')}
    error = mismatch(rig(cameras=cameras))
    assert error.field == 'cameras.scene'
    assert 'expects rgb8' in str(error) and 'sends bgr8' in str(error)


def test_joints_of_another_robot_are_refused_naming_both() -> None:
    error = mismatch(rig(joint_names=list(UR5E_JOINTS), robot='ur5e'))
    assert error.field == 'proprio.joint_names'
    assert 'fr3_joint1' in str(error) and 'shoulder_pan_joint' in str(error)
    assert 'are not joints of ur5e' in str(error)


def test_joint_order_matters() -> None:
    swapped = list(FR3_JOINTS)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    error = mismatch(rig(joint_names=swapped))
    assert error.field == 'proprio.joint_names'
    assert 'the order differs' in str(error)


def test_control_rate_mismatch_names_both_rates() -> None:
    error = mismatch(rig(control_rate_hz=15.0))
    assert error.field == 'control_rate_hz'
    assert 'trained at 10 Hz' in str(error) and 'runs at 15 Hz' in str(error)
    check_rig(make_spec(), rig(control_rate_hz=10.0 + 1e-9))


def test_a_proprio_gripper_width_round_trips_and_widens_the_input() -> None:
    import dataclasses

    from visuomotor.policy.spec import ProprioSpec

    base = make_spec()
    joints = base.proprio.joint_names
    fingers = ('finger_a', 'finger_b')
    spec = dataclasses.replace(base, proprio=ProprioSpec(
        joints, Normalisation((0.0,) * (len(joints) + 1), (1.0,) * (len(joints) + 1)), fingers))
    again = policy_spec_from_json(spec.to_json())
    assert again == spec and again.proprio.dim == len(joints) + 1
    assert again.input_shapes()['proprio'][-1] == len(joints) + 1
    assert 'gripper width' in spec.describe()
    cameras = {c: CameraStream(f'/{c}/image_raw') for c in spec.camera_names}
    check_rig(spec, LiveRig(cameras, joints, spec.control_rate_hz, 'arm', fingers))
    with pytest.raises(BundleMismatchError, match='proprio.gripper_joints'):
        check_rig(spec, LiveRig(cameras, joints, spec.control_rate_hz, 'arm', ('other',)))
    # Stats of the wrong length name the field.
    broken = spec.to_dict()
    broken['proprio']['mean'] = [0.0] * len(joints)
    with pytest.raises(BundleError, match='proprio.mean'):
        policy_spec_from_json(json.dumps(broken))


def test_the_execution_block_sets_how_the_policy_node_runs_the_bundle(
        bundle: PolicyBundle, tmp_path: Path) -> None:
    """A bundle validated with temporal ensembling runs that way unless a parameter says
    otherwise; a bundle that names no execution runs receding horizon."""
    defaults = {p.name: p.default for p in POLICY_NODE_PARAMS}
    spec = bundle.spec
    plain = scheduler_config(defaults, spec.chunk_length, spec.control_period_s, spec.execution)
    assert spec.execution is None and plain.mode == 'receding_horizon'
    assert plain.execute_steps == spec.chunk_length // 2
    shutil.copytree(bundle.directory, tmp_path / 'b')
    validated = set_execution(load_bundle(tmp_path / 'b'),
                              ChunkExecution('temporal_ensemble', ensemble_decay=0.1))
    assert validated.spec.execution == ChunkExecution('temporal_ensemble', 0, 0.1)
    np.testing.assert_array_equal(validated.golden_outputs[spec.output_name],
                                  bundle.golden_outputs[spec.output_name])
    assert 'execution: temporal_ensemble, decay 0.1' in validated.spec.describe()
    run = scheduler_config(defaults, spec.chunk_length, spec.control_period_s,
                           validated.spec.execution)
    assert (run.mode, run.ensemble_decay) == ('temporal_ensemble', 0.1)
    override = scheduler_config({**defaults, 'scheduler': 'receding_horizon',
                                 'execute_steps': 2}, spec.chunk_length,
                                spec.control_period_s, validated.spec.execution)
    assert (override.mode, override.execute_steps) == ('receding_horizon', 2)
