"""Typed reading of parsed YAML/JSON mappings with errors that name the full field path.

Every config file of the stack (robot descriptions, twin scenes, ...) is read through a
`FieldReader`, so a bad value reports e.g. `cameras[1].fx_px: must be > 0, got -3`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from visuomotor.errors import FieldError


class FieldReader:
    """Typed access to one mapping; `error` is the FieldError subclass to raise."""

    def __init__(self, data: object, path: str = '', error: type[FieldError] = FieldError,
                 ) -> None:
        if not isinstance(data, Mapping):
            raise error(path or 'file', f'must be a mapping, got {data!r}')
        self.data: Mapping[str, Any] = data
        self.path = path
        self.error = error

    def field(self, key: str) -> str:
        """The dotted path of `key` below this mapping."""
        if not self.path:
            return key
        return f'{self.path}{key}' if key.startswith('[') else f'{self.path}.{key}'

    def fail(self, key: str, message: str) -> FieldError:
        """An error about `key` (to raise)."""
        return self.error(self.field(key), message)

    def has(self, key: str) -> bool:
        """Whether `key` is present and not null."""
        return self.data.get(key) is not None

    def raw(self, key: str) -> Any:
        """The value of a required key."""
        if key not in self.data:
            raise self.fail(key, 'is missing')
        return self.data[key]

    def unknown(self, allowed: set[str]) -> None:
        """Refuse keys outside `allowed` (catches typos such as `fx_pix`)."""
        extra = sorted(set(self.data) - allowed)
        if extra:
            raise self.error(self.path or 'file', f'unknown keys {extra}; allowed: '
                             f'{sorted(allowed)}')

    def text(self, key: str, default: str | None = None, *,
             choices: tuple[str, ...] | None = None) -> str:
        """A non-empty string, optionally one of `choices`."""
        if default is not None and not self.has(key):
            return default
        value = self.raw(key)
        if not isinstance(value, str) or not value:
            raise self.fail(key, f'must be a non-empty string, got {value!r}')
        if choices is not None and value not in choices:
            raise self.fail(key, f'must be one of {list(choices)}, got {value!r}')
        return value

    def number(self, key: str, default: float | None = None, *, minimum: float | None = None,
               maximum: float | None = None, positive: bool = False) -> float:
        """A finite number within the given bounds."""
        if default is not None and not self.has(key):
            return default
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not math.isfinite(value):
            raise self.fail(key, f'must be a finite number, got {value!r}')
        if positive and value <= 0:
            raise self.fail(key, f'must be > 0, got {value!r}')
        if minimum is not None and value < minimum:
            raise self.fail(key, f'must be >= {minimum}, got {value!r}')
        if maximum is not None and value > maximum:
            raise self.fail(key, f'must be <= {maximum}, got {value!r}')
        return float(value)

    def integer(self, key: str, default: int | None = None, *, minimum: int = 1) -> int:
        """An integer >= `minimum`."""
        if default is not None and not self.has(key):
            return default
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.fail(key, f'must be an integer >= {minimum}, got {value!r}')
        return value

    def boolean(self, key: str, default: bool | None = None) -> bool:
        """A true/false value."""
        if default is not None and not self.has(key):
            return default
        value = self.raw(key)
        if not isinstance(value, bool):
            raise self.fail(key, f'must be true or false, got {value!r}')
        return value

    def numbers(self, key: str, length: int, default: tuple[float, ...] | None = None,
                ) -> tuple[float, ...]:
        """A list of `length` finite numbers."""
        if default is not None and not self.has(key):
            return default
        value = self.raw(key)
        if not isinstance(value, list) or len(value) != length:
            raise self.fail(key, f'must be a list of {length} numbers, got {value!r}')
        items = FieldReader({f'[{i}]': v for i, v in enumerate(value)}, self.field(key),
                            self.error)
        return tuple(items.number(f'[{i}]') for i in range(length))

    def child(self, key: str) -> FieldReader:
        """The nested mapping at `key`."""
        return FieldReader(self.raw(key), self.field(key), self.error)

    def children(self, key: str) -> list[FieldReader]:
        """The list of mappings at `key`."""
        value = self.raw(key)
        if not isinstance(value, list):
            raise self.fail(key, f'must be a list, got {value!r}')
        return [FieldReader(item, f'{self.field(key)}[{i}]', self.error)
                for i, item in enumerate(value)]


def read_yaml(path: Path, error: type[FieldError], what: str) -> object:
    """Parse a YAML file, turning I/O and syntax errors into `error` naming the file."""
    try:
        return yaml.safe_load(path.read_text())
    except OSError as exc:
        raise error(what, f'cannot read {path}: {exc}') from None
    except yaml.YAMLError as exc:
        raise error(what, f'{path} is not valid YAML: {exc}') from None


def config_path(name_or_path: str | Path, folder: Path, what: str,
                error: type[FieldError]) -> Path:
    """A config file given by name (`<folder>/<name>.yaml`) or by a YAML file path.

    Raises:
        error: `what` is an unknown name; the message lists the available ones.
    """
    text = str(name_or_path)
    if text.endswith(('.yaml', '.yml')):
        return Path(text)
    path = folder / f'{text}.yaml'
    if not path.is_file():
        known = ', '.join(sorted(p.stem for p in folder.glob('*.yaml')))
        raise error(what, f'unknown {what} {text!r}; available: {known}, or give the path '
                    f'of a {what} YAML file')
    return path
