"""Model bundles: `policy.onnx` with its contract, a model card and optional torch weights.

The bundle is a directory:

    models/<name>/
      policy.onnx         the network; metadata `visuomotor.spec` (JSON, spec.py) and
                          `visuomotor.golden` (inputs and the outputs they must give)
      model_card.md       what it was trained on, how it preprocesses, how well it did
      torch_weights.npz   optional: the state dict of `spec.architecture`, plain arrays

Loading parses protobuf, JSON and `.npz` with `allow_pickle=False`: nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import logging
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from visuomotor.policy.errors import BundleError
from visuomotor.policy.spec import ChunkExecution, PolicySpec, policy_spec_from_json
from visuomotor.policy.tensors import decode_array, encode_array

log = logging.getLogger(__name__)

ONNX_FILE = 'policy.onnx'
CARD_FILE = 'model_card.md'
WEIGHTS_FILE = 'torch_weights.npz'
SPEC_KEY = 'visuomotor.spec'
GOLDEN_KEY = 'visuomotor.golden'

Arrays = dict[str, npt.NDArray[Any]]


@dataclass(frozen=True)
class PolicyBundle:
    """A loaded, validated bundle (the ONNX bytes are read by the backends from `onnx_path`)."""

    directory: Path
    spec: PolicySpec
    onnx_path: Path
    onnx_sha256: str
    golden_inputs: Arrays
    golden_outputs: Arrays
    weights_path: Path | None
    card_path: Path | None

    @property
    def onnx_bytes(self) -> bytes:
        """The ONNX file's contents."""
        return self.onnx_path.read_bytes()


def _graph_io(model: Any) -> tuple[dict[str, tuple[Any, ...]], dict[str, tuple[Any, ...]]]:
    def shape(value_info: Any) -> tuple[Any, ...]:
        dims = value_info.type.tensor_type.shape.dim
        return tuple(d.dim_value if d.HasField('dim_value') else d.dim_param for d in dims)
    initializers = {i.name for i in model.graph.initializer}
    inputs = {v.name: shape(v) for v in model.graph.input if v.name not in initializers}
    outputs = {v.name: shape(v) for v in model.graph.output}
    return inputs, outputs


def _check_graph(model: Any, spec: PolicySpec, where: str) -> None:
    """The network's inputs and outputs are the ones the spec implies (batch may be dynamic)."""
    inputs, outputs = _graph_io(model)
    expected = spec.input_shapes()
    if set(inputs) != set(expected):
        raise BundleError(f'{where} inputs', f'are {sorted(inputs)}, but the spec implies '
                          f'{sorted(expected)}; re-export with the tensor names of '
                          'visuomotor.policy.spec')
    for name, shape in expected.items():
        got = inputs[name]
        fixed = zip(got[1:], shape[1:], strict=False)
        if len(got) != len(shape) or any(isinstance(g, int) and g > 0 and g != e
                                         for g, e in fixed):
            raise BundleError(f'{where} input {name!r}', f'has shape {list(got)}, but the '
                              f'spec implies {list(shape)} (batch first)')
    if spec.output_name not in outputs:
        raise BundleError(f'{where} outputs', f'are {sorted(outputs)}; a {spec.family} model '
                          f'must output {spec.output_name!r}')
    got = outputs[spec.output_name]
    want = spec.output_shape()
    if len(got) != 3 or any(isinstance(g, int) and g > 0 and g != e
                            for g, e in zip(got[1:], want[1:], strict=False)):
        raise BundleError(f'{where} output {spec.output_name!r}', f'has shape {list(got)}, '
                          f'but chunk_length {spec.chunk_length} x action dim '
                          f'{spec.action.dim} means {list(want)}')


def _read_golden(text: str, spec: PolicySpec, where: str) -> tuple[Arrays, Arrays]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise BundleError(where, f'is not valid JSON ({exc}); re-export the model') from None
    if not isinstance(data, Mapping) or set(data) != {'inputs', 'outputs'}:
        raise BundleError(where, 'must be an object with "inputs" and "outputs"')
    for key in ('inputs', 'outputs'):
        if not isinstance(data[key], Mapping):
            raise BundleError(f'{where}.{key}', f'must be an object of named arrays, got '
                              f'{type(data[key]).__name__}; re-export the model')
    inputs = {k: decode_array(v, f'{where}.inputs.{k}') for k, v in dict(data['inputs']).items()}
    outputs = {k: decode_array(v, f'{where}.outputs.{k}')
               for k, v in dict(data['outputs']).items()}
    expected = spec.input_shapes()
    if set(inputs) != set(expected):
        raise BundleError(f'{where}.inputs', f'are {sorted(inputs)}, expected '
                          f'{sorted(expected)}')
    for name, array in inputs.items():
        if array.shape[1:] != expected[name][1:]:
            raise BundleError(f'{where}.inputs.{name}', f'has shape {list(array.shape)}, '
                              f'expected {list(expected[name])}')
    if spec.output_name not in outputs:
        raise BundleError(f'{where}.outputs', f'lacks {spec.output_name!r}')
    out_shape = outputs[spec.output_name].shape
    if out_shape[1:] != spec.output_shape()[1:]:
        raise BundleError(f'{where}.outputs.{spec.output_name}', f'has shape {list(out_shape)}, '
                          f'but chunk_length {spec.chunk_length} x action dim '
                          f'{spec.action.dim} means {list(spec.output_shape())}; the network '
                          'and its spec disagree: re-export')
    if not all(np.isfinite(a).all() for a in (*inputs.values(), *outputs.values())):
        raise BundleError(where, 'holds non-finite values; re-export the model')
    return inputs, outputs


def load_bundle(path: str | Path) -> PolicyBundle:
    """Load and validate a bundle (a directory, or its `policy.onnx`).

    Raises:
        BundleError: the file is missing, not a policy bundle, or inconsistent; the message
            names the field and the fix.
    """
    import onnx  # protobuf parsing only; no code in the file is executed

    target = Path(path)
    onnx_path = target / ONNX_FILE if target.is_dir() else target
    if not onnx_path.is_file():
        raise BundleError('bundle', f'{onnx_path} does not exist; give a bundle directory '
                          f'(with {ONNX_FILE}) or the path of its ONNX file')
    raw = onnx_path.read_bytes()
    if not raw:
        raise BundleError('bundle', f'{onnx_path} is empty (an interrupted copy?); copy or '
                          're-export the bundle')
    try:
        model = onnx.load_model_from_string(raw)
    except Exception as exc:  # protobuf raises its own DecodeError types
        raise BundleError('bundle', f'{onnx_path} is not an ONNX model ({exc})') from None
    meta = {p.key: p.value for p in model.metadata_props}
    if SPEC_KEY not in meta:
        raise BundleError(f'{onnx_path.name} metadata', f'has no {SPEC_KEY!r} entry: this is a '
                          'plain ONNX file, not a visuomotor bundle; export it with '
                          'visuomotor.policy.bundle.write_bundle so it carries its contract')
    spec = policy_spec_from_json(meta[SPEC_KEY], source=f'{onnx_path.name} {SPEC_KEY}')
    _check_graph(model, spec, onnx_path.name)
    if GOLDEN_KEY not in meta:
        raise BundleError(f'{onnx_path.name} metadata', f'has no {GOLDEN_KEY!r} entry; the '
                          'backends cannot be checked without golden I/O; re-export')
    golden_in, golden_out = _read_golden(meta[GOLDEN_KEY], spec, f'{onnx_path.name} golden')
    directory = onnx_path.parent
    weights = directory / WEIGHTS_FILE
    card = directory / CARD_FILE
    if not card.is_file():
        log.warning('bundle %s has no %s beside it: write one (training data, preprocessing, '
                    'success rate, latency)', directory, CARD_FILE)
    return PolicyBundle(directory, spec, onnx_path, hashlib.sha256(raw).hexdigest(), golden_in,
                        golden_out, weights if weights.is_file() else None,
                        card if card.is_file() else None)


def load_weights(bundle: PolicyBundle) -> Arrays:
    """The torch state dict saved with the bundle, as arrays (never unpickled)."""
    if bundle.weights_path is None:
        raise BundleError('bundle', f'{bundle.directory} has no {WEIGHTS_FILE}; the PyTorch '
                          'backend needs the weights exported beside the ONNX file')
    try:
        with np.load(bundle.weights_path, allow_pickle=False) as data:
            return {k: np.array(data[k]) for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise BundleError(WEIGHTS_FILE, f'cannot be read without unpickling or is corrupt '
                          f'({exc}); re-export the model') from None


def write_bundle(directory: str | Path, onnx_model: Any, spec: PolicySpec,
                 golden_inputs: Mapping[str, npt.ArrayLike],
                 golden_outputs: Mapping[str, npt.ArrayLike], *,
                 weights: Mapping[str, npt.ArrayLike] | None = None,
                 card: str | None = None) -> PolicyBundle:
    """Write a bundle and load it back (so what was written is known to load).

    Args:
        directory: created if missing; existing bundle files are replaced.
        onnx_model: an `onnx.ModelProto` (its metadata is replaced).
        spec: the contract.
        golden_inputs: network inputs (batch of one).
        golden_outputs: the outputs they produced in the training framework (the backends
            must reproduce them within the spec's tolerance).
        weights: the torch state dict (arrays) for the PyTorch backend.
        card: the model card's Markdown (default: generated from the spec).
    """
    import onnx

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    golden = {'inputs': {k: encode_array(np.asarray(v)) for k, v in golden_inputs.items()},
              'outputs': {k: encode_array(np.asarray(v)) for k, v in golden_outputs.items()}}
    del onnx_model.metadata_props[:]
    for key, value in ((SPEC_KEY, spec.to_json()), (GOLDEN_KEY, json.dumps(golden))):
        entry = onnx_model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx_model.producer_name = 'visuomotor'
    onnx.save_model(onnx_model, str(out / ONNX_FILE))
    if weights is not None:
        arrays: dict[str, Any] = {k: np.asarray(v) for k, v in weights.items()}
        np.savez(out / WEIGHTS_FILE, allow_pickle=False, **arrays)
    (out / CARD_FILE).write_text(card if card is not None else default_card(spec))
    return load_bundle(out)


def set_execution(bundle: PolicyBundle, execution: ChunkExecution | None) -> PolicyBundle:
    """Record in the bundle how its chunks were executed when it was validated.

    Only the spec's `execution` block changes; the network, golden I/O, weights and card stay.
    """
    import onnx

    model = onnx.load_model_from_string(bundle.onnx_bytes)
    spec = replace(bundle.spec, execution=execution)
    for entry in model.metadata_props:
        if entry.key == SPEC_KEY:
            entry.value = spec.to_json()
    onnx.save_model(model, str(bundle.onnx_path))
    return load_bundle(bundle.onnx_path)


def default_card(spec: PolicySpec) -> str:
    """A model card from the spec alone (training code adds results)."""
    lines = [f'# {spec.name}', '', '```', spec.describe(), '```', '']
    if spec.provenance:
        lines += ['## Provenance', '']
        lines += [f'- {k}: {v}' for k, v in sorted(spec.provenance.items())]
        lines.append('')
    return '\n'.join(lines)
