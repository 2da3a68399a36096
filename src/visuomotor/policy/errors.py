"""Errors of the policy runtime: each names the input, the expected value and the fix."""

from visuomotor.errors import FieldError, VisuomotorError


class BundleError(FieldError):
    """A model bundle (its ONNX file, embedded spec or golden I/O) is invalid."""


class BundleMismatchError(FieldError):
    """The bundle's spec does not match the live rig (cameras, joints, rate)."""


class BackendError(VisuomotorError, RuntimeError):
    """No inference backend could load the model, or one failed its golden check."""
