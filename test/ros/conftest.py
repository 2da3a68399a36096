"""Fixtures for tests that run real rclpy nodes over DDS in this process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import rclpy
from rclpy.context import Context


@pytest.fixture
def ros_context() -> Iterator[Context]:
    """An initialised rclpy context of its own, shut down after the test."""
    context = Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        rclpy.shutdown(context=context)
