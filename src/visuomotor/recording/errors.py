"""Errors of the recording room (every message names the file or episode, and the fix)."""

from __future__ import annotations

from visuomotor.errors import VisuomotorError


class DatasetError(VisuomotorError, ValueError):
    """A dataset cannot be read or written; the message names the file and what to do."""


class EpisodeRefusedError(VisuomotorError, ValueError):
    """An episode is not committed (the message says which and why); the dataset is unchanged."""
