"""Fixtures for tests that run real rclpy nodes over DDS in this process."""

from __future__ import annotations

import datetime
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import rclpy
from rclpy.context import Context

from visuomotor.paths import share_dir
from visuomotor.sim.calibration_capture import verify_on_twin


@pytest.fixture
def ros_context() -> Iterator[Context]:
    """An initialised rclpy context of its own, shut down after the test."""
    context = Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        rclpy.shutdown(context=context)


@pytest.fixture(scope='session')
def verified_rig(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the twin's rig calibration with a passing verification record (the
    package's calibration/twin_fr3 verified on the twin just now)."""
    folder = tmp_path_factory.mktemp('calibration') / 'twin_fr3'
    shutil.copytree(share_dir() / 'calibration' / 'twin_fr3', folder,
                    ignore=shutil.ignore_patterns('verification'))
    record = verify_on_twin(folder, 'fr3', datetime.datetime.now(datetime.UTC))
    assert record.passed, record.failures()
    return folder
