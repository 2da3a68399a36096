"""Errors of the preprocessing library."""

from visuomotor.errors import FieldError, VisuomotorError


class SpecError(FieldError):
    """A preprocessing spec (or its JSON) is invalid; `field` is the dotted path."""


class FrameMismatchError(VisuomotorError, ValueError):
    """A frame does not match the size or encoding its preprocessing spec expects."""
