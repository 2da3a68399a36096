"""Shared test configuration: hypothesis profiles and repository paths."""

from __future__ import annotations

import datetime
import os
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# `ci` (used by make test): derandomised, so a red CI run reproduces; `dev`: more examples.
settings.register_profile('ci', derandomize=True, max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile('dev', max_examples=1000, deadline=None)
# `soak` (make soak): the safety property tests at 100k generated cases each.
settings.register_profile('soak', max_examples=100_000, deadline=None,
                          suppress_health_check=list(HealthCheck))
settings.load_profile(os.environ.get('HYPOTHESIS_PROFILE', 'ci'))

# Tests and the graphs they start run on a ROS domain of their own, on this host only, unless
# ROS_DOMAIN_ID is set (make test sets one per run): never on a robot's default domain 0.
if not os.environ.get('ROS_DOMAIN_ID'):
    os.environ['ROS_DOMAIN_ID'] = str(os.getpid() % 90 + 10)
    os.environ.setdefault('ROS_AUTOMATIC_DISCOVERY_RANGE', 'LOCALHOST')


@pytest.fixture(scope='session')
def verified_rig(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the twin's rig calibration with a passing verification record (the
    package's calibration/twin_fr3 verified on the twin just now)."""
    from visuomotor.paths import share_dir
    from visuomotor.sim.calibration_capture import verify_on_twin

    folder = tmp_path_factory.mktemp('calibration') / 'twin_fr3'
    shutil.copytree(share_dir() / 'calibration' / 'twin_fr3', folder,
                    ignore=shutil.ignore_patterns('verification'))
    record = verify_on_twin(folder, 'fr3', datetime.datetime.now(datetime.UTC))
    assert record.passed, record.failures()
    return folder
