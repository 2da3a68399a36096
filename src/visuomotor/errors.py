"""Exception types shared across visuomotor.

Every error names the offending input, the expected value and the fix, so a user
reading a log line knows what to change without reading the code.
"""


class VisuomotorError(Exception):
    """Base class of every error raised on purpose by visuomotor."""


class FieldError(VisuomotorError, ValueError):
    """A named field of an input (a message, a file, a spec) is invalid.

    Attributes:
        field: the name (or dotted path) of the offending field.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f'{field}: {message}')
        self.field = field


class ImageConversionError(FieldError):
    """An image (a sensor_msgs/Image or an array) cannot be converted."""


class CameraInfoError(FieldError):
    """A camera_info message or YAML file does not describe a usable calibration."""
