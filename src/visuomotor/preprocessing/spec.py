"""The preprocessing spec: how a camera frame becomes a model input.

One frozen, JSON-serialisable description. It is written by training, embedded in the model
bundle and read back by deployment and recording, so the steps are never re-declared by hand.

Steps, always in this order:

1. check the frame: size `input_height` x `input_width`, encoding `input_encoding`;
2. `crop` of the full frame: none, a centred window, or a fixed box;
3. convert to float32 and `resize` (nearest / linear / cubic / area, with OpenCV semantics:
   half-pixel centres, replicated borders; `area` only shrinks);
4. `random_crop`: in training a random window of this size, in evaluation and deployment the
   centred window of the same size (the robomimic / Diffusion Policy convention);
5. colour: select channels in `color` order (`rgb`, `bgr`) or take the BT.601 luma
   (`gray` = 0.299 R + 0.587 G + 0.114 B); alpha is dropped;
6. `scale` (e.g. 1/255), then per-channel `(x - mean) / std`;
7. `layout` `chw` (channels first, as torch and ONNX expect) or `hwc`, cast to `dtype`.

The spec hash (`spec_hash`) is the SHA-256 of the canonical JSON, so two specs with the same
hash produce the same model input from the same frame.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast, get_args

from visuomotor.preprocessing.errors import SpecError

SPEC_FORMAT = 'visuomotor.preprocessing'
SPEC_VERSION = 1

Interpolation = Literal['nearest', 'linear', 'cubic', 'area']
ColorOrder = Literal['rgb', 'bgr', 'gray']
Layout = Literal['chw', 'hwc']
OutputDType = Literal['float32', 'float16']
CropMode = Literal['none', 'center', 'box']
InputEncoding = Literal['rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', 'mono16']

INPUT_CHANNEL_ORDER: dict[str, str] = {
    'rgb8': 'rgb',
    'bgr8': 'bgr',
    'rgba8': 'rgba',
    'bgra8': 'bgra',
    'mono8': 'mono',
    'mono16': 'mono',
}
INPUT_MAX_VALUE: dict[str, int] = {
    'rgb8': 255, 'bgr8': 255, 'rgba8': 255, 'bgra8': 255, 'mono8': 255, 'mono16': 65535,
}


def _choice(value: object, allowed: tuple[str, ...], where: str) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise SpecError(where, f'{value!r} is not one of {", ".join(allowed)}')
    return value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive_int(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise SpecError(where, f'must be a positive integer, got {value!r}')
    return value


def _finite(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SpecError(where, f'must be a finite number, got {value!r}')
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise SpecError(where, f'must be a finite number, got {value!r}')
    return number


@dataclass(frozen=True)
class Size:
    """A height x width in pixels."""

    height: int
    width: int

    def __post_init__(self) -> None:
        _positive_int(self.height, 'height')
        _positive_int(self.width, 'width')

    def __str__(self) -> str:
        return f'{self.width}x{self.height}'


@dataclass(frozen=True)
class Crop:
    """A crop of the full frame, applied before anything else.

    `mode`: `none` (keep the frame), `center` (a `height` x `width` window centred in the
    frame; an odd margin leaves the extra pixel at the bottom/right), or `box` (the window
    with top-left corner `x`, `y`).
    """

    mode: CropMode = 'none'
    height: int = 0
    width: int = 0
    x: int = 0
    y: int = 0

    def __post_init__(self) -> None:
        _choice(self.mode, get_args(CropMode), 'crop.mode')
        if self.mode == 'none':
            values = (self.height, self.width, self.x, self.y)
            if not all(_is_int(v) and v == 0 for v in values):
                raise SpecError('crop', 'mode "none" takes no size or offset; remove them or '
                                'set mode to "center" or "box"')
            return
        _positive_int(self.height, 'crop.height')
        _positive_int(self.width, 'crop.width')
        if self.mode == 'center' and (self.x, self.y) != (0, 0):
            raise SpecError('crop', 'mode "center" computes its offset; use mode "box" to '
                            'give x and y')
        for name in ('x', 'y'):
            value = getattr(self, name)
            if not _is_int(value) or value < 0:
                raise SpecError(f'crop.{name}', f'must be an integer >= 0, got {value!r}')

    def window(self, frame: Size) -> tuple[int, int, int, int]:
        """(top, left, height, width) of the crop window inside `frame`."""
        if self.mode == 'none':
            return (0, 0, frame.height, frame.width)
        if self.mode == 'center':
            return ((frame.height - self.height) // 2, (frame.width - self.width) // 2,
                    self.height, self.width)
        return (self.y, self.x, self.height, self.width)


@dataclass(frozen=True)
class Resize:
    """Resize to `height` x `width` with OpenCV `interpolation` semantics."""

    height: int
    width: int
    interpolation: Interpolation = 'area'

    def __post_init__(self) -> None:
        _positive_int(self.height, 'resize.height')
        _positive_int(self.width, 'resize.width')
        _choice(self.interpolation, get_args(Interpolation), 'resize.interpolation')

    @property
    def size(self) -> Size:
        """The output size."""
        return Size(self.height, self.width)


@dataclass(frozen=True)
class PreprocessSpec:
    """How one camera's frame becomes the model input. See the module docstring for the steps.

    `mean` and `std` default to 0 and 1 per output channel. Construct with keywords; every
    value is checked here, so an invalid spec never exists.
    """

    input_encoding: InputEncoding
    input_height: int
    input_width: int
    crop: Crop = field(default_factory=Crop)
    resize: Resize | None = None
    random_crop: Size | None = None
    color: ColorOrder = 'rgb'
    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] = ()
    std: tuple[float, ...] = ()
    layout: Layout = 'chw'
    dtype: OutputDType = 'float32'

    def __post_init__(self) -> None:
        _choice(self.input_encoding, get_args(InputEncoding), 'input.encoding')
        _positive_int(self.input_height, 'input.height')
        _positive_int(self.input_width, 'input.width')
        if not isinstance(self.crop, Crop):
            raise SpecError('crop', f'must be a Crop, got {type(self.crop).__name__}')
        top, left, height, width = self.crop.window(self.input_size)
        if top < 0 or left < 0 or top + height > self.input_height or \
                left + width > self.input_width:
            raise SpecError(
                'crop', f'window {width}x{height} at x={left}, y={top} does not fit in the '
                f'{self.input_size} input frame; make the crop smaller or move it')
        if self.resize is not None:
            if not isinstance(self.resize, Resize):
                raise SpecError('resize', f'must be a Resize, got {type(self.resize).__name__}')
            if self.resize.interpolation == 'area' and (
                    self.resize.height > height or self.resize.width > width):
                raise SpecError(
                    'resize.interpolation',
                    f'"area" only shrinks, but {width}x{height} is resized up to '
                    f'{self.resize.size}; use "linear" or "cubic" to enlarge')
        if self.random_crop is not None:
            if not isinstance(self.random_crop, Size):
                raise SpecError('random_crop', 'must be a Size')
            before = self.size_before_random_crop
            if self.random_crop.height > before.height or self.random_crop.width > before.width:
                raise SpecError('random_crop', f'{self.random_crop} is larger than the '
                                f'{before} image it is cut from')
        _choice(self.color, get_args(ColorOrder), 'color')
        _choice(self.layout, get_args(Layout), 'layout')
        _choice(self.dtype, get_args(OutputDType), 'dtype')
        scale = _finite(self.scale, 'scale')
        if scale <= 0:
            raise SpecError('scale', f'must be > 0, got {self.scale!r}')
        object.__setattr__(self, 'scale', scale)
        channels = self.output_channels
        for name, default in (('mean', 0.0), ('std', 1.0)):
            values = getattr(self, name)
            if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
                raise SpecError(name, f'must be a list of numbers, got {values!r}')
            if len(values) == 0:
                values = (default,) * channels
            if len(values) != channels:
                raise SpecError(name, f'has {len(values)} values but the output has {channels} '
                                f'channel(s) ({self.color})')
            values = tuple(_finite(v, f'{name}[{i}]') for i, v in enumerate(values))
            object.__setattr__(self, name, values)
        for i, value in enumerate(self.std):
            if value <= 0:
                raise SpecError(f'std[{i}]', f'must be > 0, got {value!r}')
        self._check_output_range()

    def _check_output_range(self) -> None:
        """Refuse specs whose outputs overflow their dtype (they would be inf or NaN)."""
        limit = 65504.0 if self.dtype == 'float16' else 3.0e38
        top = INPUT_MAX_VALUE[self.input_encoding] * self.scale
        for i, (mean, std) in enumerate(zip(self.mean, self.std, strict=True)):
            largest = max(abs(top - mean), abs(mean)) / std
            if not largest < limit:
                raise SpecError(f'std[{i}]', f'inputs up to {top:g} after scaling give outputs '
                                f'up to {largest:.3g}, beyond the range of {self.dtype}; '
                                'check scale, mean and std')

    # Derived shapes -------------------------------------------------------------------------

    @property
    def input_size(self) -> Size:
        """Size of the frames this spec accepts."""
        return Size(self.input_height, self.input_width)

    @property
    def input_channels(self) -> int:
        """Channels of the raw input array (1 for mono, 3 or 4 for colour)."""
        return {'rgb': 3, 'bgr': 3, 'rgba': 4, 'bgra': 4, 'mono': 1}[
            INPUT_CHANNEL_ORDER[self.input_encoding]]

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of the raw input array: (H, W) for mono, else (H, W, C)."""
        if self.input_channels == 1:
            return (self.input_height, self.input_width)
        return (self.input_height, self.input_width, self.input_channels)

    @property
    def size_after_crop(self) -> Size:
        """Image size after the crop step."""
        _, _, height, width = self.crop.window(self.input_size)
        return Size(height, width)

    @property
    def size_before_random_crop(self) -> Size:
        """Image size after crop and resize."""
        return self.resize.size if self.resize is not None else self.size_after_crop

    @property
    def output_size(self) -> Size:
        """Spatial size of the model input."""
        return self.random_crop if self.random_crop is not None else self.size_before_random_crop

    @property
    def output_channels(self) -> int:
        """Channels of the model input."""
        return 1 if self.color == 'gray' else 3

    @property
    def output_shape(self) -> tuple[int, int, int]:
        """Shape of one model input: (C, H, W) for `chw`, (H, W, C) for `hwc`."""
        size, channels = self.output_size, self.output_channels
        if self.layout == 'chw':
            return (channels, size.height, size.width)
        return (size.height, size.width, channels)

    def eval_window(self) -> tuple[int, int, int, int]:
        """(top, left, height, width) of the deterministic random-crop window at evaluation."""
        before = self.size_before_random_crop
        if self.random_crop is None:
            return (0, 0, before.height, before.width)
        return Crop('center', self.random_crop.height, self.random_crop.width).window(before)

    # Serialisation --------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-compatible dict (the canonical form that is hashed)."""
        return {
            'format': SPEC_FORMAT,
            'version': SPEC_VERSION,
            'input': {'encoding': self.input_encoding, 'height': self.input_height,
                      'width': self.input_width},
            'crop': {'mode': self.crop.mode, 'height': self.crop.height,
                     'width': self.crop.width, 'x': self.crop.x, 'y': self.crop.y},
            'resize': None if self.resize is None else {
                'height': self.resize.height, 'width': self.resize.width,
                'interpolation': self.resize.interpolation},
            'random_crop': None if self.random_crop is None else {
                'height': self.random_crop.height, 'width': self.random_crop.width},
            'color': self.color,
            'scale': self.scale,
            'mean': list(self.mean),
            'std': list(self.std),
            'layout': self.layout,
            'dtype': self.dtype,
        }

    def to_json(self, *, indent: int | None = None) -> str:
        """JSON text; with `indent=None` it is the canonical (hashed) form."""
        if indent is None:
            return json.dumps(self.to_dict(), sort_keys=True, separators=(',', ':'),
                              allow_nan=False)
        return json.dumps(self.to_dict(), sort_keys=True, indent=indent, allow_nan=False)

    def spec_hash(self) -> str:
        """Stable 16-hex-digit hash of the canonical JSON."""
        return hashlib.sha256(self.to_json().encode('utf-8')).hexdigest()[:16]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PreprocessSpec:
        """Build a spec from its dict form, naming any unknown, missing or invalid field.

        Raises:
            SpecError: with the dotted path of the offending field.
        """
        fields = _Reader(data, '')
        fmt = fields.get('format', str, SPEC_FORMAT)
        if fmt != SPEC_FORMAT:
            raise SpecError('format', f'expected {SPEC_FORMAT!r}, got {fmt!r}: this is not a '
                            'preprocessing spec')
        version = fields.get('version', int)
        if version != SPEC_VERSION:
            raise SpecError('version', f'spec version {version} is not supported by this '
                            f'visuomotor (reads version {SPEC_VERSION}); upgrade visuomotor or '
                            're-export the model')
        inp = _Reader(fields.get('input', Mapping), 'input')
        crop = _Reader(fields.get('crop', Mapping, {'mode': 'none'}), 'crop')
        resize_data = fields.get('resize', Mapping, None, optional=True)
        random_data = fields.get('random_crop', Mapping, None, optional=True)
        resize = None
        if resize_data is not None:
            r = _Reader(resize_data, 'resize')
            resize = Resize(r.get('height', int), r.get('width', int),
                            cast(Interpolation, r.get('interpolation', str, 'area')))
            r.finish()
        random_crop = None
        if random_data is not None:
            rc = _Reader(random_data, 'random_crop')
            random_crop = _build(Size, 'random_crop', rc.get('height', int), rc.get('width', int))
            rc.finish()
        spec = cls(
            input_encoding=cast(InputEncoding, inp.get('encoding', str)),
            input_height=inp.get('height', int),
            input_width=inp.get('width', int),
            crop=Crop(cast(CropMode, crop.get('mode', str)), crop.get('height', int, 0),
                      crop.get('width', int, 0), crop.get('x', int, 0), crop.get('y', int, 0)),
            resize=resize,
            random_crop=random_crop,
            color=cast(ColorOrder, fields.get('color', str, 'rgb')),
            scale=fields.get('scale', float, 1.0 / 255.0),
            mean=tuple(fields.get('mean', list, [])),
            std=tuple(fields.get('std', list, [])),
            layout=cast(Layout, fields.get('layout', str, 'chw')),
            dtype=cast(OutputDType, fields.get('dtype', str, 'float32')),
        )
        for reader in (inp, crop, fields):
            reader.finish()
        return spec

    @classmethod
    def from_json(cls, text: str, *, source: str = 'spec JSON') -> PreprocessSpec:
        """Parse JSON text (`source` names it in errors)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SpecError(source, f'is not valid JSON ({exc})') from None
        if not isinstance(data, Mapping):
            raise SpecError(source, 'must be a JSON object')
        return cls.from_dict(data)

    def describe(self) -> str:
        """One line a human can check against what the camera sends."""
        steps = [f'{self.input_size} {self.input_encoding}']
        if self.crop.mode != 'none':
            top, left, height, width = self.crop.window(self.input_size)
            steps.append(f'crop {width}x{height} at ({left},{top})')
        if self.resize is not None:
            steps.append(f'resize {self.resize.size} ({self.resize.interpolation})')
        if self.random_crop is not None:
            steps.append(f'random crop {self.random_crop} (centre at eval)')
        steps.append(self.color)
        steps.append(f'x{self.scale:.6g}, mean {list(self.mean)}, std {list(self.std)}')
        steps.append(f'{self.layout.upper()} {self.dtype} {self.output_shape}')
        return ' -> '.join(steps)


def _build(kind: type[Size], where: str, height: int, width: int) -> Size:
    try:
        return kind(height, width)
    except SpecError as exc:
        raise SpecError(f'{where}.{exc.field}', str(exc).split(': ', 1)[1]) from None


class _Reader:
    """Reads typed fields of one JSON object and reports unknown keys."""

    def __init__(self, data: Mapping[str, Any], path: str) -> None:
        if not isinstance(data, Mapping):
            raise SpecError(path or 'spec', f'must be an object, got {data!r}')
        self._data = data
        self._path = path
        self._seen: set[str] = set()

    def _where(self, key: str) -> str:
        return f'{self._path}.{key}' if self._path else key

    def get(self, key: str, kind: type[Any], default: Any = ..., *, optional: bool = False
            ) -> Any:
        self._seen.add(key)
        if key not in self._data:
            if default is ...:
                raise SpecError(self._where(key), 'is missing')
            return default
        value = self._data[key]
        if value is None and optional:
            return None
        if kind is float and _is_int(value):
            return value  # an integer in a number field; converted and checked by the spec
        if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
            raise SpecError(self._where(key), f'must be {_KIND_NAMES.get(kind, kind.__name__)}, '
                            f'got {value!r}')
        return value

    def finish(self) -> None:
        unknown = sorted((set(self._data) - self._seen), key=str)
        if unknown:
            raise SpecError(self._where(str(unknown[0])), 'is not a spec field (typo?); known '
                            f'fields: {", ".join(sorted(self._seen))}')


_KIND_NAMES: dict[type[Any], str] = {
    Mapping: 'an object', list: 'a list', int: 'an integer', float: 'a number', str: 'a string',
}


def load_spec(path: str | Path) -> PreprocessSpec:
    """Read a spec from a JSON file."""
    file = Path(path)
    try:
        text = file.read_text(encoding='utf-8')
    except OSError as exc:
        raise SpecError(str(file), f'cannot be read ({exc.strerror})') from None
    except UnicodeDecodeError:
        raise SpecError(str(file), 'is not a text file (a preprocessing spec is JSON, e.g. '
                        'config/preprocessing/imagenet_224.json): give the spec, not an '
                        'image') from None
    return PreprocessSpec.from_json(text, source=str(file))


def save_spec(spec: PreprocessSpec, path: str | Path) -> None:
    """Write a spec as indented JSON."""
    Path(path).write_text(spec.to_json(indent=2) + '\n', encoding='utf-8')
