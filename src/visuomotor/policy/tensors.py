"""Arrays as JSON values, for golden I/O inside ONNX metadata (no pickle anywhere).

An array is `{"dtype": "float32", "shape": [2, 3], "zlib_b64": "..."}`: the little-endian
bytes in C order, zlib-compressed, base64-encoded. Only plain numeric dtypes are accepted, so
decoding can never construct an object.
"""

from __future__ import annotations

import base64
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from visuomotor.policy.errors import BundleError

#: The dtypes an encoded array may have.
DTYPES = ('float16', 'float32', 'float64', 'int32', 'int64', 'uint8')


def encode_array(array: npt.ArrayLike) -> dict[str, Any]:
    """The JSON form of a numeric array."""
    value = np.asarray(array)
    if value.dtype.name not in DTYPES:
        raise BundleError('array', f'dtype {value.dtype} cannot be stored; use one of {DTYPES}')
    raw = np.ascontiguousarray(value, dtype=value.dtype.newbyteorder('<')).tobytes()
    return {'dtype': value.dtype.name, 'shape': list(value.shape),
            'zlib_b64': base64.b64encode(zlib.compress(raw, 6)).decode('ascii')}


def decode_array(data: object, where: str) -> npt.NDArray[Any]:
    """An array from its JSON form; `where` names it in errors."""
    if not isinstance(data, Mapping) or set(data) != {'dtype', 'shape', 'zlib_b64'}:
        raise BundleError(where, 'must be an object with dtype, shape and zlib_b64')
    dtype, shape = data['dtype'], data['shape']
    if dtype not in DTYPES:
        raise BundleError(f'{where}.dtype', f'{dtype!r} is not one of {DTYPES}')
    if not isinstance(shape, list) or not all(
            isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise BundleError(f'{where}.shape', f'must be a list of sizes, got {shape!r}')
    expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    try:
        inflate = zlib.decompressobj()
        raw = inflate.decompress(base64.b64decode(str(data['zlib_b64']), validate=True),
                                 expected + 1)  # never inflate more than the shape needs
    except (ValueError, zlib.error) as exc:
        raise BundleError(f'{where}.zlib_b64', f'is corrupt ({exc}); re-export the model'
                          ) from None
    if len(raw) != expected:
        held = f'more than {expected}' if len(raw) > expected else str(len(raw))
        raise BundleError(where, f'holds {held} bytes, but {dtype} {shape} needs '
                          f'{expected}; re-export the model')
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder('<')).astype(
        dtype).reshape(shape)
